"""Post-hoc OOD detectors: the papers' ODIN and Mahalanobis, modern ones from pytorch-ood, the plain scores.

Every detector has one API (:class:`Detector`, scikit-learn / pytorch-ood style)::

    det = DETECTORS["knn"]().fit(model, train=train_data, val=val_data)   # data by keyword; returns det
    scores = det(x)                      # = det.predict(x): (B,), higher = more in-distribution
    scores = det.predict_data(batches)   # a whole data set

What ``fit`` reads (never out-distribution data):

===============  ====================================================================  ===========
name             method                                                                fit on
===============  ====================================================================  ===========
``odin``         :class:`ODIN`: temperature + input preprocessing                      ``val``
``mahalanobis``  :class:`Mahalanobis`: class statistics per layer, preprocessing,      ``train``,
                 feature ensemble                                                      ``val``
``knn``          :class:`KNN`: k-th nearest training feature (pytorch-ood)             ``train``
``vim``          :class:`ViM`: virtual-logit matching, linear heads only (pytorch-ood)  ``train``
``react``        :class:`ReAct`: clipped activations + energy (pytorch-ood)            ``train``
``dice``         :class:`DICE`: sparsified linear head + energy (pytorch-ood)          ``train``
``ash``          :class:`ASH`: activation shaping + energy (pytorch-ood)               nothing
``scale``        :class:`SCALE`: activation scaling + energy (pytorch-ood)             nothing
``gen``          :class:`GEN`: generalised entropy (pytorch-ood)                       nothing
===============  ====================================================================  ===========

``val`` means labelled in-distribution validation data: ODIN and Mahalanobis tune their
hyperparameters on it against FGSM adversarial samples made from it (Lee et al., 2018).
:class:`ScoreDetector` wraps the plain scores of :mod:`isomax.scores` (``mps``, ``es``, ``mds``,
``energy``, ``max_logit``; nothing to fit). Features are read by forward hooks on any
``nn.Module`` (:mod:`.hooks`); detectors used before fitting raise :class:`NotFittedError`.
Noise magnitudes are in [0, 1]-pixel units.

Modules: :mod:`.base` (the base class, input helpers), :mod:`.hooks`, :mod:`.odin`,
:mod:`.mahalanobis`, :mod:`.posthoc` (the pytorch-ood adapters), :mod:`.plain`,
:mod:`.adversarial` (FGSM).
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

from torch import nn

from ..errors import InputError
from ..scores import SCORES
from .adversarial import adversarial_validation
from .base import DATA_MEANING, Detector, NotFittedError
from .mahalanobis import Mahalanobis
from .odin import ODIN
from .plain import ScoreDetector
from .posthoc import ASH, DICE, GEN, KNN, SCALE, ReAct, ViM

__all__ = [
    "Detector",
    "NotFittedError",
    "ScoreDetector",
    "ODIN",
    "Mahalanobis",
    "KNN",
    "ViM",
    "ReAct",
    "DICE",
    "ASH",
    "SCALE",
    "GEN",
    "DETECTORS",
    "register_detector",
    "create_detector",
    "fit_detectors",
]

#: detectors fitted per model, by the name used in result records (``score`` field) and on the command line
DETECTORS: dict[str, type[Detector]] = {}


def register_detector(cls: type[Detector]) -> type[Detector]:
    """Add a :class:`Detector` subclass to :data:`DETECTORS` under ``cls.name`` (usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Detector)):
        raise TypeError(f"Expected a Detector subclass, but got: {cls!r}")
    if cls.name in DETECTORS or cls.name in SCORES:
        raise InputError(f"A detector or score named {cls.name!r} already exists")
    DETECTORS[cls.name] = cls
    return cls


for _cls in (ODIN, Mahalanobis, KNN, ViM, ReAct, DICE, ASH, SCALE, GEN):
    register_detector(_cls)


def create_detector(name: str, model: nn.Module | None = None, **kwargs) -> Detector:
    """A detector by name: one of :data:`DETECTORS` or a plain score of :data:`isomax.scores.SCORES`."""
    if name in DETECTORS:
        return DETECTORS[name](model, **kwargs)
    if name in SCORES:
        return ScoreDetector(name, model, **kwargs)
    raise InputError(f"Expected a detector name in {list(DETECTORS) + list(SCORES)}, but got: {name!r}")


def fit_detectors(
    model: nn.Module,
    methods: Sequence[str],
    *,
    train=None,
    val=None,
    mean=None,
    std=None,
    device=None,
    max_samples: int | None = 500,
    max_train: int | None = 20000,
    batch_size: int = 500,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, Detector]:
    """Fit several detectors of :data:`DETECTORS` on one model, sharing the validation / FGSM samples.

    ``train`` and ``val`` are labelled in-distribution splits (each detector reads what its
    ``requires`` names; no out-distribution data is used). ``max_samples`` caps the validation
    samples (and as many adversarial ones), ``max_train`` the training samples; these, ``std``,
    ``batch_size`` and ``seed`` go to every constructor that accepts them
    (:meth:`Detector.from_options`).
    """
    unknown = [m for m in methods if m not in DETECTORS]
    if unknown:
        raise InputError(f"Expected detector names in {list(DETECTORS)}, but got: {unknown}")
    classes = [DETECTORS[m] for m in methods]
    for name, cls in zip(methods, classes):
        needed = set(cls.requires) | ({"val"} if cls.uses_adversarial else set())
        missing = [k for k, data in (("train", train), ("val", val)) if k in needed and data is None]
        if missing:
            what = " and ".join(f"`{k}` ({DATA_MEANING[k]})" for k in missing)
            raise InputError(f"Expected {what} to fit {name!r}, but got None")
    _warn_small(methods, classes, train, val, max_samples, max_train)
    model.eval()
    adversarial = None
    if any(cls.uses_adversarial for cls in classes):
        x_val, x_adv, used_std = adversarial_validation(
            model, val, max_samples, mean=mean, std=std, device=device, batch_size=batch_size, seed=seed
        )
        std = std if std is not None else used_std
        adversarial = (x_val, x_adv)
    options = dict(std=std, max_samples=max_samples, max_train=max_train, batch_size=batch_size, seed=seed)
    fitted: dict[str, Detector] = {}
    for name, cls in zip(methods, classes):
        t0 = time.perf_counter()
        det = cls.from_options(**options)
        fitted[name] = det.fit(model, train=train, val=val, mean=mean, std=std, device=device, adversarial=adversarial)
        if log is not None:
            log(f"fitted {name}: {det.params()} in {time.perf_counter() - t0:.1f}s")
    return fitted


#: fewer fitting samples than this and :func:`fit_detectors` warns (class statistics, KNN banks, ViM's
#: principal subspace and the ODIN / Mahalanobis hyperparameter search are noise on a handful of samples)
MIN_DETECTOR_SAMPLES = 100


def _warn_small(methods, classes, train, val, max_samples, max_train) -> None:
    import warnings

    from ..metrics import SmallSampleWarning

    def size(data, cap):
        n = len(data) if data is not None and hasattr(data, "__len__") else None
        return n if n is None or cap is None else min(n, cap)

    for name, cls in zip(methods, classes):
        needs = set(cls.requires) | ({"val"} if cls.uses_adversarial else set())
        for split, data, cap in (("train", train, max_train), ("val", val, max_samples)):
            n = size(data, cap) if split in needs else None
            if n is not None and n < MIN_DETECTOR_SAMPLES:
                warnings.warn(
                    f"fitting {name!r} on only {n} {split} samples (fewer than {MIN_DETECTOR_SAMPLES}): "
                    "its scores are unreliable; use more data",
                    SmallSampleWarning,
                    stacklevel=3,
                )
