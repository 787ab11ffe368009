r"""Mahalanobis detector (Lee, Lee, Lee & Shin, NeurIPS 2018, "A Simple Unified Framework for Detecting
Out-of-Distribution Samples and Adversarial Attacks"; https://github.com/pokaxpoka/deep_Mahalanobis_detector).

For every layer ``l`` (by default every map of ``model.feature_list``, the isomax models' stem and
stages as in the reference code; or any modules named in ``layers``, read by forward hooks; or,
for a model without ``feature_list``, the input of its classifier) the feature map is mean-pooled
over space, ``f_l(x)`` of size ``C_l``. On the *training* set: class means ``mu_{l,c}`` and one tied
covariance ``Sigma_l = 1/N sum_i (f_l(x_i) - mu_{l,y_i})(f_l(x_i) - mu_{l,y_i})^T`` (what
``sklearn.covariance.EmpiricalCovariance`` gives on the class-centred features, as in the reference
code; its pseudo-inverse is the precision ``P_l``). Layer score::

    M_l(x) = -min_c (f_l(x) - mu_{l,c})^T P_l (f_l(x) - mu_{l,c})          (higher = in)

Input preprocessing (per layer, as the reference code): move the input so that the distance to the
closest class mean *decreases*, ``x~_l = x - eps * sign(grad_x d_l(x)^2) / std`` (``d_l`` the
minimum distance, ``eps`` in [0, 1]-pixel units), then score ``M_l(x~_l)``.

Feature ensemble: a logistic regression over ``(M_1(x~_1), ..., M_L(x~_L))`` trained on
in-distribution validation samples (label 1) against FGSM adversarial samples made from them
(label 0; :mod:`isomax.detectors.adversarial`), never on the test out-distributions; ``eps`` is
chosen from :data:`~isomax.detectors.odin.NOISES` on the same data (best TNR at 95% TPR, ties
AUROC, each measured with a logistic regression fitted on the other half of the pairs). The final
score is the regression's decision function (higher = in).

Cost on a CPU (cnn-28, 2 threads): training statistics are one forward pass over at most
``max_train`` training images (default 20,000); the noise search computes each layer's gradient once
per validation sample and one forward pass per layer and noise level: ``L x 10 + 1`` forwards for
``max_samples`` (default 500) validation and as many adversarial samples. For cnn-28 (4 layers)
on 2 CPU threads that is about 30-60 s in all. Scoring with preprocessing costs one forward, ``L``
backward and ``L`` forward passes per input.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import InputError
from ..metrics import ood_metrics
from .adversarial import FGSM_EPS, adversarial_validation
from .base import Detector, LayerReader, _data_norm, _model_device, as_layer_list, chunks, iter_batches, pixel_scale
from .hooks import find_classifier
from .odin import NOISES
from ..sampling import seeded_subset

__all__ = ["Mahalanobis", "class_statistics", "mahalanobis_distances", "mahalanobis_score"]


# ---------------------------------------------------------------------------------------------
# Pure functions
# ---------------------------------------------------------------------------------------------


class _ClassStats:
    """Streaming per-class sums for class means and one tied covariance (float64)."""

    def __init__(self) -> None:
        self.counts: Tensor | None = None
        self.sums: Tensor | None = None
        self.outer: Tensor | None = None

    def update(self, features: Tensor, labels: Tensor, num_classes: int) -> None:
        f = features.detach().double().cpu()  # (B, C)
        y = labels.detach().long().cpu()
        if self.counts is None or self.sums is None or self.outer is None:
            self.counts = torch.zeros(num_classes, dtype=torch.float64)
            self.sums = torch.zeros(num_classes, f.shape[1], dtype=torch.float64)
            self.outer = torch.zeros(f.shape[1], f.shape[1], dtype=torch.float64)
        self.counts.index_add_(0, y, torch.ones(len(y), dtype=torch.float64))
        self.sums.index_add_(0, y, f)
        self.outer += f.t() @ f

    def finalize(self) -> tuple[Tensor, Tensor]:
        if self.counts is None or self.sums is None or self.outer is None or not bool((self.counts > 0).any()):
            raise InputError("Expected at least one labelled training sample to fit class statistics")
        n = self.counts.sum()
        present = self.counts > 0
        means = torch.zeros_like(self.sums)
        means[present] = self.sums[present] / self.counts[present, None]
        # sum_i (f_i - mu_yi)(f_i - mu_yi)^T = sum_i f_i f_i^T - sum_c n_c mu_c mu_c^T
        cov = (self.outer - (means * self.counts[:, None]).t() @ means) / n
        cov = (cov + cov.t()) / 2
        precision = torch.linalg.pinv(cov, hermitian=True)
        # classes without training samples get an infinitely far mean (never the closest)
        means[~present] = float("inf")
        return means, precision


def class_statistics(features: Tensor, labels: Tensor, num_classes: int | None = None) -> tuple[Tensor, Tensor]:
    """Class means ``(K, C)`` and the pseudo-inverse of the tied covariance ``(C, C)`` (float64).

    The covariance is ``1/N sum_i (f_i - mu_{y_i})(f_i - mu_{y_i})^T``, as
    ``sklearn.covariance.EmpiricalCovariance().fit(class-centred features)`` in Lee et al.'s code.
    """
    if features.ndim != 2 or labels.shape != (features.shape[0],):
        raise InputError(
            f"Expected features (N, C) and labels (N,), but got {tuple(features.shape)} and {tuple(labels.shape)}"
        )
    k = int(labels.max()) + 1 if num_classes is None else num_classes
    stats = _ClassStats()
    stats.update(features, labels, k)
    return stats.finalize()


def mahalanobis_distances(features: Tensor, means: Tensor, precision: Tensor) -> Tensor:
    """Squared Mahalanobis distances ``(f_i - mu_c)^T P (f_i - mu_c)``, shape (B, K), float64.

    Differentiable in ``features`` (the preprocessing needs the gradient).
    """
    f = features.double()
    means = means.to(f.device)
    precision = precision.to(f.device)
    finite = torch.isfinite(means).all(1)
    mu = torch.where(finite[:, None], means, torch.zeros_like(means))
    fp = f @ precision  # (B, C)
    d2 = (fp * f).sum(1, keepdim=True) - 2.0 * fp @ mu.t() + ((mu @ precision) * mu).sum(1)[None, :]
    return d2.masked_fill(~finite[None, :], float("inf"))


def mahalanobis_score(features: Tensor, means: Tensor, precision: Tensor) -> Tensor:
    """Layer score ``-min_c (f - mu_c)^T P (f - mu_c)``, shape (B,); higher = more in-distribution."""
    return -mahalanobis_distances(features, means, precision).amin(dim=1)


# ---------------------------------------------------------------------------------------------
# Detector
# ---------------------------------------------------------------------------------------------


def _fit_regression(x: np.ndarray, y: np.ndarray):
    """Logistic regression on standardised layer scores (the feature ensemble of Lee et al.)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)).fit(x, y)


def _linear_from_pipeline(pipe) -> tuple[Tensor, Tensor]:
    """(w, b) with ``decision_function(X) = X @ w + b`` for StandardScaler + LogisticRegression."""
    scaler, lr = pipe[0], pipe[-1]
    coef = lr.coef_.ravel() / scaler.scale_
    bias = float(lr.intercept_[0]) - float(np.sum(coef * scaler.mean_))
    return torch.as_tensor(coef, dtype=torch.float64), torch.tensor(bias, dtype=torch.float64)


class Mahalanobis(Detector):
    """Mahalanobis detector with input preprocessing and feature ensemble (see module docstring).

    Fit: ``fit(model, train=..., val=...)``: class means and covariances on the training split,
    then the noise and the ensemble on the validation split vs FGSM samples made from it.
    ``val`` is optional (without it: no ensemble, see below); ``train`` is required.

    Args:
        model: the classifier (any ``nn.Module``); or give it to :meth:`fit`.
        noise: fix the preprocessing magnitude instead of searching :data:`NOISES`.
        noises: the search grid ([0, 1]-pixel units).
        layers: which features, read by :class:`~isomax.detectors.base.LayerReader`: ``None``
            (default) every map of ``model.feature_list`` when the model has one (the isomax
            models: stem and stages, as Lee et al.), else the input of the classifier; indices
            into ``feature_list``; or module names (``["stages.1", "stages.3"]``), read by
            forward hooks on any ``nn.Module`` (4-D maps mean-pooled over space).
        std: per-channel input std for the noise units (default: from the data given to ``fit``).
        max_train: cap on training images for the class statistics (default 20,000, random
            subset; ``None``: all of them).
        max_samples: cap on validation samples for the ensemble (and as many FGSM ones), default 500.
        fgsm_eps: FGSM step of the adversarial samples ([0, 1]-pixel units, 0.05 as Lee et al.).
        batch_size: samples per pass.
        seed: subsampling / split seed.

    Without validation data (``fit(model, train)`` or ``fit_features``) there is no ensemble: the
    score is the last layer's (vanilla Mahalanobis on the penultimate features) and the noise is
    ``noise`` or 0.

    Attributes (after ``fit``):
        means_, precisions_: per used layer, class means (K, C_l) and precision (C_l, C_l), float64.
        layers_: indices of the used layers among those read (reader_: the LayerReader).
        noise_: the preprocessing magnitude.
        regression_: the fitted sklearn pipeline (None without ensemble); weights_, bias_: its
            linear form on the raw layer scores. selection_, grid_: validation results.
    """

    name = "mahalanobis"
    requires = ("train",)
    uses_adversarial = True

    noise_: float
    regression_: Any  # an sklearn Pipeline
    weights_: Tensor | None
    bias_: Tensor | None
    selection_: dict[str, float]
    grid_: list[tuple[float, float, float]]

    def __init__(
        self,
        model: nn.Module | None = None,
        noise: float | None = None,
        *,
        noises: Sequence[float] = NOISES,
        layers: Sequence[int] | Sequence[str] | None = None,
        std=None,
        max_train: int | None = 20000,
        max_samples: int | None = 500,
        fgsm_eps: float = FGSM_EPS,
        batch_size: int = 500,
        seed: int = 0,
    ) -> None:
        super().__init__(model)
        self.noise = noise
        self.noises = tuple(noises)
        self.layers: tuple[int | str, ...] | None = None if layers is None else tuple(layers)
        self.std = std
        self.max_train = max_train
        self.max_samples = max_samples
        self.fgsm_eps = fgsm_eps
        self.batch_size = batch_size
        self.seed = seed

    # -- fitting -------------------------------------------------------------------------------
    def _names(self) -> list[str] | None:
        """The module names of ``layers`` (read by hooks), or None for feature_list indices / the default."""
        if self.layers is None:
            return None
        names = [i for i in self.layers if isinstance(i, str)]
        if len(names) == len(self.layers):
            return names
        if not all(isinstance(i, int) for i in self.layers):
            raise InputError(f"Expected `layers` to be feature_list indices or module names, but got: {self.layers}")
        return None

    def _select_layers(self, n_layers: int) -> list[int]:
        if self.layers is None or self._names() is not None:
            return list(range(n_layers))
        indices = [i for i in self.layers if isinstance(i, int)]  # all of them (checked by _names)
        if not indices or any(not -n_layers <= i < n_layers for i in indices):
            raise InputError(f"Expected `layers` to index the model's {n_layers} feature maps, but got: {self.layers}")
        return [i % n_layers for i in indices]

    def _reader(self, model: nn.Module) -> LayerReader:
        if getattr(self, "reader_", None) is None or getattr(self, "_reader_model", None) is not model:
            names = self._names()
            if names is None and self.layers is not None and not hasattr(model, "feature_list"):
                raise InputError(
                    f"Expected module names in `layers` for {type(model).__name__} (it has no "
                    f"`feature_list` to index), but got: {self.layers}"
                )
            self.reader_, self._reader_model = LayerReader(model, names), model
        return self.reader_

    def _pooled(self, x: Tensor) -> list[Tensor]:
        model = self._check_model()
        return self._reader(model)(model, x)

    def _set_statistics(self, stats: list[_ClassStats]) -> None:
        finalized = [s.finalize() for s in stats]
        self.means_ = [m for m, _ in finalized]
        self.precisions_ = [p for _, p in finalized]
        self.noise_ = float(self.noise) if self.noise is not None else 0.0
        self.regression_, self.weights_, self.bias_ = None, None, None
        self.selection_, self.grid_ = {}, []

    def _fit(self, model: nn.Module, *, train, val, mean, std, device, adversarial) -> "Mahalanobis":
        """Class statistics on ``train``; then, with ``val`` (or ``adversarial``), the ensemble.

        ``train``: labelled in-distribution training data (at most ``max_train`` used); ``val``:
        labelled in-distribution validation data for the ensemble and the noise;
        ``adversarial=(x_val, x_adv)`` from
        :func:`~isomax.detectors.adversarial.adversarial_validation` replaces ``val`` (shared with ODIN).
        """
        train_data = train
        device = device or _model_device(model)
        tmean, tstd = _data_norm(train_data, mean, std)
        self.std_ = self.std if self.std is not None else (std if std is not None else tstd)
        if self.max_train is not None and hasattr(train_data, "subset") and len(train_data) > self.max_train:
            train_data = seeded_subset(train_data, self.max_train, self.seed)
        stats: list[_ClassStats] = []
        num_classes = _num_classes(model, train_data)
        seen = 0
        with torch.no_grad():
            for x, y in iter_batches(train_data, mean=tmean, std=tstd, device=device, batch_size=self.batch_size):
                if y is None:
                    raise InputError("Expected labelled training data for the Mahalanobis class statistics")
                if self.max_train is not None and seen + len(x) > self.max_train:
                    x, y = x[: self.max_train - seen], y[: self.max_train - seen]
                pooled = self._pooled(x)
                if not stats:
                    self.layers_ = self._select_layers(len(pooled))
                    stats = [_ClassStats() for _ in self.layers_]
                for s, i in zip(stats, self.layers_):
                    s.update(pooled[i], y, num_classes)
                seen += len(x)
                if self.max_train is not None and seen >= self.max_train:
                    break
        if not stats:
            raise InputError("Expected `train` to hold at least one sample, but it is empty")
        self._set_statistics(stats)
        if val is not None or adversarial is not None:
            self.fit_ensemble(val, adversarial=adversarial, mean=mean, std=std, device=device)
        return self

    def fit_features(self, features, labels=None) -> "Mahalanobis":
        """Class statistics from training features already extracted (no ensemble, see class doc).

        Args:
            features: ``extract_features(model, train)`` dict, a list of pooled ``(N, C_l)``
                per layer, or one ``(N, C)`` tensor.
            labels: class labels ``(N,)`` (default: ``features["labels"]``).
        """
        if labels is None and isinstance(features, dict):
            labels = features.get("labels")
        if labels is None:
            raise InputError("Expected class `labels` to fit the Mahalanobis class statistics")
        layers = as_layer_list(features)
        labels = torch.as_tensor(labels).long()
        self.layers_ = self._select_layers(len(layers))
        k = int(labels.max()) + 1
        if self.model is not None:
            k = max(k, int(getattr(self.model, "num_classes", k)))
        stats = []
        for i in self.layers_:
            s = _ClassStats()
            s.update(layers[i], labels, k)
            stats.append(s)
        self._set_statistics(stats)
        return self

    def fit_ensemble(
        self, val=None, *, adversarial: tuple[Tensor, Tensor] | None = None, mean=None, std=None, device=None
    ) -> "Mahalanobis":
        """Choose the noise and fit the logistic-regression ensemble on validation vs FGSM samples."""
        self._check_fitted()
        model = self._check_model()
        if adversarial is None:
            if val is None:
                raise InputError("Expected `val` or `adversarial=(x_val, x_adv)` to fit the feature ensemble")
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
            if self.std_ is None:
                self.std_ = data_std
        else:
            x_val, x_adv = adversarial
        noises = (self.noise,) if self.noise is not None else self.noises
        if not noises or not all(e >= 0 for e in noises):
            raise InputError(f"Expected non-negative noise magnitudes, but got: {noises}")
        s_in = self._grid_layer_scores(x_val, noises)
        s_adv = self._grid_layer_scores(x_adv, noises)
        n = min(len(x_val), len(x_adv))
        g = torch.Generator().manual_seed(int(self.seed))
        perm = torch.randperm(n, generator=g).numpy()
        folds = (perm[: n // 2], perm[n // 2 :])
        best, self.grid_ = None, []
        for e in noises:
            a_in, a_adv = s_in[e], s_adv[e]
            tnr, auc = [], []
            for train_idx, test_idx in (folds, folds[::-1]):
                if len(train_idx) < 4 or len(test_idx) < 1:  # too few pairs for a split: fit and score on all
                    train_idx = test_idx = np.arange(n)
                x = np.concatenate([a_in[train_idx], a_adv[train_idx]])
                y = np.concatenate([np.ones(len(train_idx)), np.zeros(len(train_idx))])
                reg = _fit_regression(x, y)
                m = ood_metrics(reg.decision_function(a_in[test_idx]), reg.decision_function(a_adv[test_idx]))
                tnr.append(m["tnr_at_tpr95"])
                auc.append(m["auroc"])
            key = (float(np.mean(tnr)), float(np.mean(auc)))
            self.grid_.append((float(e), *key))
            if best is None or key > best[1]:
                best = (float(e), key)
        assert best is not None, "noises is not empty (checked above)"
        self.noise_ = best[0]
        self.selection_ = {"tnr_at_tpr95": best[1][0], "auroc": best[1][1]}
        x = np.concatenate([s_in[self.noise_], s_adv[self.noise_]])
        y = np.concatenate([np.ones(len(s_in[self.noise_])), np.zeros(len(s_adv[self.noise_]))])
        self.regression_ = _fit_regression(x, y)
        self.weights_, self.bias_ = _linear_from_pipeline(self.regression_)
        return self

    # -- scoring -------------------------------------------------------------------------------
    def is_fitted(self) -> bool:
        return hasattr(self, "means_")

    def _layer_gradient_signs(self, x: Tensor) -> list[Tensor]:
        """Per used layer: ``sign(grad_x min_c d_l(x)^2)`` (one forward, one backward per layer)."""
        self._check_model()
        xg = x.detach().clone().requires_grad_(True)
        signs = []
        with torch.enable_grad():
            pooled = self._pooled(xg)
            for j, i in enumerate(self.layers_):
                d2 = mahalanobis_distances(pooled[i], self.means_[j], self.precisions_[j])
                closest = d2.detach().argmin(1)
                loss = d2.gather(1, closest[:, None]).sum()
                (grad,) = torch.autograd.grad(loss, xg, retain_graph=j < len(self.layers_) - 1)
                signs.append(torch.sign(grad))
        return signs

    def _scores_of_layer(self, x: Tensor, j: int) -> Tensor:
        with torch.no_grad():
            pooled = self._pooled(x)
        return mahalanobis_score(pooled[self.layers_[j]], self.means_[j], self.precisions_[j])

    def layer_scores(self, x: Tensor, noise: float | None = None) -> Tensor:
        """Per-layer scores ``M_l(x~_l)``, shape (B, L), float64 (``noise``: default ``noise_``)."""
        self._check_fitted()
        self._check_model()
        self._check_input(x)
        noise = self.noise_ if noise is None else noise
        if noise == 0:
            with torch.no_grad():
                pooled = self._pooled(x)
            return torch.stack(
                [mahalanobis_score(pooled[i], self.means_[j], self.precisions_[j]) for j, i in enumerate(self.layers_)],
                dim=1,
            )
        scale = pixel_scale(self.std_, x)
        signs = self._layer_gradient_signs(x)
        return torch.stack(
            [self._scores_of_layer(x.detach() - noise * s * scale, j) for j, s in enumerate(signs)], dim=1
        )

    def _grid_layer_scores(self, x: Tensor, noises: Sequence[float]) -> dict[float, np.ndarray]:
        """Layer scores for every noise level, one gradient per layer and sample for all levels."""
        out: dict[float, list[Tensor]] = {e: [] for e in noises}
        for xb in chunks(x, self.batch_size):
            if 0 in noises:
                out[0].append(self.layer_scores(xb, 0.0).cpu())
            rest = [e for e in noises if e != 0]
            if rest:
                signs = self._layer_gradient_signs(xb)
                scale = pixel_scale(self.std_, xb)
                for e in rest:
                    out[e].append(
                        torch.stack(
                            [self._scores_of_layer(xb.detach() - e * s * scale, j) for j, s in enumerate(signs)], dim=1
                        ).cpu()
                    )
        return {e: torch.cat(v).numpy() for e, v in out.items()}

    def _combine(self, layer_scores: Tensor) -> Tensor:
        if self.weights_ is None or self.bias_ is None:  # set together: both None without ensemble
            return layer_scores[:, -1].float()
        w, b = self.weights_.to(layer_scores.device), self.bias_.to(layer_scores.device)
        return (layer_scores.double() @ w + b).float()

    def predict(self, x: Tensor) -> Tensor:
        """Ensemble score of normalised inputs ``x`` (B, C, H, W); higher = more in-distribution."""
        return self._combine(self.layer_scores(x))

    def predict_features(self, features) -> Tensor:
        """Score from pooled features (dict / list per layer of ``feature_list``); needs ``noise_ == 0``."""
        self._check_fitted()
        if self.noise_ != 0:
            raise InputError(
                f"Mahalanobis with noise {self.noise_} needs the inputs for its preprocessing: use "
                "predict(x), or fix noise=0 to score features"
            )
        layers = as_layer_list(features)
        if len(layers) > max(self.layers_):  # the whole feature_list
            chosen = [layers[i] for i in self.layers_]
        elif len(layers) == len(self.layers_):  # only the used layers
            chosen = layers
        else:
            raise InputError(
                f"Expected features of the {max(self.layers_) + 1} feature maps (or of the "
                f"{len(self.layers_)} used ones), but got {len(layers)}"
            )
        s = torch.stack(
            [mahalanobis_score(f, self.means_[j], self.precisions_[j]) for j, f in enumerate(chosen)], dim=1
        )
        return self._combine(s)

    def params(self) -> dict:
        self._check_fitted()
        return {"noise": self.noise_, "layers": len(self.layers_), "ensemble": self.weights_ is not None}


def _num_classes(model: nn.Module, data) -> int:
    k = getattr(model, "num_classes", None)
    if isinstance(k, int) and k > 0:
        return k
    k = getattr(data, "num_classes", None)
    if isinstance(k, int) and k > 0:
        return k
    try:  # any nn.Module: the classifier's number of outputs (nn.Linear.out_features)
        k = getattr(find_classifier(model)[1], "out_features", None)
    except ValueError:
        k = None
    if isinstance(k, int) and k > 0:
        return k
    raise InputError(
        "Cannot tell the number of classes: use a model with `num_classes`, an nn.Linear classifier "
        "or labelled ImageData"
    )
