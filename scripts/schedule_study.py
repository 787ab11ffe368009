#!/usr/bin/env python
"""Schedule study (issue #11): how the IsoMax ES / IsoMax+ MDS / SoftMax ES gap moves with training length.

Fashion-MNIST, the `fashion-mnist` preset's model and recipe (cnn-28, one-cycle SGD), full runs at
several epoch counts (not intermediate checkpoints of one run). Each finished point is written as
one small JSON file (configuration, per-epoch history with |d_s|, evaluation records, each record
carrying its `epochs`) into OUT/points/, so the study can be stopped and continued from what is
committed: `run` skips the points whose file exists. `summarize` writes OUT/study.md (tables over the
out-distributions and per out-distribution) and OUT/study.png from the points plus the 6-epoch records
of docs/results/fashion-mnist (3 seeds).

    python scripts/schedule_study.py run --threads 1            # all points, one process
    python scripts/schedule_study.py run --only isomax-e12 ...  # some points
    python scripts/schedule_study.py summarize
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results" / "schedule-study"
SIX_EPOCHS = ROOT / "docs" / "results" / "fashion-mnist" / "results.json"  # the 6-epoch point, 3 seeds

# (name, loss, epochs, overrides): the order runs the cheap points first
POINTS = [
    ("isomax-e3", "isomax", 3, {}),
    ("isomaxplus-e3", "isomaxplus", 3, {}),
    ("isomax-e12", "isomax", 12, {}),
    ("isomaxplus-e12", "isomaxplus", 12, {}),
    ("isomaxplus-e24", "isomaxplus", 24, {}),
    ("isomax-e24", "isomax", 24, {}),
    ("softmax-e24", "softmax", 24, {}),
    ("isomaxplus-e24-nowd", "isomaxplus", 24, {"head_weight_decay": 0.0}),
    ("isomaxplus-e48", "isomaxplus", 48, {}),
    ("isomax-e48", "isomax", 48, {}),
]


def _write_json(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def run(args) -> None:
    from isomax.evaluation import evaluate_run
    from isomax.presets import get_preset
    from isomax.training import train
    from isomax.runs import config_record

    points_dir = args.out / "points"
    points_dir.mkdir(parents=True, exist_ok=True)
    for name, loss, epochs, overrides in POINTS:
        if args.only and name not in args.only:
            continue
        for seed in range(args.seeds):
            tag = f"{name}-seed{seed}"
            path = points_dir / f"{tag}.json"
            if path.exists():
                continue
            config = get_preset("fashion-mnist").config(loss=loss, epochs=epochs, seed=seed, **overrides)
            runtime = get_preset("fashion-mnist").runtime(threads=args.threads, data_dir=args.data_dir)
            t0 = time.perf_counter()
            result = train(config, args.runs / tag, runtime=runtime, progress=False, log=lambda m: print(m, flush=True))
            train_s = time.perf_counter() - t0
            records = [
                r.replace(epochs=epochs, point=name, head_weight_decay=config.head_weight_decay).to_dict()
                for r in evaluate_run(args.runs / tag, progress=False, log=lambda m: None)
            ]
            _write_json(
                dict(
                    point=name,
                    config=config_record(config, runtime),  # flat, as config.json
                    history=[r.to_dict() for r in result.history],
                    records=records,
                    train_seconds=round(train_s, 1),
                    eval_seconds=round(time.perf_counter() - t0 - train_s, 1),
                ),
                path,
            )
            print(f"wrote {path} ({train_s:.0f} s training)", flush=True)


def _load(out: Path) -> list[dict]:
    records = []
    for p in sorted((out / "points").glob("*.json")):
        records += json.loads(p.read_text())["records"]
    for r in json.loads(SIX_EPOCHS.read_text()):
        if r["score"] in ("mps", "es", "mds", "energy", "max_logit") and "outlier_data" not in r:
            records.append(dict(r, epochs=6, point=f"{r['loss']}-e6", head_weight_decay=None))
    return records


def summarize(args) -> None:
    import numpy as np

    records = _load(args.out)
    curves = [
        ("softmax", "es", None, "SoftMax ES"),
        ("isomax", "es", None, "IsoMax ES"),
        ("isomaxplus", "mds", None, "IsoMax+ MDS"),
        ("isomaxplus", "es", None, "IsoMax+ ES"),
        ("isomaxplus", "mds", 0.0, "IsoMax+ MDS, no wd on head"),
        ("isomaxplus", "es", 0.0, "IsoMax+ ES, no wd on head"),
    ]
    oods = sorted({r["out_dataset"] for r in records})

    def pick(loss, score, hwd, epochs, ood=None):
        return [
            r
            for r in records
            if r["loss"] == loss
            and r["score"] == score
            and r.get("head_weight_decay") == hwd
            and r["epochs"] == epochs
            and (ood is None or r["out_dataset"] == ood)
        ]

    def cell(rs, key):  # mean over out-distributions of each seed, then mean (± std) over seeds
        seeds = sorted({r["seed"] for r in rs})
        per_seed = [100 * np.mean([r[key] for r in rs if r["seed"] == s]) for s in seeds]
        if not per_seed:
            return "", None, None
        m, s = float(np.mean(per_seed)), float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0
        return (f"{m:.1f}±{s:.1f}" if len(per_seed) > 1 else f"{m:.1f}"), m, s

    epochs_all = sorted({r["epochs"] for r in records})
    lines = [
        "# Schedule study: OOD detection vs training length (Fashion-MNIST, cnn-28)",
        "",
        "Produced by `python scripts/schedule_study.py run --threads 1` then `python scripts/schedule_study.py "
        "summarize` (6-epoch point: the 3 seeds of docs/results/fashion-mnist). Values: mean over "
        f"the out-distributions ({', '.join(oods)}), in %; a cell with ± is the mean ± std over its seeds "
        "(sample std, ddof=1), one without is a single seed (seed 0).",
        "",
    ]
    for key, title in (("auroc", "AUROC"), ("tnr_at_tpr95", "TNR at TPR 95%"), ("accuracy", "test accuracy")):
        lines += [
            f"## {title}",
            "",
            "| loss / score | " + " | ".join(f"{e} ep" for e in epochs_all) + " |",
            "|---|" + "---|" * len(epochs_all),
        ]
        for loss, score, hwd, label in curves:
            row = [cell(pick(loss, score, hwd, e), key)[0] for e in epochs_all]
            if any(row):
                lines.append(f"| {label} | " + " | ".join(row) + " |")
        lines.append("")
    lines += ["## Per out-distribution: AUROC / TNR at TPR 95%", ""]
    for ood in oods:
        lines += [
            f"### {ood}",
            "",
            "| loss / score | " + " | ".join(f"{e} ep" for e in epochs_all) + " |",
            "|---|" + "---|" * len(epochs_all),
        ]
        for loss, score, hwd, label in curves:
            rows = [pick(loss, score, hwd, e, ood) for e in epochs_all]
            if any(rows):
                lines.append(
                    f"| {label} | "
                    + " | ".join(f"{cell(rs, 'auroc')[0]} / {cell(rs, 'tnr_at_tpr95')[0]}" if rs else "" for rs in rows)
                    + " |"
                )
        lines.append("")
    # paired per-seed differences: the same seed number of two losses / scores at one length
    pairs = [
        (("isomaxplus", "es", None, "IsoMax+ ES"), ("isomax", "es", None, "IsoMax ES")),
        (("isomaxplus", "mds", None, "IsoMax+ MDS"), ("isomax", "es", None, "IsoMax ES")),
        (("isomaxplus", "es", None, "IsoMax+ ES"), ("isomaxplus", "mds", None, "IsoMax+ MDS")),
    ]

    def seed_means(rs, key):
        return {
            s: 100 * float(np.mean([r[key] for r in rs if r["seed"] == s])) for s in sorted({r["seed"] for r in rs})
        }

    lines += [
        "## Paired per-seed differences",
        "",
        "A - B at each length, over the seeds both have, mean over the out-distributions of each seed: "
        "mean ± std of the per-seed differences (ddof=1), then each seed's difference (seed: value), "
        "in percentage points; **level** when |mean| ≤ std, one seed: no verdict.",
        "",
    ]
    for key, title in (("auroc", "AUROC"), ("tnr_at_tpr95", "TNR at TPR 95%")):
        lines += [
            f"### {title}",
            "",
            "| A - B | " + " | ".join(f"{e} ep" for e in epochs_all) + " |",
            "|---|" + "---|" * len(epochs_all),
        ]
        for a, b in pairs:
            cells = []
            for e in epochs_all:
                sa, sb = seed_means(pick(*a[:3], e), key), seed_means(pick(*b[:3], e), key)
                seeds = [s for s in sa if s in sb]
                d = [sa[s] - sb[s] for s in seeds]
                if not d:
                    cells.append("")
                    continue
                each = " / ".join(f"{s}: {x:+.2f}" for s, x in zip(seeds, d))
                if len(d) == 1:
                    cells.append(f"{d[0]:+.2f} ({each})")
                    continue
                m, sd = float(np.mean(d)), float(np.std(d, ddof=1))
                verdict = "**level**" if abs(m) <= sd else ("ahead" if m > 0 else "behind")
                cells.append(f"{m:+.2f}±{sd:.2f} {verdict} ({each})")
            lines.append(f"| {a[3]} - {b[3]} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## |d_s| (IsoMax+ distance scale) at the end of each epoch", ""]
    for p in sorted((args.out / "points").glob("isomaxplus*.json")):
        point = json.loads(p.read_text())
        ds = [h.get("distance_scale") for h in point["history"]]
        lines.append(f"- {p.stem}: " + ", ".join(f"{d:.2f}" for d in ds if d is not None))
    lines.append("")
    (args.out / "study.md").write_text("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(oods), figsize=(3.2 * len(oods), 5.6), squeeze=False)
    for row, key in enumerate(("auroc", "tnr_at_tpr95")):
        for col, ood in enumerate(oods):
            ax = axes[row][col]
            for loss, score, hwd, label in curves:
                pts = [(e, *cell(pick(loss, score, hwd, e, ood), key)[1:]) for e in epochs_all]
                pts = [p for p in pts if p[1] is not None]
                if pts:  # error bars: std over seeds (ddof=1) where a point has several
                    e, m, s = zip(*pts)
                    ax.errorbar(e, m, yerr=s, marker="o", capsize=3, label=label)
            ax.set_xscale("log", base=2)
            ax.set_xticks(epochs_all, [str(e) for e in epochs_all])
            ax.set_title(ood, fontsize=9)
            ax.set_xlabel("epochs")
            ax.set_ylabel("AUROC (%)" if key == "auroc" else "TNR@TPR95 (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(args.out / "study.png", dpi=120)
    print(f"wrote {args.out / 'study.md'} and {args.out / 'study.png'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--only", nargs="+", default=None, help="point names: " + ", ".join(n for n, *_ in POINTS))
    r.add_argument("--seeds", type=int, default=1)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--runs", type=Path, default=ROOT / "runs" / "schedule-study")
    r.add_argument("--data-dir", default=None)
    r.add_argument("--out", type=Path, default=OUT)
    r.set_defaults(func=run)
    s = sub.add_parser("summarize")
    s.add_argument("--out", type=Path, default=OUT)
    s.set_defaults(func=summarize)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
