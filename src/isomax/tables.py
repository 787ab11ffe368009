"""Aggregation of result records (mean ± std over seeds) and the papers' table layouts in Markdown."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

__all__ = ["aggregate", "fmt_mean_std", "accuracy_table", "seamless_table", "all_scores_table", "LOSS_LABELS", "SCORE_LABELS",
           "Table", "comparison", "best_flags", "to_markdown", "to_latex", "to_csv", "METRIC_LABELS",
           "preprocessing_table", "outlier_exposure_table", "PREPROCESSING", "OUTLIER_EXPOSURE", "COMBO_LABELS"]

LOSS_LABELS = {"softmax": "SoftMax", "isomax": "IsoMax", "isomaxplus": "IsoMax+", "softmax_oe": "SoftMax+OE"}
SCORE_LABELS = {"mps": "MPS", "es": "ES", "mds": "MDS", "energy": "Energy", "max_logit": "MaxLogit",
                "odin": "ODIN", "mahalanobis": "Mahalanobis", "oe": "ES+OE"}
# Table 3 of the 2021 paper: SoftMax_ES / IsoMax_ES / IsoMax+_MDS
SEAMLESS = (("softmax", "es"), ("isomax", "es"), ("isomaxplus", "mds"))
# Table 4: ODIN / Mahalanobis (both on SoftMax models) / IsoMax+_MDS, AUROC and DTACC per out-distribution
PREPROCESSING = (("softmax", "odin"), ("softmax", "mahalanobis"), ("isomaxplus", "mds"))
# Table 5: SoftMax_ES^OE (Outlier Exposure) / IsoMax_ES / IsoMax+_MDS, averaged over out-distributions
OUTLIER_EXPOSURE = (("softmax", "oe"), ("isomax", "es"), ("isomaxplus", "mds"))
# Markdown headers of combos as the papers write them
COMBO_LABELS = {("softmax", "odin"): "ODIN", ("softmax", "mahalanobis"): "Mahalanobis",
                ("softmax", "oe"): "SoftMax<sub>ES</sub><sup>OE</sup>"}


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
            # Outlier Exposure runs (score "oe") are other SoftMax models: not in this table
            per_seed = {r["seed"]: r["accuracy"] for r in recs if r["loss"] == loss and r["score"] != "oe"}
            cells.append(fmt_mean_std(per_seed.values()))
        lines.append(f"| {model} | {data} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seamless_table(records: Sequence[dict], combos: Sequence[tuple[str, str]] = SEAMLESS,
                   metrics: Sequence[str] = ("tnr_at_tpr95", "auroc")) -> str:
    """Table 3 layout: per model x in x out, ``a / b / c`` for each metric; the best mean in bold."""
    return to_markdown(comparison(records, combos, metrics))


def all_scores_table(records: Sequence[dict], metrics: Sequence[str] = ("tnr_at_tpr95", "auroc", "dtacc", "auin", "auout")) -> str:
    """Every loss x score x out-distribution, one row each (mean ± std over seeds, %)."""
    lines = ["| Data | OOD | Loss | Score | " + " | ".join(metrics) + " | seeds |", "|---|---|---|---|" + "---|" * (len(metrics) + 1)]
    for (data, out, loss, score), recs in _group(records, "in_dataset", "out_dataset", "loss", "score").items():
        cells = [fmt_mean_std(r[m] for r in recs) for m in metrics]
        lines.append(f"| {data} | {out} | {LOSS_LABELS.get(loss, loss)} | {SCORE_LABELS.get(score, score)} | "
                     + " | ".join(cells) + f" | {len(recs)} |")
    return "\n".join(lines)


# --- Structured tables: the same aggregation rendered as Markdown, LaTeX (booktabs) or CSV -------------------------

METRIC_LABELS = {"accuracy": "Test accuracy (%)", "tnr_at_tpr95": "TNR@TPR95 (%)", "auroc": "AUROC (%)",
                 "dtacc": "DTACC (%)", "auin": "AUIN (%)", "auout": "AUOUT (%)", "fpr_at_tpr95": "FPR@TPR95 (%)"}
KEY_LABELS = {"model": "Model", "in_dataset": "Data (training)", "out_dataset": "OOD (unseen)", "loss": "Loss",
              "score": "Score", "entropic_scale": "E_s"}
LOWER_IS_BETTER = frozenset({"fpr_at_tpr95"})


@dataclass
class Table:
    """Per-seed values of ``metrics`` x ``combos`` for each row key; rendered by :func:`to_markdown`,
    :func:`to_latex` and :func:`to_csv`. A combo is ``(loss, score)``; ``None`` matches anything."""

    keys: tuple[str, ...]
    metrics: tuple[str, ...]
    combos: list[tuple[str | None, str | None]]
    rows: list[tuple[tuple, list[list[list[float]]]]]  # (key values, [metric][combo] -> per-seed values)
    joined: bool = True  # Markdown: one "a / b / c" cell per metric (the papers' layout) or one column per combo
    metric_labels: dict | None = None  # overrides of METRIC_LABELS

    def metric_label(self, metric: str) -> str:
        return (self.metric_labels or {}).get(metric) or METRIC_LABELS.get(metric, metric)


def _matches(r: dict, combo: tuple[str | None, str | None]) -> bool:
    return (combo[0] is None or r.get("loss") == combo[0]) and (combo[1] is None or r.get("score") == combo[1])


def comparison(records: Sequence[dict], combos: Sequence[tuple[str | None, str | None]],
               metrics: Sequence[str] = ("tnr_at_tpr95", "auroc"),
               keys: Sequence[str] = ("model", "in_dataset", "out_dataset"), joined: bool = True) -> Table:
    """One value per seed and cell; a seed's value is the mean over the out-distributions of its group (so
    leaving ``out_dataset`` out of ``keys`` gives the "averaged over all out-distributions" of Tables 5 and 6).
    Combos without any record are dropped."""
    combos = [c for c in combos if any(_matches(r, c) for r in records)]
    rows = []
    for key, recs in _group(records, *keys).items():
        cells = []
        for metric in metrics:
            per_combo = []
            for combo in combos:
                by_seed: dict = defaultdict(dict)
                for r in recs:
                    if _matches(r, combo) and r.get(metric) is not None:
                        by_seed[r.get("seed")][r.get("out_dataset")] = float(r[metric])
                per_combo.append([float(np.mean(list(v.values()))) for v in by_seed.values()])
            cells.append(per_combo)
        rows.append((key, cells))
    return Table(tuple(keys), tuple(metrics), combos, rows, joined)


def best_flags(values: Sequence[Sequence[float]], metric: str = "") -> list[bool]:
    """Which cells hold the best mean (highest; lowest for FPR); none when fewer than two cells are filled."""
    means = [aggregate(v)[0] if len(v) else None for v in values]
    filled = [m for m in means if m is not None]
    if len(filled) < 2:
        return [False] * len(values)
    best = min(filled) if metric in LOWER_IS_BETTER else max(filled)
    return [m is not None and m == best for m in means]


def _combo_label(combo, style: str) -> str:
    if style == "md" and tuple(combo) in COMBO_LABELS:
        return COMBO_LABELS[tuple(combo)]
    loss, score = combo
    name = LOSS_LABELS.get(loss, loss) if loss else ""
    if not score:
        return name
    s = SCORE_LABELS.get(score, score)
    if style == "latex":
        return f"{_tex_escape(name)}$_\\mathrm{{{_tex_escape(s)}}}$" if name else _tex_escape(s)
    return f"{name}<sub>{s}</sub>" if name else s


def _key_text(field: str, value) -> str:
    if field == "loss":
        return LOSS_LABELS.get(value, str(value))
    if field == "score":
        return SCORE_LABELS.get(value, str(value))
    return "–" if value is None else str(value)


def to_markdown(table: Table) -> str:
    labels = [_combo_label(c, "md") for c in table.combos]
    head = [KEY_LABELS.get(k, k) for k in table.keys]
    for m in table.metrics:
        name = table.metric_label(m)
        if table.joined:
            head.append(f"{name} {' / '.join(labels)}".strip())
        else:
            head += [f"{lab} {name[0].lower() + name[1:]}".strip() if lab else name for lab in labels]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, cells in table.rows:
        out = [_key_text(f, v) for f, v in zip(table.keys, key)]
        for m, per_combo in zip(table.metrics, cells):
            texts = [fmt_mean_std(v, bold=b) for v, b in zip(per_combo, best_flags(per_combo, m))]
            out += [" / ".join(texts)] if table.joined else texts
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines)


def _tex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("_", r"\_"),
                 ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\textasciicircum{}")):
        text = text.replace(a, b)
    return text.replace("±", r"$\pm$").replace("–", "--")


def to_latex(table: Table, caption: str | None = None, label: str | None = None) -> str:
    """A booktabs ``table`` environment, one column per metric x combo, the best mean in ``\\textbf``
    (needs ``\\usepackage{booktabs}``)."""
    n_keys, n_combos = len(table.keys), max(1, len(table.combos))
    labels = [_combo_label(c, "latex") for c in table.combos] or [""]
    spec = "l" * n_keys + "".join(("c" * n_combos) for _ in table.metrics)
    lines = [r"\begin{table}[t]", r"\centering", r"\small"]
    if caption:
        lines.append(rf"\caption{{{_tex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    keys = [_tex_escape(KEY_LABELS.get(k, k)) for k in table.keys]
    metric_names = [_tex_escape(table.metric_label(m)) for m in table.metrics]
    if any(labels):
        top = [""] * n_keys + [rf"\multicolumn{{{n_combos}}}{{c}}{{{name}}}" for name in metric_names]
        lines.append(" & ".join(top) + r" \\")
        rules = [rf"\cmidrule(lr){{{n_keys + 1 + i * n_combos}-{n_keys + (i + 1) * n_combos}}}" for i in range(len(metric_names))]
        lines.append(" ".join(rules))
        lines.append(" & ".join(keys + labels * len(metric_names)) + r" \\")
    else:
        lines.append(" & ".join(keys + metric_names) + r" \\")
    lines.append(r"\midrule")
    previous: tuple = ()
    for key, cells in table.rows:
        shown = []
        for i, (f, v) in enumerate(zip(table.keys, key)):  # blank a key repeated from the row above, as the papers do
            same = i < n_keys - 1 and previous[: i + 1] == key[: i + 1]
            shown.append("" if same else _tex_escape(_key_text(f, v)))
        previous = key
        out = list(shown)
        for m, per_combo in zip(table.metrics, cells):
            for v, b in zip(per_combo, best_flags(per_combo, m)):
                text = _tex_escape(fmt_mean_std(v))
                out.append(rf"\textbf{{{text}}}" if b else text)
        lines.append(" & ".join(out) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """Plain numbers: key columns, then ``<metric>[_<loss>_<score>]_{mean,std,n}`` in percent (empty if missing)."""
    import csv
    import io

    names = ["_".join(p for p in c if p) for c in table.combos]
    head = list(table.keys)
    for m in table.metrics:
        for name in names:
            prefix = f"{m}_{name}" if name else m
            head += [f"{prefix}_mean", f"{prefix}_std", f"{prefix}_n"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(head)
    for key, cells in table.rows:
        row = ["" if v is None else v for v in key]
        for per_combo in cells:
            for values in per_combo:
                mean, std, n = aggregate(values)
                row += [f"{100 * mean:.4f}", f"{100 * std:.4f}", n] if n else ["", "", 0]
        writer.writerow(row)
    return buf.getvalue()


def preprocessing_table(records: Sequence[dict]) -> str:
    """Table 4 layout (2021 paper): per model x in x out, AUROC and DTACC of ODIN / Mahalanobis / IsoMax+_MDS."""
    return to_markdown(comparison(records, PREPROCESSING, metrics=("auroc", "dtacc")))


def outlier_exposure_table(records: Sequence[dict]) -> str:
    """Table 5 layout (2021 paper): per model x in, TNR@TPR95 and AUROC averaged over the out-distributions,
    SoftMax_ES^OE / IsoMax_ES / IsoMax+_MDS."""
    return to_markdown(comparison(records, OUTLIER_EXPOSURE, metrics=("tnr_at_tpr95", "auroc"), keys=("model", "in_dataset")))
