#!/usr/bin/env python
"""One table "seamless vs post-hoc vs training-time" from bench results (issue #11, point 2).

Reads every ``results.json`` given, keeps the seeds each method has, and prints a Markdown table:
category, method, loss the model was trained with, test accuracy, AUROC and TNR@TPR95 averaged
over the out-distributions (mean ± std over seeds), the number of seeds and, with ``--cost``, the
inference cost per image as a multiple of one forward pass (from ``benchmarks/inference_cost.py
--json``). With ``--per-ood``, a second table gives each method's AUROC / TNR@TPR95 per
out-distribution (mean over seeds).

    python benchmarks/inference_cost.py --head softmax --json docs/results/fashion-mnist-modern/cost.json
    python scripts/compare_methods.py docs/results/fashion-mnist-modern/results.json docs/results/fashion-mnist/results.json \\
        --cost docs/results/fashion-mnist-modern/cost.json --per-ood > docs/results/fashion-mnist-modern/comparison.md

A record of the same loss, score, method, seed and out-distribution in two files counts once: the
first file's, so list the results whose models the detectors ran on first.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from isomax.records import OUTLIER_EXPOSURE, as_records

# (category, label, loss, score, method): which records make each row
ROWS = [
    ("baseline", "SoftMax, entropic score", "softmax", "es", "standard"),
    ("seamless", "IsoMax, entropic score", "isomax", "es", "standard"),
    ("seamless", "IsoMax+, minimum distance score", "isomaxplus", "mds", "standard"),
    ("seamless", "IsoMax+, entropic score", "isomaxplus", "es", "standard"),
    *[("post-hoc", name, "softmax", score, "standard") for name, score in (
        ("ODIN", "odin"), ("Mahalanobis", "mahalanobis"), ("KNN", "knn"), ("ViM", "vim"), ("ReAct", "react"),
        ("DICE", "dice"), ("ASH", "ash"), ("SCALE", "scale"), ("GEN", "gen"), ("Energy", "energy"))],
    ("training-time", "Outlier Exposure (SoftMax ES)", "softmax", "es", OUTLIER_EXPOSURE),
    ("training-time", "LogitNorm, max probability", "logitnorm", "mps", "standard"),
    ("training-time", "LogitNorm, entropic score", "logitnorm", "es", "standard"),
]


def _rows(records):
    """(category, label, loss, score, records) for each row of ROWS that has records."""
    for category, label, loss, score, method in ROWS:
        rs = [r for r in records if (r.loss, r.score, r.method) == (loss, score, method)]
        if rs:
            yield category, label, loss, score, rs


def table(records, cost: dict[str, float] | None = None) -> str:
    lines = ["| category | method | trained with | test accuracy (%) | AUROC (%) | TNR@TPR95 (%) | seeds |"
             + (" inference cost (x forward) |" if cost else ""),
             "|---|---|---|---|---|---|---|" + ("---|" if cost else "")]
    for category, label, loss, score, rs in _rows(records):
        seeds = sorted({r.seed for r in rs})

        def cell(key):
            per_seed = [100 * np.mean([r.get(key) for r in rs if r.seed == s]) for s in seeds]
            return f"{np.mean(per_seed):.1f}±{np.std(per_seed):.1f}" if len(seeds) > 1 else f"{per_seed[0]:.1f}"

        row = f"| {category} | {label} | {loss} | {cell('accuracy')} | {cell('auroc')} | {cell('tnr_at_tpr95')} | {len(seeds)} |"
        if cost:
            row += f" {cost[score]:.2f} |" if score in cost else " – |"
        lines.append(row)
    return "\n".join(lines)


def per_ood_table(records) -> str:
    """AUROC / TNR@TPR95 (%) of each row per out-distribution, mean over the seeds it has there."""
    oods = list(dict.fromkeys(r.out_dataset for r in records))
    lines = ["| method | trained with | " + " | ".join(oods) + " |", "|---|---|" + "---|" * len(oods)]
    for _, label, loss, _, rs in _rows(records):
        cells = []
        for ood in oods:
            at = [r for r in rs if r.out_dataset == ood]
            cells.append(f"{100 * np.mean([r.auroc for r in at]):.1f} / {100 * np.mean([r.tnr_at_tpr95 for r in at]):.1f}"
                         if at else "–")
        lines.append(f"| {label} | {loss} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", type=Path, help="results.json files (bench or evaluate)")
    p.add_argument("--cost", type=Path, default=None, help="JSON of benchmarks/inference_cost.py --json: adds a cost column")
    p.add_argument("--per-ood", action="store_true", help="add a table per out-distribution (AUROC / TNR@TPR95)")
    args = p.parse_args()
    cost = json.loads(args.cost.read_text())["ratios"] if args.cost else None
    records, seen = [], set()
    for path in args.results:  # a record of the same run in two files counts once (the first file's)
        for r in as_records(json.loads(path.read_text())):
            key = (r.loss, r.score, r.method, r.seed, r.out_dataset)
            if key not in seen:
                seen.add(key)
                records.append(r)
    # the command as first line, so that tests/test_tables_published.py can check the published table
    print("<!-- python scripts/compare_methods.py " + " ".join(map(str, args.results))
          + (f" --cost {args.cost}" if args.cost else "") + (" --per-ood" if args.per_ood else "") + " -->")
    print(table(records, cost))
    if args.per_ood:
        print("\nPer out-distribution (AUROC / TNR@TPR95, %, mean over seeds):\n")
        print(per_ood_table(records))


if __name__ == "__main__":
    main()
