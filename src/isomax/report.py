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
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .errors import InputError
from . import plots, registry, runs, tables
from ._io import atomic_write_text
from .records import OUTLIER_EXPOSURE, STANDARD, RunRecord, read_records
from .sweep import same_dataset, sweep_description, sweep_figure, sweep_table
from .tables import LOSS_LABELS

__all__ = ["write_report", "load_inputs", "ReportInputs", "RunArrays", "ROC_COMBOS"]

#: (loss, score) pairs drawn on the ROC figures when their logits are available (live: each registered
#: loss's :class:`isomax.registry.LossSpec` ``roc_scores``).
ROC_COMBOS = registry.LiveTuple(registry.roc_combos)


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
        with _open_npz(self.path) as z:
            try:
                return {k: z[k] for k in z.files}
            except (zipfile.BadZipFile, ValueError, EOFError, OSError) as err:  # a member is truncated or corrupt
                raise InputError(
                    f"{self.path} is damaged ({type(err).__name__}: {err}); rerun the `isomax evaluate` "
                    "or `isomax bench` that wrote it"
                ) from None


@dataclass
class ReportInputs:
    records: list[RunRecord] = field(default_factory=list)
    arrays: list[RunArrays] = field(default_factory=list)
    histories: list[dict] = field(default_factory=list)  # loss, seed, dataset, model, run, history
    sweeps: list[tuple[Path, dict]] = field(default_factory=list)  # (directory, sweep.json) of `isomax sweep`
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _open_npz(path: Path):
    """``np.load`` of an evaluation ``.npz`` (no pickles), with a one-line error for a truncated or corrupt file."""
    try:
        return np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, EOFError) as err:
        raise InputError(
            f"{path} is not a readable .npz ({type(err).__name__}: {err}); rerun the `isomax evaluate` "
            "or `isomax bench` that wrote it"
        ) from None


def _read_npz_meta(path: Path) -> RunArrays:
    with _open_npz(path) as z:
        if "logits/in" not in z.files:
            raise InputError(f"{path} is not an evaluation output: it has no 'logits/in' array")
        meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
        oods = [k.split("/", 1)[1] for k in z.files if k.startswith("logits/") and k != "logits/in"]
    meta.setdefault("loss", _guess_from_name(path.stem)[0])
    meta.setdefault("seed", _guess_from_name(path.stem)[1])
    return RunArrays(path, meta, oods)


def _guess_from_name(stem: str):
    m = re.match(r"(.+?)(?:-es[\d.e+-]+)?-seed(\d+)$", stem)
    return (m.group(1), int(m.group(2))) if m else (stem, None)


def _read_history(run_dir: Path) -> dict | None:
    if not (run_dir / runs.LOG).exists():
        return None
    rows = [r.to_dict() for r in runs.read_log(run_dir)]
    cfg = runs.read_config(run_dir).to_dict() if (run_dir / runs.CONFIG).exists() else {}
    return dict(
        loss=cfg.get("loss", _guess_from_name(run_dir.name)[0]),
        seed=cfg.get("seed"),
        dataset=cfg.get("dataset"),
        model=cfg.get("model"),
        method=OUTLIER_EXPOSURE if cfg.get("outlier_data") else STANDARD,
        run=str(run_dir),
        history=rows,
    )


def load_inputs(paths: Sequence[str | Path]) -> ReportInputs:
    """Collect records, logits and training histories from bench/evaluate/run directories and ``.npz`` files."""
    inp = ReportInputs()
    if not paths:
        raise InputError("Expected at least one bench, evaluate or run directory")
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
            raise InputError(f"{p} is neither a bench/evaluate output directory nor a run directory nor an .npz")
        _load_directory(p, inp)
    inp.records = _dedupe(inp.records, inp.notes)
    seen, arrays = set(), []
    for a in inp.arrays:
        if a.path.resolve() not in seen:
            seen.add(a.path.resolve())
            arrays.append(a)
    inp.arrays = arrays
    return inp


def _load_directory(p: Path, inp: ReportInputs) -> None:
    """Add what a sweep, bench/evaluate output or run directory holds to ``inp``."""
    if (p / "sweep.json").exists():  # its runs differ in E_s: only the sweep's own table and figure
        try:
            inp.sweeps.append((p, json.loads((p / "sweep.json").read_text())))
        except json.JSONDecodeError as err:
            raise InputError(f"cannot read {p / 'sweep.json'}: {err}") from err
        inp.sources.append(f"`{p}` (entropic-scale sweep)")
        return
    results, outputs = p / "results.json", p / "outputs"
    is_result_dir = results.exists() or outputs.is_dir()
    is_run_dir = (p / "config.json").exists()
    if not (is_result_dir or is_run_dir):
        raise InputError(
            f"{p} is neither a bench/evaluate output directory (results.json or outputs/*.npz), "
            f"nor a run directory (config.json, made by `isomax train`), nor a sweep (sweep.json)"
        )
    if is_result_dir:
        if results.exists():
            inp.records += read_records(results)
        npzs = sorted(outputs.glob("*.npz")) if outputs.is_dir() else []
        inp.arrays += [_read_npz_meta(f) for f in npzs]
        runs = p / "runs"
        inp.histories += [h for h in map(_read_history, sorted(runs.iterdir()) if runs.is_dir() else []) if h]
        inp.sources.append(
            f"`{p}` ({'results.json' if results.exists() else 'no results.json'}, {len(npzs)} logit file(s))"
        )
    if is_run_dir:
        _load_run_directory(p, inp, with_bench_outputs=not is_result_dir)


def _load_run_directory(p: Path, inp: ReportInputs, with_bench_outputs: bool) -> None:
    """A run directory: its training curve, plus its logits and records when it sits in a bench's ``runs/``."""
    h = _read_history(p)
    if h:
        inp.histories.append(h)
    if not with_bench_outputs:
        return
    bench = p.parent.parent if p.parent.name == "runs" else None
    extra = ""
    if bench is not None:
        npz = bench / "outputs" / f"{p.name}.npz"
        if npz.exists():
            inp.arrays.append(_read_npz_meta(npz))
            extra += ", logits"
        if (bench / "results.json").exists() and h:
            inp.records += [
                r
                for r in read_records(bench / "results.json")
                if (r.loss, r.seed) == (h["loss"], h["seed"]) and r.method == h["method"]
            ]
            extra += ", records"
    inp.sources.append(f"`{p}` (run directory{extra})")


def _dedupe(records: list[RunRecord], notes: list[str]) -> list[RunRecord]:
    out, seen, dropped = [], set(), 0
    for r in records:
        if r.key in seen:
            dropped += 1
            continue
        seen.add(r.key)
        out.append(r)
    if dropped:
        notes.append(
            f"{dropped} duplicate record(s) (same data, model, loss, training method, score and seed) were "
            "ignored; the first input wins."
        )
    return out


# --- tables ------------------------------------------------------------------------------------------------------


def _loss_order(values) -> list:
    return tables.ordered(values, list(LOSS_LABELS))


def table_specs(records: Sequence[RunRecord | dict]) -> list[tables.TableSpec]:
    """The tables of the report (:func:`isomax.tables.standard_tables`)."""
    return tables.standard_tables(records)


def _tables_section(records: Sequence[RunRecord], out: Path, notes: list[str]) -> list[str]:
    """Every table in Markdown (and as ``tables/<name>.{md,tex,csv}``), or a note when there are no records."""
    md = ["## Tables", ""]
    if not records:
        notes.append("no records (results.json): every table skipped.")
        return md + ["_No result records (results.json) in the inputs: tables skipped._", ""]
    seeds = sorted({r.seed for r in records}, key=_seed_key)
    md += [f"{len(records)} records; seeds {seeds}.", ""]
    for spec in table_specs(records):
        if spec.table is not None:
            tables.write_table_files(spec.table, out / "tables", spec.name, caption=spec.caption)
        md += spec.markdown(links=True, level=3)
    conversions = sorted({(r.out_dataset, r.conversion) for r in records if r.conversion})
    if conversions:
        md += ["Out-distribution conversions: " + "; ".join(f"{o}: {c}" for o, c in conversions), ""]
    return md


# --- figures -----------------------------------------------------------------------------------------------------


def _slug(text) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", str(text)).strip("_") or "x"


def _first_seed_arrays(arrays: Sequence[RunArrays], seed: int | None) -> dict[tuple, dict[str, RunArrays]]:
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


def _grid(rows: list[tuple[str, list[str | None]]], columns: list[str]) -> str:
    """A Markdown table of images: one row per out-distribution, one column per loss."""
    lines = ["| out-distribution | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, cells in rows:
        lines.append(f"| {name} | " + " | ".join(f"![{name}]({c})" if c else "–" for c in cells) + " |")
    return "\n".join(lines)


@dataclass
class _Group:
    """The logits of one (in-distribution, model), one run per loss, and where their figures go."""

    in_name: str
    model: str
    data: dict[str, dict[str, np.ndarray]]  # loss -> arrays of its .npz
    oods: list[str]
    out: Path

    @property
    def losses(self) -> list[str]:
        return list(self.data)

    def path(self, kind: str, *parts: str) -> Path:
        return (
            self.out
            / "figures"
            / ("_".join([kind, _slug(f"{self.in_name}-{self.model}"), *map(_slug, parts)]) + ".png")
        )

    def rel(self, p: Path) -> str:
        return p.relative_to(self.out).as_posix()

    def grid(self, losses: Sequence[str], draw: Callable[[str, str, np.ndarray, np.ndarray, dict], Path]) -> str:
        """One figure per out-distribution x loss (``draw(loss, ood, logits_in, logits_out, arrays)``)."""

        def cell(loss: str, ood: str) -> str | None:
            arrays = self.data[loss]
            if f"logits/{ood}" not in arrays:
                return None
            return self.rel(draw(loss, ood, arrays["logits/in"], arrays[f"logits/{ood}"], arrays))

        rows = [(o, [cell(loss, o) for loss in losses]) for o in self.oods]
        return _grid(rows, [LOSS_LABELS.get(loss, loss) for loss in losses])


def _logit_figures(g: _Group) -> list[str]:
    """Fig. 3 (2019): intra-/inter-class logits."""

    def draw(loss, ood, li, lo, _):
        return plots.logit_histograms(li, lo, g.path("logits", loss, ood), loss=loss, in_name=g.in_name, out_name=ood)

    return [
        "#### Intra-class and inter-class logits (Fig. 3 of the 2019 paper)",
        "",
        "Intra-class: the logit of the predicted class; inter-class: the other logits. In-distribution filled, "
        "out-distribution hatched; each histogram in percent of its own samples.",
        "",
        g.grid(g.losses, draw),
        "",
    ]


def _probability_figures(g: _Group) -> list[str]:
    """Figs. 4 and 6 (2019): maximum probability and entropy."""
    md = []
    for quantity, title, fn in (
        ("max_probability", "Maximum probability (Fig. 4 of the 2019 paper)", plots.max_probability),
        ("entropy", "Entropy (Fig. 6 of the 2019 paper; Fig. 1a-b of the 2021 paper)", plots.entropy),
    ):

        def draw(loss, ood, li, lo, _, quantity=quantity, fn=fn):
            return plots.score_histogram(
                fn(li),
                fn(lo),
                g.path(quantity, loss, ood),
                quantity=quantity,
                loss=loss,
                in_name=g.in_name,
                out_name=ood,
                num_classes=li.shape[1],
            )

        md += [
            f"#### {title}",
            "",
            "Probabilities are `softmax(logits)` without the entropic scale.",
            "",
            g.grid(g.losses, draw),
            "",
        ]
    return md


NORMALISED = "normalised"  # LossSpec.distance of IsoMax+: -logits / |d_s| are the distances


def _distance(loss: str) -> str | None:
    """What ``-logits`` of a loss are (:class:`isomax.registry.LossSpec` ``distance``); None: not a distance."""
    try:
        return registry.get_loss(loss).distance
    except ValueError:
        return None


def _distance_figures(g: _Group, notes: list[str]) -> list[str]:
    """Fig. 1c-d (2021): distance to the nearest prototype, for the IsoMax heads."""
    md = ["#### Minimum distance (Fig. 1c-d of the 2021 paper)", ""]
    dist_losses = [loss for loss in g.losses if _distance(loss)]
    if not dist_losses:
        notes.append(f"{g.in_name}/{g.model}: minimum-distance histograms skipped (no IsoMax/IsoMax+ logits).")
        return md + ["_Skipped: no IsoMax or IsoMax+ logits._", ""]

    def draw(loss, ood, li, lo, d):
        scale = float(d["distance_scale"]) if _distance(loss) == NORMALISED and "distance_scale" in d else 1.0
        return plots.score_histogram(
            plots.min_distance(li, scale),
            plots.min_distance(lo, scale),
            g.path("min_distance", loss, ood),
            quantity="min_distance",
            loss=loss,
            in_name=g.in_name,
            out_name=ood,
            note=_distance(loss),
        )

    for loss in [x for x in dist_losses if _distance(x) == NORMALISED and "distance_scale" not in g.data[x]]:
        notes.append(
            f"{g.in_name}/{g.model}: the {LOSS_LABELS.get(loss, loss)} logit file has no `distance_scale`; distances "
            "assume |d_s| = 1."
        )
    return md + [
        "IsoMax: `-max logit` (Euclidean distance); IsoMax+: `-max logit / |d_s|` (distance between normalised "
        "feature and prototype, in [0, 2]).",
        "",
        g.grid(dist_losses, draw),
        "",
    ]


def _roc_figures(g: _Group) -> list[str]:
    """ROC curves of :data:`ROC_COMBOS`, one figure per out-distribution."""
    from .metrics import ood_metrics, roc_sweep

    md = [
        "#### ROC curves",
        "",
        "From the same sweep as the metrics (`isomax.metrics.roc_sweep`); legend: loss, score "
        "and AUROC (%). Colour = loss, line style = score.",
        "",
    ]
    for o in g.oods:
        curves = []
        for loss, score in ROC_COMBOS:
            if loss in g.data and f"logits/{o}" in g.data[loss]:
                s_in = plots.score_values(g.data[loss]["logits/in"], score)
                s_out = plots.score_values(g.data[loss][f"logits/{o}"], score)
                tp, fp = roc_sweep(s_in, s_out)
                curves.append(dict(loss=loss, score=score, tp=tp, fp=fp, auroc=ood_metrics(s_in, s_out)["auroc"]))
        if curves:
            p = plots.roc_figure(curves, g.path("roc", o), in_name=g.in_name, out_name=o)
            md += [f"![ROC {o}]({g.rel(p)})", ""]
    return md


def _deployment_figures(g: _Group) -> list[str]:
    """Reliability diagrams (calibration) and risk-coverage curves (selective classification) of the
    in-distribution test split (:mod:`isomax.deploy`)."""
    from .deploy.calibration import expected_calibration_error, reliability_bins
    from .deploy.selective import aurc, risk_coverage

    cells = []
    for loss in g.losses:
        li, labels = g.data[loss]["logits/in"], g.data[loss].get("labels/in")
        if labels is None:
            continue
        li_t, labels_t = torch.from_numpy(li).double(), torch.from_numpy(labels).long()
        cells.append(
            g.rel(
                plots.reliability_diagram(
                    reliability_bins(li_t, labels_t),
                    g.path("reliability", loss),
                    title=f"{LOSS_LABELS.get(loss, loss)}, {g.in_name} test",
                    ece=expected_calibration_error(li_t, labels_t),
                )
            )
        )
    curves = []
    for loss, score in ROC_COMBOS:
        if loss in g.data and "labels/in" in g.data[loss]:
            li = g.data[loss]["logits/in"]
            s, correct = plots.score_values(li, score), li.argmax(1) == g.data[loss]["labels/in"]
            cov, risk = risk_coverage(s, correct)
            curves.append(dict(loss=loss, score=score, coverage=cov, risk=risk, aurc=aurc(s, correct)))
    if not cells and not curves:
        return []
    md = [
        "#### Calibration and selective classification",
        "",
        "Reliability diagrams of the plain logits (15 bins; ECE in the legend): IsoMax heads score without the "
        "entropic scale, so their probabilities are flat until `isomax calibrate` fits the temperature on the "
        "validation split. Risk-coverage: error rate among the accepted test inputs when each score rejects the "
        "lowest-scored ones (AURC %, lower is better).",
        "",
    ]
    md += [" ".join(f"![reliability]({c})" for c in cells), ""] if cells else []
    if curves:
        p = plots.risk_coverage_figure(curves, g.path("risk_coverage"), title=f"{g.in_name} test: risk vs coverage")
        md += [f"![risk-coverage]({g.rel(p)})", ""]
    return md


def _figures_for_group(
    key: tuple, by_loss: dict[str, RunArrays], out: Path, notes: list[str], log: Callable[[str], None]
) -> list[str]:
    """The figures of one (in-distribution, model): logits, probabilities, distances, ROC curves."""
    in_name, model = key
    data = {loss: a.load() for loss, a in by_loss.items()}
    oods = list(dict.fromkeys(o for a in by_loss.values() for o in a.ood_names))
    seeds = ", ".join(f"{LOSS_LABELS.get(loss, loss)} seed {a.seed}" for loss, a in by_loss.items())
    md = [f"### In-distribution `{in_name}`, model `{model}`", "", f"Logits of: {seeds}.", ""]
    if not oods:
        notes.append(f"{in_name}/{model}: the logit files hold no out-distribution; histograms and ROC curves skipped.")
        return md
    g = _Group(in_name, model, data, oods, out)
    md += _logit_figures(g)
    log(f"figures: logits for {in_name}/{model}")
    md += _probability_figures(g) + _distance_figures(g, notes) + _roc_figures(g) + _deployment_figures(g)
    log(f"figures: histograms and ROC curves for {in_name}/{model}")
    return md


def _figures_section(
    arrays: Sequence[RunArrays], seed: int | None, out: Path, notes: list[str], log: Callable[[str], None]
) -> list[str]:
    md = ["## Figures", ""]
    groups = _first_seed_arrays(arrays, seed)
    if not groups:
        what = f"for seed {seed}" if seed is not None and arrays else "in the inputs"
        md += [f"_No logit files (outputs/*.npz) {what}: histograms and ROC curves skipped._", ""]
        notes.append(f"no logit files {what}: histograms and ROC curves skipped.")
    for key, by_loss in groups.items():
        md += _figures_for_group(key, by_loss, out, notes, log)
    return md


def _training_section(histories: Sequence[dict], out: Path, notes: list[str]) -> list[str]:
    md = ["### Training curves", ""]
    if not histories:
        notes.append("no training logs (runs/*/log.jsonl): training curves skipped.")
        return md + ["_No run directories with log.jsonl in the inputs: skipped._", ""]
    for (dataset, model), hs in _group_histories(histories).items():
        p = plots.training_curves(
            hs,
            out / "figures" / f"training_{_slug(f'{dataset}-{model}')}.png",
            title=f"{dataset}, {model}: {len(hs)} run(s)",
        )
        md += [f"![training curves]({p.relative_to(out).as_posix()})", ""]
    return md


def write_report(
    paths: Sequence[str | Path],
    out: str | Path,
    *,
    seed: int | None = None,
    title: str = "isomax report",
    command: str | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Write ``out/report.md`` with its figures and tables; returns the path of ``report.md``."""
    inp = load_inputs(paths)
    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    notes = list(inp.notes)
    md = [f"# {title}", ""]
    if command:
        md += ["Produced by:", "", "```", command, "```", ""]
    md += [
        "Inputs: " + "; ".join(inp.sources) + ".",
        "",
        "Tables: mean ± std over seeds (sample std), in percent; the best mean of each comparison in bold. Each "
        "table is also in `tables/` as Markdown, LaTeX (booktabs) and CSV. Figures: the first seed (seed 0 when "
        "present) unless `--seed` says otherwise.",
        "",
    ]
    md += _tables_section(inp.records, out, notes)
    for i, (sweep_dir, summary) in enumerate(inp.sweeps):
        md += _sweep_section(i, sweep_dir, summary, out)
        val = summary.get("val_ood")
        if val and any(same_dataset(r.out_dataset, val) for r in inp.records):
            notes.append(
                f"**warning:** `{val}` chose E_s in the sweep `{sweep_dir}` and is also a test "
                "out-distribution in the tables: its results there are not from an unseen set."
            )
    md += _figures_section(inp.arrays, seed, out, notes, log)
    md += _training_section(inp.histories, out, notes)
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return atomic_write_text(out / "report.md", "\n".join(md))


def _group_histories(histories: Sequence[dict]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for h in sorted(
        histories, key=lambda h: (_loss_order([x["loss"] for x in histories]).index(h["loss"]), _seed_key(h["seed"]))
    ):
        groups.setdefault((h.get("dataset"), h.get("model")), []).append(h)
    return groups


def _sweep_section(i: int, sweep_dir: Path, s: dict, out: Path) -> list[str]:
    """Table (validation split vs the validation out-distribution) and figure of an `isomax sweep` directory."""
    name = f"sweep{i + 1}"
    md = [
        f"## Entropic-scale sweep: `{sweep_dir}` (Fig. 2 of the 2019 paper)",
        "",
        sweep_description(s) + " It must not appear among the test out-distributions above.",
        "",
    ]
    table = sweep_table(s)
    if table is None:
        return md + ["_Skipped: the sweep holds no finished run._", ""]
    tables.write_table_files(
        table,
        out / "tables",
        name,
        caption=f"Entropic-scale sweep, validation out-distribution {s.get('val_ood', '?')}.",
    )
    md += [
        tables.to_markdown(table),
        "",
        f"Files: [`tables/{name}.tex`](tables/{name}.tex), [`tables/{name}.csv`](tables/{name}.csv)",
        "",
    ]
    p = sweep_figure(s, out / "figures" / f"{name}.png")
    if p is not None:
        md += [f"![sweep]({p.relative_to(out).as_posix()})", ""]
    return md
