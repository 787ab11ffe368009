"""Logits of a model over a data set, in batches: what evaluation, deploy and :class:`isomax.runs.Run` share.

Below :mod:`isomax.training`, :mod:`isomax.evaluation` and :mod:`isomax.deploy` (which all call it), above
:mod:`isomax.data` and :mod:`isomax.devices`. Memory is bounded by the batch size: one batch is normalised
on the device at a time (:class:`isomax.data.BatchLoader`, or a streaming data set's own loader).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .devices import autocast

__all__ = ["predict_logits", "batches"]


def batches(data: Any, mean: Sequence[float], std: Sequence[float], device: torch.device, batch_size: int) -> Iterable:
    """``(x, y)`` batches of ``data`` normalised with ``mean`` / ``std`` on ``device``."""
    from .data import BatchLoader

    if hasattr(data, "loader"):  # files read by the streaming path (isomax.data.streaming.FileImages)
        return data.loader(batch_size, mean, std, device)
    return BatchLoader(data, batch_size, mean=mean, std=std, device=device)


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    data: Any,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device,
    batch_size: int = 1000,
    amp: bool = True,
    desc: str | None = None,
    progress: bool = True,
) -> Tensor:
    """Logits (N, C) as float32 on the CPU, in the order of ``data``."""
    model.eval()
    out = []
    for x, _ in tqdm(
        batches(data, mean, std, device, batch_size), desc=desc, leave=False, disable=not progress, unit="batch"
    ):
        with autocast(device, amp):
            out.append(model(x).float().cpu())
    return torch.cat(out) if out else torch.empty(0)
