"""Data-parallel helpers: no-ops in a single process, DistributedDataParallel under ``torchrun``.

Every process builds the same global batch (same seed, same augmentation) and keeps its own
slice, so a run on N processes sees exactly the batches of a 1-process run with the same global
batch size. Only rank 0 writes checkpoints and logs; metrics are summed across processes once per
epoch.
"""
from __future__ import annotations

import os
from typing import Iterable, Iterator

import torch
import torch.distributed as torch_dist
from torch import Tensor, nn

__all__ = ["init_from_env", "is_distributed", "rank", "world_size", "is_main_process", "device_for_rank",
           "wrap_model", "shard_batches", "all_reduce_sum", "barrier"]


def init_from_env() -> bool:
    """Initialise the process group when launched by torchrun (WORLD_SIZE > 1); returns whether it did."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        return is_distributed()
    backend = "nccl" if torch.cuda.is_available() and os.environ.get("ISOMAX_DIST_BACKEND") != "gloo" else "gloo"
    torch_dist.init_process_group(backend=backend)
    return True


def is_distributed() -> bool:
    return torch_dist.is_available() and torch_dist.is_initialized()


def rank() -> int:
    return torch_dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return torch_dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return rank() == 0


def device_for_rank(device: torch.device) -> torch.device:
    """On CUDA under torchrun, each process takes the GPU of its LOCAL_RANK."""
    if is_distributed() and device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return device


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel (with synchronised BatchNorm, so N processes match 1) when distributed."""
    if not is_distributed():
        return model
    model = nn.SyncBatchNorm.convert_sync_batchnorm(model) if device.type == "cuda" else model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard_batches(batches: Iterable[tuple[Tensor, Tensor | None]], rank_: int, world: int) -> Iterator[tuple[Tensor, Tensor | None]]:
    """This process's contiguous slice of every global batch."""
    for x, y in batches:
        if world == 1:
            yield x, y
        else:
            per = x.shape[0] // world
            sl = slice(rank_ * per, (rank_ + 1) * per)
            yield x[sl], (y[sl] if y is not None else None)


def all_reduce_sum(*tensors: Tensor) -> tuple[Tensor, ...]:
    if is_distributed():
        for t in tensors:
            torch_dist.all_reduce(t, op=torch_dist.ReduceOp.SUM)
    return tensors


def barrier() -> None:
    if is_distributed():
        torch_dist.barrier()
