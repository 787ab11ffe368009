"""Aggregation of result records (mean ± std over seeds) and the papers' table layouts.

One path: :func:`comparison` aggregates :class:`isomax.records.RunRecord` s into a :class:`Table`, which
:func:`to_markdown`, :func:`to_latex` and :func:`to_csv` render; :func:`standard_tables` lists the
tables of ``results.md`` (``isomax bench``) and of ``isomax report``. The ``*_table`` functions are
Markdown shortcuts for one table each.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from . import registry
from ._io import atomic_write_text
from .records import OUTLIER_EXPOSURE as OE
from .records import METRICS, STANDARD, RunRecord, as_records

__all__ = [
    "aggregate",
    "fmt_mean_std",
    "accuracy_table",
    "seamless_table",
    "all_scores_table",
    "LOSS_LABELS",
    "SCORE_LABELS",
    "Table",
    "comparison",
    "best_flags",
    "to_markdown",
    "to_latex",
    "to_csv",
    "METRIC_LABELS",
    "preprocessing_table",
    "outlier_exposure_table",
    "PREPROCESSING",
    "OUTLIER_EXPOSURE",
    "COMBO_LABELS",
    "METHOD_LABELS",
    "TableSpec",
    "standard_tables",
    "write_table_files",
    "ordered",
    "near_far",
    "near_far_table",
    "NEAR_FAR_METRICS",
    "STD_NOTE",
    "role_sets",
]

#: Live ``{loss: label}`` of the registered losses (:class:`isomax.registry.LossSpec` ``label``), in registration order.
LOSS_LABELS = registry.loss_labels()
# Labels of the detectors whose names the papers' tables print in capitals
_DETECTOR_LABELS = {"odin": "ODIN", "mahalanobis": "Mahalanobis"}
#: Live ``{score: label}``: the registered scores (:class:`isomax.registry.ScoreSpec` ``label``) and detectors.
SCORE_LABELS = registry.LiveMapping(lambda: {**registry.score_labels(), **_DETECTOR_LABELS})
METHOD_LABELS = {STANDARD: "standard", OE: "Outlier Exposure"}
# A combo selects records: (loss, score) of standard training, or (loss, score, method); None matches anything.
# Table 3 of the 2021 paper: SoftMax_ES / IsoMax_ES / IsoMax+_MDS
SEAMLESS = (("softmax", "es"), ("isomax", "es"), ("isomaxplus", "mds"))
# Table 4: ODIN / Mahalanobis (both on SoftMax models) / IsoMax+_MDS, AUROC and DTACC per out-distribution
PREPROCESSING = (("softmax", "odin"), ("softmax", "mahalanobis"), ("isomaxplus", "mds"))
# Table 5: SoftMax_ES^OE (trained with Outlier Exposure) / IsoMax_ES / IsoMax+_MDS, averaged over out-distributions
OUTLIER_EXPOSURE = (("softmax", "es", OE), ("isomax", "es"), ("isomaxplus", "mds"))
# Table 6: the IsoMax losses with either score
ISOMAX_SCORES = (("isomax", "es"), ("isomax", "mds"), ("isomaxplus", "es"), ("isomaxplus", "mds"))
EVERYTHING = ((None, None, None),)
# Markdown headers of combos as the papers write them
COMBO_LABELS = {
    ("softmax", "odin"): "ODIN",
    ("softmax", "mahalanobis"): "Mahalanobis",
    ("softmax", "es", OE): "SoftMax<sub>ES</sub><sup>OE</sup>",
}
ALL_METRICS = METRICS
# OpenOOD v1.5's metrics, per near / far / noise group (isomax.data.roles)
NEAR_FAR_METRICS = ("accuracy", "fpr_at_tpr95", "auroc", "auin", "auout")
NEAR_FAR_LABELS = {
    "accuracy": "ID accuracy (%)",
    "fpr_at_tpr95": "FPR@95TPR (%)",
    "auin": "AUPR-in (%)",
    "auout": "AUPR-out (%)",
}
#: the std convention, stated in every caption
STD_NOTE = "mean ± std over seeds (sample std, ddof=1; a cell without ± is a single seed)"


def aggregate(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof=1; 0 for one value) and count."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def fmt_mean_std(values: Iterable[float], scale: float = 100.0, digits: int = 1, bold: bool = False) -> str:
    """``"95.3±0.2"`` (mean ± sample std, ddof=1) from fractions (percent, one decimal by default); one value
    alone has no std: ``"95.3"``; ``"–"`` if there are none."""
    mean, std, n = aggregate(values)
    if n == 0:
        return "–"
    text = f"{scale * mean:.{digits}f}±{scale * std:.{digits}f}" if n > 1 else f"{scale * mean:.{digits}f}"
    return f"**{text}**" if bold else text


def _group(records: Sequence[RunRecord], *keys: str) -> dict[tuple, list[RunRecord]]:
    groups: dict[tuple, list[RunRecord]] = defaultdict(list)
    for r in records:
        groups[tuple(r.get(k) for k in keys)].append(r)
    return groups


def ordered(values: Iterable, order: Sequence) -> list:
    """The distinct ``values`` in first-seen order, those listed in ``order`` first and in its order."""
    seen = list(dict.fromkeys(values))
    return [v for v in order if v in seen] + [v for v in seen if v not in order]


def accuracy_table(records: Sequence[RunRecord | dict]) -> str:
    """Table 2 layout: test accuracy per model x in-distribution, one column per loss (standard training)."""
    return to_markdown(_accuracy(as_records(records)))


def seamless_table(
    records: Sequence[RunRecord | dict],
    combos: Sequence[tuple] = SEAMLESS,
    metrics: Sequence[str] = ("tnr_at_tpr95", "auroc"),
) -> str:
    """Table 3 layout: per model x in x out, ``a / b / c`` for each metric; the best mean in bold."""
    return to_markdown(comparison(records, combos, metrics))


def all_scores_table(
    records: Sequence[RunRecord | dict], metrics: Sequence[str] = ("tnr_at_tpr95", "auroc", "dtacc", "auin", "auout")
) -> str:
    """Every loss x training method x score x out-distribution, one row each (mean ± std over seeds, %)."""
    return to_markdown(_all_scores(as_records(records), metrics))


def _accuracy(records: Sequence[RunRecord]) -> Table:
    losses = ordered((r.loss for r in records), list(LOSS_LABELS))
    columns = [(loss, None) for loss in losses]
    table = comparison(records, columns, ("accuracy",), keys=("model", "in_dataset"), joined=False)
    table.bold = False  # as in the papers: accuracy is not a contest
    return table


def _selective(records: Sequence[RunRecord]) -> Table:
    # AURC depends on the in-distribution only: the same in every record of a run and score
    table = comparison(records, EVERYTHING, ("aurc",), keys=("in_dataset", "loss", "method", "score"), joined=False)
    table.seeds_column = True
    return table


def _all_scores(records: Sequence[RunRecord], metrics: Sequence[str] = ALL_METRICS) -> Table:
    table = comparison(
        records, EVERYTHING, metrics, keys=("in_dataset", "out_dataset", "loss", "method", "score"), joined=False
    )
    table.seeds_column = True
    return table


def role_sets(records: Sequence[RunRecord | dict]) -> dict[tuple[str, str | None], list[str]]:
    """(in_dataset, role) -> its out-distributions in the records, in first-seen order."""
    out: dict[tuple, list[str]] = defaultdict(list)
    for r in as_records(records):
        key = (r.in_dataset, r.ood_role)
        if r.out_dataset not in out[key]:
            out[key].append(r.out_dataset)
    return dict(out)


def _role_rank(role: str | None) -> int:
    from .data.roles import ROLE_ORDER

    return ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER)


def near_far(records: Sequence[RunRecord | dict], metrics: Sequence[str] = NEAR_FAR_METRICS) -> Table:
    """One row per in-distribution x OOD group (near / far / noise, :mod:`isomax.data.roles`; "–": no role)
    x loss x training method x score: each seed's mean over the group's out-distributions, then mean ± std
    over seeds. Generic over losses and scores: every combination in the records gets its rows."""
    records = as_records(records)
    table = comparison(
        records, EVERYTHING, metrics, keys=("in_dataset", "role", "loss", "method", "score"), joined=False
    )
    first = {d: i for i, d in enumerate(dict.fromkeys(r.in_dataset for r in records))}
    table.rows.sort(key=lambda row: (first.get(row[0][0], 0), _role_rank(row[0][1])))
    table.metric_labels, table.seeds_column = NEAR_FAR_LABELS, True
    return table


def near_far_table(records: Sequence[RunRecord | dict], metrics: Sequence[str] = NEAR_FAR_METRICS) -> str:
    """Markdown of :func:`near_far`."""
    return to_markdown(near_far(records, metrics))


def _groups_text(records: Sequence[RunRecord]) -> str:
    return "; ".join(
        f"{ind} {role or 'no role'}: {', '.join(oods)}"
        for (ind, role), oods in sorted(role_sets(records).items(), key=lambda kv: _role_rank(kv[0][1]))
    )


# --- Structured tables: the same aggregation rendered as Markdown, LaTeX (booktabs) or CSV -------------------------

METRIC_LABELS = {
    "accuracy": "Test accuracy (%)",
    "tnr_at_tpr95": "TNR@TPR95 (%)",
    "auroc": "AUROC (%)",
    "dtacc": "DTACC (%)",
    "auin": "AUIN (%)",
    "auout": "AUOUT (%)",
    "fpr_at_tpr95": "FPR@TPR95 (%)",
    "aurc": "AURC (%)",
}
KEY_LABELS = {
    "model": "Model",
    "in_dataset": "Data (training)",
    "out_dataset": "OOD (unseen)",
    "loss": "Loss",
    "role": "OOD group",
    "method": "Training",
    "score": "Score",
    "entropic_scale": "E_s",
}
LOWER_IS_BETTER = frozenset({"fpr_at_tpr95", "aurc"})


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
    seeds_column: bool = False  # Markdown: a last column with the number of seeds of the row
    bold: bool = True  # the best mean of each metric in bold

    def metric_label(self, metric: str) -> str:
        return (self.metric_labels or {}).get(metric) or METRIC_LABELS.get(metric, metric)


def _matches(r: RunRecord, combo: tuple) -> bool:
    loss, score = combo[:2]
    method = combo[2] if len(combo) > 2 else STANDARD
    return (
        (loss is None or r.loss == loss)
        and (score is None or r.score == score)
        and (method is None or r.method == method)
    )


def comparison(
    records: Sequence[RunRecord | dict],
    combos: Sequence[tuple],
    metrics: Sequence[str] = ("tnr_at_tpr95", "auroc"),
    keys: Sequence[str] = ("model", "in_dataset", "out_dataset"),
    joined: bool = True,
) -> Table:
    """One value per seed and cell; a seed's value is the mean over the out-distributions of its group (so
    leaving ``out_dataset`` out of ``keys`` gives the "averaged over all out-distributions" of Tables 5 and 6).
    A combo is ``(loss, score)`` (standard training) or ``(loss, score, method)``; ``None`` matches anything.
    Combos without any record are dropped."""
    records = as_records(records)
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
                        by_seed[r.seed][r.out_dataset] = float(r.get(metric))
                per_combo.append([float(np.mean(list(v.values()))) for v in by_seed.values()])
            cells.append(per_combo)
        rows.append((key, cells))
    return Table(tuple(keys), tuple(metrics), combos, rows, joined)


def best_flags(values: Sequence[Sequence[float]], metric: str = "", enabled: bool = True) -> list[bool]:
    """Which cells hold the best mean (highest; lowest for FPR); none when fewer than two cells are filled
    (or when not ``enabled``)."""
    means = [aggregate(v)[0] if len(v) else None for v in values]
    filled = [m for m in means if m is not None]
    if len(filled) < 2 or not enabled:
        return [False] * len(values)
    best = min(filled) if metric in LOWER_IS_BETTER else max(filled)
    return [m is not None and m == best for m in means]


def _combo_label(combo, style: str) -> str:
    if style == "md" and tuple(combo) in COMBO_LABELS:
        return COMBO_LABELS[tuple(combo)]
    loss, score = combo[:2]
    method = combo[2] if len(combo) > 2 else STANDARD
    name = LOSS_LABELS.get(loss, loss) if loss else ""
    s = SCORE_LABELS.get(score, score) if score else ""
    m = method.upper() if method not in (None, STANDARD) else ""
    if style == "latex":
        sub = f"_\\mathrm{{{_tex_escape(s)}}}" if s else ""
        sup = f"^\\mathrm{{{_tex_escape(m)}}}" if m else ""
        text = f"${sub}{sup}$" if sub or sup else ""
        return f"{_tex_escape(name)}{text}" if name else _tex_escape(" ".join(filter(None, (s, m))))
    if not name:
        return " ".join(filter(None, (s, m)))
    return name + (f"<sub>{s}</sub>" if s else "") + (f"<sup>{m}</sup>" if m else "")


_VALUE_LABELS = {"loss": LOSS_LABELS, "score": SCORE_LABELS, "method": METHOD_LABELS}


def _key_text(field: str, value) -> str:
    if field in _VALUE_LABELS:
        return _VALUE_LABELS[field].get(value, str(value))
    if isinstance(value, float):
        return f"{value:g}"
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
    if table.seeds_column:
        head.append("Seeds")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, cells in table.rows:
        out = [_key_text(f, v) for f, v in zip(table.keys, key)]
        for m, per_combo in zip(table.metrics, cells):
            texts = [fmt_mean_std(v, bold=b) for v, b in zip(per_combo, best_flags(per_combo, m, table.bold))]
            out += [" / ".join(texts)] if table.joined else texts
        if table.seeds_column:
            out.append(str(max((len(v) for per_combo in cells for v in per_combo), default=0)))
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines)


def _tex_escape(text: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("$", r"\$"),
        ("#", r"\#"),
        ("_", r"\_"),
        ("{", r"\{"),
        ("}", r"\}"),
        ("~", r"\textasciitilde{}"),
        ("^", r"\textasciicircum{}"),
    ):
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
        rules = [
            rf"\cmidrule(lr){{{n_keys + 1 + i * n_combos}-{n_keys + (i + 1) * n_combos}}}"
            for i in range(len(metric_names))
        ]
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
            for v, b in zip(per_combo, best_flags(per_combo, m, table.bold)):
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


def preprocessing_table(records: Sequence[RunRecord | dict]) -> str:
    """Table 4 layout (2021 paper): per model x in x out, AUROC and DTACC of ODIN / Mahalanobis / IsoMax+_MDS."""
    return to_markdown(comparison(records, PREPROCESSING, metrics=("auroc", "dtacc")))


def outlier_exposure_table(records: Sequence[RunRecord | dict]) -> str:
    """Table 5 layout (2021 paper): per model x in, TNR@TPR95 and AUROC averaged over the out-distributions,
    SoftMax_ES^OE / IsoMax_ES / IsoMax+_MDS."""
    return to_markdown(
        comparison(records, OUTLIER_EXPOSURE, metrics=("tnr_at_tpr95", "auroc"), keys=("model", "in_dataset"))
    )


# --- The tables of results.md and of the report ------------------------------------------------------------------


@dataclass
class TableSpec:
    """A named table with its title and caption, or the note saying why it was skipped (``table`` None)."""

    name: str
    title: str
    caption: str = ""
    table: Table | None = None
    note: str | None = None

    def markdown(self, links: bool = False, level: int = 2) -> list[str]:
        """The section's lines: title, then the caption and the table (and links to its files) or the note."""
        lines = [f"{'#' * level} {self.title}", ""]
        if self.table is None:
            note = self.note or "skipped"
            return lines + [f"_{note[0].upper()}{note[1:]}_", ""]
        lines += [self.caption, "", to_markdown(self.table), ""]
        if links:
            lines += [
                f"Files: [`tables/{self.name}.tex`](tables/{self.name}.tex), "
                f"[`tables/{self.name}.csv`](tables/{self.name}.csv)",
                "",
            ]
        return lines


def _spec(name: str, title: str, caption: str, table: Table | None, missing: str) -> TableSpec:
    if table is None or not table.rows or not table.combos:
        return TableSpec(name, title, note=missing)
    return TableSpec(name, title, caption, table)


def standard_tables(records: Sequence[RunRecord | dict]) -> list[TableSpec]:
    """The papers' tables (2-6) and every loss x method x score, for ``results.md`` and ``isomax report``."""
    records = as_records(records)
    present = {(r.loss, r.score, r.method) for r in records}
    no_match = "skipped: no matching records in the inputs."
    has_posthoc = any((loss, score, STANDARD) in present for loss, score in PREPROCESSING[:2])
    has_oe = any(r.method == OE for r in records)
    return [
        _spec(
            "table2_accuracy",
            "Test accuracy (Table 2 layout)",
            f"Test accuracy (%), {STD_NOTE} (standard training; Outlier Exposure models are in Table 5).",
            _accuracy(records),
            no_match,
        ),
        _spec(
            "table3_seamless",
            "Seamless OOD detection (Table 3 layout)",
            f"SoftMax ES / IsoMax ES / IsoMax+ MDS, {STD_NOTE}; best mean in bold.",
            comparison(records, SEAMLESS, ("tnr_at_tpr95", "auroc")),
            no_match,
        ),
        _spec(
            "table4_posthoc",
            "Comparison with input-preprocessing approaches (Table 4 layout)",
            "ODIN / Mahalanobis (on SoftMax models, hyperparameters validated on adversarial samples) / IsoMax+ MDS; "
            f"{STD_NOTE}; best mean in bold.",
            comparison(records, PREPROCESSING, ("auroc", "dtacc")) if has_posthoc else None,
            "skipped: no ODIN or Mahalanobis records (SoftMax runs, score `odin` / `mahalanobis`) in the inputs "
            "(`isomax bench --methods ...`).",
        ),
        _spec(
            "table5_outlier_exposure",
            "Outlier Exposure vs IsoMax losses (Table 5 layout)",
            "SoftMax ES trained with Outlier Exposure / IsoMax ES / IsoMax+ MDS, averaged over the out-distributions "
            f"of each seed, then {STD_NOTE}; best mean in bold.",
            comparison(records, OUTLIER_EXPOSURE, ("tnr_at_tpr95", "auroc"), keys=("model", "in_dataset"))
            if has_oe
            else None,
            "skipped: no Outlier Exposure records (training method `oe`) in the inputs.",
        ),
        _spec(
            "table6_scores",
            "IsoMax variants with different scores (Table 6 layout)",
            "IsoMax ES / IsoMax MDS / IsoMax+ ES / IsoMax+ MDS, averaged over the out-distributions of each seed, "
            f"then {STD_NOTE}; best mean in bold.",
            comparison(records, ISOMAX_SCORES, ("tnr_at_tpr95", "auroc"), keys=("model", "in_dataset")),
            no_match,
        ),
        _spec(
            "selective_classification",
            "Selective classification (risk-coverage)",
            "AURC (%): area under the risk-coverage curve when the score rejects in-distribution test inputs "
            f"(risk: error rate of the accepted ones); lower is better; {STD_NOTE}.",
            _selective(records) if any(r.aurc is not None for r in records) else None,
            "skipped: no AURC in the inputs (records written before isomax evaluate measured it).",
        ),
        _spec(
            "near_far",
            "Near-OOD / far-OOD (OpenOOD v1.5 groups)",
            "OpenOOD's metrics per group of out-distributions (isomax.data.roles; "
            + _groups_text(records)
            + f"): each seed's mean over the group's sets, then {STD_NOTE} (%); AUPR-in/out: the AUIN/AUOUT of the "
            "papers (area under precision vs recall, in- or out-distribution positive; isomax.metrics).",
            near_far(records),
            no_match,
        ),
        _spec(
            "all_scores",
            "Every loss and score",
            f"Every loss x training method x score x out-distribution, {STD_NOTE} (%).",
            _all_scores(records),
            no_match,
        ),
    ]


def write_table_files(table: Table, folder: str | Path, name: str, caption: str | None = None) -> list[Path]:
    """``<folder>/<name>.md``, ``.tex`` (booktabs, label ``tab:<name>``) and ``.csv`` of one table."""
    folder = Path(folder)
    return [
        atomic_write_text(folder / f"{name}.md", to_markdown(table) + "\n"),
        atomic_write_text(folder / f"{name}.tex", to_latex(table, caption=caption, label=f"tab:{name}")),
        atomic_write_text(folder / f"{name}.csv", to_csv(table)),
    ]
