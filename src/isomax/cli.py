"""Command-line interface: ``isomax train | evaluate | bench | report | sweep`` (also ``python -m isomax``)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from .errors import InputError
from .presets import get_preset, presets_help
from .registry import BASELINE_LOSS, PAPER_LOSSES, SWEEP_LOSSES

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


def _add_config_flags(p: argparse.ArgumentParser) -> None:
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


def _detector_names() -> tuple[str, ...]:
    from .detectors import DETECTORS  # the registry: every post-hoc detector, including pytorch-ood's

    return tuple(DETECTORS)


def _add_detector_flags(p: argparse.ArgumentParser, methods: tuple[str, ...]) -> None:
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


def _detector_options(args: argparse.Namespace) -> dict:
    return dict(max_samples=args.detector_samples, max_train=args.detector_train or None)


def _overrides(args: argparse.Namespace) -> dict:
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isomax",
        description="Seamless out-of-distribution detection with the IsoMax and IsoMax+ losses.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `isomax COMMAND --help` for the options of a command. Exit codes: 0 done, 2 bad input "
        "(flags, paths, checkpoints, a run directory in use), 3 training diverged.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_train, _add_evaluate, _add_bench, _add_report, _add_sweep, _add_shard, _add_cache):
        add(sub)
    from .deploy.commands import add_calibrate_parser, add_export_parser, add_predict_parser, add_threshold_parser

    for add in (add_threshold_parser, add_calibrate_parser, add_predict_parser, add_export_parser):
        add(sub).set_defaults(func=_cmd_deploy)
    return parser


def _cmd_deploy(args: argparse.Namespace, command_line: str) -> int:
    """``threshold``, ``calibrate``, ``predict``, ``export``: implemented in :mod:`isomax.deploy.commands`."""
    return args.handler(args)


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train one model",
        description="Train one model; resumes if --out holds a run.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="presets:\n" + presets_help(),
    )
    p.add_argument(
        "--preset",
        default=None,
        help="named configuration (default: fashion-mnist-quick, or the --config "
        "file's `preset`; with a --config file without one: the defaults)",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="training options from a .toml / .json / .yaml file (flags override it; a run's config.json is one)",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration as TOML and exit")
    p.add_argument(
        "--loss",
        default=None,
        help="softmax, isomax, isomaxplus, dismax, dismax-fpr (DisMax with FPR) or logitnorm (default: isomaxplus)",
    )
    p.add_argument("--seed", type=int, default=None, help=f"random seed, 0..{SEED_MAX} (default 0)")
    p.add_argument("--out", type=Path, help="run directory to write (required unless --print-config)")
    p.add_argument("--no-resume", action="store_true", help="start over even if --out holds a checkpoint")
    p.add_argument(
        "--no-calibrate",
        action="store_true",
        help="do not fit the head temperature on the validation split at the end (default: fit it, write "
        "calibration.json, then fit the threshold on the calibrated scores)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_config_flags(p)
    p.set_defaults(func=_cmd_train)


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a trained run against out-distributions",
        description="Evaluate RUN_DIR (made by `isomax train` or `isomax bench`): test accuracy and, "
        "for every out-distribution, every applicable score and metric. Runs and "
        "out-distributions with the same folder name are told apart by their parent "
        "folders (a/seed0, b/seed0); the same input twice is refused.",
    )
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    p.add_argument(
        "--ood",
        nargs="+",
        metavar="NAME_OR_PATH",
        help="out-distributions: names (mnist, isun, tinyimagenet-resize, lsun-resize, svhn, cifar10, "
        "gaussian, uniform, ...) or paths to image folders (default: the run's preset list)",
    )
    p.add_argument("--out", required=True, type=Path, help="directory for results.json, results.md and outputs/")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    _add_detector_flags(p, _detector_names())
    p.set_defaults(func=_cmd_evaluate)


def _add_bench(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="train and evaluate losses x seeds, write tables",
        description="Train every loss x seed with one preset, evaluate them, and write results.json, "
        "results.md (the papers' table layouts) and one run directory per model.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="presets:\n" + presets_help(),
    )
    p.add_argument("--preset", required=True, help="named configuration (listed below)")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1), default 3")
    p.add_argument(
        "--losses",
        nargs="+",
        default=list(PAPER_LOSSES),
        help="losses to train (default: softmax isomax isomaxplus; also dismax, dismax-fpr, logitnorm)",
    )
    p.add_argument("--ood", nargs="+", metavar="NAME_OR_PATH", help="out-distributions (default: the preset's)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--no-progress", action="store_true")
    _add_detector_flags(p, _detector_names() + ("oe",))
    p.add_argument(
        "--methods-on",
        nargs="+",
        default=[BASELINE_LOSS],
        metavar="LOSS",
        help="losses whose runs get ODIN / Mahalanobis (default: softmax, as in the paper)",
    )
    p.add_argument(
        "--outlier-data",
        default=None,
        metavar="NAME_OR_PATH",
        help="outlier images for --methods oe (e.g. tinyimagenet-resize; keep them out of --ood)",
    )
    _add_config_flags(p)
    p.set_defaults(func=_cmd_bench)


def _add_report(sub) -> None:
    p = sub.add_parser(
        "report",
        help="write a Markdown report with figures and LaTeX/CSV tables",
        description="Write OUT/report.md (figures embedded by relative path), OUT/figures/*.png and "
        "OUT/tables/*.{md,tex,csv} from bench or evaluate output directories (results.json, "
        "outputs/*.npz), run directories or .npz logit files. Tables use every seed; "
        "histograms and ROC curves the first seed. Missing inputs are skipped with a note.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="BENCH_OR_RUN_DIR")
    p.add_argument("--out", required=True, type=Path, help="report directory to write")
    p.add_argument("--seed", type=int, default=None, help="seed of the logits used for figures (default: the first)")
    p.add_argument("--title", default="isomax report")
    p.add_argument("--no-progress", action="store_true", help="no progress messages")
    p.set_defaults(func=_cmd_report)


def _add_sweep(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="choose the entropic scale E_s on a validation out-distribution",
        description="Entropic-scale sweep (Fig. 2 of the 2019 paper): train IsoMax (and IsoMax+ with "
        "--losses) for each scale and measure validation accuracy and OOD detection on the "
        "validation split against --val-ood. Writes sweep.json, sweep.md, sweep.png and "
        "runs/<loss>-es<scale>-seed<s>/ (reruns resume). Keep the validation "
        "out-distribution out of every test out-distribution list.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="presets:\n" + presets_help(),
    )
    p.add_argument("--preset", default="fashion-mnist-quick", help="named configuration (default: fashion-mnist-quick)")
    p.add_argument(
        "--scales",
        nargs="+",
        type=float,
        default=[1.0, 3.0, 10.0, 30.0, 100.0],
        help="entropic scales (default: 1 3 10 30 100)",
    )
    p.add_argument(
        "--losses",
        nargs="+",
        default=list(SWEEP_LOSSES),
        help="isomax, isomaxplus, dismax and/or dismax-fpr (default: isomax)",
    )
    p.add_argument("--seeds", type=int, default=1, help="number of seeds (0..N-1), default 1")
    p.add_argument(
        "--val-ood",
        required=True,
        metavar="NAME_OR_PATH",
        help="validation out-distribution used to choose E_s (never reuse it as a test out-distribution)",
    )
    p.add_argument(
        "--test-ood",
        nargs="+",
        default=[],
        metavar="NAME_OR_PATH",
        help="optional test out-distributions, evaluated on the test split for information only",
    )
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--no-progress", action="store_true")
    _add_config_flags(p)
    p.set_defaults(func=_cmd_sweep)


def _add_shard(sub) -> None:
    p = sub.add_parser(
        "shard",
        help="write an image folder as WebDataset tar shards",
        description="Write FOLDER (train/<class>/, optional val/ and test/) as OUT/{train,val,test}-NNNNNN.tar "
        "+ OUT/dataset.json, for `isomax train --dataset OUT` (or 'OUT/train-{000000..000009}.tar'). "
        "Reading them needs the optional extra isomax[shards] (webdataset).",
    )
    p.add_argument("folder", type=Path, metavar="FOLDER")
    p.add_argument("out", type=Path, metavar="OUT")
    p.add_argument("--shard-size", type=int, default=1000, help="images per shard (default 1000)")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="without FOLDER/val/: stratified fraction of train/ written as the val shards (default 0.1)",
    )
    p.add_argument("--strict", action="store_true", help="fail on an empty image file instead of skipping it")
    p.set_defaults(func=_cmd_shard)


def _add_cache(sub) -> None:
    p = sub.add_parser(
        "cache",
        help="show or clear the decoded-image cache",
        description="The in-memory path keeps decoded image folders and archives in $ISOMAX_CACHE/decoded "
        "(default ~/.cache/isomax/decoded), at most $ISOMAX_CACHE_MAX_GB GiB (default 4; 0: off), "
        "least recently used entries evicted first. The streaming path writes no cache.",
    )
    p.add_argument("action", choices=("info", "clear"))
    p.set_defaults(func=_cmd_cache)


def _cmd_shard(args: argparse.Namespace, command_line: str) -> int:
    from .data.shards import write_shards

    if not args.folder.is_dir():
        raise FileNotFoundError(f"FOLDER {args.folder} is not an existing directory")
    _check_out(args.out, "OUT")
    out = write_shards(
        args.folder, args.out, shard_size=args.shard_size, val_fraction=args.val_fraction, strict=args.strict
    )
    print(f"wrote {out}; train with: isomax train --dataset {out} ...")
    return 0


def _cmd_cache(args: argparse.Namespace, command_line: str) -> int:
    from .data.cache import cache_clear, cache_entries, cache_max_bytes
    from .data.paths import cache_dir

    where = cache_dir() / "decoded"
    if args.action == "clear":
        n, size = cache_clear()
        print(f"removed {n} entries ({size / 2**30:.2f} GiB) from {where}")
        return 0
    entries = cache_entries()
    for e in sorted(entries, key=lambda e: -e["mtime"]):
        print(f"{e['bytes'] / 2**20:10.1f} MiB  {e['key']}  {e['name']}")
    print(
        f"{len(entries)} entries, {sum(e['bytes'] for e in entries) / 2**30:.2f} GiB of "
        f"{cache_max_bytes() / 2**30:.2f} GiB in {where}"
    )
    return 0


# ---- argument checks (one line, naming the flag; before anything is loaded or written) ----------
SEED_MAX = 2**32 - 1  # seeds are also numpy seeds


def _check_out(out: Path, flag: str = "--out") -> None:
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


def _check_args(args: argparse.Namespace) -> None:
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
        from .devices import resolve_device

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
            _check_out(args.out.parent)
        else:
            _check_out(args.out)


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done; 2 bad input (flags, paths, OS errors, checkpoints, a locked run directory);
    3 training diverged; 130 interrupted. Unexpected exceptions keep their traceback (a bug is a bug)."""
    from .errors import IsoMaxError
    from .training import DivergenceError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser().parse_args(argv)
    command_line = "isomax " + " ".join(shlex.quote(a) for a in argv)
    try:
        _check_args(args)
        return args.func(args, command_line)
    except DivergenceError as err:  # before IsoMaxError: its own exit code
        print(f"isomax {args.command}: error: {err}", file=sys.stderr)
        return 3
    # IsoMaxError: every error the project raises on purpose; OSError: files. Anything else is a bug and
    # keeps its traceback.
    except (IsoMaxError, OSError) as err:
        print(f"isomax {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; rerun the same command to resume from the last checkpoint", file=sys.stderr)
        return 130


# ---- subcommands (dispatched by set_defaults(func=...)) -------------------------------------
def _cmd_train(args: argparse.Namespace, command_line: str) -> int:
    from . import distributed
    from .training import train

    config = _folder_eval_batch(_train_config(args), args)
    if args.print_config:
        from .config_file import to_toml

        print(to_toml(config), end="")
        return 0
    if args.out is None:
        raise InputError("isomax train needs --out (the run directory to write)")
    distributed.init_from_env()  # under `torchrun ... -m isomax train`: one process per GPU (or CPU slot)
    result = train(
        config, args.out, resume=not args.no_resume, progress=not args.no_progress, calibrate=not args.no_calibrate
    )
    if distributed.is_main_process() and result.history:
        last = result.history[-1]
        acc = (
            "n/a (val_fraction=0)"
            if last["val_accuracy"] != last["val_accuracy"]
            else f"{100 * last['val_accuracy']:.2f}%"
        )
        print(f"done: {args.out} (val accuracy {acc})")
    distributed.shutdown()  # not on errors: torchrun ends the other processes
    return 0


def _train_config(args: argparse.Namespace):
    """Flags over the --config file over the preset (``--preset``, else the file's, else fashion-mnist-quick
    without a file and TrainConfig's defaults with one)."""
    from .config_file import read_config_file
    from .presets import TrainConfig

    file = read_config_file(args.config) if args.config is not None else {}
    preset = args.preset or file.pop("preset", None)
    file.pop("preset", None)
    flags = {k: v for k, v in (("loss", args.loss), ("seed", args.seed)) if v is not None}
    changes = {**file, **flags, **_overrides(args)}
    if preset is None and args.config is not None:
        config = TrainConfig().replace(**changes)
    else:
        config = get_preset(preset or "fashion-mnist-quick").config(**changes)
    return _pretrained_img_size(config)


def _pretrained_img_size(config):
    """A folder data set trained from pretrained timm weights without --img-size: the input size of the
    model's pretrained configuration (recorded in config.json, so every later command uses it)."""
    from .models.library import pretrained_img_size
    from .inputs import _is_folder

    if config.img_size is None and config.pretrained and _is_folder(config):
        size = pretrained_img_size(config.model)
        if size is not None:
            return config.replace(img_size=size)
    return config


def _folder_eval_batch(config, args: argparse.Namespace):
    """Folder data sets (--dataset PATH) evaluate in batches of --batch-size unless --eval-batch-size says
    otherwise: the presets' 1,000 was sized for 28-32 px images (1,000 x 3 x 224 x 224 activations do
    not fit in memory)."""
    from .inputs import _is_folder

    if getattr(args, "cfg_eval_batch_size", None) is None and _is_folder(config):
        return config.replace(eval_batch_size=config.batch_size)
    return config


def _run_keys(run_dirs: list[Path]) -> list[str]:
    """One unique key per run directory (``a/seed0``, ``b/seed0``); refuses the same run twice."""
    from .runs import CHECKPOINT, CONFIG, read_config, unique_keys

    for run_dir in run_dirs:  # every run is checked before the first one is evaluated
        if not (run_dir / CONFIG).is_file() or not (run_dir / CHECKPOINT).is_file():
            raise FileNotFoundError(
                f"{run_dir} is not a run directory: {CONFIG} or {CHECKPOINT} is missing (made by `isomax train`)"
            )
    keys, notes = unique_keys(run_dirs, [d.resolve().name for d in run_dirs])
    same: dict[tuple, list[str]] = {}
    for run_dir, key in zip(run_dirs, keys):
        c = read_config(run_dir)
        same.setdefault((c.dataset, c.model, c.loss, c.seed), []).append(key)
    notes += [
        f"{', '.join(k)} share dataset, model, loss and seed {s[3]}: the tables' mean ± std counts each of "
        "them (results.json keeps them apart under `run`)"
        for s, k in same.items()
        if len(k) > 1
    ]
    for note in notes:
        print(f"note: runs: {note}")
    return keys


def _cmd_evaluate(args: argparse.Namespace, command_line: str) -> int:
    from . import tables
    from .bench import write_markdown
    from .deploy._files import OutputLock
    from .evaluation import clear_evaluation_out, evaluate_run, save_results

    keys = _run_keys(args.run_dirs)
    records = []
    with OutputLock(args.out / "results.json", "evaluate"):  # one evaluation at a time per --out
        removed = clear_evaluation_out(args.out)  # --out is evaluate's own: no stale outputs/*.npz
        if removed:
            print(f"note: removed {len(removed)} file(s) of an earlier evaluation in {args.out}")
        for run_dir, key in zip(args.run_dirs, keys):
            new = evaluate_run(
                run_dir,
                args.ood,
                data_dir=args.data_dir,
                device=args.device,
                progress=not args.no_progress,
                arrays_path=args.out / "outputs" / f"{key.replace('/', '__')}.npz",
                methods=args.methods,
                detector_options=_detector_options(args),
            )
            records += [r.replace(run=key) for r in new]
        path = save_results(records, args.out)
        write_markdown(records, args.out / "results.md", "isomax evaluate", command_line)
    _print_tables(records, tables.all_scores_table, f"wrote {path}")
    return 0


def _cmd_bench(args: argparse.Namespace, command_line: str) -> int:
    from . import tables
    from .bench import run_bench

    overrides = _overrides(args)
    base = get_preset(args.preset).config(**overrides)
    if _folder_eval_batch(base, args) is not base:  # a folder data set: evaluate in --batch-size batches
        overrides["eval_batch_size"] = base.batch_size
    records = run_bench(
        args.preset,
        range(args.seeds),
        args.out,
        losses=args.losses,
        ood=args.ood,
        overrides=overrides,
        progress=not args.no_progress,
        command=command_line,
        methods=args.methods,
        methods_on=args.methods_on,
        outlier_data=args.outlier_data,
        detector_options=_detector_options(args),
    )
    _print_tables(records, tables.seamless_table, f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    return 0


def _print_tables(records, table, wrote: str) -> None:
    """The accuracy table (so a run near chance shows), then ``table(records)``, then what was written."""
    from . import tables

    print(tables.accuracy_table(records))
    print()
    print(table(records))
    print(wrote)


def _cmd_report(args: argparse.Namespace, command_line: str) -> int:
    from .report import write_report

    path = write_report(
        args.inputs,
        args.out,
        seed=args.seed,
        title=args.title,
        command=command_line,
        log=print if not args.no_progress else (lambda _: None),
    )
    print(f"wrote {path}")
    return 0


def _cmd_sweep(args: argparse.Namespace, command_line: str) -> int:
    from .sweep import run_sweep

    summary = run_sweep(
        args.preset,
        args.val_ood,
        args.out,
        scales=args.scales,
        losses=args.losses,
        seeds=range(args.seeds),
        test_ood=args.test_ood,
        overrides=_overrides(args),
        progress=not args.no_progress,
        command=command_line,
    )
    print(f"chosen: {summary['chosen']} (on {args.val_ood}); wrote {args.out / 'sweep.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
