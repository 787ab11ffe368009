"""OOD scores computed from logits. Higher means *more in-distribution*, as in the papers.

All scores use the plain logits, without the entropic scale (which is a training-time device).

| short name | function | formula | use with |
|---|---|---|---|
| ``mps`` | :func:`max_probability` | ``max_j softmax(z)_j`` | SoftMax |
| ``es`` | :func:`entropic_score` | ``sum_j p_j log p_j`` (negative entropy) | SoftMax, IsoMax |
| ``mds`` | :func:`min_distance_score` | ``-min_j |f^ - p^_j| = max_j z_j / |d_s|`` | IsoMax+ |
| ``energy`` | :func:`energy_score` | ``T logsumexp(z / T)`` | any |
| ``max_logit`` | :func:`max_logit` | ``max_j z_j`` | any |
| ``mmls`` | :func:`max_mean_logit_score` | ``max_j z_j + mean_j z_j`` | DisMax |
| ``mmles`` | :func:`max_mean_logit_entropy_score` | ``max_j z_j + mean_j z_j + sum_j p_j log p_j`` | DisMax |
| ``mmleps`` | :func:`max_mean_logit_entropy_probability_score` | MMLES ``+ max_j p_j`` | DisMax |

(``p = softmax(z)``; the last three are DisMax's, Macedo et al. 2022, arXiv 2205.05874; MMLES is its choice.)

For an "outlier score" (higher = more OOD), negate: ``-score``.

Every function is branch-free on tensor values: it compiles with ``torch.compile(fullgraph=True)``
and exports. Shapes and dtypes are always checked; NaN/inf logits only in eager mode on CPU
tensors (see :mod:`isomax._validation`). Each is its argument checks followed by an unchecked
graph form (``_max_logit``, ``_mmles``, ...), which ONNX export runs as it is.

The scores are registered at the end of this module as :class:`isomax.registry.ScoreSpec` entries
(name, function, graph form, label, the heads they apply to); :data:`SCORES` and :func:`compute_scores`
read that registry live, so a score added with :func:`isomax.registry.register_score` is used everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .errors import InputError
from ._validation import check_finite, check_tensor, value_checks_enabled
from .heads import DisMaxHead, DistanceHead
from .registry import ScoreSpec, get_score, list_scores, register_score, score_functions

__all__ = [
    "max_probability",
    "entropic_score",
    "min_distance_score",
    "energy_score",
    "max_logit",
    "max_mean_logit_score",
    "max_mean_logit_entropy_score",
    "max_mean_logit_entropy_probability_score",
    "SCORES",
    "compute_scores",
]


def _check_logits(logits: Tensor) -> Tensor:
    check_tensor("logits", logits, ndim=2, floating=True)
    if logits.shape[1] < 1:
        raise InputError(f"Expected `logits` to have at least one class column, but got shape {tuple(logits.shape)}")
    if value_checks_enabled(logits):
        check_finite("logits", logits)
    return logits


def max_probability(logits: Tensor) -> Tensor:
    """Maximum probability score (MPS, Hendrycks & Gimpel): ``max_j softmax(logits)_j``, shape (B,)."""
    return _max_probability(_check_logits(logits))


def entropic_score(logits: Tensor) -> Tensor:
    """Entropic score (ES): negative entropy ``sum_j p_j log p_j`` of ``softmax(logits)``, shape (B,).

    Computed from ``log_softmax`` so it stays finite when probabilities underflow (``0 log 0 = 0``).
    Ranges from ``-log(num_classes)`` (uniform) to 0 (one-hot).
    """
    return _negative_entropy(_check_logits(logits))


def min_distance_score(logits: Tensor, distance_scale: float | Tensor = 1.0) -> Tensor:
    """Minimum distance score (MDS, 2021 paper Eq. 5), negated so higher = in-distribution.

    For IsoMax+ logits ``-|d_s| * |f^ - p^_j|`` this is ``max_j logits_j / |d_s|`` =
    ``-min_j |f^ - p^_j|``. ``distance_scale`` does not change any metric (a positive constant);
    pass ``head.distance_scale`` to get the distances themselves.
    """
    _check_logits(logits)
    scale: float | Tensor
    if isinstance(distance_scale, Tensor):
        scale = distance_scale.to(device=logits.device, dtype=logits.dtype).abs().reshape(())
        if value_checks_enabled(scale) and not bool(scale > 0):
            raise InputError(f"Expected `distance_scale` to be non-zero, but got: {float(scale)}")
    else:
        if not abs(distance_scale) > 0:
            raise InputError(f"Expected `distance_scale` to be non-zero, but got: {distance_scale!r}")
        scale = abs(distance_scale)
    return _max_logit(logits) / scale


def energy_score(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Energy score (Liu et al. 2020): ``T * logsumexp(logits / T)``, shape (B,)."""
    if not temperature > 0:
        raise InputError(f"Expected `temperature` to be > 0, but got: {temperature!r}")
    return temperature * torch.logsumexp(_check_logits(logits) / temperature, dim=1)


def max_logit(logits: Tensor) -> Tensor:
    """Maximum logit score (Hendrycks et al. 2022): ``max_j logits_j``, shape (B,)."""
    return _max_logit(_check_logits(logits))


def max_mean_logit_score(logits: Tensor) -> Tensor:
    """Max-mean logit score (MMLS, DisMax): ``max_j logits_j + mean_j logits_j``, shape (B,)."""
    return _mmls(_check_logits(logits))


def max_mean_logit_entropy_score(logits: Tensor) -> Tensor:
    """Max-mean logit entropy score (MMLES, DisMax's score): MMLS plus the negative entropy
    ``sum_j p_j log p_j`` of ``p = softmax(logits)`` (as :func:`entropic_score`, finite when probabilities
    underflow)."""
    return _mmles(_check_logits(logits))


def max_mean_logit_entropy_probability_score(logits: Tensor) -> Tensor:
    """MMLEPS (DisMax): MMLES plus the maximum probability ``max_j softmax(logits)_j``, shape (B,)."""
    return _mmleps(_check_logits(logits))


# ---------------------------------------------------------------------------------------------
# The unchecked forms (no host sync, no branch): the public scores above call them after their
# checks, and export (ScoreSpec.graph) runs them as they are, so both give the same numbers.
# ---------------------------------------------------------------------------------------------
def _max_probability(z: Tensor) -> Tensor:
    return torch.softmax(z, dim=1).amax(dim=1)


def _negative_entropy(z: Tensor) -> Tensor:
    log_p = torch.log_softmax(z, dim=1)
    # log_p is -inf where logits differ by more than the float range; clamp so 0 * log 0 = 0, not NaN.
    log_p = log_p.clamp_min(torch.finfo(log_p.dtype).min)
    return (log_p.exp() * log_p).sum(dim=1)


def _max_logit(z: Tensor) -> Tensor:
    return z.amax(dim=1)


def _energy(z: Tensor) -> Tensor:
    return torch.logsumexp(z, dim=1)  # T = 1: energy_score's default (T * logsumexp(z / T) is exact for T = 1)


def _mmls(z: Tensor) -> Tensor:
    return z.amax(dim=1) + z.mean(dim=1)


def _mmles(z: Tensor) -> Tensor:
    return _mmls(z) + _negative_entropy(z)


def _mmleps(z: Tensor) -> Tensor:
    return _mmles(z) + _max_probability(z)


# The built-in scores (isomax.registry), in table order. MDS needs distance logits (any DistanceHead: IsoMax,
# IsoMax+, DisMax); MMLS / MMLES / MMLEPS are DisMax's scores of its enhanced logits.
for _spec in (
    ScoreSpec("mps", max_probability, _max_probability, "MPS"),
    ScoreSpec("es", entropic_score, _negative_entropy, "ES"),
    ScoreSpec("mds", min_distance_score, _max_logit, "MDS", heads=(DistanceHead,)),
    ScoreSpec("energy", energy_score, _energy, "Energy"),
    ScoreSpec("max_logit", max_logit, _max_logit, "MaxLogit"),
    ScoreSpec("mmls", max_mean_logit_score, _mmls, "MMLS", heads=(DisMaxHead,)),
    ScoreSpec("mmles", max_mean_logit_entropy_score, _mmles, "MMLES", heads=(DisMaxHead,)),
    ScoreSpec("mmleps", max_mean_logit_entropy_probability_score, _mmleps, "MMLEPS", heads=(DisMaxHead,)),
):
    register_score(_spec)

#: Live ``{short name: score function}`` of every registered score (:mod:`isomax.registry`).
SCORES = score_functions()


def compute_scores(logits: Tensor, names: Sequence[str] | None = None) -> dict[str, Tensor]:
    """Several scores at once, by short name (see the module table; default: every registered score)."""
    names = list_scores() if names is None else tuple(names)
    unknown = [n for n in names if n not in SCORES]
    if unknown:
        raise InputError(f"Expected score names in {list(SCORES)}, but got: {unknown}")
    return {name: get_score(name).function(logits) for name in names}
