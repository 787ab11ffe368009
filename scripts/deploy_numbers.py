#!/usr/bin/env python
"""The README's "Deploying" numbers: train (if missing) one ``fashion-mnist-quick`` run per loss, then
:func:`isomax.deploy.summary.deploy_summary` of each, written to ``OUT/fashion-mnist-quick.json`` and the
Markdown tables the README quotes to ``OUT/tables.md``.

    python scripts/deploy_numbers.py --runs runs --out docs/results/deploy --threads 1

Runs already trained under ``--runs`` (``RUNS/fm-<loss>``) are reused. Training is seed 0 of the preset on the
CPU; each run takes a few CPU-minutes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

LOSSES = ("softmax", "isomax", "isomaxplus")
LABEL = {"softmax": "SoftMax", "isomax": "IsoMax", "isomaxplus": "IsoMax+"}
SCORE = {"mps": "MPS", "es": "ES", "mds": "MDS", "energy": "energy", "max_logit": "max logit"}


def tables(summaries: dict) -> str:
    from isomax.deploy import default_score

    lines = [
        "| loss | test accuracy | score | val TPR | test TPR | AURC | risk @ 95% coverage "
        "| test TPR, calibrated (default) | AURC, calibrated |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for loss, s in summaries.items():
        for score, r in s["scores"].items():
            c = s["calibrated_scores"][score]
            name = SCORE[score] + (" (default)" if score == default_score(loss) else "")
            lines.append(
                f"| {LABEL[loss]} | {100 * s['accuracy']:.2f}% | {name} | {100 * r['val_tpr']:.2f}% | "
                f"{100 * r['test_tpr']:.2f}% | {100 * r['aurc']:.2f}% | "
                f"{100 * r['risk_at_coverage_0.95']:.2f}% | {100 * c['test_tpr']:.2f}% | {100 * c['aurc']:.2f}% |"
            )
    lines += ["", "| loss | fitted T | test ECE (15 bins) | test NLL | test Brier |", "|---|---|---|---|---|"]
    for loss, s in summaries.items():
        cal = s["calibration"]
        b, a = cal["before"], cal["after"]
        lines.append(
            f"| {LABEL[loss]} | {cal['temperature']:.3g} | {100 * b['ece']:.2f}% → {100 * a['ece']:.2f}% | "
            f"{b['nll']:.3f} → {a['nll']:.3f} | {b['brier']:.3f} → {a['brier']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=Path("runs"), help="where the runs are (trained if missing)")
    p.add_argument("--out", type=Path, default=Path("docs/results/deploy"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default=None)
    args = p.parse_args(argv)
    from isomax.deploy.summary import deploy_summary

    summaries = {}
    for loss in LOSSES:
        run = args.runs / f"fm-{loss}"
        if not (run / "checkpoint.pt").exists():
            cmd = [
                sys.executable,
                "-m",
                "isomax",
                "train",
                "--preset",
                "fashion-mnist-quick",
                "--loss",
                loss,
                "--threads",
                str(args.threads),
                "--out",
                str(run),
                "--no-progress",
            ]
            cmd += ["--data-dir", args.data_dir] if args.data_dir else []
            print("+", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
        summaries[loss] = deploy_summary(run, device="cpu", data_dir=args.data_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "python scripts/deploy_numbers.py --runs RUNS --out docs/results/deploy --threads 1",
        "runs": summaries,
    }
    (args.out / "fashion-mnist-quick.json").write_text(json.dumps(record, indent=1) + "\n")
    (args.out / "tables.md").write_text(tables(summaries))
    print(tables(summaries))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
