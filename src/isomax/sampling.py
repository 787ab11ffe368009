"""Seeded subsampling: the same ``k`` of ``n`` items for the same seed, on every machine and run.

Used for evaluation subsets (``TrainConfig.eval_limit``), the training subset (``train_limit``, in the
order drawn: :func:`seeded_indices` with ``sort=False``) and the detectors' sample limits: every subset
of the package is drawn here (``torch.randperm`` under a generator seeded with ``seed``).
"""

from __future__ import annotations

import torch
from .errors import InputError

__all__ = ["seeded_indices", "seeded_subset"]


def seeded_indices(n: int, k: int | None, seed: int = 0, *, sort: bool = True) -> torch.Tensor:
    """``min(k, n)`` distinct indices of ``range(n)`` drawn by ``torch.randperm`` seeded with ``seed``
    (sorted, so a subset keeps the original order, unless ``sort=False``: then in the order drawn, a full
    permutation when ``k >= n``); all of them in order if ``k`` is None."""
    if k is not None and k < 0:
        raise InputError(f"Expected `k` to be >= 0 or None, but got: {k!r}")
    if k is None or (sort and k >= n):
        return torch.arange(n)
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))[:k]
    return idx.sort().values if sort else idx


def seeded_subset(data, k: int | None, seed: int = 0):
    """``data.subset(seeded_indices(len(data), k, seed))``, or ``data`` itself when it has at most ``k`` items."""
    if k is None or len(data) <= k:
        return data
    return data.subset(seeded_indices(len(data), k, seed))
