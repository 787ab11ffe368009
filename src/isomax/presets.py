"""Training configurations and the named presets of ``isomax train/bench --preset``.

A :class:`TrainConfig` holds every hyperparameter of a run (what defines the trained model); a
:class:`Runtime` holds where and how fast it goes (device, CPU threads, data directory, evaluation
batch size, decoding workers), which a run may change between starts. A preset is a named set of
overrides of both. The same preset is used unchanged for the SoftMax, IsoMax and IsoMax+ losses: only
the head and the loss differ (the drop-in promise).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import InputError
from .registry import DEFAULT_LOSS

__all__ = ["TrainConfig", "Runtime", "RUNTIME_FIELDS", "split_settings", "PRESETS", "get_preset", "list_presets"]


def _field(default: Any, help: str, flag: str | None = None, **cli: Any) -> Any:
    """A TrainConfig or Runtime field with its documentation in ``metadata``: ``help``; ``flag``, the
    command-line flag of ``isomax train / bench / sweep`` that overrides it (with ``cli``: further
    ``add_argument`` options). ``cli`` may set ``flag_help``, the flag's help where it differs from the
    field's (``--no-amp``)."""
    return field(default=default, metadata=dict(help=help, flag=flag, cli=cli))


@dataclass
class TrainConfig:
    """Everything the trained model depends on (saved as ``config.json`` in the run directory).

    Each field's ``metadata`` holds its ``help`` and, where it has one, its command-line ``flag`` (the CLI
    builds its flags from them). Where and how fast a run goes (device, threads, data directory, evaluation
    batch size, decoding workers) is a :class:`Runtime`, passed next to it: a run resumes with another one.
    ``TrainConfig(device=...)`` is refused with an error that says so.
    """

    dataset: str = _field(
        "fashion-mnist",
        "in-distribution dataset (fashion-mnist, cifar10, cifar100, svhn), or PATH: a folder "
        "with train/<class>/ (optional val/<class>/, test/<class>/) images of any size",
        "--dataset",
    )
    model: str = _field(
        "cnn-28", "model name (see isomax.models.list_models()), or timm:NAME / torchvision:NAME", "--model"
    )
    loss: str = _field(
        DEFAULT_LOSS, "a loss of isomax.registry: softmax, isomax, isomaxplus (default), dismax, dismax-fpr, logitnorm"
    )
    entropic_scale: float = _field(10.0, "E_s of the IsoMax losses (default 10, as in the papers)", "--entropic-scale")
    epochs: int = _field(5, "number of epochs", "--epochs")
    batch_size: int = _field(128, "global batch size", "--batch-size")
    lr: float = _field(0.1, "peak learning rate", "--lr")
    momentum: float = _field(0.9, "SGD momentum")
    nesterov: bool = _field(True, "SGD with Nesterov momentum")
    weight_decay: float = _field(5e-4, "SGD weight decay", "--weight-decay")
    head_weight_decay: float | None = _field(
        None,
        "weight decay of the head's prototypes and distance scale (default: --weight-decay)",
        "--head-weight-decay",
    )
    schedule: str = _field(
        "onecycle",
        "onecycle (default), cosine (linear warm-up, then cosine to 0) or step",
        "--lr-schedule",
    )
    milestones: tuple[int, ...] = _field((), "epochs of the step schedule")
    gamma: float = _field(0.1, "factor of the step schedule at each milestone")
    warmup_epochs: float = _field(0.5, "warm-up of the onecycle and cosine schedules, in epochs", "--warmup-epochs")
    augment: bool = _field(True, "random crop with zero padding + horizontal flip")
    pad: int = _field(2, "pixels of zero padding of the random crop")
    flip: bool = _field(True, "random horizontal flip")
    val_fraction: float = _field(  # stratified, fixed split seed 0
        0.1,
        "fraction of the training split held out for validation, in [0, 1) "
        "(default 0.1; 0 trains on every image: no validation metrics, "
        "and ODIN / Mahalanobis, which tune on it, refuse)",
        "--val-fraction",
    )
    train_limit: int | None = _field(None, "train on only this many images (quick checks)", "--train-limit")
    seed: int = _field(0, "random seed")
    amp: bool = _field(
        True,
        "bfloat16 autocast on CUDA (distances and loss stay float32); ignored on CPU",
        "--no-amp",
        flag_help="disable bfloat16 autocast on CUDA",
        action="store_const",
        const=False,
    )
    eval_limit: int | None = _field(
        None, "bench: evaluate each out-distribution on a fixed seeded subset of this many images (None: all)"
    )
    ood: tuple[str, ...] = _field(
        ("mnist", "isun", "gaussian", "uniform"), "default out-distributions of bench/evaluate"
    )
    outlier_data: str | None = _field(
        None, "Outlier Exposure (Hendrycks et al. 2019): name or folder of outlier images"
    )
    outlier_weight: float = _field(0.5, "weight of the cross-entropy to the uniform distribution on outlier batches")
    # Fine-tuning (defaults keep older runs' configurations valid: a config.json without these keys loads as before)
    pretrained: str | None = _field(
        None,
        "start from this .safetensors / .pt / .pth state dict (the classifier's "
        "weights dropped, everything else must match)",
        "--pretrained",
    )
    optimizer: str = _field("sgd", "sgd (momentum 0.9, Nesterov; default) or adamw", "--optimizer")
    head_lr: float | None = _field(
        None, "learning rate of the new head and its prototypes (default: --lr)", "--head-lr"
    )
    label_smoothing: float = _field(0.0, "label smoothing of the loss, in [0, 1) (default 0)", "--label-smoothing")
    # input (folder data sets: isomax.data.folder / isomax.data.streaming)
    img_size: int | None = _field(
        None,
        "folder data sets: input side in pixels (default 224); training random-resized-crop "
        "+ flip, evaluation resize + center crop",
        "--img-size",
    )
    mean: tuple[float, ...] | None = _field(
        None,
        "per-channel normalisation mean in [0, 1] (default: the set's, or computed on a training sample)",
        "--mean",
        type=float,
        nargs="+",
        metavar="M",
    )
    std: tuple[float, ...] | None = _field(
        None, "per-channel normalisation std (with --mean)", "--std", type=float, nargs="+", metavar="S"
    )
    data_path: str = _field(
        "auto",
        "auto, memory or stream (default auto: stream when the decoded training set "
        "would exceed 1 GiB; the log says which)",
        "--data-path",
    )
    strict: bool = _field(
        False,
        "folder data sets: fail on an empty or unreadable image file instead of skipping it",
        "--strict",
        action="store_const",
        const=True,
    )

    def __new__(cls, *args: Any, **kwargs: Any) -> "TrainConfig":
        _refuse_runtime(kwargs)
        return super().__new__(cls)

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
        for name in ("epochs", "batch_size"):
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
        if self.data_path not in ("auto", "memory", "stream"):
            raise InputError(f"Expected `data_path` to be 'auto', 'memory' or 'stream', but got: {self.data_path!r}")
        if (self.mean is None) != (self.std is None):
            raise InputError("Expected `mean` and `std` to be given together (one value, or one per channel)")
        if self.mean is not None and self.std is not None:
            self.mean, self.std = tuple(float(v) for v in self.mean), tuple(float(v) for v in self.std)
            if len(self.mean) != len(self.std) or len(self.mean) not in (1, 3):
                raise InputError(
                    f"Expected `mean` and `std` to have 1 or 3 values each, but got: {self.mean!r}, {self.std!r}"
                )
            if not all(s > 0 for s in self.std):
                raise InputError(f"Expected every `std` value to be > 0, but got: {self.std!r}")

    def replace(self, **changes: Any) -> "TrainConfig":
        _refuse_runtime(changes)
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InputError(f"Unknown configuration field(s): {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """The configuration of ``d`` (a ``config.json`` or ``--config`` table). Its runtime keys
        (:data:`RUNTIME_FIELDS`: every ``config.json`` holds them) are skipped: :meth:`Runtime.from_dict`
        reads them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names - set(RUNTIME_FIELDS)
        if unknown:
            raise InputError(f"Unknown configuration field(s) in config: {sorted(unknown)}")
        d = {k: v for k, v in d.items() if k in names}
        for key in ("milestones", "ood", "mean", "std"):
            if key in d and d[key] is not None:
                d[key] = tuple(d[key])
        return cls(**d)


@dataclass(frozen=True)
class Runtime:
    """Where and how fast a run goes, not what it trains: the device, CPU threads, data directory, evaluation
    batch size and decoding workers. A run resumes with another Runtime (the streaming path gives the same
    batches whatever the number of workers; another device or thread count sums floats in another order, so
    a run resumed with them is the same run, not bit for bit the same weights).

    ``isomax train`` records the Runtime of its last start in ``config.json``, next to the
    :class:`TrainConfig` fields (so the file stays a valid ``--config`` file and later commands find the
    data where training did); :meth:`from_dict` reads it back.
    """

    device: str = _field("auto", "auto, cpu, cuda or cuda:N (default auto)", "--device")
    threads: int | None = _field(None, "CPU threads for torch (>= 1)", "--threads")
    data_dir: str | None = _field(None, "where the datasets are (also $ISOMAX_DATA; see isomax.data)", "--data-dir")
    eval_batch_size: int = _field(1000, "batch size of validation and evaluation", "--eval-batch-size")
    workers: int | None = _field(
        None, "decoding workers of the streaming path (default: min(8, CPUs - 1))", "--workers"
    )

    def __post_init__(self) -> None:
        if not isinstance(self.device, str):
            raise InputError(f"Expected `device` to be a string (auto, cpu, cuda, cuda:N), but got: {self.device!r}")
        for name, low in (("threads", 1), ("eval_batch_size", 1), ("workers", 0)):
            value = getattr(self, name)
            if value is None and name != "eval_batch_size":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"Expected `{name}` to be an int >= {low}, but got: {value!r}")
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            object.__setattr__(self, "data_dir", str(self.data_dir))  # a Path: kept as the str config.json holds

    def replace(self, **changes: Any) -> "Runtime":
        unknown = set(changes) - set(RUNTIME_FIELDS)
        if unknown:
            raise InputError(f"Unknown runtime setting(s): {sorted(unknown)}; known: {', '.join(RUNTIME_FIELDS)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Runtime":
        """The runtime keys of ``d`` (a ``config.json`` or ``--config`` table); every other key is skipped."""
        return cls(**{k: v for k, v in d.items() if k in RUNTIME_FIELDS})


#: the :class:`Runtime` settings: where and how fast a run goes, not what it trains
RUNTIME_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Runtime))


def _refuse_runtime(settings: Mapping[str, Any]) -> None:
    runtime = sorted(set(settings) & set(RUNTIME_FIELDS))
    if runtime:
        given = ", ".join(f"{k}={settings[k]!r}" for k in runtime)
        raise InputError(
            f"{', '.join(runtime)}: runtime setting(s), not part of a TrainConfig; pass Runtime({given}) "
            "(isomax.presets.Runtime) next to the configuration"
        )


def split_settings(settings: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``settings`` (flags, a ``--config`` file, a preset's overrides) as (TrainConfig fields, Runtime fields)."""
    config = {k: v for k, v in settings.items() if k not in RUNTIME_FIELDS}
    return config, {k: v for k, v in settings.items() if k in RUNTIME_FIELDS}


@dataclass(frozen=True)
class Preset:
    """A named set of overrides of :class:`TrainConfig` and :class:`Runtime` fields."""

    description: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def config(self, **changes: Any) -> TrainConfig:
        """The preset's TrainConfig with ``changes`` (its runtime overrides go to :meth:`runtime`)."""
        return TrainConfig().replace(**{**split_settings(self.overrides)[0], **changes})

    def runtime(self, **changes: Any) -> Runtime:
        """The preset's Runtime (``fashion-mnist-minute``: 1 thread; ``paper``: evaluation batches of 500)
        with ``changes``."""
        return Runtime().replace(**{**split_settings(self.overrides)[1], **changes})


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
