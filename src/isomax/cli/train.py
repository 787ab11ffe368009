"""``isomax train``: train one model, then fit its calibration and threshold (:mod:`isomax.deploy`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ..presets import get_preset, presets_help
from ._common import SEED_MAX, add_config_flags, folder_eval_batch, overrides

HELP = "train one model"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help=HELP,
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
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved configuration, then the runtime settings, as one TOML file and exit",
    )
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
    add_config_flags(p)
    return p


def run(args: argparse.Namespace, command_line: str) -> int:
    from .. import distributed
    from ..deploy import fit_deployment
    from ..training import train

    config, runtime = train_settings(args)
    if args.print_config:
        from ..config_file import to_toml

        print(to_toml(config, runtime), end="")
        return 0
    if args.out is None:
        raise InputError("isomax train needs --out (the run directory to write)")
    distributed.init_from_env()  # under `torchrun ... -m isomax train`: one process per GPU (or CPU slot)
    result = train(config, args.out, runtime=runtime, resume=not args.no_resume, progress=not args.no_progress)
    if distributed.is_main_process():
        fit_deployment(result, calibrate=not args.no_calibrate)
    if distributed.is_main_process() and result.history:
        last = result.history[-1]
        acc = "n/a (val_fraction=0)" if last.val_accuracy != last.val_accuracy else f"{100 * last.val_accuracy:.2f}%"
        print(f"done: {args.out} (val accuracy {acc})")
    distributed.shutdown()  # not on errors: torchrun ends the other processes
    return 0


def train_settings(args: argparse.Namespace):
    """(TrainConfig, Runtime): flags over the --config file over the preset (``--preset``, else the file's, else
    fashion-mnist-quick without a file and the defaults with one). The file and the flags hold the fields of
    both, flat; :func:`isomax.presets.split_settings` separates them."""
    from ..config_file import read_config_file
    from ..presets import Runtime, TrainConfig, split_settings

    file = read_config_file(args.config) if args.config is not None else {}
    preset = args.preset or file.pop("preset", None)
    file.pop("preset", None)
    flags = {k: v for k, v in (("loss", args.loss), ("seed", args.seed)) if v is not None}
    changes, runtime_changes = split_settings({**file, **flags, **overrides(args)})
    if preset is None and args.config is not None:
        config, runtime = TrainConfig().replace(**changes), Runtime().replace(**runtime_changes)
    else:
        chosen = get_preset(preset or "fashion-mnist-quick")
        config, runtime = chosen.config(**changes), chosen.runtime(**runtime_changes)
    config = _pretrained_img_size(config)
    return config, folder_eval_batch(config, runtime, "eval_batch_size" in runtime_changes)


def _pretrained_img_size(config):
    """A folder data set trained from pretrained timm weights without --img-size: the input size of the
    model's pretrained configuration (recorded in config.json, so every later command uses it)."""
    from ..inputs import _is_folder
    from ..models.library import pretrained_img_size

    if config.img_size is None and config.pretrained and _is_folder(config):
        size = pretrained_img_size(config.model)
        if size is not None:
            return config.replace(img_size=size)
    return config
