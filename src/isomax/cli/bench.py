"""``isomax bench``: train and evaluate losses x seeds with one preset, write the papers' tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..presets import get_preset, presets_help, split_settings
from ..registry import BASELINE_LOSS, PAPER_LOSSES
from ._common import (
    add_config_flags,
    add_detector_flags,
    detector_names,
    detector_options,
    folder_eval_batch,
    overrides,
    print_tables,
)

HELP = "train and evaluate losses x seeds, write tables"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "bench",
        help=HELP,
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
    add_detector_flags(p, detector_names() + ("oe",))
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
    add_config_flags(p)
    return p


def run(args: argparse.Namespace, command_line: str) -> int:
    from .. import tables
    from ..bench import run_bench

    changes = overrides(args)
    base = get_preset(args.preset).config(**split_settings(changes)[0])
    runtime = get_preset(args.preset).runtime()
    if folder_eval_batch(base, runtime, "eval_batch_size" in changes) is not runtime:  # a folder data set:
        changes["eval_batch_size"] = base.batch_size  # evaluate in --batch-size batches
    records = run_bench(
        args.preset,
        range(args.seeds),
        args.out,
        losses=args.losses,
        ood=args.ood,
        overrides=changes,
        progress=not args.no_progress,
        command=command_line,
        methods=args.methods,
        methods_on=args.methods_on,
        outlier_data=args.outlier_data,
        detector_options=detector_options(args),
    )
    print_tables(records, tables.seamless_table, f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    return 0
