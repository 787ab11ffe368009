"""``isomax calibrate``: fit the head temperature of a run on its validation split."""

from __future__ import annotations

import argparse

from ._common import add_run_parser, add_runtime_flags

HELP = "fit the head temperature of a run on its validation split"


def add_parser(sub) -> argparse.ArgumentParser:
    p = add_run_parser(
        sub,
        "calibrate",
        help=HELP,
        description="Fit the temperature dividing the logits by NLL on the validation split, report test ECE "
        "(15 bins), NLL and Brier before/after, and write RUN_DIR/calibration.json (used by predict, "
        "threshold and export). Refit the threshold afterwards.",
    )
    add_runtime_flags(p)
    return p


def run(args: argparse.Namespace, command_line: str) -> int:
    from ..deploy.calibration import calibrate_run

    calibrate_run(args.run_dir, device=args.device, data_dir=args.data_dir, progress=not args.no_progress)
    return 0
