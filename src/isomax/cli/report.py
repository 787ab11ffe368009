"""``isomax report``: a Markdown report with figures and LaTeX/CSV tables."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write a Markdown report with figures and LaTeX/CSV tables"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "report",
        help=HELP,
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
    return p


def run(args: argparse.Namespace, command_line: str) -> int:
    from ..report import write_report

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
