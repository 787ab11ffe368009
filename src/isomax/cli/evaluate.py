"""``isomax evaluate``: test accuracy and every applicable score and metric of runs against out-distributions."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_detector_flags, detector_names, detector_options, print_tables

HELP = "evaluate a trained run against out-distributions"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "evaluate",
        help=HELP,
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
    add_detector_flags(p, detector_names())
    return p


def run(args: argparse.Namespace, command_line: str) -> int:
    from .. import tables
    from ..bench import write_markdown
    from ..deploy._files import OutputLock
    from ..evaluation import clear_evaluation_out, evaluate_run, save_results

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
                detector_options=detector_options(args),
            )
            records += [r.replace(run=key) for r in new]
        path = save_results(records, args.out)
        write_markdown(records, args.out / "results.md", "isomax evaluate", command_line)
    print_tables(records, tables.all_scores_table, f"wrote {path}")
    return 0


def _run_keys(run_dirs: list[Path]) -> list[str]:
    """One unique key per run directory (``a/seed0``, ``b/seed0``); refuses the same run twice."""
    from ..runs import CHECKPOINT, CONFIG, read_config, unique_keys

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
