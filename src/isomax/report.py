"""``isomax report``: a self-contained Markdown report with figures and tables from benches and runs.

Inputs (any mix, merged):

* a bench or evaluate output directory (``results.json`` and/or ``outputs/*.npz``; run directories
  under ``runs/`` add training curves);
* a run directory (``config.json``, made by ``isomax train`` or under a bench's ``runs/``): its
  training curve, plus its logits and records when it sits in a bench's ``runs/``;
* an ``.npz`` written by evaluation (``logits/in``, ``labels/in``, ``logits/<ood>``, ``meta``).

Writes into ``out``: ``report.md`` (figures embedded by relative path), ``figures/*.png`` and
``tables/<name>.{md,tex,csv}``. Tables use every seed (mean ± std); histograms and ROC curves use
the first seed (seed 0 when present). Whatever is missing is skipped with a note in the report.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import plots, tables
from .tables import LOSS_LABELS, SCORE_LABELS

__all__ = ["write_report", "load_inputs", "ReportInputs", "RunArrays", "ROC_COMBOS"]

#: (loss, score) pairs drawn on the ROC figures when their logits are available.
ROC_COMBOS = (("softmax", "mps"), ("softmax", "es"), ("isomax", "es"), ("isomax", "mds"), ("isomaxplus", "es"),
              ("isomaxplus", "mds"))
_LOSS_ORDER = tuple(LOSS_LABELS)


@dataclass
class RunArrays:
    """Lazy view of one evaluation ``.npz``."""

    path: Path
    meta: dict
    ood_names: list[str]

    @property
    def loss(self) -> str:
        return self.meta.get("loss") or "?"

    @property
    def seed(self):
        return self.meta.get("seed")

    def load(self) -> dict[str, np.ndarray]:
        with np.load(self.path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}


@dataclass
class ReportInputs:
    records: list[dict] = field(default_factory=list)
    arrays: list[RunArrays] = field(default_factory=list)
    histories: list[dict] = field(default_factory=list)  # loss, seed, dataset, model, run, history
    sweeps: list[tuple[Path, dict]] = field(default_factory=list)  # (directory, sweep.json) of `isomax sweep`
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _read_npz_meta(path: Path) -> RunArrays:
    with np.load(path, allow_pickle=False) as z:
        if "logits/in" not in z.files:
            raise ValueError(f"{path} is not an evaluation output: it has no 'logits/in' array")
        meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
        oods = [k.split("/", 1)[1] for k in z.files if k.startswith("logits/") and k != "logits/in"]
    meta.setdefault("loss", _guess_from_name(path.stem)[0])
    meta.setdefault("seed", _guess_from_name(path.stem)[1])
    return RunArrays(path, meta, oods)


def _guess_from_name(stem: str):
    m = re.match(r"(.+?)(?:-es[\d.e+-]+)?-seed(\d+)$", stem)
    return (m.group(1), int(m.group(2))) if m else (stem, None)


def _read_history(run_dir: Path) -> dict | None:
    log, config = run_dir / "log.jsonl", run_dir / "config.json"
    if not log.exists():
        return None
    rows = []
    for line in log.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    cfg = json.loads(config.read_text()) if config.exists() else {}
    return dict(loss=cfg.get("loss", _guess_from_name(run_dir.name)[0]), seed=cfg.get("seed"), dataset=cfg.get("dataset"),
                model=cfg.get("model"), run=str(run_dir), history=rows)


def _read_records(path: Path) -> list[dict]:
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"cannot read {path}: {err}") from err
    if not isinstance(records, list):
        raise ValueError(f"{path} should hold a list of records, but holds a {type(records).__name__}")
    return [r for r in records if isinstance(r, dict)]


def load_inputs(paths: Sequence[str | Path]) -> ReportInputs:
    """Collect records, logits and training histories from bench/evaluate/run directories and ``.npz`` files."""
    inp = ReportInputs()
    if not paths:
        raise ValueError("Expected at least one bench, evaluate or run directory")
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"{p} does not exist")
        if p.is_file() and p.suffix == ".npz":
            inp.arrays.append(_read_npz_meta(p))
            inp.sources.append(f"`{p}` (logits)")
            continue
        if p.is_file() and p.name == "results.json":
            p = p.parent
        if not p.is_dir():
            raise ValueError(f"{p} is neither a bench/evaluate output directory nor a run directory nor an .npz")
        results, outputs, runs = p / "results.json", p / "outputs", p / "runs"
        if (p / "sweep.json").exists():  # its runs differ in E_s: only the sweep's own table and figure
            try:
                inp.sweeps.append((p, json.loads((p / "sweep.json").read_text())))
            except json.JSONDecodeError as err:
                raise ValueError(f"cannot read {p / 'sweep.json'}: {err}") from err
            inp.sources.append(f"`{p}` (entropic-scale sweep)")
            continue
        is_result_dir = results.exists() or outputs.is_dir()
        is_run_dir = (p / "config.json").exists()
        if not (is_result_dir or is_run_dir):
            raise ValueError(f"{p} is neither a bench/evaluate output directory (results.json or outputs/*.npz), "
                             f"nor a run directory (config.json, made by `isomax train`), nor a sweep (sweep.json)")
        if is_result_dir:
            if results.exists():
                inp.records += _read_records(results)
            npzs = sorted(outputs.glob("*.npz")) if outputs.is_dir() else []
            inp.arrays += [_read_npz_meta(f) for f in npzs]
            for run in sorted(runs.iterdir()) if runs.is_dir() else []:
                h = _read_history(run) if run.is_dir() else None
                if h:
                    inp.histories.append(h)
            inp.sources.append(f"`{p}` ({'results.json' if results.exists() else 'no results.json'}, "
                               f"{len(npzs)} logit file(s))")
        if is_run_dir:
            h = _read_history(p)
            if h:
                inp.histories.append(h)
            bench = p.parent.parent if p.parent.name == "runs" else None
            extra = ""
            if bench is not None and not is_result_dir:
                npz = bench / "outputs" / f"{p.name}.npz"
                if npz.exists():
                    inp.arrays.append(_read_npz_meta(npz))
                    extra += ", logits"
                if (bench / "results.json").exists() and h:
                    inp.records += [r for r in _read_records(bench / "results.json")
                                    if r.get("loss") == h["loss"] and r.get("seed") == h["seed"]]
                    extra += ", records"
            if not is_result_dir:
                inp.sources.append(f"`{p}` (run directory{extra})")
    inp.records = _dedupe(inp.records, inp.notes)
    seen, arrays = set(), []
    for a in inp.arrays:
        if a.path.resolve() not in seen:
            seen.add(a.path.resolve())
            arrays.append(a)
    inp.arrays = arrays
    return inp


def _dedupe(records: list[dict], notes: list[str]) -> list[dict]:
    keys = ("in_dataset", "out_dataset", "model", "loss", "score", "seed")
    out, seen, dropped = [], set(), 0
    for r in records:
        k = tuple(r.get(x) for x in keys)
        if k in seen:
            dropped += 1
            continue
        seen.add(k)
        out.append(r)
    if dropped:
        notes.append(f"{dropped} duplicate record(s) (same data, model, loss, score and seed) were ignored; "
                     "the first input wins.")
    return out


# --- tables ------------------------------------------------------------------------------------------------------

def _loss_order(values) -> list:
    seen = list(dict.fromkeys(values))
    return [v for v in _LOSS_ORDER if v in seen] + [v for v in seen if v not in _LOSS_ORDER]


def table_specs(records: Sequence[dict]) -> list[dict]:
    """The tables of the report: name, title, caption and the structured :class:`isomax.tables.Table` (or a note)."""
    specs = []
    losses = _loss_order(r.get("loss") for r in records)
    specs.append(dict(name="table2_accuracy", title="Test accuracy (Table 2 layout)",
                      caption="Test accuracy (%), mean ± std over seeds.",
                      table=tables.comparison([r for r in records if r.get("score") != "oe"],  # OE: other models
                                              [(l, None) for l in losses], ("accuracy",),
                                              keys=("model", "in_dataset"), joined=False)))
    specs.append(dict(name="table3_seamless", title="Seamless OOD detection (Table 3 layout)",
                      caption="SoftMax ES / IsoMax ES / IsoMax+ MDS, mean ± std over seeds; best mean in bold.",
                      table=tables.comparison(records, tables.SEAMLESS, ("tnr_at_tpr95", "auroc"))))
    present = {(r.get("loss"), r.get("score")) for r in records}
    if present & set(tables.PREPROCESSING[:2]):
        specs.append(dict(name="table4_posthoc", title="Comparison with input-preprocessing approaches (Table 4 layout)",
                          caption="ODIN / Mahalanobis (hyperparameters validated on adversarial samples) / IsoMax+ MDS; "
                                  "mean ± std over seeds; best mean in bold.",
                          table=tables.comparison(records, tables.PREPROCESSING, ("auroc", "dtacc"))))
    else:
        specs.append(dict(name="table4_posthoc", title="Comparison with input-preprocessing approaches (Table 4 layout)",
                          note="skipped: no ODIN or Mahalanobis records (SoftMax runs, score `odin` / `mahalanobis`) "
                               "in the inputs (`isomax bench --methods ...`)."))
    if tables.OUTLIER_EXPOSURE[0] in present:
        specs.append(dict(name="table5_outlier_exposure", title="Outlier Exposure vs IsoMax losses (Table 5 layout)",
                          caption="SoftMax+OE / IsoMax ES / IsoMax+ MDS, averaged over the out-distributions of each "
                                  "seed, then mean ± std over seeds; best mean in bold.",
                          table=tables.comparison(records, tables.OUTLIER_EXPOSURE, ("tnr_at_tpr95", "auroc"),
                                                  keys=("model", "in_dataset"))))
    else:
        specs.append(dict(name="table5_outlier_exposure", title="Outlier Exposure vs IsoMax losses (Table 5 layout)",
                          note="skipped: no Outlier Exposure records (SoftMax runs, score `oe`) in the inputs."))
    specs.append(dict(name="table6_scores", title="IsoMax variants with different scores (Table 6 layout)",
                      caption="IsoMax ES / IsoMax MDS / IsoMax+ ES / IsoMax+ MDS, averaged over the out-distributions "
                              "of each seed, then mean ± std over seeds; best mean in bold.",
                      table=tables.comparison(records, [("isomax", "es"), ("isomax", "mds"), ("isomaxplus", "es"),
                                                        ("isomaxplus", "mds")], ("tnr_at_tpr95", "auroc"),
                                              keys=("model", "in_dataset"))))
    specs.append(dict(name="all_scores", title="Every loss and score",
                      caption="Every loss x score x out-distribution, mean ± std over seeds (%).",
                      table=tables.comparison(records, [(None, None)],
                                              ("tnr_at_tpr95", "auroc", "dtacc", "auin", "auout", "fpr_at_tpr95"),
                                              keys=("in_dataset", "out_dataset", "loss", "score"), joined=False)))
    for s in specs:
        t = s.get("table")
        if t is not None and (not t.rows or not t.combos):
            s["note"] = "skipped: no matching records in the inputs."
            s["table"] = None
    return specs


# --- figures -----------------------------------------------------------------------------------------------------

def _slug(text) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", str(text)).strip("_") or "x"


def _first_seed_arrays(arrays: Sequence[RunArrays], seed: int | None) -> dict[tuple, RunArrays]:
    """(in_dataset, model) -> loss -> the arrays of the requested (or the smallest) seed."""
    chosen: dict[tuple, dict[str, RunArrays]] = {}
    for a in arrays:
        group = chosen.setdefault((a.meta.get("in_dataset"), a.meta.get("model")), {})
        cur = group.get(a.loss)
        if seed is not None:
            if a.seed == seed and cur is None:
                group[a.loss] = a
        elif cur is None or _seed_key(a.seed) < _seed_key(cur.seed):
            group[a.loss] = a
    return {k: dict(sorted(v.items(), key=lambda kv: _loss_order(v).index(kv[0]))) for k, v in chosen.items() if v}


def _seed_key(seed):
    return (seed is None, seed if isinstance(seed, int) else 0)


def _scores(logits: np.ndarray, score: str) -> np.ndarray:
    import torch

    from .scores import SCORES

    return SCORES[score](torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32))).numpy()


def _grid(rows: list[tuple[str, list[str | None]]], columns: list[str]) -> str:
    """A Markdown table of images: one row per out-distribution, one column per loss."""
    lines = ["| out-distribution | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, cells in rows:
        lines.append(f"| {name} | " + " | ".join(f"![{name}]({c})" if c else "–" for c in cells) + " |")
    return "\n".join(lines)


def _figures_for_group(key: tuple, by_loss: dict[str, RunArrays], out: Path, notes: list[str],
                       log: Callable[[str], None]) -> list[str]:
    from .metrics import ood_metrics, roc_sweep

    in_name, model = key
    tag = _slug(f"{in_name}-{model}")
    fig_dir = out / "figures"
    md: list[str] = []
    data = {loss: a.load() for loss, a in by_loss.items()}
    losses = list(data)
    oods = list(dict.fromkeys(o for a in by_loss.values() for o in a.ood_names))
    seeds = ", ".join(f"{LOSS_LABELS.get(l, l)} seed {by_loss[l].seed}" for l in losses)
    md += [f"### In-distribution `{in_name}`, model `{model}`", "", f"Logits of: {seeds}.", ""]
    if not oods:
        notes.append(f"{in_name}/{model}: the logit files hold no out-distribution; histograms and ROC curves skipped.")
        return md
    columns = [LOSS_LABELS.get(l, l) for l in losses]

    def rel(p: Path) -> str:
        return p.relative_to(out).as_posix()

    def cell(loss, ood, fn) -> str | None:
        d = data[loss]
        if f"logits/{ood}" not in d:
            return None
        return fn(d["logits/in"], d[f"logits/{ood}"], d)

    # Fig. 3 (2019): intra-/inter-class logits
    rows = [(o, [cell(l, o, lambda li, lo, d, l=l, o=o: rel(plots.logit_histograms(
        li, lo, fig_dir / f"logits_{tag}_{_slug(l)}_{_slug(o)}.png", loss=l, in_name=in_name, out_name=o)))
        for l in losses]) for o in oods]
    md += ["#### Intra-class and inter-class logits (Fig. 3 of the 2019 paper)", "",
           "Intra-class: the logit of the predicted class; inter-class: the other logits. In-distribution filled, "
           "out-distribution hatched; each histogram in percent of its own samples.", "", _grid(rows, columns), ""]
    log(f"figures: logits for {in_name}/{model}")

    for quantity, title in (("max_probability", "Maximum probability (Fig. 4 of the 2019 paper)"),
                            ("entropy", "Entropy (Fig. 6 of the 2019 paper; Fig. 1a-b of the 2021 paper)")):
        fn = plots.max_probability if quantity == "max_probability" else plots.entropy
        rows = [(o, [cell(l, o, lambda li, lo, d, l=l, o=o: rel(plots.score_histogram(
            fn(li), fn(lo), fig_dir / f"{quantity}_{tag}_{_slug(l)}_{_slug(o)}.png", quantity=quantity, loss=l,
            in_name=in_name, out_name=o, num_classes=li.shape[1]))) for l in losses]) for o in oods]
        md += [f"#### {title}", "", "Probabilities are `softmax(logits)` without the entropic scale.", "",
               _grid(rows, columns), ""]

    dist_losses = [l for l in losses if l in ("isomax", "isomaxplus")]
    md += ["#### Minimum distance (Fig. 1c-d of the 2021 paper)", ""]
    if dist_losses:
        def dist_cell(loss, ood):
            def draw(li, lo, d):
                scale = float(d["distance_scale"]) if loss == "isomaxplus" and "distance_scale" in d else 1.0
                note = "normalised" if loss == "isomaxplus" else "Euclidean"
                return rel(plots.score_histogram(plots.min_distance(li, scale), plots.min_distance(lo, scale),
                                                 fig_dir / f"min_distance_{tag}_{_slug(loss)}_{_slug(ood)}.png",
                                                 quantity="min_distance", loss=loss, in_name=in_name, out_name=ood,
                                                 note=note))
            return cell(loss, ood, draw)

        rows = [(o, [dist_cell(l, o) for l in dist_losses]) for o in oods]
        md += ["IsoMax: `-max logit` (Euclidean distance); IsoMax+: `-max logit / |d_s|` (distance between normalised "
               "feature and prototype, in [0, 2]).", "", _grid(rows, [LOSS_LABELS.get(l, l) for l in dist_losses]), ""]
        if "isomaxplus" in dist_losses and "distance_scale" not in data["isomaxplus"]:
            notes.append(f"{in_name}/{model}: the IsoMax+ logit file has no `distance_scale`; distances assume |d_s| = 1.")
    else:
        md += ["_Skipped: no IsoMax or IsoMax+ logits._", ""]
        notes.append(f"{in_name}/{model}: minimum-distance histograms skipped (no IsoMax/IsoMax+ logits).")

    md += ["#### ROC curves", "",
           "From the same sweep as the metrics (`isomax.metrics.roc_sweep`); legend: loss, score and AUROC (%). "
           "Colour = loss, line style = score.", ""]
    for o in oods:
        curves = []
        for loss, score in ROC_COMBOS:
            if loss in data and f"logits/{o}" in data[loss]:
                s_in, s_out = _scores(data[loss]["logits/in"], score), _scores(data[loss][f"logits/{o}"], score)
                tp, fp = roc_sweep(s_in, s_out)
                curves.append(dict(loss=loss, score=score, tp=tp, fp=fp, auroc=ood_metrics(s_in, s_out)["auroc"]))
        if curves:
            p = plots.roc_figure(curves, fig_dir / f"roc_{tag}_{_slug(o)}.png", in_name=in_name, out_name=o)
            md += [f"![ROC {o}]({rel(p)})", ""]
    log(f"figures: histograms and ROC curves for {in_name}/{model}")
    return md


def write_report(paths: Sequence[str | Path], out: str | Path, *, seed: int | None = None, title: str = "isomax report",
                 command: str | None = None, log: Callable[[str], None] = print) -> Path:
    """Write ``out/report.md`` with its figures and tables; returns the path of ``report.md``."""
    inp = load_inputs(paths)
    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    notes = list(inp.notes)
    md = [f"# {title}", ""]
    if command:
        md += ["Produced by:", "", "```", command, "```", ""]
    md += ["Inputs: " + "; ".join(inp.sources) + ".", "",
           "Tables: mean ± std over seeds (sample std), in percent; the best mean of each comparison in bold. Each "
           "table is also in `tables/` as Markdown, LaTeX (booktabs) and CSV. Figures: the first seed (seed 0 when "
           "present) unless `--seed` says otherwise.", ""]

    md += ["## Tables", ""]
    if not inp.records:
        md += ["_No result records (results.json) in the inputs: tables skipped._", ""]
        notes.append("no records (results.json): every table skipped.")
    else:
        seeds = sorted({r.get("seed") for r in inp.records}, key=_seed_key)
        md += [f"{len(inp.records)} records; seeds {seeds}.", ""]
        for spec in table_specs(inp.records):
            md += [f"### {spec['title']}", ""]
            t = spec.get("table")
            if t is None:
                md += [f"_{spec['note'][0].upper()}{spec['note'][1:]}_", ""]
                continue
            text = tables.to_markdown(t)
            (out / "tables" / f"{spec['name']}.md").write_text(text + "\n")
            (out / "tables" / f"{spec['name']}.tex").write_text(
                tables.to_latex(t, caption=spec.get("caption"), label=f"tab:{spec['name']}"))
            (out / "tables" / f"{spec['name']}.csv").write_text(tables.to_csv(t))
            md += [spec.get("caption", ""), "", text, "",
                   f"Files: [`tables/{spec['name']}.tex`](tables/{spec['name']}.tex), "
                   f"[`tables/{spec['name']}.csv`](tables/{spec['name']}.csv)", ""]
        conversions = sorted({(r["out_dataset"], r["conversion"]) for r in inp.records if r.get("conversion")})
        if conversions:
            md += ["Out-distribution conversions: " + "; ".join(f"{o}: {c}" for o, c in conversions), ""]

    for i, (sweep_dir, summary) in enumerate(inp.sweeps):
        md += _sweep_section(i, sweep_dir, summary, out)
        from .sweep import _norm

        val = summary.get("val_ood")
        if val and any(_norm(r.get("out_dataset", "")) == _norm(val) for r in inp.records):
            notes.append(f"**warning:** `{val}` chose E_s in the sweep `{sweep_dir}` and is also a test "
                         "out-distribution in the tables: its results there are not from an unseen set.")

    md += ["## Figures", ""]
    groups = _first_seed_arrays(inp.arrays, seed)
    if not groups:
        what = f"for seed {seed}" if seed is not None and inp.arrays else "in the inputs"
        md += [f"_No logit files (outputs/*.npz) {what}: histograms and ROC curves skipped._", ""]
        notes.append(f"no logit files {what}: histograms and ROC curves skipped.")
    for key, by_loss in groups.items():
        md += _figures_for_group(key, by_loss, out, notes, log)

    md += ["### Training curves", ""]
    if inp.histories:
        for (dataset, model), hs in _group_histories(inp.histories).items():
            p = plots.training_curves(hs, out / "figures" / f"training_{_slug(f'{dataset}-{model}')}.png",
                                      title=f"{dataset}, {model}: {len(hs)} run(s)")
            md += [f"![training curves]({p.relative_to(out).as_posix()})", ""]
    else:
        md += ["_No run directories with log.jsonl in the inputs: skipped._", ""]
        notes.append("no training logs (runs/*/log.jsonl): training curves skipped.")

    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    path = out / "report.md"
    path.write_text("\n".join(md))
    return path


def _group_histories(histories: Sequence[dict]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for h in sorted(histories, key=lambda h: (_loss_order([x["loss"] for x in histories]).index(h["loss"]),
                                              _seed_key(h["seed"]))):
        groups.setdefault((h.get("dataset"), h.get("model")), []).append(h)
    return groups


def _sweep_section(i: int, sweep_dir: Path, s: dict, out: Path) -> list[str]:
    """Table (validation split vs the validation out-distribution) and figure of an `isomax sweep` directory."""
    name = f"sweep{i + 1}"
    val_ood = s.get("val_ood", "?")
    md = [f"## Entropic-scale sweep: `{sweep_dir}` (Fig. 2 of the 2019 paper)", "",
          f"Validation out-distribution **{val_ood}** against the validation split of the in-distribution "
          f"(it must not appear among the test out-distributions above). Chosen: "
          + (", ".join(f"{LOSS_LABELS.get(l, l)} E_s = {v:g}" for l, v in s.get("chosen", {}).items()) or "none") + ".", ""]
    records = [r for run in s.get("runs", {}).values() for r in run.get("validation", [])]
    if not records:
        return md + ["_Skipped: the sweep holds no finished run._", ""]
    t = tables.comparison(records, [(None, None)], ("accuracy", "tnr_at_tpr95", "auroc"), keys=("loss", "entropic_scale"),
                          joined=False)
    order = _loss_order(row[0][0] for row in t.rows)
    t.rows.sort(key=lambda row: (order.index(row[0][0]), row[0][1]))
    t.metric_labels = {"accuracy": "Validation accuracy (%)", "tnr_at_tpr95": f"TNR@TPR95 {val_ood} (%)",
                       "auroc": f"AUROC {val_ood} (%)"}
    (out / "tables" / f"{name}.md").write_text(tables.to_markdown(t) + "\n")
    (out / "tables" / f"{name}.tex").write_text(tables.to_latex(t, caption=f"Entropic-scale sweep, validation "
                                                                            f"out-distribution {val_ood}.", label=f"tab:{name}"))
    (out / "tables" / f"{name}.csv").write_text(tables.to_csv(t))
    md += [tables.to_markdown(t), "", f"Files: [`tables/{name}.tex`](tables/{name}.tex), [`tables/{name}.csv`](tables/{name}.csv)", ""]
    rows = [dict(loss=r["loss"], scale=r["scale"], accuracy=100 * r["val_accuracy"][0], accuracy_std=100 * r["val_accuracy"][1],
                 tnr=100 * r["tnr_at_tpr95"][0], tnr_std=100 * r["tnr_at_tpr95"][1]) for r in s.get("rows", [])]
    if rows:
        in_name = records[0].get("in_dataset", "?")
        p = plots.sweep_figure(rows, out / "figures" / f"{name}.png", val_ood=val_ood, in_name=in_name)
        md += [f"![sweep]({p.relative_to(out).as_posix()})", ""]
    return md
