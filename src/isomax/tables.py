"""Aggregation of result records (mean ± std over seeds) and the papers' table layouts in Markdown."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np

__all__ = ["aggregate", "fmt_mean_std", "accuracy_table", "seamless_table", "all_scores_table", "LOSS_LABELS", "SCORE_LABELS"]

LOSS_LABELS = {"softmax": "SoftMax", "isomax": "IsoMax", "isomaxplus": "IsoMax+", "softmax_oe": "SoftMax+OE"}
SCORE_LABELS = {"mps": "MPS", "es": "ES", "mds": "MDS", "energy": "Energy", "max_logit": "MaxLogit",
                "odin": "ODIN", "mahalanobis": "Mahalanobis"}
# Table 3 of the 2021 paper: SoftMax_ES / IsoMax_ES / IsoMax+_MDS
SEAMLESS = (("softmax", "es"), ("isomax", "es"), ("isomaxplus", "mds"))


def aggregate(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof=1; 0 for one value) and count."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def fmt_mean_std(values: Iterable[float], scale: float = 100.0, digits: int = 1, bold: bool = False) -> str:
    """``"95.3±0.2"`` from fractions (percent, one decimal by default); ``"–"`` if there are none."""
    mean, std, n = aggregate(values)
    if n == 0:
        return "–"
    text = f"{scale * mean:.{digits}f}±{scale * std:.{digits}f}"
    return f"**{text}**" if bold else text


def _group(records: Sequence[dict], *keys: str) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[tuple(r.get(k) for k in keys)].append(r)
    return groups


def _ordered(values: Iterable, order: Sequence) -> list:
    seen = list(dict.fromkeys(values))
    return [v for v in order if v in seen] + [v for v in seen if v not in order]


def accuracy_table(records: Sequence[dict]) -> str:
    """Table 2 layout: test accuracy per model x in-distribution, one column per loss."""
    losses = _ordered((r["loss"] for r in records), list(LOSS_LABELS))
    lines = ["| Model | Data | " + " | ".join(f"{LOSS_LABELS.get(l, l)} test accuracy (%)" for l in losses) + " |",
             "|---|---|" + "---|" * len(losses)]
    for (model, data), recs in _group(records, "model", "in_dataset").items():
        cells = []
        for loss in losses:
            per_seed = {r["seed"]: r["accuracy"] for r in recs if r["loss"] == loss}
            cells.append(fmt_mean_std(per_seed.values()))
        lines.append(f"| {model} | {data} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _metric_cells(recs: Sequence[dict], combos: Sequence[tuple[str, str]], metric: str) -> list[str]:
    values = [[r[metric] for r in recs if (r["loss"], r["score"]) == c] for c in combos]
    means = [aggregate(v)[0] if v else -np.inf for v in values]
    best = max(means) if means else None
    return [fmt_mean_std(v, bold=bool(v) and m == best and len(combos) > 1) for v, m in zip(values, means)]


def seamless_table(records: Sequence[dict], combos: Sequence[tuple[str, str]] = SEAMLESS,
                   metrics: Sequence[str] = ("tnr_at_tpr95", "auroc")) -> str:
    """Table 3 layout: per model x in x out, ``a / b / c`` for each metric; the best mean in bold."""
    names = {"tnr_at_tpr95": "TNR@TPR95 (%)", "auroc": "AUROC (%)", "dtacc": "DTACC (%)", "auin": "AUIN (%)", "auout": "AUOUT (%)"}
    combos = [c for c in combos if any((r["loss"], r["score"]) == c for r in records)]
    header = " / ".join(f"{LOSS_LABELS.get(l, l)}<sub>{SCORE_LABELS.get(s, s)}</sub>" for l, s in combos)
    lines = ["| Model | Data (training) | OOD (unseen) | " + " | ".join(f"{names.get(m, m)} {header}" for m in metrics) + " |",
             "|---|---|---|" + "---|" * len(metrics)]
    for (model, data, out), recs in _group(records, "model", "in_dataset", "out_dataset").items():
        cells = [" / ".join(_metric_cells(recs, combos, m)) for m in metrics]
        lines.append(f"| {model} | {data} | {out} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def all_scores_table(records: Sequence[dict], metrics: Sequence[str] = ("tnr_at_tpr95", "auroc", "dtacc", "auin", "auout")) -> str:
    """Every loss x score x out-distribution, one row each (mean ± std over seeds, %)."""
    lines = ["| Data | OOD | Loss | Score | " + " | ".join(metrics) + " | seeds |", "|---|---|---|---|" + "---|" * (len(metrics) + 1)]
    for (data, out, loss, score), recs in _group(records, "in_dataset", "out_dataset", "loss", "score").items():
        cells = [fmt_mean_std(r[m] for r in recs) for m in metrics]
        lines.append(f"| {data} | {out} | {LOSS_LABELS.get(loss, loss)} | {SCORE_LABELS.get(score, score)} | "
                     + " | ".join(cells) + f" | {len(recs)} |")
    return "\n".join(lines)
