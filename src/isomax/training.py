"""Training loop: deterministic given a seed, checkpointed atomically each epoch, resumable.

A run directory holds ``config.json``, ``log.jsonl`` (one line per epoch) and ``checkpoint.pt``
(model, optimiser and scheduler state, epoch, history). Killing a run (even with SIGKILL) and
running it again resumes from the last completed epoch and ends with the same weights as an
uninterrupted run: every source of randomness is derived from ``(seed, epoch)``.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import distributed as dist
from .heads import canonical_head_name
from .losses import make_loss
from .presets import TrainConfig

__all__ = ["train", "build_model", "load_run", "resolve_device", "TrainResult", "CHECKPOINT", "CONFIG"]

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
LOG = "log.jsonl"
_SPLIT_SEED = 0  # the validation split is the same for every run of a dataset


@dataclass
class TrainResult:
    run_dir: Path
    model: nn.Module
    config: TrainConfig
    history: list[dict]


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Expected a usable `device`, but got {device!r} and CUDA is not available; use --device cpu")
    return dev


def build_model(config: TrainConfig, num_classes: int, in_channels: int) -> nn.Module:
    from .models import create_model

    return create_model(config.model, num_classes=num_classes, head=canonical_head_name(config.loss), in_channels=in_channels)


def load_data(config: TrainConfig):
    """(train, val) ImageData for the configuration's in-distribution (the test split is never used here)."""
    from .data import load_dataset, train_val_split

    full = load_dataset(config.dataset, "train", data_dir=config.data_dir)
    train_set, val_set = train_val_split(full, config.val_fraction, seed=_SPLIT_SEED)
    if config.train_limit is not None:
        g = torch.Generator().manual_seed(_SPLIT_SEED)
        train_set = train_set.subset(torch.randperm(len(train_set), generator=g)[: config.train_limit])
    return train_set, val_set


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    """A per-iteration LambdaLR for either schedule (so resume is exact mid-schedule)."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "step":
        milestones = [m * steps_per_epoch for m in config.milestones]
        factor: Callable[[int], float] = lambda it: config.gamma ** sum(it >= m for m in milestones)
    elif config.schedule == "onecycle":
        warm = max(1, int(config.warmup_epochs * steps_per_epoch))
        factor = lambda it: (it + 1) / warm if it < warm else max(0.0, (total - it) / max(1, total - warm))
    else:
        raise ValueError(f"Expected `schedule` to be 'step' or 'onecycle', but got: {config.schedule!r}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _param_groups(model: nn.Module, config: TrainConfig):
    """All parameters in one group, or the head's own (prototypes, distance scale) apart when
    ``config.head_weight_decay`` sets a different weight decay for them."""
    if config.head_weight_decay is None:
        return model.parameters()
    head = getattr(model, "head", None)
    if head is None:
        raise ValueError(f"`head_weight_decay` needs a model with a `head` module; {config.model!r} has none")
    head_ids = {id(p) for p in head.parameters()}
    rest = [p for p in model.parameters() if id(p) not in head_ids]
    return [{"params": rest}, {"params": list(head.parameters()), "weight_decay": config.head_weight_decay}]


def _cycle(loader, epoch: int):
    """Endless outlier batches, reshuffled deterministically from (epoch, pass) so that resume is exact."""
    for n in range(1_000_000):
        loader.set_epoch(epoch * 1000 + n)
        for x, _ in dist.shard_batches(loader, dist.rank(), dist.world_size()):
            yield x


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    with open(tmp, "rb") as fh:  # make sure the bytes are on disk before the rename
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@torch.no_grad()
def accuracy_and_loss(model: nn.Module, loader, loss_fn: nn.Module, device: torch.device, amp: bool) -> tuple[float, float]:
    """Accuracy and mean loss over ``loader``; under DDP each process takes a slice of every batch
    and the sums are all-reduced (pass the unwrapped model, with buffers synchronised)."""
    model.eval()
    correct = torch.zeros((), device=device)
    total_loss = torch.zeros((), device=device)
    n = torch.zeros((), device=device)
    for x, y in dist.shard_batches(loader, dist.rank(), dist.world_size()):
        if y.numel() == 0:  # an empty slice of a short last batch
            continue
        with _autocast(device, amp):
            logits = model(x)
        total_loss += loss_fn(logits.float(), y) * y.numel()
        correct += (logits.argmax(1) == y).sum()
        n += y.numel()
    dist.all_reduce_sum(correct, total_loss, n)
    n_ = max(float(n), 1.0)
    return float(correct) / n_, float(total_loss) / n_


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda")


def train(config: TrainConfig, run_dir: str | os.PathLike, *, resume: bool = True, progress: bool = True,
          log: Callable[[str], None] = print) -> TrainResult:
    """Train one model as ``config`` says, writing ``run_dir``; resume from its checkpoint if present."""
    from .data import BatchLoader, normalization

    run_dir = Path(run_dir)
    rank0 = dist.is_main_process()
    config_path, ckpt_path = run_dir / CONFIG, run_dir / CHECKPOINT
    if config_path.exists() and resume:  # every rank checks (and raises) before rank 0 writes anything
        saved = TrainConfig.from_dict(json.loads(config_path.read_text()))
        if saved != config:
            diff = {k: (v, config.to_dict()[k]) for k, v in saved.to_dict().items() if config.to_dict()[k] != v}
            raise ValueError(
                f"{run_dir} already holds a run with a different configuration {diff} (saved, requested); "
                "use another output directory or --no-resume to start over"
            )
    dist.barrier()
    if rank0:
        run_dir.mkdir(parents=True, exist_ok=True)
        config_path.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    if config.threads:
        torch.set_num_threads(config.threads)
    device = dist.device_for_rank(resolve_device(config.device))

    train_set, val_set = load_data(config)
    mean, std = normalization(config.dataset)
    world, rank = dist.world_size(), dist.rank()
    if config.batch_size % world:
        raise ValueError(f"Expected `batch_size` ({config.batch_size}) to be divisible by the number of processes ({world})")
    loader = BatchLoader(train_set, config.batch_size, shuffle=True, augment=config.augment, pad=config.pad,
                         flip=config.flip, mean=mean, std=std, device=device, drop_last=True, seed=config.seed)
    val_loader = BatchLoader(val_set, config.eval_batch_size, mean=mean, std=std, device=device)
    outliers = None
    if config.outlier_data:
        from .data import load_ood

        out_set = load_ood(config.outlier_data, like=train_set.shape, data_dir=config.data_dir)
        outliers = BatchLoader(out_set, config.batch_size, shuffle=True, augment=config.augment, pad=config.pad,
                               flip=config.flip, mean=mean, std=std, device=device, drop_last=True, seed=config.seed + 7919)
        if len(outliers) == 0:
            raise ValueError(f"Expected at least {config.batch_size} outlier images in {config.outlier_data!r}, got {len(out_set)}")
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise ValueError(f"Expected at least one batch per epoch, but the training set has {len(train_set)} images for batch size {config.batch_size}")

    torch.manual_seed(config.seed)
    model = build_model(config, train_set.num_classes, train_set.shape[0]).to(device)
    if device.type != "cpu":  # the finiteness checks of the IsoMax heads cost a device sync per step; the loss is checked per epoch
        for m in model.modules():
            if hasattr(m, "validate_args") and hasattr(m, "prototypes"):
                m.validate_args = False
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
    loss_fn = make_loss(config.loss, config.entropic_scale, validate_args=device.type == "cpu").to(device)
    optimizer = torch.optim.SGD(_param_groups(model, config), lr=config.lr, momentum=config.momentum,
                                nesterov=config.nesterov, weight_decay=config.weight_decay)
    scheduler = make_scheduler(optimizer, config, steps_per_epoch)

    start_epoch, history = 0, []
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, history = state["epoch"], state["history"]
        if rank0 and start_epoch < config.epochs:
            log(f"resuming {run_dir} from epoch {start_epoch}/{config.epochs}")
    if rank0:  # the log holds exactly the checkpoint's epochs (a kill between the two writes, --no-resume)
        tmp = run_dir / (LOG + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in history))
        os.replace(tmp, run_dir / LOG)
    train_model = dist.wrap_model(model, device)

    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        loader.set_epoch(epoch)
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        bar = tqdm(total=steps_per_epoch, desc=f"{config.loss} epoch {epoch + 1}/{config.epochs}", leave=False,
                   disable=not (progress and rank0), unit="batch")
        outlier_batches = _cycle(outliers, epoch) if outliers is not None else None
        for step, (x, y) in enumerate(dist.shard_batches(loader, rank, world)):
            if outlier_batches is not None:  # Outlier Exposure: one forward pass over in + outlier images
                x_out = next(outlier_batches)
                with _autocast(device, config.amp):
                    both = train_model(torch.cat([x, x_out]))  # (B + B_out, C)
                logits, logits_out = both[: len(x)], both[len(x):]
                # cross-entropy to the uniform distribution = -mean_j log softmax_j
                loss = loss_fn(logits.float(), y) + config.outlier_weight * -torch.log_softmax(logits_out.float(), 1).mean()
            else:
                with _autocast(device, config.amp):
                    logits = train_model(x)  # (B, C)
                loss = loss_fn(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach() * y.numel()
            correct += (logits.detach().argmax(1) == y).sum()
            seen += y.numel()
            bar.update()
            if step % 50 == 0:
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        bar.close()
        loss_sum, correct, seen_t = dist.all_reduce_sum(loss_sum, correct, torch.tensor(float(seen), device=device))
        train_loss, train_acc = float(loss_sum) / float(seen_t), float(correct) / float(seen_t)
        dist.broadcast_buffers(model)  # BatchNorm running statistics of rank 0 everywhere (per-process BN on CPU)
        val_acc, val_loss = accuracy_and_loss(model, val_loader, loss_fn, device, config.amp) if len(val_set) else (float("nan"),) * 2
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"training loss became {train_loss} at epoch {epoch + 1}; lower --lr")
        record = dict(epoch=epoch + 1, train_loss=train_loss, train_accuracy=train_acc, val_loss=val_loss,
                      val_accuracy=val_acc, lr=optimizer.param_groups[0]["lr"], seconds=time.perf_counter() - t0)
        head = getattr(model, "head", None)
        if getattr(head, "distance_scale", None) is not None:
            record["distance_scale"] = float(head.distance_scale.detach().abs())
        history.append(record)
        if rank0:
            _atomic_save(dict(model=model.state_dict(), optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                              epoch=epoch + 1, history=history, config=config.to_dict()), ckpt_path)
            with open(run_dir / LOG, "a") as fh:
                fh.write(json.dumps(record) + "\n")
            log(f"[{run_dir.name}] epoch {epoch + 1}/{config.epochs}  loss {train_loss:.4f}  train acc {100 * train_acc:.2f}%  "
                f"val acc {100 * val_acc:.2f}%  ({record['seconds']:.1f}s)")
    dist.barrier()
    return TrainResult(run_dir, model, config, history)


def load_run(run_dir: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, TrainConfig, dict]:
    """Model (eval mode), configuration and checkpoint metadata of a finished or partial run."""
    run_dir = Path(run_dir)
    config_path, ckpt_path = run_dir / CONFIG, run_dir / CHECKPOINT
    for path in (config_path, ckpt_path):
        if not path.exists():
            raise FileNotFoundError(f"{run_dir} is not a run directory: {path.name} is missing (made by `isomax train`)")
    config = TrainConfig.from_dict(json.loads(config_path.read_text()))
    try:
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
    except Exception as err:  # noqa: BLE001 - report which file is broken
        raise ValueError(f"cannot read checkpoint {ckpt_path}: {err}") from err
    from .models import create_model

    model_state: dict[str, Tensor] = state["model"]
    num_classes = next(v.shape[0] for k, v in model_state.items() if k in ("head.weight", "head.prototypes"))
    sample_key = next(k for k, v in model_state.items() if v.ndim == 4)
    in_channels = model_state[sample_key].shape[1]
    model = create_model(config.model, num_classes=num_classes, head=canonical_head_name(config.loss), in_channels=in_channels)
    model.load_state_dict(model_state)
    model.to(device).eval()
    return model, config, {"epoch": state["epoch"], "history": state["history"]}
