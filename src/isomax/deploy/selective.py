"""Selective classification: risk-coverage curves and AURC (Geifman & El-Yaniv 2017).

A deployed rejector accepts the inputs whose score is at least a threshold; among the accepted
*in-distribution* inputs some are misclassified. Sorting the test inputs by decreasing score
(higher = more in-distribution, as :mod:`isomax.scores`) and accepting the first ``k``:

* coverage ``k / n``;
* selective risk: the error rate among the ``k`` accepted inputs.

AURC is the mean selective risk over ``k = 1..n`` (the area under the risk-coverage curve), a
fraction in [0, 1], lower is better; ``aurc_optimal`` is the AURC of the oracle that ranks every
error last (about ``r + (1 - r) ln(1 - r)`` for error rate ``r``), and ``e_aurc = aurc - aurc_optimal``.
Inputs with equal scores cannot be separated by a threshold: inside a group of ties the errors are
counted as spread evenly (the expectation over the orders of the ties), so a constant score has
the risk of the whole set at every coverage.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from .._validation import as_numpy_scores

__all__ = ["risk_coverage", "aurc", "selective_metrics"]


def _correct(correct) -> np.ndarray:
    c = correct.detach().cpu().numpy() if isinstance(correct, Tensor) else np.asarray(correct)
    if c.ndim != 1:
        raise InputError(f"Expected `correct` to be 1-D, but got shape {c.shape}")
    return c.astype(bool)


def risk_coverage(scores, correct) -> tuple[np.ndarray, np.ndarray]:
    """``(coverage, risk)``, each of length n: accepting the ``k`` highest-scored inputs, ``k = 1..n``."""
    s = as_numpy_scores("scores", scores)
    c = _correct(correct)
    if c.size != s.size:
        raise InputError(f"Expected `correct` to have {s.size} entries (one per score), but got {c.size}")
    order = np.argsort(-s, kind="stable")  # decreasing score
    s_sorted, wrong = s[order], ~c[order]
    cum = np.concatenate([[0], np.cumsum(wrong)])  # errors among the first m, m = 0..n
    # tie groups [start, end): inside one, errors grow linearly (the expectation over tie orders)
    new_group = np.concatenate([[True], s_sorted[1:] != s_sorted[:-1]])
    group = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    ends = np.concatenate([starts[1:], [s.size]])
    start, end = starts[group], ends[group]
    k = np.arange(1, s.size + 1)
    errors = cum[start] + (k - start) * (cum[end] - cum[start]) / (end - start)
    return k / s.size, errors / k


def aurc(scores, correct) -> float:
    """Area under the risk-coverage curve (mean selective risk over all coverages), lower is better."""
    return float(np.mean(risk_coverage(scores, correct)[1]))


def selective_metrics(
    logits_in: Tensor,
    labels_in: Tensor,
    scores: Mapping[str, object] | None = None,
    coverages: tuple[float, ...] = (0.95,),
) -> dict[str, dict[str, float]]:
    """Per score name: ``aurc``, ``e_aurc``, ``aurc_optimal`` and ``risk_at_coverage_<c>``.

    Args:
        logits_in: in-distribution test logits (N, C) (the predicted class is their argmax).
        labels_in: their labels (N,).
        scores: ``{name: values (N,)}`` of the same inputs; default: every score of
            :data:`isomax.scores.SCORES` computed from ``logits_in``.

    This is the function to call per run for ``results.json`` (one record field per score).
    """
    from ..scores import SCORES

    logits_in = torch.as_tensor(logits_in)
    correct = (logits_in.argmax(1).cpu() == torch.as_tensor(labels_in).cpu()).numpy()
    if scores is None:
        scores = {name: fn(logits_in.float()) for name, fn in SCORES.items()}
    optimal = aurc(correct.astype(np.float64), correct)  # every error ranked last
    out = {}
    for name, values in scores.items():
        cov, risk = risk_coverage(values, correct)
        rec = {"aurc": float(risk.mean()), "aurc_optimal": optimal}
        rec["e_aurc"] = rec["aurc"] - optimal
        for c in coverages:
            k = max(1, int(round(c * cov.size)))
            rec[f"risk_at_coverage_{c:g}"] = float(risk[k - 1])
        out[name] = rec
    return out
