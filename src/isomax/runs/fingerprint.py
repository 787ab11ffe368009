"""The identity of a model's weights: what ``threshold.json`` and ``calibration.json`` are bound to."""

from __future__ import annotations

import hashlib
from typing import Mapping

import torch
from torch import nn

__all__ = ["model_fingerprint"]


def model_fingerprint(model: nn.Module | Mapping[str, object]) -> str:
    """SHA-256 (hex) of a model's ``state_dict`` (names, dtypes, shapes, bytes), the heads' ``temperature``
    buffers left out (the temperature is recorded and checked on its own). A model whose ``nn.Linear`` head
    had a temperature folded in (:func:`isomax.runs.calibration.apply_temperature`) keeps the fingerprint of
    its weights before the fold."""
    if isinstance(model, nn.Module):
        cached = getattr(model, "_isomax_fingerprint", None)
        if cached is not None:
            return str(cached)
        state: Mapping[str, object] = model.state_dict()
    else:
        state = model
    h = hashlib.sha256()
    for key in sorted(state):
        if key.rpartition(".")[2] == "temperature":  # a head's temperature buffer (`head.`, `net.fc.` of timm models)
            continue
        t = state[key]
        if not isinstance(t, torch.Tensor):
            continue
        flat = t.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{key}|{flat.dtype}|{tuple(t.shape)}|".encode())
        h.update(flat.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
