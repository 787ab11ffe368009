"""Training loop: deterministic given a seed, checkpointed atomically each epoch, resumable.

A run directory (:mod:`isomax.runs`) holds ``config.json``, ``log.jsonl`` (one line per epoch)
and ``checkpoint.pt`` (model, optimiser and scheduler state, epoch, history, input description).
Killing a run (even with SIGKILL) and running it again resumes from the last completed epoch and
ends with the same weights as an uninterrupted run: every source of randomness is derived from
``(seed, epoch)``.

Divergence: after every epoch (never per step: no host syncs in the hot loop) training stops with
:class:`DivergenceError` when the training loss is not finite or explodes
(> ``EXPLODED_LOSS * max(1, entropic_scale / 10) * ln(num_classes)``), or when the validation
accuracy (training accuracy with ``val_fraction=0``) is at chance (< ``CHANCE_MARGIN / C``) for
``CHANCE_EPOCHS`` consecutive epochs. The checkpoint of the last good epoch is kept.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from . import distributed as dist
from . import runs
from .devices import autocast, resolve_device
from .errors import IsoMaxError, InputError
from .inputs import (
    MEMORY_PATH_BYTES,
    _check_registered_size,
    _folder_sets,
    _is_folder,  # noqa: F401 (re-exported)
    load_data,
)
from .heads import canonical_head_name
from .losses import make_loss
from .presets import Runtime, TrainConfig
from .runs import CHECKPOINT, CONFIG, LOG, EpochRecord, InputSpec

__all__ = [
    "train",
    "build_model",
    "make_optimizer",
    "make_scheduler",
    "input_normalization",
    "load_data",
    "resolve_device",
    "TrainResult",
    "DivergenceError",
    "CHECKPOINT",
    "CONFIG",
    "LOG",
]

EXPLODED_LOSS = 10.0  # x ln(C) (x E_s / 10 when E_s > 10): a mean epoch loss above this has exploded
CHANCE_MARGIN = 1.2  # accuracy < 1.2 / C counts as chance level
CHANCE_EPOCHS = 2  # consecutive epochs at chance before training stops
_autocast = autocast  # compatibility alias (isomax <= 0.x imported it from here); use isomax.devices.autocast


class DivergenceError(IsoMaxError, FloatingPointError):
    """Training diverged (non-finite or exploding loss, accuracy at chance); the last good checkpoint is kept."""


@dataclass
class TrainResult:
    run_dir: Path
    model: nn.Module
    config: TrainConfig
    history: list[EpochRecord]  # one per finished epoch (log.jsonl and the checkpoint hold their to_dict())
    data: InputSpec  # the input description recorded with the run (size, mean/std, classes, ...; to_dict() on disk)
    val_set: object = None  # the validation split (isomax.deploy.fit_deployment fits on it without reloading)
    device: torch.device | None = None  # where the model is
    runtime: Runtime = field(default_factory=Runtime)  # where and how fast it ran (evaluation batch size, ...)


def build_model(config: TrainConfig, num_classes: int, in_channels: int) -> nn.Module:
    from .models import create_model

    return create_model(
        config.model, num_classes=num_classes, head=canonical_head_name(config.loss), in_channels=in_channels
    )


def _normalization(config: TrainConfig, train_set: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    from .data import normalization
    from .data.streaming import FileImages, sample_mean_std

    if config.mean is not None and config.std is not None:  # both or neither (TrainConfig checks)
        c = train_set.shape[0]
        return (config.mean * c if len(config.mean) == 1 else config.mean), (
            config.std * c if len(config.std) == 1 else config.std
        )
    if isinstance(train_set, FileImages):
        return sample_mean_std(train_set)
    if hasattr(train_set, "urls"):  # shards: the first batches of the evaluation order
        from .data.shards import sample_mean_std_shards

        return sample_mean_std_shards(train_set)
    return normalization(config.dataset)


def _choose_path(config: TrainConfig, train_set) -> tuple[str, str]:
    """("memory" | "stream", the reason, for the log)."""
    from .data.shards import ShardImages
    from .data.streaming import FileImages

    if isinstance(train_set, ShardImages):
        if config.data_path == "memory":
            raise InputError(f"--data-path memory: {config.dataset} is a shard data set, always streamed")
        return (
            "stream",
            f"{config.dataset}: {len(train_set)} training images in {len(train_set.urls)} shards: stream path",
        )
    if not isinstance(train_set, FileImages):
        if config.data_path == "stream":
            raise InputError(
                f"--data-path stream needs a folder data set (--dataset PATH); {config.dataset} is "
                "a registered set, always held in memory"
            )
        return "memory", f"{config.dataset}: in memory (a registered set)"
    c, h, w = train_set.shape
    need = len(train_set) * c * h * w
    size = f"{len(train_set)} training images x {c}x{h}x{w} = {need / 2**30:.2f} GiB decoded"
    if config.data_path != "auto":
        return config.data_path, f"{size}; --data-path {config.data_path}"
    path = "memory" if need <= MEMORY_PATH_BYTES else "stream"
    return (
        path,
        f"{size} {'<=' if path == 'memory' else '>'} {MEMORY_PATH_BYTES / 2**30:g} GiB: {path} path "
        "(--data-path to force)",
    )


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    """A per-iteration LambdaLR for each schedule (so resume is exact mid-schedule); ``TrainConfig``
    has already rejected any other ``schedule``. The factor scales every parameter group's own
    learning rate (``head_lr`` keeps its ratio to ``lr``)."""
    total = config.epochs * steps_per_epoch
    milestones = [m * steps_per_epoch for m in config.milestones]
    warm = max(1, int(config.warmup_epochs * steps_per_epoch))

    def factor(it: int) -> float:
        if config.schedule == "step":
            return config.gamma ** sum(it >= m for m in milestones)
        if it < warm:  # onecycle and cosine: linear warm-up
            return (it + 1) / warm
        if config.schedule == "cosine":  # then half a cosine down to 0
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (it - warm) / max(1, total - warm))))
        return max(0.0, (total - it) / max(1, total - warm))  # onecycle: then linearly down to 0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _param_groups(model: nn.Module, config: TrainConfig):
    """All parameters in one group, or the head's own (prototypes, distance scale) apart when
    ``config.head_weight_decay`` or ``config.head_lr`` sets a different weight decay or learning rate for them."""
    if config.head_weight_decay is None and config.head_lr is None:
        return model.parameters()
    head = getattr(model, "head", None)
    if head is None:
        raise InputError(
            f"`head_weight_decay` and `head_lr` need a model with a `head` module; {config.model!r} has none"
        )
    head_modules = getattr(model, "head_modules", None)
    heads = head_modules() if head_modules is not None else [head]
    head_params = [p for h in heads for p in h.parameters()]
    head_ids = {id(p) for p in head_params}
    rest = [p for p in model.parameters() if id(p) not in head_ids]
    group: dict[str, Any] = {"params": head_params}
    if config.head_weight_decay is not None:
        group["weight_decay"] = config.head_weight_decay
    if config.head_lr is not None:
        group["lr"] = config.head_lr
    return [{"params": rest}, group]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov) or AdamW, with the head's parameter group of :func:`_param_groups`."""
    groups = _param_groups(model, config)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay
    )


def input_normalization(
    config: TrainConfig, model: nn.Module, data_norm
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of the inputs: a timm model's pretrained configuration when starting from pretrained
    weights without ``--mean/--std`` (they were trained with it), else ``data_norm`` (``--mean/--std``, the
    registered set's, or computed on a training sample of a folder)."""
    from .models import library_data_config

    if config.mean is None and config.pretrained:
        timm_cfg = library_data_config(model)
        if timm_cfg is not None:
            return tuple(timm_cfg["mean"]), tuple(timm_cfg["std"])
    return data_norm


def _cycle(loader, epoch: int):
    """Endless outlier batches, reshuffled deterministically from (epoch, pass) so that resume is exact."""
    for n in range(1_000_000):
        loader.set_epoch(epoch * 1000 + n)
        for x, _ in dist.shard_batches(loader, dist.rank(), dist.world_size()):
            yield x


@torch.no_grad()
def accuracy_and_loss(
    model: nn.Module, loader, loss_fn: nn.Module, device: torch.device, amp: bool
) -> tuple[float, float]:
    """Accuracy and mean loss over ``loader``; under DDP each process takes a slice of every batch
    and the sums are all-reduced (pass the unwrapped model, with buffers synchronised)."""
    model.eval()
    correct = torch.zeros((), device=device)
    total_loss = torch.zeros((), device=device)
    n = torch.zeros((), device=device)
    for x, y in dist.shard_batches(loader, dist.rank(), dist.world_size()):
        if y is None:
            raise InputError("Expected labelled validation batches, but got images without labels")
        if y.numel() == 0:  # an empty slice of a short last batch
            continue
        with autocast(device, amp):
            logits = model(x)
        total_loss += loss_fn(logits.float(), y) * y.numel()
        correct += (logits.argmax(1) == y).sum()
        n += y.numel()
    dist.all_reduce_sum(correct, total_loss, n)
    n_ = max(float(n), 1.0)
    return float(correct) / n_, float(total_loss) / n_


# ---- setup ------------------------------------------------------------------------------------
@dataclass
class _Setup:
    """Everything one training run holds: data, loaders, model, loss, optimiser, schedule."""

    config: TrainConfig
    device: torch.device
    train_set: Any  # ImageData, FileImages or ShardImages
    val_set: Any
    loader: Any  # BatchLoader or the streaming path's loader
    val_loader: Any
    outliers: Any  # a BatchLoader of outlier images (Outlier Exposure), or None
    model: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any  # torch.optim.lr_scheduler.LambdaLR
    data: InputSpec
    runtime: Runtime = field(default_factory=Runtime)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader)


def _loaders(config: TrainConfig, runtime: Runtime, train_set, val_set, mean, std, device):
    from .data import BatchLoader

    world = dist.world_size()
    if config.batch_size % world:
        raise InputError(
            f"Expected `batch_size` ({config.batch_size}) to be divisible by the number of processes ({world})"
        )
    shard = (dist.rank(), world) if world > 1 else None  # each process gathers and augments its rows only
    # the in-memory loaders of the training and outlier images (shuffled, augmented, full batches)
    augmented: dict[str, Any] = dict(
        shuffle=True,
        augment=config.augment,
        pad=config.pad,
        flip=config.flip,
        mean=mean,
        std=std,
        device=device,
        drop_last=True,
        shard=shard,
    )
    if hasattr(train_set, "loader"):  # the streaming path: each rank decodes its share in the workers
        loader = train_set.loader(
            config.batch_size,
            mean,
            std,
            device,
            train=True,
            augment=config.augment,
            flip=config.flip,
            seed=config.seed,
            rank=dist.rank(),
            world=world,
            persistent=True,
        )
        val_loader = val_set.loader(
            runtime.eval_batch_size, mean, std, device, rank=dist.rank(), world=world, persistent=config.epochs > 1
        )
    else:
        loader = BatchLoader(train_set, config.batch_size, seed=config.seed, **augmented)
        val_loader = BatchLoader(val_set, runtime.eval_batch_size, mean=mean, std=std, device=device, shard=shard)
    outliers = None
    if config.outlier_data:
        from .data import load_ood

        out_set = load_ood(config.outlier_data, like=train_set.shape, data_dir=runtime.data_dir)
        outliers = BatchLoader(out_set, config.batch_size, seed=config.seed + 7919, **augmented)
        if len(outliers) == 0:
            raise InputError(
                f"Expected at least {config.batch_size} outlier images in {config.outlier_data!r}, got {len(out_set)}"
            )
    if len(loader) == 0:
        raise InputError(
            f"Expected at least one batch per epoch, but the training set has {len(train_set)} images "
            f"for batch size {config.batch_size}"
        )
    return loader, val_loader, outliers


def _setup(config: TrainConfig, runtime: Runtime, pretrained: bool = True) -> _Setup:
    """Data, loaders, model (seeded), loss, optimiser and schedule, in the order that fixes the RNG use.
    ``pretrained=False``: skip ``config.pretrained`` (resuming: the checkpoint has the weights)."""
    if runtime.threads:
        torch.set_num_threads(runtime.threads)
    device = dist.device_for_rank(resolve_device(runtime.device))
    _check_registered_size(config)
    train_set, val_set = load_data(config, runtime.data_dir, runtime.workers)
    mean, std = _normalization(config, train_set)
    path, why = _choose_path(config, train_set)
    extra = dict(data_path=path, data_path_reason=why)
    if hasattr(train_set, "img_size"):  # a folder data set: the recipe every later command reuses
        from .data.streaming import materialize

        extra.update(
            img_size=train_set.img_size,
            **_folder_sets(config, runtime.workers)[1],
            eval_transform="resize shorter side + center crop (ratio 1.0)",
            train_transform="none (as evaluation)"
            if not config.augment
            else ("random-resized-crop" if path == "stream" else f"crop with zero padding {config.pad}")
            + (" + flip" if config.flip else ""),
        )
        if path == "memory":
            train_set, val_set = materialize(train_set), materialize(val_set)

    torch.manual_seed(config.seed)
    model = build_model(config, train_set.num_classes, train_set.shape[0])
    if config.pretrained and pretrained:
        from .models.pretrained import load_pretrained

        load_pretrained(model, config.pretrained)
    model = model.to(device)
    mean, std = input_normalization(config, model, (mean, std))
    loader, val_loader, outliers = _loaders(config, runtime, train_set, val_set, mean, std, device)
    # The heads' and the loss's finiteness checks cost a host sync per step: the loss is checked per epoch instead
    for m in model.modules():
        if hasattr(m, "validate_args") and hasattr(m, "prototypes"):
            setattr(m, "validate_args", False)  # nn.Module's __setattr__ is typed for tensors and modules
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
    smoothing = {"label_smoothing": config.label_smoothing} if config.label_smoothing else {}
    loss_fn = make_loss(config.loss, config.entropic_scale, validate_args=False, **smoothing).to(device)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, len(loader))
    return _Setup(
        config,
        device,
        train_set,
        val_set,
        loader,
        val_loader,
        outliers,
        model,
        loss_fn,
        optimizer,
        scheduler,
        InputSpec.from_data(train_set, mean, std, **extra),
        runtime,
    )


def _resume(s: _Setup, ckpt_path: Path) -> tuple[int, list[EpochRecord]]:
    """Load model, optimiser and scheduler state from ``ckpt_path``: (start epoch, history)."""
    state = runs.load_checkpoint(ckpt_path, s.device)
    runs.load_state(s.model, state["model"], ckpt_path, "model", s.config)
    runs.load_state(s.optimizer, state["optimizer"], ckpt_path, "optimizer", s.config)
    runs.load_state(s.scheduler, state["scheduler"], ckpt_path, "scheduler", s.config)
    try:  # validated; written back as the checkpoint and log.jsonl hold it (EpochRecord.to_dict)
        history = [EpochRecord.from_dict(r) for r in state["history"]]
    except InputError as err:
        raise runs.CheckpointError(f"cannot read checkpoint {ckpt_path}: its history: {err}") from err
    return state["epoch"], history


# ---- one epoch --------------------------------------------------------------------------------
def _train_epoch(s: _Setup, train_model: nn.Module, epoch: int, progress: bool) -> tuple[float, float]:
    """One pass over the training batches; (mean loss, accuracy), synchronised once at the end."""
    config, device = s.config, s.device
    s.loader.set_epoch(epoch)
    s.model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    seen = 0
    bar = tqdm(
        total=s.steps_per_epoch,
        desc=f"{config.loss} epoch {epoch + 1}/{config.epochs}",
        leave=False,
        disable=not (progress and dist.is_main_process()),
        unit="batch",
    )
    outlier_batches = _cycle(s.outliers, epoch) if s.outliers is not None else None
    # DisMax FPR (loss "dismax-fpr"): half of each batch mixed into mosaics, from a generator seeded by
    # (seed, epoch, rank) so that resume is exact
    fpr = getattr(s.loss_fn, "fpr", False)
    fpr_gen = torch.Generator().manual_seed((config.seed * 1_000_003 + epoch) * 1_009 + dist.rank()) if fpr else None
    fpr_transform = getattr(s.loss_fn, "batch_transform") if fpr else None
    for step, (x, y) in enumerate(dist.shard_batches(s.loader, dist.rank(), dist.world_size())):
        if y is None:
            raise InputError(f"Expected labelled training batches, but {config.dataset!r} gave images without labels")
        targets = y
        if fpr_transform is not None:
            x, targets = fpr_transform(x, y, generator=fpr_gen)
            y = targets[: len(targets) // 2, 0]  # the unmixed half: the training accuracy is measured on it
        if outlier_batches is not None:  # Outlier Exposure: one forward pass over in + outlier images
            x_out = next(outlier_batches)
            with autocast(device, config.amp):
                both = train_model(torch.cat([x, x_out]))  # (B + B_out, C)
            logits, logits_out = both[: len(x)], both[len(x) :]
            # cross-entropy to the uniform distribution = -mean_j log softmax_j
            loss = (
                s.loss_fn(logits.float(), targets)
                + config.outlier_weight * -torch.log_softmax(logits_out.float(), 1).mean()
            )
        else:
            with autocast(device, config.amp):
                logits = train_model(x)  # (B, C)
            loss = s.loss_fn(logits.float(), targets)
        s.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        s.optimizer.step()
        s.scheduler.step()
        loss_sum += loss.detach() * y.numel()
        correct += (logits.detach()[: len(y)].argmax(1) == y).sum()
        seen += y.numel()
        bar.update()
        if not bar.disable and step % 50 == 0:  # a host sync, only when a progress bar shows it
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    bar.close()
    loss_sum, correct, seen_t = dist.all_reduce_sum(loss_sum, correct, torch.tensor(float(seen), device=device))
    return float(loss_sum) / float(seen_t), float(correct) / float(seen_t)


def _check_divergence(history: list[EpochRecord], config: TrainConfig, num_classes: int, run_dir: Path) -> None:
    """Raise :class:`DivergenceError` if the last epoch of ``history`` shows a diverged run."""
    rec = history[-1]
    epoch, loss = rec.epoch, rec.train_loss
    kept = (
        f"{run_dir / CHECKPOINT} keeps the last good epoch ({epoch - 1}); rerun with --no-resume or another --out"
        if epoch > 1
        else "no checkpoint was written"
    )
    advice = (
        f"the learning rate (--lr {config.lr:g}) is the likely cause: lower it (e.g. --lr {config.lr / 10:g}); {kept}"
    )
    if not math.isfinite(loss):
        raise DivergenceError(f"training diverged: the loss became {loss} at epoch {epoch}; {advice}")
    limit = EXPLODED_LOSS * max(1.0, config.entropic_scale / 10) * math.log(max(num_classes, 2))
    if loss > limit:
        raise DivergenceError(
            f"training diverged: the loss exploded to {loss:.4g} at epoch {epoch} (limit {limit:.3g}); {advice}"
        )
    key = "val_accuracy" if rec.has_validation else "train_accuracy"
    recent = [getattr(r, key) for r in history[-CHANCE_EPOCHS:]]
    if len(recent) == CHANCE_EPOCHS and all(a < CHANCE_MARGIN / num_classes for a in recent):
        raise DivergenceError(
            f"training is not learning: {key.replace('_', ' ')} stayed at chance "
            f"({', '.join(f'{100 * a:.2f}%' for a in recent)}; chance {100 / num_classes:.1f}%) "
            f"for {CHANCE_EPOCHS} epochs up to epoch {epoch}; {advice}"
        )


def _epoch_record(s: _Setup, epoch: int, train_loss: float, train_acc: float, seconds: float) -> EpochRecord:
    dist.broadcast_buffers(s.model)  # BatchNorm running statistics of rank 0 everywhere (per-process BN on CPU)
    if len(s.val_set):
        val_acc, val_loss = accuracy_and_loss(s.model, s.val_loader, s.loss_fn, s.device, s.config.amp)
    else:
        val_acc, val_loss = float("nan"), float("nan")
    head = getattr(s.model, "head", None)
    scale = getattr(head, "distance_scale", None)
    return EpochRecord(
        epoch=epoch + 1,
        train_loss=train_loss,
        train_accuracy=train_acc,
        val_loss=val_loss,
        val_accuracy=val_acc,
        lr=s.optimizer.param_groups[0]["lr"],
        seconds=seconds,
        distance_scale=float(scale.detach().abs()) if scale is not None else None,
    )


def _save_epoch(s: _Setup, run_dir: Path, history: list[EpochRecord], log: Callable[[str], None]) -> None:
    """Rank 0: checkpoint (atomic), then the log line and the console line."""
    record = history[-1].to_dict()  # the form the checkpoint and log.jsonl hold (EpochRecord.from_dict reads it)
    runs.save_checkpoint(
        run_dir / CHECKPOINT,
        dict(
            model=s.model.state_dict(),
            optimizer=s.optimizer.state_dict(),
            scheduler=s.scheduler.state_dict(),
            epoch=record["epoch"],
            history=[r.to_dict() for r in history],
            config=runs.config_record(s.config, s.runtime),
            data=s.data.to_dict(),
        ),
    )
    runs.append_log(run_dir, record)
    val = "n/a (val_fraction=0)" if math.isnan(record["val_accuracy"]) else f"{100 * record['val_accuracy']:.2f}%"
    log(
        f"[{run_dir.name}] epoch {record['epoch']}/{s.config.epochs}  loss {record['train_loss']:.4f}  "
        f"train acc {100 * record['train_accuracy']:.2f}%  val acc {val}  ({record['seconds']:.1f}s)"
    )


# ---- the run ----------------------------------------------------------------------------------
def train(
    config: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    runtime: Runtime = Runtime(),
    resume: bool = True,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train one model as ``config`` says, writing ``run_dir``; resume from its checkpoint if present.

    Training only: ``isomax train`` then fits the head temperature and the operating threshold on the
    validation split with :func:`isomax.deploy.fit_deployment` (``fit_deployment(train(config, run_dir))``).
    The returned model is as trained (the checkpoint). ``runtime``: where and how fast (device, threads,
    data directory, evaluation batch size, workers); a run resumes with another one (bit for bit the same
    weights on the same device and thread count).

    Raises :class:`~isomax.runs.RunLockedError` if another process trains in ``run_dir``,
    :class:`DivergenceError` if training diverges (the last good checkpoint is kept), and
    ``ValueError`` for a configuration that does not match ``run_dir``'s checkpoint.
    """
    from .models import check_model_name

    run_dir = Path(run_dir)
    check_model_name(config.model, "model")  # before anything is written: a failed start must leave nothing behind
    resuming = resume and (run_dir / CHECKPOINT).exists()  # then the checkpoint has the weights
    if config.pretrained is not None and not resuming and not Path(config.pretrained).expanduser().is_file():
        raise FileNotFoundError(f"--pretrained {config.pretrained}: no such file")
    if resume:  # every rank checks (and raises) before rank 0 writes anything
        runs.check_config(run_dir, config)
    dist.barrier()
    if not dist.is_main_process():
        return _train_locked(config, runtime, run_dir, resume, progress, log)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with runs.RunLock(run_dir):
            return _train_locked(config, runtime, run_dir, resume, progress, log)
    finally:
        if created and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()  # a start that failed before writing anything leaves no directory


def _train_locked(
    config: TrainConfig, runtime: Runtime, run_dir: Path, resume: bool, progress: bool, log: Callable[[str], None]
) -> TrainResult:
    rank0 = dist.is_main_process()
    ckpt_path = run_dir / CHECKPOINT
    s = _setup(config, runtime, pretrained=not (resume and ckpt_path.exists()))
    if len(s.val_set) == 0 and rank0:
        log(
            f"[{run_dir.name}] val_fraction=0: training on all {len(s.train_set)} training images; no validation "
            "accuracy or loss (divergence is judged on the training accuracy)"
        )
    extra = s.data.extra
    if rank0 and "img_size" in extra:  # a folder or shard data set: which path and why
        log(
            f"[{run_dir.name}] data: {extra['data_path_reason']}"
            + (
                f"; {extra['skipped']} file(s) skipped (empty or unreadable; --strict refuses them)"
                if extra.get("skipped")
                else ""
            )
        )
    start_epoch, history = 0, list[EpochRecord]()
    if resume and ckpt_path.exists():
        start_epoch, history = _resume(s, ckpt_path)
        if rank0 and start_epoch < config.epochs:
            log(f"resuming {run_dir} from epoch {start_epoch}/{config.epochs}")
    if rank0:  # the log holds exactly the checkpoint's epochs (a kill between the two writes, --no-resume)
        if (
            not resume
        ):  # starting over: an older run's checkpoint (and what was fitted on it) must never pass for this one's
            for stale in (ckpt_path, run_dir / "threshold.json", run_dir / "calibration.json"):
                stale.unlink(missing_ok=True)
        runs.write_config(run_dir, config, runtime)
        runs.write_log(run_dir, [r.to_dict() for r in history])
    train_model = dist.wrap_model(s.model, s.device)
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        train_loss, train_acc = _train_epoch(s, train_model, epoch, progress)
        history.append(_epoch_record(s, epoch, train_loss, train_acc, time.perf_counter() - t0))
        _check_divergence(history, config, s.train_set.num_classes, run_dir)  # before the checkpoint is replaced
        if rank0:
            _save_epoch(s, run_dir, history, log)
    dist.barrier()
    return TrainResult(run_dir, s.model, config, history, s.data, s.val_set, s.device, runtime)
