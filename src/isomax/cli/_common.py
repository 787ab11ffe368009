"""Flags and checks shared by several commands (one line per error, naming the flag; before anything is loaded
or written). Imports nothing heavy: ``isomax --help`` builds every parser."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import InputError

SEED_MAX = 2**32 - 1  # seeds are also numpy seeds

# Flags that override fields of a preset's TrainConfig: flag -> (field, type, help)
_CONFIG_FLAGS = {
    "--dataset": (
        "dataset",
        str,
        "in-distribution dataset (fashion-mnist, cifar10, cifar100, svhn), or PATH: a folder "
        "with train/<class>/ (optional val/<class>/, test/<class>/) images of any size",
    ),
    "--model": ("model", str, "model name (see isomax.models.list_models()), or timm:NAME / torchvision:NAME"),
    "--epochs": ("epochs", int, "number of epochs"),
    "--batch-size": ("batch_size", int, "global batch size"),
    "--lr": ("lr", float, "peak learning rate"),
    "--weight-decay": ("weight_decay", float, "SGD weight decay"),
    "--head-weight-decay": (
        "head_weight_decay",
        float,
        "weight decay of the head's prototypes and distance scale (default: --weight-decay)",
    ),
    "--entropic-scale": ("entropic_scale", float, "E_s of the IsoMax losses (default 10, as in the papers)"),
    "--train-limit": ("train_limit", int, "train on only this many images (quick checks)"),
    "--device": ("device", str, "auto, cpu, cuda or cuda:N (default auto)"),
    "--threads": ("threads", int, "CPU threads for torch (>= 1)"),
    "--val-fraction": (
        "val_fraction",
        float,
        "fraction of the training split held out for validation, in [0, 1) "
        "(default 0.1; 0 trains on every image: no validation metrics, "
        "and ODIN / Mahalanobis, which tune on it, refuse)",
    ),
    "--data-dir": ("data_dir", str, "where the datasets are (also $ISOMAX_DATA; see isomax.data)"),
    # fine-tuning (isomax.models.library, isomax.models.pretrained)
    "--pretrained": (
        "pretrained",
        str,
        "start from this .safetensors / .pt / .pth state dict (the classifier's "
        "weights dropped, everything else must match)",
    ),
    "--optimizer": ("optimizer", str, "sgd (momentum 0.9, Nesterov; default) or adamw"),
    "--lr-schedule": ("schedule", str, "onecycle (default), cosine (linear warm-up, then cosine to 0) or step"),
    "--warmup-epochs": ("warmup_epochs", float, "warm-up of the onecycle and cosine schedules, in epochs"),
    "--head-lr": ("head_lr", float, "learning rate of the new head and its prototypes (default: --lr)"),
    "--label-smoothing": ("label_smoothing", float, "label smoothing of the loss, in [0, 1) (default 0)"),
    "--img-size": (
        "img_size",
        int,
        "folder data sets: input side in pixels (default 224); training random-resized-crop "
        "+ flip, evaluation resize + center crop",
    ),
    "--eval-batch-size": ("eval_batch_size", int, "batch size of validation and evaluation"),
    "--workers": ("workers", int, "decoding workers of the streaming path (default: min(8, CPUs - 1))"),
    "--data-path": (
        "data_path",
        str,
        "auto, memory or stream (default auto: stream when the decoded training set "
        "would exceed 1 GiB; the log says which)",
    ),
}


def add_config_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration overrides (default: the preset's value)")
    for flag, (field, typ, help_) in _CONFIG_FLAGS.items():
        g.add_argument(flag, dest=f"cfg_{field}", type=typ, default=None, metavar=field.upper(), help=help_)
    g.add_argument(
        "--no-amp",
        dest="cfg_amp",
        action="store_const",
        const=False,
        default=None,
        help="disable bfloat16 autocast on CUDA",
    )
    g.add_argument(
        "--mean",
        dest="cfg_mean",
        type=float,
        nargs="+",
        default=None,
        metavar="M",
        help="per-channel normalisation mean in [0, 1] (default: the set's, or computed on a training sample)",
    )
    g.add_argument(
        "--std",
        dest="cfg_std",
        type=float,
        nargs="+",
        default=None,
        metavar="S",
        help="per-channel normalisation std (with --mean)",
    )
    g.add_argument(
        "--strict",
        dest="cfg_strict",
        action="store_const",
        const=True,
        default=None,
        help="folder data sets: fail on an empty or unreadable image file instead of skipping it",
    )


def overrides(args: argparse.Namespace) -> dict:
    """The configuration fields set by flags (``cfg_*`` destinations that are not None)."""
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}


def folder_eval_batch(config, args: argparse.Namespace):
    """Folder data sets (--dataset PATH) evaluate in batches of --batch-size unless --eval-batch-size says
    otherwise: the presets' 1,000 was sized for 28-32 px images (1,000 x 3 x 224 x 224 activations do
    not fit in memory)."""
    from ..inputs import _is_folder

    if getattr(args, "cfg_eval_batch_size", None) is None and _is_folder(config):
        return config.replace(eval_batch_size=config.batch_size)
    return config


# ---- post-hoc detectors (evaluate, bench) ------------------------------------------------------
def detector_names() -> tuple[str, ...]:
    from ..detectors import DETECTORS  # the registry: every post-hoc detector, including pytorch-ood's

    return tuple(DETECTORS)


def add_detector_flags(p: argparse.ArgumentParser, methods: tuple[str, ...]) -> None:
    g = p.add_argument_group(
        "comparison methods (post-hoc detectors of isomax.detectors; Tables 4-5 of the 2021 paper)"
    )
    g.add_argument(
        "--methods",
        nargs="+",
        default=[],
        choices=methods,
        metavar="METHOD",
        help="also evaluate: " + ", ".join(methods) + " (ODIN and Mahalanobis choose their hyperparameters "
        "on the validation split vs FGSM samples; knn, vim, react, dice, ash, scale, gen come from "
        "pytorch-ood with their papers' defaults; oe trains SoftMax with Outlier Exposure)",
    )
    g.add_argument(
        "--detector-samples",
        type=int,
        default=500,
        metavar="N",
        help="validation (and as many FGSM) samples for ODIN / Mahalanobis hyperparameters (default 500)",
    )
    g.add_argument(
        "--detector-train",
        type=int,
        default=20000,
        metavar="N",
        help="training images for the detectors fitted on training data (Mahalanobis class statistics, "
        "KNN, ViM, ReAct, DICE; default 20000; 0 = all)",
    )


def detector_options(args: argparse.Namespace) -> dict:
    return dict(max_samples=args.detector_samples, max_train=args.detector_train or None)


def print_tables(records, table, wrote: str) -> None:
    """The accuracy table (so a run near chance shows), then ``table(records)``, then what was written."""
    from .. import tables

    print(tables.accuracy_table(records))
    print()
    print(table(records))
    print(wrote)


# ---- the commands on one run directory (threshold, calibrate, predict, export) -----------------
def add_run_parser(subparsers, name: str, help: str, description: str) -> argparse.ArgumentParser:
    """A subcommand taking a run directory first."""
    p = subparsers.add_parser(name, help=help, description=description)
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    return p


def add_runtime_flags(p: argparse.ArgumentParser, *, data_dir: bool = True, device: bool = True) -> None:
    if data_dir:
        p.add_argument("--data-dir", default=None, help="where the run's dataset is (default: the run's, $ISOMAX_DATA)")
    if device:
        p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


# ---- argument checks -------------------------------------------------------------------------
def check_out(out: Path, flag: str = "--out") -> None:
    """``out`` is a directory we can write, or can be created as one (checked before any long work)."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{flag} {out} exists and is not a directory")
    parent = out
    while not parent.exists():  # the nearest existing ancestor decides whether we may create `out`
        if parent.is_symlink():
            raise OSError(f"{flag} {out}: {parent} is a dangling or looping symbolic link")
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(f"{flag} {out}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{flag} {out}: no permission to write in {parent}")


def check_args(args: argparse.Namespace) -> None:
    """The checks every command shares, by the flags it has."""
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed <= SEED_MAX:
        raise InputError(f"Expected --seed to be in [0, {SEED_MAX}], but got: {seed}")
    if getattr(args, "seeds", 1) < 1:
        raise InputError(f"Expected --seeds to be >= 1, but got {args.seeds}")
    if getattr(args, "seeds", 1) > SEED_MAX:
        raise InputError(f"Expected --seeds to be <= {SEED_MAX}, but got {args.seeds}")
    threads = getattr(args, "cfg_threads", None)
    if threads is not None and threads < 1:
        raise InputError(f"Expected --threads to be >= 1, but got: {threads}")
    device = getattr(args, "cfg_device", None) or getattr(args, "device", None)
    if device is not None:
        from ..devices import resolve_device

        try:
            resolve_device(device)
        except ValueError as err:
            raise InputError(f"--device {device}: {err}") from None
    for flag in ("cfg_data_dir", "data_dir"):
        data_dir = getattr(args, flag, None)
        if data_dir is not None and not Path(data_dir).expanduser().is_dir():
            raise FileNotFoundError(f"--data-dir {data_dir} is not an existing directory")
    if getattr(args, "detector_samples", 2) < 2:
        raise InputError(f"Expected --detector-samples to be >= 2, but got {args.detector_samples}")
    if getattr(args, "detector_train", 0) < 0:  # 0 is the documented "all"
        raise InputError(f"Expected --detector-train to be >= 1 (or 0 for all), but got {args.detector_train}")
    for flag in ("ood", "run_dirs"):  # the same input twice, refused before anything is loaded
        items = getattr(args, flag, None) or []
        seen = [str(Path(i).expanduser().resolve()) if Path(i).expanduser().exists() else str(i) for i in items]
        twice = sorted({str(i) for i, k in zip(items, seen) if seen.count(k) > 1})
        if twice:
            raise InputError(f"--{flag.replace('_', '-')}: {', '.join(twice)} name the same input; list it once")
    if getattr(args, "out", None) is not None:
        if args.command in ("predict", "export"):  # --out is a file: its folder must be writable
            if args.out.is_dir():
                raise IsADirectoryError(f"--out {args.out} is a directory; give the path of the file to write")
            check_out(args.out.parent)
        else:
            check_out(args.out)
