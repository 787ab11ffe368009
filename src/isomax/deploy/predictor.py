"""A deployed classifier with a reject option: class, probability, OOD score, accepted.

Scikit-learn / :mod:`isomax.detectors` style::

    from isomax.deploy import Predictor
    pred = Predictor(model, "mds", mean=mean, std=std).fit(val_data)  # threshold at 95% validation TPR
    out = pred.predict(x)          # x: normalised float (B, C, H, W) or uint8 images (B, C, H, W)
    out.label, out.probability, out.score, out.accepted

The score is a plain score name of :data:`isomax.scores.SCORES` (``mds``, ``es``, ``mps``,
``energy``, ``max_logit``) or a *fitted* detector of :mod:`isomax.detectors` (ODIN, Mahalanobis,
anything with ``predict(x)`` and a ``name``). Every score has the same direction: **higher = more
in-distribution**, and an input is accepted when ``score >= threshold``. A :class:`Threshold`
fitted for another score (or under another head temperature) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..detectors.base import NotFittedError, iter_batches
from ..scores import SCORES
from ..runs.input_spec import InputSpec
from .threshold import Threshold, fit_threshold, head_temperature, input_description

if TYPE_CHECKING:
    from ..runs.run import Run


class BatchScorer(Protocol):
    """What a :class:`Predictor` accepts as its score besides a name: a fitted detector, ``predict(x)`` -> (B,)."""

    def predict(self, x: Tensor) -> Tensor: ...


__all__ = ["Predictor", "Prediction"]


@dataclass
class Prediction:
    """Per input (tensors of length B, on the CPU): predicted class index, its probability
    (``softmax(logits)``, the head's temperature included), OOD score (higher = more
    in-distribution), accepted (``score >= threshold``), and the logits (B, C)."""

    label: Tensor
    probability: Tensor
    score: Tensor
    accepted: Tensor
    logits: Tensor

    def __len__(self) -> int:
        return int(self.label.shape[0])


class Predictor:
    """Classify and accept / reject inputs with a model, a score and a threshold.

    Args:
        model: a classifier returning logits (B, C).
        score: a name in :data:`isomax.scores.SCORES` or a fitted detector (``predict(x)`` -> (B,),
            higher = more in-distribution, and a ``name``).
        threshold: a :class:`Threshold` (checked against ``score`` and the head temperature), a
            float, or None (then call :meth:`fit`).
        target_tpr: fraction of validation inputs :meth:`fit` keeps (default 0.95).
        mean, std: per-channel normalisation in [0, 1]-pixel units, used for uint8 inputs and
            ImageData; None: ``input``'s, else normalised float inputs only (or the ImageData's own normalisation).
        input: the model's :class:`~isomax.runs.InputSpec` (a run's ``run.input``): its mean/std unless given.
        device: where the model runs (default: the model's device).
        batch_size: batch size of :meth:`fit` and :meth:`predict_data`.
    """

    def __init__(
        self,
        model: nn.Module,
        score: str | BatchScorer = "mds",
        threshold: Threshold | float | None = None,
        *,
        target_tpr: float = 0.95,
        mean: Sequence[float] | Tensor | None = None,
        std: Sequence[float] | Tensor | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 500,
        input: InputSpec | None = None,
    ) -> None:
        if input is not None:
            mean = input.mean if mean is None else mean
            std = input.std if std is None else std
        self.input = input
        self.model = model
        self.score = score
        self.threshold = threshold
        self.target_tpr = target_tpr
        self.mean = mean
        self.std = std
        self.device = device
        self.batch_size = batch_size
        self.score_name = _score_name(score)
        self.threshold_ = None if threshold is None else self._as_threshold(threshold)

    @classmethod
    def from_run(cls, run: Run, score: str | None = None, **kwargs: Any) -> "Predictor":
        """The predictor a run deploys: its (calibrated) model, the score and threshold of its ``threshold.json``
        (:meth:`isomax.runs.Run.threshold`, strictly checked; ``score``: the one expected) and its input."""
        threshold = run.threshold(score)
        kwargs.setdefault("device", run.device)
        return cls(run.model, threshold.score, threshold, input=run.input, **kwargs)

    # ---------------------------------------------------------------------------------------------
    def _as_threshold(self, threshold: Threshold | float) -> Threshold:
        from ..runs.fingerprint import model_fingerprint

        if isinstance(threshold, Threshold):
            threshold.check_score(self.score_name, head_temperature(self.model))
            # the model's weights (once here: hashing every batch would cost more than the batch)
            return threshold.check_model(
                model_fingerprint(self.model) if threshold.fingerprint else None, None, self._input(threshold.input)
            )
        if isinstance(threshold, (int, float)) and not isinstance(threshold, bool):
            return Threshold(
                score=self.score_name,
                threshold=threshold,
                target_tpr=float("nan"),
                temperature=head_temperature(self.model),
            )  # a NaN / infinite threshold: ValueError
        raise TypeError(f"Expected `threshold` to be a Threshold, a float or None, but got: {type(threshold).__name__}")

    def _input(self, like: dict | None) -> dict | None:
        """The Predictor's input description (channels and size of ``like``, its own mean/std) to check
        ``like`` against."""
        if like is None or self.mean is None or self.std is None:
            return None
        c = like["channels"]
        mean, std = (torch.as_tensor(v, dtype=torch.float64).flatten() for v in (self.mean, self.std))
        if mean.numel() not in (1, c) or std.numel() not in (1, c):
            return None  # reported by predict with the batch at hand
        return input_description((c, like["height"], like["width"]), mean.expand(c).tolist(), std.expand(c).tolist())

    def _device(self) -> torch.device:
        if self.device is not None:
            return torch.device(self.device)
        p = next(iter(self.model.parameters()), None)
        return p.device if p is not None else torch.device("cpu")

    def _check_batch(self, x) -> Tensor:
        """One-line errors for what the model cannot take: not a tensor, not (B, C, H, W), empty, a dtype
        other than uint8 / float32 / float64 / bfloat16-on-GPU, channels other than mean/std's or the threshold's."""
        if not isinstance(x, Tensor):
            raise TypeError(f"Expected an image batch as a torch.Tensor (B, C, H, W), but got: {type(x).__name__}")
        if x.ndim != 4:
            raise InputError(f"Expected an image batch (B, C, H, W), but got shape {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise InputError(f"Expected at least one image, but got an empty batch {tuple(x.shape)}")
        if x.dtype not in (torch.uint8, torch.float32, torch.float64):
            raise InputError(
                f"Expected uint8 images (0..255) or normalised float32/float64 ones, but got dtype {x.dtype}"
                + ("; convert with x.float()" if x.is_floating_point() else "")
            )
        c = x.shape[1]
        for name in ("mean", "std"):
            v = getattr(self, name)
            if v is not None and torch.as_tensor(v).numel() not in (1, c):
                raise InputError(
                    f"Expected {torch.as_tensor(v).numel()} channel(s) as `{name}` has, but got images "
                    f"with {c} channel(s) {tuple(x.shape)}"
                )
        t = self.threshold_
        if t is not None and t.input is not None and t.input["channels"] != c:
            raise InputError(
                f"Expected {t.input['channels']} channel(s) as the threshold's input "
                f"({t.input['channels']}x{t.input['height']}x{t.input['width']}), but got {tuple(x.shape)}"
            )
        return x

    def _normalise(self, x: Tensor) -> Tensor:
        if x.dtype == torch.uint8:
            if self.mean is None or self.std is None:
                raise InputError(
                    "Expected normalised float inputs, or `mean` and `std` given to the Predictor, "
                    "but got uint8 images and no mean/std"
                )
            c = x.shape[1]
            mean = torch.as_tensor(self.mean, dtype=torch.float64).flatten().expand(c).view(1, c, 1, 1)
            std = torch.as_tensor(self.std, dtype=torch.float64).flatten().expand(c).view(1, c, 1, 1)
            # as isomax.data.BatchLoader (and the exported graph): x * 1/(255 std) - mean/std
            scale, shift = (1.0 / (255.0 * std)).float().to(x.device), (mean / std).float().to(x.device)
            return x.float() * scale - shift
        if not x.is_floating_point():
            raise InputError(f"Expected a float or uint8 image batch (B, C, H, W), but got dtype {x.dtype}")
        return x

    def scores(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(logits (B, C), score (B,))`` of a batch, float32 on the CPU."""
        x = self._normalise(self._check_batch(x).to(self._device()))
        self.model.eval()
        with torch.no_grad():
            logits = self.model(x).float()
        if isinstance(self.score, str):
            values = SCORES[self.score](logits)
        else:  # a detector: may need gradients (ODIN, Mahalanobis input preprocessing)
            values = self.score.predict(x)
        return logits.cpu(), values.detach().float().cpu()

    # ---------------------------------------------------------------------------------------------
    def fit(self, val_data, target_tpr: float | None = None) -> "Predictor":
        """Fit the threshold on held-out **in-distribution** data (the validation split, never test/OOD).

        ``val_data``: ImageData, BatchLoader, or iterable of (x, y) / x batches. Returns ``self``.
        """
        target = self.target_tpr if target_tpr is None else target_tpr
        values = torch.cat(
            [
                self.scores(x)[1]
                for x, _ in iter_batches(
                    val_data, mean=self.mean, std=self.std, device=self._device(), batch_size=self.batch_size
                )
            ]
        )
        from ..runs.fingerprint import model_fingerprint

        shape = getattr(val_data, "shape", None)  # an ImageData: its (C, H, W) with this Predictor's mean/std
        like = (
            dict(channels=shape[0], height=shape[1], width=shape[2]) if shape is not None and len(shape) == 3 else None
        )
        self.threshold_ = fit_threshold(
            values,
            target,
            score=self.score_name,
            temperature=head_temperature(self.model),
            fingerprint=model_fingerprint(self.model),
            input=self._input(like),
        )
        return self

    def predict(self, x: Tensor) -> Prediction:
        """Class, probability, score and accept flag of a batch (normalised float or uint8 (B, C, H, W))."""
        if self.threshold_ is None:
            raise NotFittedError("This Predictor has no threshold: pass `threshold=` or call `fit(val_data)` first")
        self.threshold_.check_score(self.score_name, head_temperature(self.model))
        logits, values = self.scores(x)
        prob, label = torch.softmax(logits, 1).max(1)
        return Prediction(
            label=label, probability=prob, score=values, accepted=self.threshold_.accept(values), logits=logits
        )

    def predict_data(self, data) -> Prediction:
        """:meth:`predict` over a whole data set (ImageData, BatchLoader, iterable of batches)."""
        parts = [
            self.predict(x)
            for x, _ in iter_batches(
                data, mean=self.mean, std=self.std, device=self._device(), batch_size=self.batch_size
            )
        ]
        if not parts:
            raise InputError("Expected `data` to hold at least one sample, but it is empty")
        return Prediction(
            *(
                torch.cat([getattr(p, f) for p in parts])
                for f in ("label", "probability", "score", "accepted", "logits")
            )
        )

    __call__ = predict

    def __repr__(self) -> str:
        return f"Predictor(score={self.score_name!r}, threshold={self.threshold_})"


def _score_name(score: str | BatchScorer) -> str:
    if isinstance(score, str):
        if score not in SCORES:
            raise InputError(f"Expected `score` to be one of {list(SCORES)} or a fitted detector, but got: {score!r}")
        return score
    if callable(getattr(score, "predict", None)):
        if hasattr(score, "is_fitted") and not score.is_fitted():
            raise NotFittedError(
                f"Expected a fitted detector, but {type(score).__name__} is not fitted: call its `fit` first"
            )
        return str(getattr(score, "name", type(score).__name__.lower()))
    raise TypeError(
        f"Expected `score` to be a score name or a detector with `predict(x)`, but got: {type(score).__name__}"
    )
