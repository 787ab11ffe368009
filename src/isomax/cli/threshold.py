"""``isomax threshold``: fit the accept/reject threshold of a run on its validation split."""

from __future__ import annotations

import argparse

from ._common import add_run_parser, add_runtime_flags

HELP = "fit the accept/reject threshold of a run on its validation split"


def _tpr(value: str) -> float:
    v = float(value)
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {value}")
    return v


def add_parser(sub) -> argparse.ArgumentParser:
    from ..scores import SCORES

    p = add_run_parser(
        sub,
        "threshold",
        help=HELP,
        description="Fit the score threshold that accepts --tpr of the run's in-distribution validation split "
        "(never test or out-distribution data) and write RUN_DIR/threshold.json. Inputs with score >= "
        "threshold are accepted as in-distribution by `isomax predict` and `isomax export`. Also reports "
        "the TPR the threshold achieves on the test split (for information).",
    )
    p.add_argument(
        "--score",
        choices=list(SCORES),
        default=None,
        help="score (default: mds for IsoMax+, mmles for DisMax, es for IsoMax and SoftMax)",
    )
    p.add_argument("--tpr", type=_tpr, default=0.95, help="fraction of in-distribution inputs to accept (default 0.95)")
    p.add_argument("--no-test", action="store_true", help="do not measure the achieved TPR on the test split")
    add_runtime_flags(p)
    return p


def run(args: argparse.Namespace, command_line: str) -> int:
    from ..deploy.threshold import fit_run_threshold

    fit_run_threshold(
        args.run_dir,
        args.score,
        args.tpr,
        device=args.device,
        data_dir=args.data_dir,
        progress=not args.no_progress,
        report_test=not args.no_test,
    )
    return 0
