"""Devices and mixed precision: which ``torch.device`` a ``--device`` string means, and autocast.

Training, evaluation, bench and sweep share these two helpers; nothing else in the project
decides where tensors live or in which precision a forward pass runs.
"""

from __future__ import annotations

import torch
from .errors import InputError

__all__ = ["resolve_device", "autocast"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a usable device.

    Raises ``ValueError`` naming `device` for a string torch does not understand, for CUDA when
    it is not available, and for a CUDA index that does not exist.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError, ValueError) as err:
            raise InputError(f"Expected `device` to be auto, cpu, cuda or cuda:N, but got: {device!r}") from err
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"Expected `device` to be auto, cpu, cuda or cuda:N, but got: {str(device)!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(
                f"Expected a usable `device`, but got {str(device)!r} and CUDA is not available; use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(
                f"Expected `device` index < {torch.cuda.device_count()} (the visible GPUs), but got: {str(device)!r}"
            )
    return dev


def autocast(device: torch.device, amp: bool):
    """bfloat16 autocast on CUDA when ``amp``; a disabled context elsewhere (CPU runs in float32)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda")
