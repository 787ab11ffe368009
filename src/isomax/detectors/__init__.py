"""Post-hoc OOD detectors the papers compare against: ODIN, Mahalanobis, and the plain scores.

Every detector follows one API (pytorch-ood / scikit-learn style, see :mod:`.base`)::

    from isomax.detectors import ODIN, Mahalanobis, ScoreDetector
    odin = ODIN().fit(model, val_data)                         # T, eps on validation vs FGSM
    maha = Mahalanobis().fit(model, train_data, val_data)       # stats on train, ensemble on val
    scores = maha(x)                                            # (B,), higher = more in-distribution
    ScoreDetector("mds", model)(x)                              # plain scores: nothing to fit

Scores have the direction of :mod:`isomax.scores`: **higher = more in-distribution**. Detectors
used before fitting raise :class:`NotFittedError`. Noise magnitudes are in [0, 1]-pixel units.

* :mod:`.plain`: :class:`ScoreDetector` (``mps``, ``es``, ``mds``, ``energy``, ``max_logit``).
* :mod:`.odin`: :class:`ODIN` (Liang et al. 2018).
* :mod:`.mahalanobis`: :class:`Mahalanobis` (Lee et al. 2018), with input preprocessing and
  feature ensemble.
* :mod:`.adversarial`: :func:`fgsm`, the adversarial samples used to choose hyperparameters.
"""
from __future__ import annotations

from typing import Callable, Sequence

from torch import nn

from ..scores import SCORES
from .adversarial import FGSM_EPS, adversarial_validation, fgsm
from .base import Detector, NotFittedError, collect, extract_features, iter_batches
from .mahalanobis import Mahalanobis, class_statistics, mahalanobis_distances, mahalanobis_score
from .odin import NOISES, ODIN, TEMPERATURES, odin_perturb, odin_score
from .plain import ScoreDetector

__all__ = [
    "Detector", "NotFittedError", "ScoreDetector", "ODIN", "Mahalanobis", "fgsm", "adversarial_validation",
    "extract_features", "collect", "iter_batches", "odin_score", "odin_perturb", "mahalanobis_score",
    "mahalanobis_distances", "class_statistics", "create_detector", "fit_detectors", "DETECTORS", "TEMPERATURES",
    "NOISES", "FGSM_EPS",
]

#: detectors that need fitting, by the name used in result records (``score`` field)
DETECTORS: dict[str, type[Detector]] = {"odin": ODIN, "mahalanobis": Mahalanobis}


def create_detector(name: str, model: nn.Module | None = None, **kwargs) -> Detector:
    """A detector by name: ``"odin"``, ``"mahalanobis"`` or a plain score of :data:`isomax.scores.SCORES`."""
    if name in DETECTORS:
        return DETECTORS[name](model, **kwargs)
    if name in SCORES:
        return ScoreDetector(name, model, **kwargs)
    raise ValueError(f"Expected a detector name in {list(DETECTORS) + list(SCORES)}, but got: {name!r}")


def fit_detectors(model: nn.Module, methods: Sequence[str], *, train_data=None, val_data=None, mean=None, std=None,
                  device=None, max_samples: int | None = 500, max_train: int | None = 20000, batch_size: int = 500,
                  seed: int = 0, log: Callable[[str], None] | None = None) -> dict[str, Detector]:
    """Fit several detectors on one model, sharing the validation / FGSM samples between them.

    ``train_data`` (Mahalanobis class statistics) and ``val_data`` (the hyperparameter search)
    are labelled in-distribution splits; no out-distribution data is used. ``max_samples`` caps
    the validation samples (and as many adversarial ones), ``max_train`` the training images.
    """
    import time

    model.eval()
    need_val = [m for m in methods if m in DETECTORS]
    adversarial = None
    if need_val:
        if val_data is None:
            raise ValueError(f"Expected `val_data` (in-distribution validation data) to fit {need_val}")
        x_val, x_adv, used_std = adversarial_validation(model, val_data, max_samples, mean=mean, std=std, device=device,
                                                        batch_size=batch_size, seed=seed)
        std = std if std is not None else used_std
        adversarial = (x_val, x_adv)
    fitted: dict[str, Detector] = {}
    for name in methods:
        t0 = time.perf_counter()
        if name == "odin":
            det = ODIN(std=std, max_samples=max_samples, batch_size=batch_size, seed=seed)
            det.fit(model, adversarial=adversarial)
        elif name == "mahalanobis":
            if train_data is None:
                raise ValueError("Expected `train_data` (in-distribution training data) to fit the Mahalanobis detector")
            det = Mahalanobis(std=std, max_train=max_train, max_samples=max_samples, batch_size=batch_size, seed=seed)
            det.fit(model, train_data, adversarial=adversarial, mean=mean, std=std, device=device)
        else:
            det = create_detector(name, model)
        fitted[name] = det
        if log is not None and name in DETECTORS:
            log(f"fitted {name}: {det.params()} in {time.perf_counter() - t0:.1f}s")
    return fitted
