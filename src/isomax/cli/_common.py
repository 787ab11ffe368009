"""Flags and checks shared by several commands (one line per error, naming the flag; before anything is loaded
or written). Imports nothing heavy: ``isomax --help`` builds every parser."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import InputError

SEED_MAX = 2**32 - 1  # seeds are also numpy seeds

# The flags that override a preset's TrainConfig and Runtime fields come from the fields' metadata
# (isomax.presets._field):
# a field with a `flag` gets it, with the field's help; `cfg_<field>` holds the value (None: not given).
# Registered sets and the fields of most interest first, then the rest in declaration order.
_FLAG_ORDER = (
    "dataset", "model", "epochs", "batch_size", "lr", "weight_decay", "head_weight_decay", "entropic_scale",
    "train_limit", "device", "threads", "val_fraction", "data_dir", "pretrained", "optimizer", "schedule",
    "warmup_epochs", "head_lr", "label_smoothing", "img_size", "eval_batch_size", "workers", "data_path",
)  # fmt: skip


def _flag_type(annotation: str):
    """The argparse type of a field annotation such as ``float | None``: its first of int, float, str."""
    parts = [p.strip() for p in annotation.split("|")]
    return next({"int": int, "float": float, "str": str}[p] for p in parts if p in ("int", "float", "str"))


def config_flags(kind: str = "all") -> list[tuple[str, str, dict]]:
    """(flag, field, ``add_argument`` keywords) of every TrainConfig and Runtime field that has a flag, in
    ``--help`` order; ``kind``: ``"config"`` or ``"runtime"`` for one of the two."""
    import dataclasses

    from ..presets import Runtime, TrainConfig

    classes = {"all": (TrainConfig, Runtime), "config": (TrainConfig,), "runtime": (Runtime,)}[kind]
    fields = [f for c in classes for f in dataclasses.fields(c) if f.metadata.get("flag")]
    fields.sort(key=lambda f: _FLAG_ORDER.index(f.name) if f.name in _FLAG_ORDER else len(_FLAG_ORDER))
    out = []
    for f in fields:
        cli = dict(f.metadata["cli"])
        kwargs = dict(default=None, help=cli.pop("flag_help", f.metadata["help"]))
        if "action" not in cli:  # a value: typed by the annotation (unless `cli` says), named after the field
            kwargs.update(metavar=f.name.upper(), type=cli.pop("type", None) or _flag_type(str(f.type)))
        out.append((f.metadata["flag"], f.name, {**kwargs, **cli}))
    return out


def add_config_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration overrides: what defines the run (default: the preset's value)")
    for flag, name, kwargs in config_flags("config"):
        g.add_argument(flag, dest=f"cfg_{name}", **kwargs)
    g = p.add_argument_group(
        "runtime: where and how fast it runs, not what it trains (a run resumes with other values; bit for bit "
        "the same weights on the same device and thread count)"
    )
    for flag, name, kwargs in config_flags("runtime"):
        g.add_argument(flag, dest=f"cfg_{name}", **kwargs)


def overrides(args: argparse.Namespace) -> dict:
    """The TrainConfig and Runtime fields set by flags (``cfg_*`` destinations that are not None), flat
    (:func:`isomax.presets.split_settings` separates them)."""
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}


def folder_eval_batch(config, runtime, given: bool = False):
    """Folder data sets (--dataset PATH) evaluate in batches of --batch-size unless --eval-batch-size
    (``given``) says otherwise: the presets' 1,000 was sized for 28-32 px images (1,000 x 3 x 224 x 224
    activations do not fit in memory). The Runtime to use."""
    from ..inputs import _is_folder

    if not given and _is_folder(config):
        return runtime.replace(eval_batch_size=config.batch_size)
    return runtime


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
