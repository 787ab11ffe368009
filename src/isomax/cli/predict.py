"""``isomax predict``: classify image files and accept/reject them (:func:`isomax.deploy.run_predict`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_run_parser, add_runtime_flags

HELP = "classify image files and accept/reject them as in-distribution"


def add_parser(sub) -> argparse.ArgumentParser:
    p = add_run_parser(
        sub,
        "predict",
        help=HELP,
        description="Run RUN_DIR's model on image files and folders (recursively; any size and mode, converted to "
        "the model's input as `evaluate` converts out-distribution images) and write a CSV: path, "
        "class, probability, score, threshold, accepted, error. Needs RUN_DIR/threshold.json "
        "(`isomax threshold RUN_DIR`). Unreadable files get a row with the reason (--strict: fail). "
        "An interrupted run resumes where it stopped when rerun.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("--out", required=True, type=Path, help="CSV to write")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--strict", action="store_true", help="fail on the first unreadable file")
    add_runtime_flags(p, data_dir=False)
    return p


def run(args: argparse.Namespace, command_line: str) -> int:
    from ..deploy.predict import run_predict

    run_predict(
        args.run_dir,
        args.inputs,
        args.out,
        batch_size=args.batch_size,
        device=args.device,
        strict=args.strict,
        progress=not args.no_progress,
    )
    return 0
