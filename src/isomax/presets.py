"""Training configurations and the named presets of ``isomax train/bench --preset``.

A :class:`TrainConfig` holds every hyperparameter of a run; a preset is a named set of
overrides. The same preset is used unchanged for the SoftMax, IsoMax and IsoMax+ losses: only
the head and the loss differ (the drop-in promise).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from .errors import InputError
from .registry import DEFAULT_LOSS

__all__ = ["TrainConfig", "PRESETS", "get_preset", "list_presets"]


@dataclass
class TrainConfig:
    """Everything a training run depends on (saved as ``config.json`` in the run directory)."""

    dataset: str = "fashion-mnist"  # in-distribution (isomax.data.IN_DATASETS)
    model: str = "cnn-28"  # isomax.models.list_models(), or "timm:NAME" / "torchvision:NAME"
    loss: str = (
        DEFAULT_LOSS  # isomaxplus; any isomax.registry loss: softmax | isomax | dismax | dismax-fpr | logitnorm ...
    )
    entropic_scale: float = 10.0  # E_s of the IsoMax losses (ignored for softmax)
    epochs: int = 5
    batch_size: int = 128
    lr: float = 0.1  # peak learning rate
    momentum: float = 0.9  # SGD, Nesterov
    nesterov: bool = True
    weight_decay: float = 5e-4
    head_weight_decay: float | None = (
        None  # weight decay of the head's prototypes and distance scale (None: weight_decay)
    )
    schedule: str = "onecycle"  # "step": lr * gamma at each milestone epoch; "onecycle": linear warm-up then linear decay to 0; "cosine": linear warm-up then cosine decay to 0
    milestones: tuple[int, ...] = ()  # epochs, for schedule="step"
    gamma: float = 0.1
    warmup_epochs: float = 0.5  # for schedule="onecycle" and "cosine"
    augment: bool = True  # random crop with zero padding + horizontal flip
    pad: int = 2  # pixels of padding for the random crop
    flip: bool = True
    val_fraction: float = 0.1  # carved from the training split (stratified, fixed split seed 0)
    train_limit: int | None = None  # use only this many training images (quick tests)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bfloat16 autocast on CUDA (distances and loss stay float32); ignored on CPU
    eval_batch_size: int = 1000
    eval_limit: int | None = (
        None  # bench: evaluate each out-distribution on a fixed seeded subset of this many images (None: all)
    )
    ood: tuple[str, ...] = ("mnist", "isun", "gaussian", "uniform")  # default out-distributions of bench/evaluate
    outlier_data: str | None = None  # Outlier Exposure (Hendrycks et al. 2019): name or folder of outlier images
    outlier_weight: float = 0.5  # weight of the cross-entropy to the uniform distribution on outlier batches
    data_dir: str | None = None
    threads: int | None = None  # torch.set_num_threads on CPU (None: leave torch's default)
    # Fine-tuning (defaults keep older runs' configurations valid: a config.json without these keys loads as before)
    pretrained: str | None = (
        None  # .safetensors / .pt / .pth state dict to start from (the classifier's weights dropped)
    )
    optimizer: str = "sgd"  # "sgd" (momentum, nesterov) | "adamw"
    head_lr: float | None = None  # learning rate of the head (prototypes, distance scale) (None: lr)
    label_smoothing: float = 0.0  # passed to the loss (softmax, isomax, isomaxplus)
    # input (folder data sets: isomax.data.folder / isomax.data.streaming)
    img_size: int | None = None  # folder data sets: side of the square input (None: 224); registered sets: their own
    mean: tuple[float, ...] | None = (
        None  # per-channel normalisation (None: the set's, or computed on a training sample)
    )
    std: tuple[float, ...] | None = None
    workers: int | None = None  # DataLoader decoding workers of the streaming path (None: min(8, CPUs - 1))
    data_path: str = "auto"  # auto | memory | stream (auto: stream when the decoded training set would exceed 1 GiB)
    strict: bool = False  # folder data sets: an unreadable or empty image file is an error instead of skipped

    def __post_init__(self) -> None:
        from .registry import get_loss

        loss = get_loss(self.loss)  # raises on an unknown loss name
        if self.schedule not in ("step", "onecycle", "cosine"):
            raise InputError(f"Expected `schedule` to be 'step', 'onecycle' or 'cosine', but got: {self.schedule!r}")
        if self.optimizer not in ("sgd", "adamw"):
            raise InputError(f"Expected `optimizer` to be 'sgd' or 'adamw', but got: {self.optimizer!r}")
        if self.head_lr is not None and not self.head_lr > 0:
            raise InputError(f"Expected `head_lr` to be > 0 or None, but got: {self.head_lr!r}")
        if (
            isinstance(self.label_smoothing, bool)
            or not isinstance(self.label_smoothing, (int, float))
            or not 0 <= self.label_smoothing < 1
        ):
            raise InputError(f"Expected `label_smoothing` to be in [0, 1), but got: {self.label_smoothing!r}")
        if self.label_smoothing and not loss.label_smoothing:
            raise InputError(
                f"Expected `label_smoothing` 0 with the {loss.name} loss (it has none), but got: "
                f"{self.label_smoothing!r}"
            )
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise InputError(f"Expected `warmup_epochs` to be in [0, epochs], but got: {self.warmup_epochs!r}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InputError(f"Expected `{name}` to be a positive int, but got: {getattr(self, name)!r}")
        if not 0 <= self.val_fraction < 1:
            raise InputError(f"Expected `val_fraction` to be in [0, 1), but got: {self.val_fraction!r}")
        if self.train_limit is not None and self.train_limit < 1:
            raise InputError(f"Expected `train_limit` to be positive, but got: {self.train_limit!r}")
        if self.eval_limit is not None and (
            isinstance(self.eval_limit, bool) or not isinstance(self.eval_limit, int) or self.eval_limit < 1
        ):
            raise InputError(f"Expected `eval_limit` to be a positive int or None, but got: {self.eval_limit!r}")
        if self.head_weight_decay is not None and not self.head_weight_decay >= 0:
            raise InputError(f"Expected `head_weight_decay` to be >= 0 or None, but got: {self.head_weight_decay!r}")
        for name in ("lr", "entropic_scale"):
            if not getattr(self, name) > 0:
                raise InputError(f"Expected `{name}` to be > 0, but got: {getattr(self, name)!r}")
        self._check_input()

    def _check_input(self) -> None:
        import os

        if isinstance(self.dataset, (str, os.PathLike)) and os.path.isdir(
            os.path.join(os.path.expanduser(self.dataset), "train")
        ):
            self.dataset = os.path.abspath(os.path.expanduser(self.dataset))  # a folder data set: valid from any cwd
        elif isinstance(self.dataset, str) and self.dataset.endswith(".tar"):
            from .data.shards import is_shard_dataset

            if is_shard_dataset(self.dataset):  # shards given by pattern: valid from any cwd
                self.dataset = os.path.abspath(os.path.expanduser(self.dataset))
        if self.img_size is not None and (
            isinstance(self.img_size, bool) or not isinstance(self.img_size, int) or self.img_size < 8
        ):
            raise InputError(f"Expected `img_size` to be an int >= 8, but got: {self.img_size!r}")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 0):
            raise InputError(f"Expected `workers` to be an int >= 0, but got: {self.workers!r}")
        if self.data_path not in ("auto", "memory", "stream"):
            raise InputError(f"Expected `data_path` to be 'auto', 'memory' or 'stream', but got: {self.data_path!r}")
        if (self.mean is None) != (self.std is None):
            raise InputError("Expected `mean` and `std` to be given together (one value, or one per channel)")
        if self.mean is not None:
            self.mean, self.std = tuple(float(v) for v in self.mean), tuple(float(v) for v in self.std)
            if len(self.mean) != len(self.std) or len(self.mean) not in (1, 3):
                raise InputError(
                    f"Expected `mean` and `std` to have 1 or 3 values each, but got: {self.mean!r}, {self.std!r}"
                )
            if not all(s > 0 for s in self.std):
                raise InputError(f"Expected every `std` value to be > 0, but got: {self.std!r}")

    def replace(self, **changes) -> "TrainConfig":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InputError(f"Unknown configuration field(s): {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise InputError(f"Unknown configuration field(s) in config: {sorted(unknown)}")
        d = dict(d)
        for key in ("milestones", "ood", "mean", "std"):
            if key in d and d[key] is not None:
                d[key] = tuple(d[key])
        return cls(**d)


@dataclass(frozen=True)
class Preset:
    description: str
    overrides: dict = field(default_factory=dict)

    def config(self, **changes) -> TrainConfig:
        return TrainConfig().replace(**{**self.overrides, **changes})


_PAPER = dict(
    dataset="cifar10",
    model="densenet-bc-100",
    epochs=300,
    batch_size=64,
    lr=0.1,
    momentum=0.9,
    nesterov=True,
    weight_decay=1e-4,
    schedule="step",
    milestones=(150, 200, 250),
    gamma=0.1,
    pad=4,
    flip=True,
    ood=("svhn", "tinyimagenet-resize", "lsun-resize", "isun", "gaussian", "uniform"),
    eval_batch_size=500,
)

PRESETS: dict[str, Preset] = {
    "paper": Preset(
        "The papers' protocol: CIFAR-10, DenseNet-BC-100, SGD Nesterov 0.9, lr 0.1 /10 at epochs 150/200/250 of 300, "
        "batch 64, weight decay 1e-4, crop (pad 4) + flip. Needs a GPU (days on a CPU). Override --dataset/--model "
        "for CIFAR-100, SVHN, ResNet-34, ResNet-110.",
        _PAPER,
    ),
    "fashion-mnist-quick": Preset(
        "Fashion-MNIST, cnn-28, 3 epochs one-cycle SGD, batch 128: a few minutes on a 2-core CPU (the README's demo).",
        dict(dataset="fashion-mnist", model="cnn-28", epochs=3, batch_size=128, lr=0.1, weight_decay=5e-4, pad=2),
    ),
    "fashion-mnist": Preset(
        "Fashion-MNIST benchmark, cnn-28, 6 epochs one-cycle SGD, batch 128, vs MNIST, iSUN and noise.",
        dict(dataset="fashion-mnist", model="cnn-28", epochs=6, batch_size=128, lr=0.1, weight_decay=5e-4, pad=2),
    ),
    "fashion-mnist-minute": Preset(
        "Fashion-MNIST, cnn-28 on a fixed 15,000-image subset of the training split, 2 epochs one-cycle SGD, batch "
        "64, no augmentation, 1 CPU thread; out-distributions on fixed 2,000-image subsets: the main job of "
        "scripts/benchmark.sh, about 3 CPU-minutes (the README's quick start gives the measured time).",
        dict(
            dataset="fashion-mnist",
            model="cnn-28",
            train_limit=15000,
            epochs=2,
            batch_size=64,
            lr=0.1,
            weight_decay=5e-4,
            augment=False,
            threads=1,
            eval_limit=2000,
        ),
    ),
    "cifar10-cpu": Preset(
        "CIFAR-10, cnn-32-small, 9 epochs one-cycle SGD, batch 256: about 4-5 minutes per model (training + "
        "evaluation) on a quiet 2-core CPU (~0.15 s/step, ~27 s/epoch), vs TinyImageNet-resize, iSUN and noise.",
        dict(
            dataset="cifar10",
            model="cnn-32-small",
            epochs=9,
            batch_size=256,
            lr=0.2,
            weight_decay=5e-4,
            pad=4,
            ood=("tinyimagenet-resize", "isun", "gaussian", "uniform"),
        ),
    ),
    "cifar10-cpu-15min": Preset(
        "CIFAR-10, cnn-32-half, 13 epochs one-cycle SGD, batch 256: about 15 minutes per model on a quiet "
        "2-core CPU (~0.35-0.4 s/step), vs TinyImageNet-resize, iSUN and noise.",
        dict(
            dataset="cifar10",
            model="cnn-32-half",
            epochs=13,
            batch_size=256,
            lr=0.2,
            weight_decay=5e-4,
            pad=4,
            ood=("tinyimagenet-resize", "isun", "gaussian", "uniform"),
        ),
    ),
    "cifar10-fast": Preset(
        "CIFAR-10, cnn-32, airbench-style short schedule for a GPU: 20 epochs one-cycle SGD Nesterov, lr 0.4, "
        "batch 512, bfloat16 autocast.",
        dict(
            dataset="cifar10",
            model="cnn-32",
            epochs=20,
            batch_size=512,
            lr=0.4,
            weight_decay=5e-4,
            pad=4,
            eval_batch_size=2000,
            ood=("tinyimagenet-resize", "isun", "gaussian", "uniform"),
        ),
    ),
}


def list_presets() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise InputError(f"Unknown preset {name!r}; available presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def presets_help() -> str:
    """One line per preset, for ``--help`` texts."""
    return "\n".join(f"  {name:<22} {p.description}" for name, p in PRESETS.items())
