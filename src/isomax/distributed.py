"""Data-parallel helpers: no-ops in a single process, DistributedDataParallel under ``torchrun``.

Launch::

    torchrun --nproc_per_node 4 -m isomax train --preset paper --out runs/dn   # one node, 4 GPUs
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m isomax train --preset paper --out runs/dn                             # two nodes

``isomax train`` calls :func:`init_from_env`, which creates the process group when torchrun set
``WORLD_SIZE > 1``: backend ``nccl`` on CUDA, ``gloo`` on CPU (``ISOMAX_DIST_BACKEND=gloo``
forces gloo, e.g. to debug on a GPU machine). Each process takes the GPU of its ``LOCAL_RANK``.

How a run is split:

- **Batches.** Every process takes its own contiguous slice of the same *global* batch (same seed,
  same shuffle, same augmentation draws: the loaders are deterministic in ``(seed, epoch)``); the
  training loaders gather and augment only that slice (``BatchLoader(shard=...)``, the streaming
  path's sampler), other iterables are sliced by :func:`shard_batches`; ``--batch-size`` is the global batch and must be
  divisible by the number of processes. DDP averages the gradients of the per-process mean
  losses, which is the gradient of the global-batch mean loss. Outlier Exposure batches are
  sliced the same way.
- **Validation** runs sharded too (uneven slices allowed) on the unwrapped model after the
  buffers (BatchNorm running statistics) have been copied from rank 0 (:func:`broadcast_buffers`),
  and the sums are all-reduced: every process gets the metrics of the whole validation set.
- **Metrics** (loss, accuracy sums and counts) are all-reduced once per epoch, not per step.
- **Writing.** Only rank 0 writes ``config.json``, ``checkpoint.pt``, ``log.jsonl`` and prints;
  the checkpoint holds rank 0's weights, which equal every rank's parameters (DDP keeps them
  identical), and rank 0's buffers.
- **Resume.** Every rank checks the saved configuration and loads ``checkpoint.pt`` (mapped onto
  its own device); DDP then broadcasts rank 0's state once more. A checkpoint resumes with any
  number of processes (same global batch). Across nodes, ``--out`` must be on a filesystem that
  every node sees (only global rank 0 writes).

What matches a 1-process run with the same global batch, seed and configuration:

- Models without BatchNorm (e.g. ``mlp-28``): the same batches and the same averaged gradient,
  so the weights agree to float rounding (summation order in the all-reduce and in smaller
  matrix products: differences ~1e-7 per step, not bitwise equality).
  ``tests/test_distributed.py`` checks this with 2 gloo processes on the CPU.
- BatchNorm models on **CUDA**: converted to ``SyncBatchNorm``, whose batch statistics are over
  the global batch, so they match too (up to rounding and bfloat16 autocast).

What does not match:

- BatchNorm models on **CPU** (gloo): ``SyncBatchNorm`` is CUDA-only, so each process normalises
  with the statistics of its own slice (batch / N images), as plain DDP does. Training works
  and converges but is not the 1-process computation; the running statistics saved are rank 0's
  (DDP's ``broadcast_buffers`` copies them to the other ranks at every forward pass).
- Timings, and anything computed in bfloat16, differ with the number of processes.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator

import torch
import torch.distributed as torch_dist
from torch import Tensor, nn
from .errors import InputError

__all__ = [
    "init_from_env",
    "shutdown",
    "is_distributed",
    "rank",
    "world_size",
    "is_main_process",
    "device_for_rank",
    "wrap_model",
    "shard_batches",
    "all_reduce_sum",
    "broadcast_buffers",
    "barrier",
    "backend_for",
]


def backend_for(cuda: bool | None = None) -> str:
    """``"nccl"`` when CUDA is usable (and ``ISOMAX_DIST_BACKEND`` is not ``gloo``), else ``"gloo"``."""
    forced = os.environ.get("ISOMAX_DIST_BACKEND", "").strip().lower()
    if forced:
        if forced not in ("gloo", "nccl"):
            raise InputError(f"Expected ISOMAX_DIST_BACKEND to be 'gloo' or 'nccl', but got: {forced!r}")
        return forced
    cuda = torch.cuda.is_available() if cuda is None else cuda
    return "nccl" if cuda else "gloo"


def init_from_env() -> bool:
    """Initialise the process group when launched by torchrun (WORLD_SIZE > 1); returns whether it did."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        return is_distributed()
    backend = backend_for()
    if backend == "nccl" and "LOCAL_RANK" in os.environ:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))  # before any CUDA work: one GPU per process
    torch_dist.init_process_group(backend=backend)
    return True


def shutdown() -> None:
    """Destroy the process group (if any), after a final barrier."""
    if is_distributed():
        torch_dist.barrier()
        torch_dist.destroy_process_group()


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
    """DistributedDataParallel when distributed (identity otherwise).

    On CUDA, BatchNorm layers are converted in place to ``SyncBatchNorm`` (same parameter and
    buffer tensors, same state-dict keys), so N processes normalise over the global batch like 1
    process does. On CPU they stay per-process (``SyncBatchNorm`` needs a GPU); see the module
    docstring. The returned wrapper shares its parameters with ``model``; keep using ``model``
    for evaluation and ``state_dict``.
    """
    if not is_distributed():
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # top-level module unchanged; children replaced
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard_batches(
    batches: Iterable[tuple[Tensor, Tensor | None]], rank_: int, world: int
) -> Iterator[tuple[Tensor, Tensor | None]]:
    """This process's contiguous slice of every global batch: rows ``[rank*B//N, (rank+1)*B//N)``.

    Equal slices when ``N`` divides ``B`` (training batches); otherwise the slices differ by at
    most one row and may be empty (validation), and together they cover the batch exactly once.
    """
    if getattr(batches, "sharded", False):  # a loader that already yields this process's share (streaming path)
        yield from batches
        return
    for x, y in batches:
        if world == 1:
            yield x, y
        else:
            b = x.shape[0]
            sl = slice(rank_ * b // world, (rank_ + 1) * b // world)
            yield x[sl], (y[sl] if y is not None else None)


def all_reduce_sum(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Sum each tensor over the processes, in place (no-op in one process); returns them."""
    if is_distributed():
        for t in tensors:
            torch_dist.all_reduce(t, op=torch_dist.ReduceOp.SUM)
    return tensors


def broadcast_buffers(model: nn.Module, src: int = 0) -> None:
    """Copy ``src``'s buffers (BatchNorm running statistics) to every process, in place."""
    if is_distributed():
        for buf in model.buffers():
            torch_dist.broadcast(buf, src)


def barrier() -> None:
    if is_distributed():
        torch_dist.barrier()
