"""The :class:`Detector` base class and the input helpers shared by the post-hoc detectors.

Score direction (the one rule of this package): every ``predict`` returns a tensor ``(B,)`` where
**higher means more in-distribution**, exactly as :mod:`isomax.scores` and as the papers report.
For an outlier score, negate it.

One fit signature for every detector (data by keyword, so that no detector can mistake a
validation split for a training split)::

    det.fit(model, train=None, val=None, *, mean=None, std=None, device=None, adversarial=None)  # -> det
    scores = det(x)                       # = det.predict(x); x normalised like the model's input
    scores = det.predict_data(batches)    # a whole data set, on the CPU

``train`` is labelled in-distribution *training* data, ``val`` labelled in-distribution
*validation* data; no detector ever sees out-distribution data. What each detector reads is in
its class attribute :attr:`Detector.requires` (checked by ``fit`` with a clear error) and its
docstring. ``adversarial=(x_val, x_adv)`` passes FGSM samples already made from ``val``
(:func:`isomax.detectors.adversarial.adversarial_validation`) so that detectors tuned against them
(ODIN, Mahalanobis) share one set; the others ignore it.

Inputs: ``x`` is always a *normalised* float batch ``(B, C, H, W)`` as fed to the model. Data
passed to ``fit`` may be an :class:`isomax.data.ImageData` (uint8; normalised here with ``mean``
and ``std``, or :func:`isomax.data.normalization` of its name), a :class:`isomax.data.BatchLoader`
(its ``mean``/``std`` are used) or any iterable of ``(x, y)`` / ``x`` normalised batches.

Noise magnitudes (ODIN, Mahalanobis, FGSM) are in **[0, 1]-pixel units**, as in the reference code
of Lee et al. (2018): the sign of the gradient is divided by the per-channel normalisation ``std``
before it is added to the normalised input, so ``noise=0.0014`` means the same on every data set.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import ClassVar, Iterable, Iterator, Sequence

import torch
from torch import Tensor, nn

from ..errors import IsoMaxError, InputError
from .hooks import Tap, pool, read_activations
from ..sampling import seeded_subset

__all__ = ["Detector", "NotFittedError", "extract_features", "iter_batches", "collect", "pixel_scale"]

#: what the data arguments of ``fit`` hold, for error messages
DATA_MEANING = {"train": "labelled in-distribution training data", "val": "labelled in-distribution validation data"}


class NotFittedError(IsoMaxError, ValueError, RuntimeError):
    """A detector was used before :meth:`Detector.fit` (or ``fit_features``) was called."""


class Detector(ABC):
    """Base class of the OOD detectors: ``fit`` returns ``self``, ``predict`` gives scores ``(B,)``.

    Subclasses store their constructor arguments unchanged and put what ``fit`` learns in
    attributes ending with ``_`` (scikit-learn convention). ``model`` may be given to the
    constructor or to :meth:`fit`. A subclass implements :meth:`_fit` (called by :meth:`fit`
    after the model and the data named in :attr:`requires` are checked) and :meth:`predict`.
    """

    #: short name used in the registry and in result records (``score`` field)
    name: str = "detector"
    #: the data arguments of ``fit`` this detector cannot do without (``"train"``, ``"val"``)
    requires: ClassVar[tuple[str, ...]] = ()
    #: True when ``fit`` tunes on ``val`` against FGSM samples (``adversarial`` may replace ``val``)
    uses_adversarial: ClassVar[bool] = False

    def __init__(self, model: nn.Module | None = None) -> None:
        self.model = model

    # -- the API -------------------------------------------------------------------------------
    def fit(
        self,
        model: nn.Module | None = None,
        *,
        train=None,
        val=None,
        mean=None,
        std=None,
        device=None,
        adversarial: tuple[Tensor, Tensor] | None = None,
    ) -> "Detector":
        """Fit on in-distribution data; returns ``self``.

        Args:
            model: the classifier (or give it to the constructor).
            train: labelled in-distribution training data (used by the detectors whose
                :attr:`requires` names it; ignored by the others).
            val: labelled in-distribution validation data (idem).
            mean, std: input normalisation of ``train`` / ``val`` when they are uint8 ImageData
                (default: the data set's), and the [0, 1]-pixel units of noise magnitudes.
            device: where to compute (default: the model's).
            adversarial: ``(x_val, x_adv)`` FGSM samples already made from ``val``; replaces ``val``
                for the detectors with :attr:`uses_adversarial`.
        """
        if model is not None:
            self.model = model
        model = self._check_model()
        model.eval()
        given = {"train": train is not None, "val": val is not None or adversarial is not None}
        missing = [k for k in self.requires if not given[k] and not self._can_skip(k)]
        if missing:
            what = " and ".join(f"`{k}=` ({DATA_MEANING[k]})" for k in missing)
            raise InputError(f"Expected {what} to fit {type(self).__name__}, but got None")
        return self._fit(model, train=train, val=val, mean=mean, std=std, device=device, adversarial=adversarial)

    @abstractmethod
    def _fit(self, model: nn.Module, *, train, val, mean, std, device, adversarial) -> "Detector":
        """Learn from the data; ``model`` is set and in eval mode, required data is present."""

    @abstractmethod
    def predict(self, x: Tensor) -> Tensor:
        """Scores ``(B,)`` of normalised inputs ``x``; higher = more in-distribution."""

    def _can_skip(self, data: str) -> bool:
        """Whether a required data argument may be missing for this configuration (e.g. fixed hyperparameters)."""
        return False

    def fit_features(self, features, labels=None) -> "Detector":
        raise NotImplementedError(f"{type(self).__name__} cannot be fitted from features: use fit(model, ...)")

    def predict_features(self, features) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} cannot score features: use predict(x)")

    def is_fitted(self) -> bool:
        return True

    def params(self) -> dict:
        """The (chosen) hyperparameters, JSON-serialisable, for result records."""
        return {}

    @classmethod
    def from_options(cls, model: nn.Module | None = None, **options) -> "Detector":
        """An instance from shared options, keeping those its constructor accepts (``max_samples``, ``seed``, ...)."""
        accepted = inspect.signature(cls.__init__).parameters
        return cls(model, **{k: v for k, v in options.items() if k in accepted})

    # -- shared ------------------------------------------------------------------------------
    def __call__(self, x: Tensor) -> Tensor:
        return self.predict(x)

    def _check_fitted(self) -> None:
        if not self.is_fitted():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet: call `fit(model, train=..., val=...)` "
                "(or `fit_features(...)`) before using it to score inputs."
            )

    def _check_model(self) -> nn.Module:
        if self.model is None:
            raise NotFittedError(
                f"This {type(self).__name__} instance has no model: pass `model=` to the constructor or "
                "call `fit(model, ...)` before `predict`."
            )
        return self.model

    def _check_input(self, x) -> Tensor:
        """``x`` as a float batch the model accepts, or a ValueError that says what was expected."""
        size = getattr(self.model, "input_size", None)
        shape = f"(B, {', '.join(map(str, size))})" if size is not None else "(B, C, H, W)"
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim < 2 or len(x) == 0:
            got = f"shape {tuple(x.shape)}, dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
            raise InputError(f"Expected `x` to be a non-empty normalised float batch {shape}, but got {got}")
        if size is not None and (x.ndim != len(size) + 1 or x.shape[1] != size[0]):
            raise InputError(f"Expected `x` of shape {shape} (normalised model inputs), but got {tuple(x.shape)}")
        return x

    def predict_data(self, data, *, mean=None, std=None, device=None, batch_size: int = 500) -> Tensor:
        """Scores of a whole data set (ImageData, BatchLoader or iterable of batches), on the CPU."""
        out = [
            self.predict(x).detach().float().cpu()
            for x, _ in iter_batches(
                data, mean=mean, std=std, device=device or _model_device(self.model), batch_size=batch_size
            )
        ]
        return torch.cat(out) if out else torch.empty(0)

    def __repr__(self) -> str:
        fitted = ", ".join(f"{k}={v!r}" for k, v in self.params().items()) if self.is_fitted() else "not fitted"
        return f"{type(self).__name__}({fitted})"


# ---------------------------------------------------------------------------------------------
# Input helpers
# ---------------------------------------------------------------------------------------------


def _model_device(model: nn.Module | None) -> torch.device:
    p = next(iter(model.parameters()), None) if model is not None else None
    return p.device if p is not None else torch.device("cpu")


def _is_image_data(data) -> bool:
    return hasattr(data, "images") and hasattr(data, "labels") and hasattr(data, "subset")


def _data_norm(data, mean, std):
    """(mean, std) for ``data``: explicit values, a BatchLoader's, or the data set's normalisation."""
    if mean is not None and std is not None:
        return mean, std
    if hasattr(data, "mean") and hasattr(data, "std") and not isinstance(data, Tensor):
        return (mean if mean is not None else data.mean), (std if std is not None else data.std)
    if _is_image_data(data):
        from ..data import normalization

        dmean, dstd = normalization(data.name)
        return (mean if mean is not None else dmean), (std if std is not None else dstd)
    return mean, std


def iter_batches(
    data, *, mean=None, std=None, device=None, batch_size: int = 500
) -> Iterator[tuple[Tensor, Tensor | None]]:
    """Normalised ``(x, y)`` batches from ImageData, a BatchLoader, a float tensor or an iterable."""
    device = torch.device(device) if device is not None else None
    if _is_image_data(data):
        from ..data import BatchLoader

        mean, std = _data_norm(data, mean, std)
        yield from BatchLoader(data, batch_size, mean=mean, std=std, device=device or "cpu")
        return
    if isinstance(data, Tensor):
        for i in range(0, len(data), batch_size):
            x = data[i : i + batch_size]
            yield (x.to(device) if device is not None else x), None
        return
    for batch in data:
        x, y = (batch[0], batch[1]) if isinstance(batch, (tuple, list)) else (batch, None)
        if device is not None:
            x = x.to(device)
            y = y.to(device) if isinstance(y, Tensor) else y
        yield x, y


def collect(
    data, max_samples: int | None = None, *, mean=None, std=None, device=None, batch_size: int = 500, seed: int = 0
) -> tuple[Tensor, Tensor | None]:
    """At most ``max_samples`` normalised inputs (and labels) as two tensors.

    An ImageData larger than ``max_samples`` is subsampled at random (seeded, without
    replacement); iterables are read until ``max_samples`` are collected.
    """
    if max_samples is not None and _is_image_data(data) and len(data) > max_samples:
        mean, std = _data_norm(data, mean, std)
        data = seeded_subset(data, max_samples, seed)
    xs, ys, n = [], [], 0
    for x, y in iter_batches(data, mean=mean, std=std, device=device, batch_size=batch_size):
        if max_samples is not None and n + len(x) > max_samples:
            x = x[: max_samples - n]
            y = y[: max_samples - n] if y is not None else None
        xs.append(x)
        ys.append(y)
        n += len(x)
        if max_samples is not None and n >= max_samples:
            break
    if not xs:
        raise InputError("Expected `data` to hold at least one sample, but it is empty")
    known = [y for y in ys if y is not None]
    labels = torch.cat(known) if len(known) == len(ys) else None
    return torch.cat(xs), labels


def pixel_scale(std, x: Tensor) -> Tensor | float:
    """``1 / std`` shaped ``(1, C, 1, 1)`` for ``x``: turns a [0, 1]-pixel step into a normalised one."""
    if std is None:
        return 1.0
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).flatten()
    if s.numel() == 1:
        s = s.expand(x.shape[1])
    if s.numel() != x.shape[1]:
        raise InputError(f"Expected `std` to have 1 or {x.shape[1]} values (one per channel), but got {s.numel()}")
    return (1.0 / s).view(1, -1, 1, 1)


def pooled_features(model: nn.Module, x: Tensor) -> list[Tensor]:
    """Spatially mean-pooled maps of ``model.feature_list(x)``: a list of ``(B, C_l)``."""
    feature_list = getattr(model, "feature_list", None)
    if feature_list is None:
        raise TypeError(f"Expected a model with `feature_list(x)` (an isomax model), but got {type(model).__name__}")
    return [m.mean(dim=(2, 3)) if m.ndim == 4 else m.flatten(1) for m in feature_list(x)]


class LayerReader:
    """Pooled activations ``(B, C_l)`` of several layers of a model, from one forward pass.

    Args:
        model: any ``nn.Module``.
        layers: ``None``: ``model.feature_list(x)`` when the model has one (the isomax models' stem
            and stage maps, as in Lee et al.'s code), else the input of the classifier (one
            layer, see :class:`~isomax.detectors.hooks.Tap`). A sequence of module names
            (``["stages.1", "stages.3"]``): forward hooks on those modules, any ``nn.Module``.

    4-D maps are mean-pooled over space, other activations flattened. Gradients flow through
    (the Mahalanobis preprocessing differentiates the distances with respect to the input).
    """

    def __init__(self, model: nn.Module, layers: Sequence[str] | None = None) -> None:
        if layers is None and hasattr(model, "feature_list"):
            self.taps = None
        else:
            self.taps = [Tap(model, name) for name in (layers if layers is not None else [None])]

    def __repr__(self) -> str:
        return "LayerReader(feature_list)" if self.taps is None else f"LayerReader({self.taps})"

    def __call__(self, model: nn.Module, x: Tensor) -> list[Tensor]:
        return self.read(model, x)[1]

    def read(self, model: nn.Module, x: Tensor) -> tuple[Tensor | None, list[Tensor]]:
        """``(output, pooled)``: the model's output when the pass computed it (hooks), else None."""
        if self.taps is None:
            return None, pooled_features(model, x)
        out, acts = read_activations(model, x, self.taps)
        return out, [pool(a) for a in acts]


@torch.no_grad()
def extract_features(
    model: nn.Module,
    data,
    *,
    mean=None,
    std=None,
    device=None,
    batch_size: int = 500,
    max_samples: int | None = None,
    seed: int = 0,
    layers: Sequence[str] | None = None,
) -> dict[str, Tensor | list[Tensor] | None]:
    """One pass over ``data``: ``{"logits", "features", "layers", "labels"}`` on the CPU (float32).

    ``layers`` is the list of pooled maps ``(N, C_l)`` read by :class:`LayerReader` (default: the
    model's ``feature_list``; or module names, read by hooks); ``features`` the last of them (for
    the isomax models the penultimate features ``forward_features``). Pass the dict to several
    detectors' ``fit_features`` / ``predict_features`` to share the pass.
    """
    model.eval()
    reader = LayerReader(model, layers)
    device = device or _model_device(model)
    if max_samples is not None and _is_image_data(data) and len(data) > max_samples:
        mean, std = _data_norm(data, mean, std)
        data = seeded_subset(data, max_samples, seed)
    acc_layers: list[list[Tensor]] = []
    logits, labels, n = [], [], 0
    for x, y in iter_batches(data, mean=mean, std=std, device=device, batch_size=batch_size):
        out, pooled = reader.read(model, x)
        if out is None:  # feature_list: its last map pools to forward_features
            forward_head = getattr(model, "forward_head", None)
            out = forward_head(pooled[-1]) if forward_head is not None else model(x)
        if not acc_layers:
            acc_layers = [[] for _ in pooled]
        for acc, f in zip(acc_layers, pooled):
            acc.append(f.float().cpu())
        logits.append(out.float().cpu())
        labels.append(y.cpu() if y is not None else None)
        n += len(x)
        if max_samples is not None and n >= max_samples:
            break
    if not logits:
        raise InputError("Expected `data` to hold at least one sample, but it is empty")
    layer_t = [torch.cat(acc) for acc in acc_layers]
    known = [y for y in labels if y is not None]
    return {
        "logits": torch.cat(logits),
        "features": layer_t[-1],
        "layers": layer_t,
        "labels": torch.cat(known) if len(known) == len(labels) else None,
    }


def as_layer_list(features) -> list[Tensor]:
    """Per-layer features from a dict of :func:`extract_features`, a list, or one ``(N, C)`` tensor."""
    if isinstance(features, dict):
        if "layers" in features:
            features = features["layers"]
        elif "features" in features:
            features = [features["features"]]
        else:
            raise InputError(f"Expected a dict with a 'layers' or 'features' entry, but got keys {sorted(features)}")
    if isinstance(features, Tensor):
        features = [features]
    if (
        not isinstance(features, Sequence)
        or not features
        or not all(isinstance(f, Tensor) and f.ndim == 2 for f in features)
    ):
        raise InputError("Expected per-layer features: a (N, C) tensor, a list of them, or extract_features' dict")
    return list(features)


def as_logits(features) -> Tensor:
    """Logits from a dict of :func:`extract_features` or a ``(N, K)`` tensor."""
    if isinstance(features, dict):
        if "logits" not in features:
            raise InputError(f"Expected a dict with a 'logits' entry, but got keys {sorted(features)}")
        features = features["logits"]
    if not isinstance(features, Tensor) or features.ndim != 2:
        raise InputError("Expected logits: a (N, num_classes) tensor or extract_features' dict")
    return features


def chunks(x: Tensor, size: int) -> Iterable[Tensor]:
    for i in range(0, len(x), size):
        yield x[i : i + size]
