"""Argument checks shared by the public API.

Errors read "Expected `name` to be ..., but got ..." and are raised as ``ValueError``
(``TypeError`` for objects of the wrong kind), as in torchmetrics.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def check_tensor(name: str, x: object, *, ndim: int | None = None, floating: bool = False) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor, but got: {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"Expected `{name}` to have {ndim} dimensions, but got shape {tuple(x.shape)}")
    if floating and not x.is_floating_point():
        raise ValueError(f"Expected `{name}` to be a floating-point tensor, but got dtype {x.dtype}")
    return x


def check_finite(name: str, x: Tensor) -> Tensor:
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"Expected `{name}` to be finite, but got {bad} NaN or inf value(s)")
    return x


def check_features(name: str, x: object, num_features: int) -> Tensor:
    x = check_tensor(name, x, ndim=2, floating=True)
    if x.shape[1] != num_features:
        raise ValueError(
            f"Expected `{name}` to have shape (batch, {num_features}), but got {tuple(x.shape)}"
        )
    return x


def check_targets(name: str, targets: object, batch: int, num_classes: int, validate: bool) -> Tensor:
    targets = check_tensor(name, targets, ndim=1)
    if targets.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise ValueError(f"Expected `{name}` to hold integer class indices, but got dtype {targets.dtype}")
    if targets.shape[0] != batch:
        raise ValueError(f"Expected `{name}` to have {batch} entries (one per row of logits), but got {targets.shape[0]}")
    if validate and targets.numel():
        lo, hi = int(targets.min()), int(targets.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(
                f"Expected `{name}` to be class indices in [0, {num_classes - 1}], but got values in [{lo}, {hi}]"
            )
    return targets


def as_numpy_scores(name: str, x: object) -> np.ndarray:
    """Scores as a 1-D float64 numpy array (from numpy, torch or a sequence)."""
    if isinstance(x, Tensor):
        x = x.detach().cpu().double().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"Expected `{name}` to be a 1-D array of numbers, but got {type(x).__name__}") from err
    if arr.ndim != 1:
        raise ValueError(f"Expected `{name}` to be 1-D, but got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"Expected `{name}` to be non-empty, but got an empty array")
    if not np.isfinite(arr).all():
        raise ValueError(f"Expected `{name}` to be finite, but got {int((~np.isfinite(arr)).sum())} NaN or inf value(s)")
    return arr
