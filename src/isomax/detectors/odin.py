r"""ODIN (Liang, Li & Srikant, ICLR 2018, "Enhancing the reliability of out-of-distribution image
detection in neural networks"; https://github.com/facebookresearch/odin).

Temperature scaling plus input preprocessing::

    x~    = x - eps * sign(-grad_x log S_yhat(x; T))        (yhat = argmax_j z_j(x))
    score = max_j S_j(x~; T),      S(x; T) = softmax(z(x) / T)

Higher = more in-distribution. ``eps`` is in [0, 1]-pixel units: the gradient sign is divided by the
per-channel normalisation ``std`` (as in Lee et al.'s code), so the grid below means the same for
every data set. The preprocessing costs a forward + backward pass before the scoring forward pass.

Hyperparameters are chosen as Lee et al. (2018) do, without any out-distribution data: on
in-distribution *validation* samples against FGSM adversarial samples made from them
(:func:`isomax.detectors.adversarial.fgsm`), over ``T in TEMPERATURES`` x ``eps in NOISES``,
maximising TNR at 95% TPR (ties: AUROC) of :func:`isomax.metrics.ood_metrics`.

Cost (cnn-28, 2 CPU threads): the grid search reuses one gradient per temperature for all noise
levels and one clean forward pass for all ``eps = 0`` entries, i.e. ``4 x (1 backward + 10
forwards) + 1`` passes per sample; with the default cap of ``max_samples=500`` validation + 500
adversarial samples that is about 41,000 image-forwards, 15-30 s for cnn-28 on 2 CPU threads.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from ..metrics import ood_metrics
from .adversarial import FGSM_EPS, adversarial_validation
from .base import Detector, as_logits, chunks, pixel_scale

__all__ = ["ODIN", "odin_score", "odin_perturb", "TEMPERATURES", "NOISES"]

#: temperature grid of Lee et al. (2018)
TEMPERATURES: tuple[float, ...] = (1, 10, 100, 1000)
#: noise-magnitude grid of Lee et al. (2018), [0, 1]-pixel units (also used by Mahalanobis)
NOISES: tuple[float, ...] = (0, 0.0005, 0.001, 0.0014, 0.002, 0.0024, 0.005, 0.01, 0.05, 0.1, 0.2)


def _odin_gradient_sign(model: nn.Module, x: Tensor, temperature: float) -> Tensor:
    """``sign(grad_x -log S_yhat(x; T))``: the direction that *lowers* the max softmax."""
    xg = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model(xg).float() / temperature
        loss = F.cross_entropy(logits, logits.argmax(1), reduction="sum")
        (grad,) = torch.autograd.grad(loss, xg)
    return torch.sign(grad)


def odin_perturb(model: nn.Module, x: Tensor, temperature: float, noise: float, std=None) -> Tensor:
    """ODIN's preprocessed input ``x - noise * sign(-grad_x log S_yhat(x; T)) / std`` (detached)."""
    if noise == 0:
        return x.detach()
    return x.detach() - noise * _odin_gradient_sign(model, x, temperature) * pixel_scale(std, x)


def odin_score(model: nn.Module, x: Tensor, temperature: float = 1000.0, noise: float = 0.0014, std=None) -> Tensor:
    """ODIN score ``max_j softmax(z(x~) / T)_j``, shape (B,); higher = more in-distribution."""
    if not temperature > 0:
        raise InputError(f"Expected `temperature` to be > 0, but got: {temperature!r}")
    if not noise >= 0:
        raise InputError(f"Expected `noise` to be >= 0, but got: {noise!r}")
    x_t = odin_perturb(model, x, temperature, noise, std)
    with torch.no_grad():
        return torch.softmax(model(x_t).float() / temperature, dim=1).amax(dim=1)


def odin_grid_scores(
    model: nn.Module, x: Tensor, temperatures: Sequence[float], noises: Sequence[float], std=None, batch_size: int = 500
) -> dict[tuple[float, float], Tensor]:
    """ODIN scores of ``x`` for every ``(T, eps)`` of the grid, reusing passes (see module docstring)."""
    out: dict[tuple[float, float], list[Tensor]] = {(t, e): [] for t in temperatures for e in noises}
    for xb in chunks(x, batch_size):
        with torch.no_grad():
            logits0 = model(xb).float()
        scale = pixel_scale(std, xb)
        for t in temperatures:
            sign: Tensor | None = None  # one gradient per temperature, for every noise magnitude
            for e in noises:
                if e == 0:
                    logits = logits0
                else:
                    if sign is None:
                        sign = _odin_gradient_sign(model, xb, t)
                    with torch.no_grad():
                        logits = model(xb - e * sign * scale).float()
                out[(t, e)].append(torch.softmax(logits / t, dim=1).amax(dim=1).cpu())
    return {k: torch.cat(v) for k, v in out.items()}


class ODIN(Detector):
    """ODIN detector; ``fit`` chooses ``temperature_`` and ``noise_`` on adversarial validation.

    Fit: ``fit(model, val=...)`` tunes ``(T, eps)`` on the validation split vs FGSM samples made
    from it; ``train`` is not used; with both hyperparameters fixed, nothing is needed.

    Args:
        model: the classifier (or give it to :meth:`fit`).
        temperature, noise: fix a hyperparameter instead of searching it (both fixed: no fitting
            needed, ``ODIN(model, temperature=1000, noise=0.0014)`` scores at once).
        temperatures, noises: the search grids (default: Lee et al.'s, :data:`TEMPERATURES`,
            :data:`NOISES`).
        std: per-channel normalisation std of the inputs, to express ``noise`` in [0, 1]-pixel
            units; default: taken from the data given to :meth:`fit` (None there too: the noise
            is in normalised units).
        max_samples: cap on the validation samples used (and as many FGSM samples), default 500
            (random subset; ``None``: all).
        fgsm_eps: FGSM step for the adversarial samples, [0, 1]-pixel units (0.05 as Lee et al.).
        batch_size: samples per pass.
        seed: subsampling seed.

    Attributes (after ``fit``):
        temperature_, noise_: the chosen hyperparameters.
        std_: the std used to scale the noise.
        selection_: validation metrics of the chosen pair; grid_: ``[(T, eps, tnr, auroc), ...]``.
    """

    name = "odin"
    requires = ("val",)
    uses_adversarial = True

    temperature_: float
    noise_: float
    selection_: dict[str, float]
    grid_: list[tuple[float, float, float, float]]

    def __init__(
        self,
        model: nn.Module | None = None,
        temperature: float | None = None,
        noise: float | None = None,
        *,
        temperatures: Sequence[float] = TEMPERATURES,
        noises: Sequence[float] = NOISES,
        std=None,
        max_samples: int | None = 500,
        fgsm_eps: float = FGSM_EPS,
        batch_size: int = 500,
        seed: int = 0,
    ) -> None:
        super().__init__(model)
        self.temperature = temperature
        self.noise = noise
        self.temperatures = tuple(temperatures)
        self.noises = tuple(noises)
        self.std = std
        self.max_samples = max_samples
        self.fgsm_eps = fgsm_eps
        self.batch_size = batch_size
        self.seed = seed

    # -- fitting -------------------------------------------------------------------------------
    def _grids(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        temps = (self.temperature,) if self.temperature is not None else self.temperatures
        noises = (self.noise,) if self.noise is not None else self.noises
        if not temps or not all(t > 0 for t in temps):
            raise InputError(f"Expected positive temperatures, but got: {temps}")
        if not noises or not all(e >= 0 for e in noises):
            raise InputError(f"Expected non-negative noise magnitudes, but got: {noises}")
        return temps, noises

    def _can_skip(self, data: str) -> bool:
        return self.temperature is not None and self.noise is not None  # nothing to choose

    def _fit(self, model: nn.Module, *, train, val, mean, std, device, adversarial) -> "ODIN":
        """Choose ``(T, eps)`` on ``val`` (in-distribution validation data) vs FGSM samples made from it.

        ``train`` is not used. ``adversarial=(x_val, x_adv)`` (normalised tensors from
        :func:`~isomax.detectors.adversarial.adversarial_validation`, shared with Mahalanobis)
        replaces ``val``. With both hyperparameters fixed in the constructor nothing is needed.
        """
        self.std_ = self.std if self.std is not None else std
        temps, noises = self._grids()
        if adversarial is None and val is None and self.temperature is not None and self.noise is not None:
            # both hyperparameters fixed: nothing to choose (see _can_skip)
            self.temperature_, self.noise_ = float(self.temperature), float(self.noise)
            self.selection_, self.grid_ = {}, []
            return self
        if adversarial is None:
            x_val, x_adv, data_std = adversarial_validation(
                model,
                val,
                self.max_samples,
                eps=self.fgsm_eps,
                mean=mean,
                std=self.std_,
                device=device,
                batch_size=self.batch_size,
                seed=self.seed,
            )
            self.std_ = self.std_ if self.std_ is not None else data_std
        else:
            x_val, x_adv = adversarial
        s_in = odin_grid_scores(model, x_val, temps, noises, self.std_, self.batch_size)
        s_adv = odin_grid_scores(model, x_adv, temps, noises, self.std_, self.batch_size)
        best, self.grid_ = None, []
        for key in s_in:
            m = ood_metrics(s_in[key], s_adv[key])
            self.grid_.append((key[0], key[1], m["tnr_at_tpr95"], m["auroc"]))
            if best is None or (m["tnr_at_tpr95"], m["auroc"]) > (best[1]["tnr_at_tpr95"], best[1]["auroc"]):
                best = (key, m)
        assert best is not None, "the grids are not empty (checked by _grids)"
        (self.temperature_, self.noise_), self.selection_ = (float(best[0][0]), float(best[0][1])), best[1]
        return self

    def fit_features(self, features, labels=None) -> "ODIN":
        """Choose the temperature alone (``noise_ = 0``: preprocessing needs inputs) from logits.

        Args:
            features: logits ``(N, K)`` (or ``extract_features(...)`` dict) of validation samples
                followed by adversarial ones.
            labels: ``(N,)``, 1 for in-distribution validation samples, 0 for adversarial ones.
        """
        logits = as_logits(features).float()
        if labels is None:
            raise InputError(
                "Expected `labels` (1 = in-distribution validation, 0 = adversarial) to fit ODIN from logits"
            )
        is_in = torch.as_tensor(labels).bool().cpu()
        if is_in.shape != (len(logits),) or is_in.all() or not is_in.any():
            raise InputError("Expected `labels` to have one 0/1 entry per row of logits, with both values present")
        temps, _ = self._grids()
        best, self.grid_ = None, []
        for t in temps:
            s = torch.softmax(logits / t, dim=1).amax(1).cpu()
            m = ood_metrics(s[is_in], s[~is_in])
            self.grid_.append((t, 0.0, m["tnr_at_tpr95"], m["auroc"]))
            if best is None or (m["tnr_at_tpr95"], m["auroc"]) > (best[1]["tnr_at_tpr95"], best[1]["auroc"]):
                best = (t, m)
        assert best is not None, "the grid is not empty (checked by _grids)"
        self.temperature_, self.noise_, self.selection_ = float(best[0]), 0.0, best[1]
        self.std_ = self.std
        return self

    # -- scoring -------------------------------------------------------------------------------
    def is_fitted(self) -> bool:
        return hasattr(self, "temperature_") or (self.temperature is not None and self.noise is not None)

    def _hyper(self) -> tuple[float, float, object]:
        self._check_fitted()
        if hasattr(self, "temperature_"):
            return self.temperature_, self.noise_, self.std_
        assert self.temperature is not None and self.noise is not None, "is_fitted() without fit: both fixed"
        return float(self.temperature), float(self.noise), self.std

    def predict(self, x: Tensor) -> Tensor:
        """ODIN scores of normalised inputs ``x`` (B, C, H, W): forward, backward, forward."""
        t, e, std = self._hyper()
        model = self._check_model()
        return odin_score(model, self._check_input(x), t, e, std)

    def predict_features(self, features) -> Tensor:
        """``max softmax(logits / T)``: valid only when ``noise_ == 0`` (preprocessing needs inputs)."""
        t, e, _ = self._hyper()
        if e != 0:
            raise InputError(
                f"ODIN with noise {e} needs the inputs for its preprocessing: use predict(x), "
                "or fix noise=0 to score logits"
            )
        return torch.softmax(as_logits(features).float() / t, dim=1).amax(dim=1)

    def params(self) -> dict:
        t, e, _ = self._hyper()
        return {"temperature": t, "noise": e}
