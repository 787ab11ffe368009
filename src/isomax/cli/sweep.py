"""``isomax sweep``: choose the entropic scale E_s on a validation out-distribution."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..presets import presets_help
from ..registry import SWEEP_LOSSES
from ._common import add_config_flags, overrides

HELP = "choose the entropic scale E_s on a validation out-distribution"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "sweep",
        help=HELP,
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
    add_config_flags(p)
    return p


def run(args: argparse.Namespace, command_line: str) -> int:
    from ..sweep import run_sweep

    summary = run_sweep(
        args.preset,
        args.val_ood,
        args.out,
        scales=args.scales,
        losses=args.losses,
        seeds=range(args.seeds),
        test_ood=args.test_ood,
        overrides=overrides(args),
        progress=not args.no_progress,
        command=command_line,
    )
    print(f"chosen: {summary['chosen']} (on {args.val_ood}); wrote {args.out / 'sweep.md'}")
    return 0
