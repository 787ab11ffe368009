#!/usr/bin/env python
"""One table "seamless vs post-hoc vs training-time" from bench results (issue #11, point 2; issue 22).

Reads every ``results.json`` given, keeps the seeds each method has, and prints a Markdown table:
category, method, loss the model was trained with, test accuracy, AUROC and TNR@TPR95 averaged
over the out-distributions (mean ± std over seeds, sample std with ddof=1; a cell without ± is one
seed), the number of seeds, the paired per-seed AUROC difference to the best row and, with
``--cost``, the inference cost per image as a multiple of one forward pass (from
``benchmarks/inference_cost.py --json``). With ``--per-ood``, a second table gives each method's
AUROC / TNR@TPR95 per out-distribution (mean over seeds). With ``--near-far``, one table per OOD
group (near / far / noise, :mod:`isomax.data.roles`) with OpenOOD's metrics: ID accuracy,
FPR@95TPR, AUROC, AUPR-in, AUPR-out.

    python benchmarks/inference_cost.py --head softmax --json docs/results/fashion-mnist-modern/cost.json
    python scripts/compare_methods.py docs/results/fashion-mnist-modern/results.json \\
        docs/results/fashion-mnist/results.json --cost docs/results/fashion-mnist-modern/cost.json \\
        --per-ood > docs/results/fashion-mnist-modern/comparison.md
    python scripts/compare_methods.py docs/results/fashion-mnist-modern/results.json \\
        docs/results/fashion-mnist/results.json --near-far > docs/results/fashion-mnist-modern/near-far.md
    python scripts/compare_methods.py RESULTS.json --paired isomaxplus:es isomax:es   # one pair, per group

A record of the same loss, score, method, seed and out-distribution in two files counts once: the
first file's, so list the results whose models the detectors ran on first.

Rows: the methods below in this order; then, for any loss, the post-hoc detectors run on it, and
every score of a loss this list does not know (e.g. DisMax), so new results need no edit here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from isomax.data.roles import ROLE_ORDER
from isomax.records import OUTLIER_EXPOSURE, as_records

DETECTORS = {
    "odin": "ODIN",
    "mahalanobis": "Mahalanobis",
    "knn": "KNN",
    "vim": "ViM",
    "react": "ReAct",
    "dice": "DICE",
    "ash": "ASH",
    "scale": "SCALE",
    "gen": "GEN",
    "energy": "Energy",
}
# (category, label, loss, score, method): which records make each row
ROWS = [
    ("baseline", "SoftMax, entropic score", "softmax", "es", "standard"),
    ("seamless", "IsoMax, entropic score", "isomax", "es", "standard"),
    ("seamless", "IsoMax+, minimum distance score", "isomaxplus", "mds", "standard"),
    ("seamless", "IsoMax+, entropic score", "isomaxplus", "es", "standard"),
    *[("post-hoc", name, "softmax", score, "standard") for score, name in DETECTORS.items()],
    ("training-time", "Outlier Exposure (SoftMax ES)", "softmax", "es", OUTLIER_EXPOSURE),
    ("training-time", "LogitNorm, max probability", "logitnorm", "mps", "standard"),
    ("training-time", "LogitNorm, entropic score", "logitnorm", "es", "standard"),
]
KNOWN_LOSSES = {"softmax", "isomax", "isomaxplus", "logitnorm"}
SEAMLESS_LOSSES = {"isomax", "isomaxplus", "dismax", "dismax-fpr"}  # FPR changes training batches, not inference
LOSS_NAMES = {
    "softmax": "SoftMax",
    "isomax": "IsoMax",
    "isomaxplus": "IsoMax+",
    "logitnorm": "LogitNorm",
    "dismax": "DisMax",
    "dismax-fpr": "DisMax+FPR",
}
SCORE_NAMES = {
    "es": "entropic score",
    "mds": "minimum distance score",
    "mps": "max probability",
    "max_logit": "max logit",
    "energy": "energy",
}
CATEGORIES = ("baseline", "seamless", "post-hoc", "training-time", "other")
STD_NOTE = (
    "mean ± std over seeds (sample std, ddof=1; a cell without ± is one seed); Δ AUROC: mean ± std "
    "of the per-seed paired differences to the row with the best mean AUROC (same seed numbers), "
    '"level" when |mean| ≤ std'
)


def row_specs(records) -> list[tuple[str, str, str, str, str]]:
    """ROWS that have records, then generic rows (the detectors run on other losses, in DETECTORS order;
    every score of an unknown loss), sorted by category."""
    present = list(dict.fromkeys((r.loss, r.score, r.method) for r in records))
    rows = [row for row in ROWS if row[2:] in present]
    for loss in dict.fromkeys(p[0] for p in present):
        rows += [
            ("post-hoc", name, loss, score, "standard")
            for score, name in DETECTORS.items()
            if score != "energy"
            and (loss, score, "standard") in present
            and ("post-hoc", name, loss, score, "standard") not in rows
        ]
    for loss, score, method in present:
        if loss not in KNOWN_LOSSES and score not in DETECTORS:
            label = f"{LOSS_NAMES.get(loss, loss)}, {SCORE_NAMES.get(score, score.upper())}"
            if method != "standard":
                label += f" ({method})"
            rows.append(("seamless" if loss in SEAMLESS_LOSSES else "other", label, loss, score, method))
    return sorted(rows, key=lambda row: CATEGORIES.index(row[0]))


def _rows(records):
    """(category, label, loss, score, records) for each row that has records."""
    for category, label, loss, score, method in row_specs(records):
        yield category, label, loss, score, [r for r in records if (r.loss, r.score, r.method) == (loss, score, method)]


def per_seed(rs, key: str) -> dict:
    """seed -> the mean of ``key`` (in %) over the records of that seed (its out-distributions)."""
    seeds = sorted({r.seed for r in rs}, key=lambda s: (s is None, s))
    return {
        s: 100 * float(np.mean([r.get(key) for r in rs if r.seed == s]))
        for s in seeds
        if all(r.get(key) is not None for r in rs if r.seed == s)
    }


def mean_std(values) -> str:
    """ "m±s" (sample std, ddof=1), or "m" for one value, "–" for none."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return "–"
    return f"{v.mean():.1f}±{v.std(ddof=1):.1f}" if v.size > 1 else f"{v[0]:.1f}"


def paired(a: dict, b: dict) -> tuple[list[float], list]:
    """Per-seed differences a - b over the seeds both have: (differences, seeds)."""
    seeds = [s for s in a if s in b]
    return [a[s] - b[s] for s in seeds], seeds


def paired_text(a: dict, b: dict, digits: int = 1) -> str:
    """``"+0.4±0.6 level"`` / ``"-3.2±1.1 behind"`` / ``"+2.0±0.5 ahead"``: mean ± std (ddof=1) of the
    per-seed paired differences a - b; "level" when |mean| <= std; one common seed: the difference only."""
    d, seeds = paired(a, b)
    if not d:
        return "– (no common seed)"
    m = float(np.mean(d))
    if len(d) == 1:
        return f"{m:+.{digits}f} (1 seed)"
    s = float(np.std(d, ddof=1))
    verdict = "level" if abs(m) <= s else ("ahead" if m > 0 else "behind")
    return f"{m:+.{digits}f}±{s:.{digits}f} {verdict}"


def _best(rows, key="auroc"):
    means = [(np.mean(list(per_seed(rs, key).values())), label, loss) for _, label, loss, _, rs in rows]
    return max(means)[1:] if means else None


def table(records, cost: dict[str, float] | None = None) -> str:
    rows = list(_rows(records))
    best = _best(rows)
    best_auroc = next((per_seed(rs, "auroc") for _, label, loss, _, rs in rows if (label, loss) == best), {})
    lines = [
        "| category | method | trained with | test accuracy (%) | AUROC (%) | TNR@TPR95 (%) | seeds "
        "| Δ AUROC vs best (paired) |" + (" inference cost (x forward) |" if cost else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if cost else ""),
    ]
    for category, label, loss, score, rs in rows:
        auroc = per_seed(rs, "auroc")
        delta = "best" if (label, loss) == best else paired_text(auroc, best_auroc)
        row = (
            f"| {category} | {label} | {loss} | {mean_std(per_seed(rs, 'accuracy').values())} | "
            f"{mean_std(auroc.values())} | {mean_std(per_seed(rs, 'tnr_at_tpr95').values())} | {len(auroc)} | {delta} |"
        )
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
            cells.append(
                f"{100 * np.mean([r.auroc for r in at]):.1f} / {100 * np.mean([r.tnr_at_tpr95 for r in at]):.1f}"
                if at
                else "–"
            )
        lines.append(f"| {label} | {loss} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def groups(records) -> dict[str, list[str]]:
    """OOD group -> its out-distributions in the records (near, far, noise, then "no role")."""
    out: dict[str, list[str]] = {}
    for r in records:
        out.setdefault(r.ood_role or "no role", [])
        if r.out_dataset not in out[r.ood_role or "no role"]:
            out[r.ood_role or "no role"].append(r.out_dataset)
    order = list(ROLE_ORDER) + ["no role"]
    return {g: out[g] for g in order if g in out}


def near_far_tables(records, cost: dict[str, float] | None = None) -> str:
    """One table per OOD group: ID accuracy, FPR@95TPR, AUROC, AUPR-in, AUPR-out (each seed's mean over the
    group's sets, then mean ± std over seeds), the paired AUROC difference to the group's best row and,
    with ``cost``, the inference cost."""
    parts = []
    for group, oods in groups(records).items():
        in_group = [r for r in records if (r.ood_role or "no role") == group]
        rows = list(_rows(in_group))
        best = _best(rows)
        best_auroc = next((per_seed(rs, "auroc") for _, label, loss, _, rs in rows if (label, loss) == best), {})
        parts += [
            f"### {group}-OOD: {', '.join(oods)}",
            "",
            "| method | trained with | ID accuracy (%) | FPR@95TPR (%) | AUROC (%) | AUPR-in (%) | AUPR-out (%) "
            "| seeds | Δ AUROC vs best (paired) |" + (" inference cost (x forward) |" if cost else ""),
            "|---|---|---|---|---|---|---|---|---|" + ("---|" if cost else ""),
        ]
        for _, label, loss, score, rs in rows:
            auroc = per_seed(rs, "auroc")
            cells = [mean_std(per_seed(rs, k).values()) for k in ("accuracy", "fpr_at_tpr95")]
            cells += [mean_std(auroc.values())] + [mean_std(per_seed(rs, k).values()) for k in ("auin", "auout")]
            delta = "best" if (label, loss) == best else paired_text(auroc, best_auroc)
            row = f"| {label} | {loss} | " + " | ".join(cells) + f" | {len(auroc)} | {delta} |"
            if cost:
                row += f" {cost[score]:.2f} |" if score in cost else " – |"
            parts.append(row)
        parts.append("")
    return "\n".join(parts).rstrip("\n")


def paired_report(records, a: str, b: str) -> str:
    """``a`` - ``b`` (``loss:score[:method]``), AUROC and TNR@TPR95 per OOD group and over all sets."""

    def pick(spec):
        loss, score, *method = spec.split(":")
        rs = [r for r in records if (r.loss, r.score, r.method) == (loss, score, method[0] if method else "standard")]
        if not rs:
            raise SystemExit(f"compare_methods.py: error: no records for --paired {spec!r} (loss:score[:method])")
        return rs

    ra, rb = pick(a), pick(b)
    lines = [
        f"Paired per-seed differences {a} - {b} (percentage points; mean ± std, ddof=1; per seed in brackets):",
        "",
    ]
    for group in ["all", *groups(records)]:
        sa = [r for r in ra if group == "all" or (r.ood_role or "no role") == group]
        sb = [r for r in rb if group == "all" or (r.ood_role or "no role") == group]
        texts = []
        for key in ("auroc", "tnr_at_tpr95"):
            pa, pb = per_seed(sa, key), per_seed(sb, key)
            d, seeds = paired(pa, pb)
            texts.append(
                f"{key} {paired_text(pa, pb, 2)} [" + ", ".join(f"seed {s}: {x:+.2f}" for s, x in zip(seeds, d)) + "]"
            )
        lines.append(f"* {group}: " + "; ".join(texts))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", type=Path, help="results.json files (bench or evaluate)")
    p.add_argument(
        "--cost", type=Path, default=None, help="JSON of benchmarks/inference_cost.py --json: adds a cost column"
    )
    p.add_argument("--per-ood", action="store_true", help="add a table per out-distribution (AUROC / TNR@TPR95)")
    p.add_argument(
        "--near-far",
        action="store_true",
        help="only the tables per OOD group (near / far / noise) with OpenOOD's metrics",
    )
    p.add_argument(
        "--paired",
        nargs=2,
        metavar=("A", "B"),
        default=None,
        help="only the paired per-seed differences A - B (loss:score[:method]) per OOD group",
    )
    args = p.parse_args()
    cost = json.loads(args.cost.read_text())["ratios"] if args.cost else None
    records, seen = [], set()
    for path in args.results:  # a record of the same run in two files counts once (the first file's)
        for r in as_records(json.loads(path.read_text())):
            key = (r.loss, r.score, r.method, r.seed, r.out_dataset)
            if key not in seen:
                seen.add(key)
                records.append(r)
    if args.paired:
        print(paired_report(records, *args.paired))
        return
    # the command as first line, so that tests/test_tables_published.py can check the published table
    print(
        "<!-- python scripts/compare_methods.py "
        + " ".join(map(str, args.results))
        + (f" --cost {args.cost}" if args.cost else "")
        + (" --per-ood" if args.per_ood else "")
        + (" --near-far" if args.near_far else "")
        + " -->"
    )
    if args.near_far:
        print(
            f"Per OOD group (isomax.data.roles; OpenOOD v1.5 where it has the set): each seed's mean over the "
            f"group's out-distributions, then {STD_NOTE}. AUPR-in/out: the papers' AUIN/AUOUT.\n"
        )
        print(near_far_tables(records, cost))
        return
    print(f"Mean over all out-distributions of each seed, then {STD_NOTE}.\n")
    print(table(records, cost))
    if args.per_ood:
        print("\nPer out-distribution (AUROC / TNR@TPR95, %, mean over seeds):\n")
        print(per_ood_table(records))


if __name__ == "__main__":
    main()
