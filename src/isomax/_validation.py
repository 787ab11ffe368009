"""Argument checks shared by the public API.

Errors read "Expected `name` to be ..., but got ..." and are raised as ``ValueError``
(``TypeError`` for objects of the wrong kind), as in torchmetrics.

Two kinds of checks, with different costs:

* **Static checks** (type, number of dimensions, sizes, dtype) look only at metadata. They always
  run: in eager mode they cost a few Python comparisons, and under ``torch.compile`` /
  ``torch.export`` they are evaluated once at trace time (they become shape guards).
* **Value checks** (NaN/inf, label range, overflow) need the tensor's contents. They run only when
  :func:`value_checks_enabled` says so: in eager mode on CPU tensors, where reading a value is no
  host-device synchronisation (one small reduction, then one ``bool``). They are skipped while
  ``torch.compile`` / ``torch.export`` / the dynamo ONNX exporter trace the code (no graph break,
  nothing in the exported graph), and on accelerator tensors, where reading a value would stall the
  device queue at every step (there, as with ``nn.CrossEntropyLoss``, an out-of-range label still
  fails inside the kernel). Call :func:`check_finite` yourself, or run a first batch on the CPU, to
  get the clear error there.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from .errors import InputError


def check_tensor(name: str, x: object, *, ndim: int | None = None, floating: bool = False) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor, but got: {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        raise InputError(f"Expected `{name}` to have {ndim} dimensions, but got shape {tuple(x.shape)}")
    if floating and not x.is_floating_point():
        raise InputError(f"Expected `{name}` to be a floating-point tensor, but got dtype {x.dtype}")
    return x


def value_checks_enabled(x: Tensor) -> bool:
    """Whether value checks run for ``x``: eager mode, CPU tensor (see the module docstring)."""
    if torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting():
        return False
    return x.device.type == "cpu"


def all_finite(x: Tensor) -> bool:
    """Whether ``x`` holds no NaN/inf. Reads the values (callers decide when to call it).

    Fast path: one sum (NaN or inf in ``x`` makes it NaN or inf), then one element read; the
    element-wise test runs only when the sum is not finite (it may also overflow).
    """
    x = x.detach()
    return math.isfinite(float(x.sum())) or bool(torch.isfinite(x).all())


def check_finite(name: str, x: Tensor) -> Tensor:
    """Raise if ``x`` holds NaN or inf (always reads the values: callers decide when to call it)."""
    if not all_finite(x):
        bad = int((~torch.isfinite(x)).sum())
        raise InputError(f"Expected `{name}` to be finite, but got {bad} NaN or inf value(s)")
    return x


def check_positive_finite(name: str, value: object) -> float:
    """A Python number (or one-element tensor, read once) that is finite and > 0, as a float."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, Tensor))
        or (isinstance(value, Tensor) and value.numel() != 1)
    ):
        raise InputError(f"Expected `{name}` to be a positive finite number, but got: {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise InputError(f"Expected `{name}` to be a positive finite number, but got: {v!r}")
    return v


def check_features(name: str, x: object, num_features: int) -> Tensor:
    x = check_tensor(name, x, ndim=2, floating=True)
    if x.shape[1] != num_features:
        raise InputError(f"Expected `{name}` to have shape (batch, {num_features}), but got {tuple(x.shape)}")
    return x


def check_targets(
    name: str, targets: object, batch: int, num_classes: int, validate: bool, ignore_index: int | None = None
) -> Tensor:
    """Static checks always; the label range (``ignore_index`` allowed) when ``validate`` and values may be read."""
    targets = check_tensor(name, targets, ndim=1)
    if targets.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise InputError(f"Expected `{name}` to hold integer class indices, but got dtype {targets.dtype}")
    if targets.shape[0] != batch:
        raise InputError(
            f"Expected `{name}` to have {batch} entries (one per row of logits), but got {targets.shape[0]}"
        )
    if validate and targets.numel() and value_checks_enabled(targets):
        lo, hi = (int(v) for v in targets.aminmax())  # one pass; CPU only, so no device sync
        if (lo < 0 or hi >= num_classes) and ignore_index is not None:
            valid = targets[targets != ignore_index]
            lo, hi = (int(v) for v in valid.aminmax()) if valid.numel() else (0, 0)
        if lo < 0 or hi >= num_classes:
            raise InputError(
                f"Expected `{name}` to be class indices in [0, {num_classes - 1}]"
                + (f" (or ignore_index={ignore_index})" if ignore_index is not None else "")
                + f", but got values in [{lo}, {hi}]"
            )
    return targets


def as_numpy_scores(name: str, x: object) -> np.ndarray:
    """Scores as a 1-D float64 numpy array (from numpy, torch or a sequence)."""
    if isinstance(x, Tensor):
        x = x.detach().cpu().double().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"Expected `{name}` to be a 1-D array of numbers, but got {type(x).__name__}") from err
    if arr.ndim != 1:
        raise InputError(f"Expected `{name}` to be 1-D, but got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"Expected `{name}` to be non-empty, but got an empty array")
    if not np.isfinite(arr).all():
        raise InputError(
            f"Expected `{name}` to be finite, but got {int((~np.isfinite(arr)).sum())} NaN or inf value(s)"
        )
    return arr
