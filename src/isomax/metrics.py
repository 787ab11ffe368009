"""OOD detection metrics, exactly as the papers compute them (Lee et al. 2018's ``calculate_log.py``).

The in-distribution is the positive class and higher scores mean more in-distribution.

Both score arrays are sorted and the threshold sweeps upward through the merged scores, starting
with every sample accepted (``tp = n_in``, ``fp = n_out``) and removing the lowest remaining
sample at each step; on a tie between an in- and an out-distribution score, the
in-distribution sample is removed first. This gives ``tp[0..n]``, ``fp[0..n]`` (``n = n_in +
n_out``), from which:

* ``tnr_at_tpr95``: ``1 - fp[i]/n_out`` at the first ``i`` minimising ``|tp[i]/n_in - 0.95|``;
  ``fpr_at_tpr95`` is ``fp[i]/n_out`` at the same point.
* ``auroc``: trapezoid area of TNR against TPR over ``(1, 0)``, the sweep, ``(0, 1)``.
* ``dtacc``: ``0.5 * max_i (tp[i]/n_in + 1 - fp[i]/n_out)``.
* ``auin``: area of precision ``tp/(tp+fp)`` against TPR over ``(1, 0.5)``, the sweep points with
  ``tp + fp > 0``, ``(0, 0)``.
* ``auout``: the same with the out-distribution as positive.

All values are fractions in [0, 1]. Without ties ``auroc`` equals
``sklearn.metrics.roc_auc_score`` with in-distribution labelled 1. The sweep is vectorised
(one stable sort, cumulative sums): O(n log n).

Ties. The papers' rule (in-distribution removed first on a tie) is kept because reproducing
their numbers needs it, but it is pessimistic: a tied in/out pair counts as a detection error,
so all-equal scores give AUROC 0 and TNR 0 where sklearn's midpoint rule (a tied pair counts
one half) gives AUROC 0.5. Saturated scores (e.g. a maximum probability of exactly 1.0 for many
samples) can make a detector look worse than chance. :func:`ood_metrics` therefore also computes
:func:`auroc_midpoint`; when the two differ by more than ``TIE_TOLERANCE`` (0.01) it warns with
:class:`TieWarning` and adds the key ``auroc_midpoint`` to its result (otherwise the result has
exactly the keys of :data:`METRIC_NAMES`, as before).
"""

from __future__ import annotations

import warnings

import numpy as np

from ._validation import as_numpy_scores

__all__ = [
    "ood_metrics",
    "roc_sweep",
    "auroc_midpoint",
    "METRIC_NAMES",
    "TIE_TOLERANCE",
    "TieWarning",
    "SmallSampleWarning",
    "MIN_OOD_SAMPLES",
]

METRIC_NAMES = ("tnr_at_tpr95", "auroc", "dtacc", "auin", "auout", "fpr_at_tpr95")
TIE_TOLERANCE = 0.01  # |auroc - auroc_midpoint| above this: warn and report both


#: fewer in- or out-distribution scores than this and :func:`ood_metrics` warns (:class:`SmallSampleWarning`):
#: TNR@TPR95 then moves in steps of at least 1/n and AUROC's standard error is several points
MIN_OOD_SAMPLES = 100


class SmallSampleWarning(UserWarning):
    """A statistic (OOD metric, threshold, detector) computed on fewer samples than its stated minimum."""


class TieWarning(UserWarning):
    """Tied in/out scores move AUROC under the papers' tie rule by more than ``TIE_TOLERANCE``."""


def auroc_midpoint(scores_in, scores_out) -> float:
    """AUROC with ties counted one half (sklearn's ``roc_auc_score``, in-distribution labelled 1).

    The Mann-Whitney statistic with average ranks: ``(sum of in-distribution ranks - n_in (n_in + 1) / 2)
    / (n_in n_out)``.

    Example:
        >>> auroc_midpoint([1.0, 1.0], [1.0, 1.0])
        0.5
    """
    s_in = as_numpy_scores("scores_in", scores_in)
    s_out = as_numpy_scores("scores_out", scores_out)
    _, inverse, counts = np.unique(np.concatenate([s_in, s_out]), return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based rank of each distinct value, ties averaged
    rank_sum_in = float(np.sum(average_rank[inverse[: s_in.size]]))
    return (rank_sum_in - s_in.size * (s_in.size + 1) / 2.0) / (s_in.size * s_out.size)


def roc_sweep(scores_in, scores_out) -> tuple[np.ndarray, np.ndarray]:
    """The sweep counts ``(tp, fp)``, each of length ``n_in + n_out + 1``, as described above."""
    s_in = as_numpy_scores("scores_in", scores_in)
    s_out = as_numpy_scores("scores_out", scores_out)
    scores = np.concatenate([s_in, s_out])
    is_out = np.concatenate([np.zeros(s_in.size, np.int64), np.ones(s_out.size, np.int64)])
    # Removal order: ascending score; on a tie the in-distribution sample (is_out = 0) goes first.
    order = np.lexsort((is_out, scores))
    removed_out = np.concatenate([[0], np.cumsum(is_out[order])])
    removed_in = np.arange(scores.size + 1) - removed_out
    return s_in.size - removed_in, s_out.size - removed_out


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def _aupr(tp: np.ndarray, fp: np.ndarray, tpr_c: np.ndarray, fpr_c: np.ndarray) -> tuple[float, float]:
    """AUPR-in and AUPR-out over the sweep, as described in the module docstring."""
    n_in, n_out = tp[0], fp[0]
    denom = tp + fp
    keep = np.concatenate([[True], denom > 0, [True]])
    prec_in = np.concatenate([[0.5], tp / np.where(denom > 0, denom, 1), [0.0]])
    auin = -_trapezoid(prec_in[keep], tpr_c[keep])

    denom = (n_in - tp) + (n_out - fp)
    keep = np.concatenate([[True], denom > 0, [True]])
    prec_out = np.concatenate([[0.0], (n_out - fp) / np.where(denom > 0, denom, 1), [0.5]])
    auout = _trapezoid(prec_out[keep], (1.0 - fpr_c)[keep])
    return auin, auout


def _report_ties(result: dict, scores_in, scores_out) -> None:
    """Warn and add ``auroc_midpoint`` when ties move AUROC by more than ``TIE_TOLERANCE``."""
    midpoint = auroc_midpoint(scores_in, scores_out)
    if abs(midpoint - result["auroc"]) > TIE_TOLERANCE:
        warnings.warn(
            f"tied in/out scores: AUROC {result['auroc']:.4f} under the papers' tie rule (in-distribution "
            f"removed first) but {midpoint:.4f} with ties counted one half (sklearn); both are reported "
            "(key auroc_midpoint)",
            TieWarning,
            stacklevel=3,
        )
        result["auroc_midpoint"] = midpoint


def ood_metrics(scores_in, scores_out, *, out_positive: bool = False) -> dict[str, float]:
    """TNR at 95% TPR, AUROC, detection accuracy, AUPR-in, AUPR-out and FPR at 95% TPR.

    Args:
        scores_in: scores of in-distribution samples (1-D numpy array, torch tensor or sequence).
        scores_out: scores of out-distribution samples.
        out_positive: if True, also add the OpenOOD / pytorch-ood convention (out-distribution
            positive, outlier score = ``-score``) under the keys ``auroc_out_positive``,
            ``fpr_at_tpr95_out_positive`` (FPR of in-distribution samples at 95% recall of
            out-distribution samples), ``aupr_in_out_positive`` and ``aupr_out_out_positive``.

    Returns:
        dict with keys ``tnr_at_tpr95``, ``auroc``, ``dtacc``, ``auin``, ``auout``,
        ``fpr_at_tpr95`` (fractions in [0, 1]), all under the papers' tie rule (see the module
        docstring); plus ``auroc_midpoint`` (ties counted one half), with a :class:`TieWarning`, when
        ties move AUROC by more than ``TIE_TOLERANCE``.

    Example:
        >>> m = ood_metrics([0.9, 0.8, 0.7], [0.1, 0.75])
        >>> round(m["auroc"], 4)
        0.8333
    """
    tp, fp = roc_sweep(scores_in, scores_out)
    n_in, n_out = tp[0], fp[0]
    if min(n_in, n_out) < MIN_OOD_SAMPLES:
        warnings.warn(
            f"OOD metrics on only {int(n_in)} in-distribution and {int(n_out)} out-distribution scores "
            f"(fewer than {MIN_OOD_SAMPLES}): they move in steps of {100 / min(n_in, n_out):.2g} points; "
            "use more samples",
            SmallSampleWarning,
            stacklevel=2,
        )
    tpr = tp / n_in
    fpr = fp / n_out

    i95 = int(np.argmin(np.abs(tpr - 0.95)))  # argmin returns the first minimiser
    tnr_at_tpr95 = 1.0 - fpr[i95]

    tpr_c = np.concatenate([[1.0], tpr, [0.0]])
    fpr_c = np.concatenate([[1.0], fpr, [0.0]])
    auroc = -_trapezoid(1.0 - fpr_c, tpr_c)

    dtacc = 0.5 * float(np.max(tpr + 1.0 - fpr))

    auin, auout = _aupr(tp, fp, tpr_c, fpr_c)

    result = {
        "tnr_at_tpr95": float(tnr_at_tpr95),
        "auroc": float(auroc) + 0.0,  # no -0.0 from the negated area
        "dtacc": float(dtacc),
        "auin": float(auin) + 0.0,
        "auout": float(auout),
        "fpr_at_tpr95": float(fpr[i95]),
    }
    _report_ties(result, scores_in, scores_out)
    if out_positive:
        flipped = ood_metrics(-as_numpy_scores("scores_out", scores_out), -as_numpy_scores("scores_in", scores_in))
        result.update(
            auroc_out_positive=flipped["auroc"],
            fpr_at_tpr95_out_positive=flipped["fpr_at_tpr95"],
            aupr_in_out_positive=flipped["auout"],
            aupr_out_out_positive=flipped["auin"],
        )
    return result
