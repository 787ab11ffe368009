"""``isomax sweep``: choose the entropic scale E_s on a validation out-distribution (Fig. 2 of the 2019 paper).

For each loss (IsoMax, optionally IsoMax+), scale and seed, train with a preset (run directories
``out/runs/<loss>-es<scale>-seed<seed>/``, so an interrupted sweep resumes) and measure, on the
in-distribution **validation split** (carved from the training set) against the **validation
out-distribution**:

* validation accuracy,
* TNR@TPR95 and AUROC of the loss's seamless score (IsoMax: ES; IsoMax+: MDS).

The scale with the best mean TNR@TPR95 (then AUROC) is reported as ``chosen``. The validation
out-distribution must never be reused as a test out-distribution (the papers chose E_s once, on
SVHN vs CIFAR-100, and never evaluated on CIFAR-100 as an unseen set); ``--test-ood`` sets, if
given, are evaluated on the test split for information only and are refused if they contain the
validation set.

Writes ``sweep.json`` (everything, including which out-distribution was used), ``sweep.md`` (scale x
accuracy / TNR@TPR95 / AUROC) and ``sweep.png`` (accuracy and TNR@TPR95 against the scale, log axis).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import InputError
from . import tables
from ._io import atomic_write_text
from .presets import Runtime, TrainConfig, split_settings
from .runs import config_record
from .registry import SWEEP_LOSSES, LiveMapping, get_loss, list_losses
from .records import RunRecord, as_records

__all__ = [
    "run_sweep",
    "DEFAULT_SCALES",
    "SWEEP_SCORE",
    "same_dataset",
    "sweep_table",
    "sweep_description",
    "sweep_figure",
]

DEFAULT_SCALES = (1.0, 3.0, 10.0, 30.0, 100.0)
#: The seamless score of each loss, used to choose the scale (live: the ``sweep_score`` of the registered losses).
SWEEP_SCORE = LiveMapping(lambda: {n: s.sweep_score for n in list_losses() if (s := get_loss(n)).sweep_score})
WARNING = (
    "the validation out-distribution {name!r} is used to choose E_s: keep it out of the test "
    "out-distributions of every later evaluation (e.g. `isomax bench --ood ...` without it)"
)


def _norm(name: str) -> str:
    """A data set's canonical name (:func:`isomax.data.canonical_name`); for a folder, its normalised base name."""
    from .data import canonical_name

    base = Path(str(name).rstrip("/\\")).name or str(name)
    try:
        return canonical_name(base)
    except ValueError:  # a folder of images, not a known data set
        return base.lower().replace("-", "").replace("_", "").replace(" ", "")


def same_dataset(a: str, b: str) -> bool:
    """Whether two out-distribution names (or folders) denote the same data set (``"MNIST"`` = ``"mnist"``)."""
    return _norm(a) == _norm(b)


def _check(scales, losses, val_ood, test_ood, overrides) -> None:
    from .heads import canonical_head_name

    if not scales:
        raise InputError("Expected at least one entropic scale in --scales")
    bad = [s for s in scales if not (np.isfinite(s) and s > 0)]
    if bad:
        raise InputError(f"Expected positive entropic scales, but got: {bad}")
    for loss in losses:
        if canonical_head_name(loss) not in SWEEP_SCORE:
            raise InputError(
                f"Expected losses among {list(SWEEP_SCORE)} (SoftMax has no entropic scale), but got {loss!r}"
            )
    if not val_ood:
        raise InputError("Expected a validation out-distribution (--val-ood NAME)")
    clash = [t for t in test_ood if same_dataset(t, val_ood)]
    if clash:
        raise InputError(
            f"the validation out-distribution {val_ood!r} is also a test out-distribution ({clash[0]!r}); "
            "a set used to choose E_s must not be used to test: pick another --val-ood or drop it from --test-ood"
        )
    if "entropic_scale" in (overrides or {}):
        raise InputError("--entropic-scale is what the sweep varies: use --scales")


def _run_name(loss: str, scale: float, seed: int) -> str:
    return f"{loss}-es{scale:g}-seed{seed}"


def run_sweep(
    preset: str,
    val_ood: str,
    out: str | os.PathLike,
    *,
    scales: Sequence[float] = DEFAULT_SCALES,
    losses: Sequence[str] = SWEEP_LOSSES,
    seeds: Sequence[int] = (0,),
    test_ood: Sequence[str] = (),
    overrides: dict | None = None,
    progress: bool = True,
    command: str | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Train and evaluate losses x scales x seeds; write sweep.json, sweep.md and sweep.png; return the summary."""
    from .evaluation import load_ood_sets
    from .heads import canonical_head_name
    from .presets import get_preset
    from .inputs import load_data

    losses = [canonical_head_name(name) for name in losses]
    scales = [float(s) for s in scales]
    test_ood = list(test_ood or ())
    _check(scales, losses, val_ood, test_ood, overrides)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config_changes, runtime_changes = split_settings(overrides or {})  # TrainConfig and Runtime fields, flat
    base = get_preset(preset).config(**config_changes)
    runtime = get_preset(preset).runtime(**runtime_changes)
    log("warning: " + WARNING.format(name=val_ood))
    if any(same_dataset(o, val_ood) for o in base.ood):
        log(
            f"warning: preset {preset!r} lists {val_ood!r} among its default test out-distributions {list(base.ood)}; "
            "pass --ood without it to later benchmarks"
        )

    path = out / "sweep.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    runs: dict = previous.get("runs", {}) if previous.get("val_ood") == val_ood else {}
    _, val_set = load_data(base, runtime.data_dir, runtime.workers)
    sets = dict(
        val=val_set,
        val_ood=load_ood_sets([val_ood], val_set.shape, runtime.data_dir, log),
        test_ood=load_ood_sets(test_ood, val_set.shape, runtime.data_dir, log) if test_ood else [],
    )
    for seed in seeds:
        for loss in losses:
            for scale in scales:
                name = _run_name(loss, scale, seed)
                config = base.replace(loss=loss, seed=seed, entropic_scale=scale, ood=tuple(test_ood) or base.ood)
                cached = runs.get(name)
                if cached and TrainConfig.from_dict(cached["config"]) == config and cached.get("test_ood") == test_ood:
                    log(f"[{name}] already in {path}, skipping")
                    continue
                runs[name] = _train_and_evaluate(config, runtime, out, name, sets, test_ood, progress, log)
                v = RunRecord.from_dict(runs[name]["validation"][0])
                log(
                    f"[{name}] val accuracy {100 * v.accuracy:.2f}%  {val_ood}: TNR@TPR95 "
                    f"{100 * _measured(v.tnr_at_tpr95):.1f}%  AUROC {100 * _measured(v.auroc):.1f}%"
                )
                _write_json(path, _summary(preset, overrides, losses, scales, seeds, val_ood, test_ood, runs, command))
    summary = _summary(preset, overrides, losses, scales, seeds, val_ood, test_ood, runs, command)
    _write_json(path, summary)
    atomic_write_text(out / "sweep.md", _markdown(summary))
    sweep_figure(summary, out / "sweep.png", in_name=base.dataset)
    return summary


def _train_and_evaluate(
    config: TrainConfig,
    runtime: Runtime,
    out: Path,
    name: str,
    sets: dict,
    test_ood: list[str],
    progress: bool,
    log: Callable[[str], None],
) -> dict:
    """Train one run of the sweep; its sweep.json entry (validation records, and test records with test sets)."""
    from .evaluation import evaluate_model, evaluate_run
    from .training import resolve_device, train

    from .deploy.fit import fit_deployment

    result = train(config, out / "runs" / name, runtime=runtime, progress=progress, log=log)
    fit_deployment(result, log=log)  # calibration.json and threshold.json, as `isomax train` writes them
    mean, std = result.data.mean, result.data.std  # what it was trained with
    val_records, _ = evaluate_model(
        result.model,
        config.loss,
        sets["val"],
        sets["val_ood"],
        mean,
        std,
        device=resolve_device(runtime.device),
        batch_size=runtime.eval_batch_size,
        amp=config.amp,
        scores=(SWEEP_SCORE[config.loss],),
        meta=dict(model=config.model, seed=config.seed),
        progress=progress,
    )
    test_records = []
    if sets["test_ood"]:
        test_records = evaluate_run(
            out / "runs" / name,
            ood_sets=sets["test_ood"],
            device=runtime.device,
            arrays_path=out / "outputs" / f"{name}.npz",
            progress=progress,
            log=log,
        )
    scale = config.entropic_scale
    return dict(
        loss=config.loss,
        scale=scale,
        seed=config.seed,
        config=json.loads(json.dumps(config_record(config, runtime))),  # flat, as config.json
        val_accuracy=result.history[-1].val_accuracy if result.history else None,
        validation=_tagged(val_records, "validation", scale),
        test=_tagged(test_records, "test", scale),
        test_ood=test_ood,
    )


def _measured(value: float | None) -> float:
    """A record's metric; NaN when it was not measured (None)."""
    return float("nan") if value is None else value


def _tagged(records: Sequence[RunRecord | Mapping[str, Any]], split: str, scale: float) -> list[dict]:
    """sweep.json's form of evaluation records: with the split and the entropic scale."""
    return [r.replace(split=split, entropic_scale=scale).to_dict() for r in as_records(records)]


def _write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1) + "\n")


def _summary(preset, overrides, losses, scales, seeds, val_ood, test_ood, runs, command) -> dict:
    rows, chosen = [], {}
    for loss in losses:
        for scale in scales:
            rs = [runs[n] for n in (_run_name(loss, scale, s) for s in seeds) if n in runs]
            if not rs:
                continue
            val = [RunRecord.from_dict(r["validation"][0]) for r in rs if r["validation"]]
            row = dict(
                loss=loss,
                scale=scale,
                score=SWEEP_SCORE[loss],
                seeds=[r["seed"] for r in rs],
                val_accuracy=tables.aggregate(v.accuracy for v in val)[:2],
                tnr_at_tpr95=tables.aggregate(_measured(v.tnr_at_tpr95) for v in val)[:2],
                auroc=tables.aggregate(_measured(v.auroc) for v in val)[:2],
            )
            test = [t for r in rs for t in as_records(r["test"]) if t.score == SWEEP_SCORE[loss]]
            if test:
                row["test_accuracy"] = tables.aggregate({t.seed: t.accuracy for t in test}.values())[:2]
                per_seed: dict[int | None, list[float]] = {}
                for t in test:
                    per_seed.setdefault(t.seed, []).append(_measured(t.tnr_at_tpr95))
                row["test_tnr_at_tpr95_mean_over_ood"] = tables.aggregate(float(np.mean(v)) for v in per_seed.values())[
                    :2
                ]
            rows.append(row)
        mine = [r for r in rows if r["loss"] == loss]
        if mine:
            best = max(mine, key=lambda r: (r["tnr_at_tpr95"][0], r["auroc"][0]))
            chosen[loss] = best["scale"]
    return dict(
        preset=preset,
        overrides=overrides or {},
        losses=list(losses),
        scales=list(scales),
        seeds=list(seeds),
        val_ood=val_ood,
        validation_in_distribution="validation split of the training set",
        test_ood=list(test_ood),
        warning=WARNING.format(name=val_ood),
        selection="max mean TNR@TPR95, then AUROC, "
        "of the seamless score (IsoMax: ES, IsoMax+: MDS) on the validation split vs the validation out-distribution",
        chosen=chosen,
        command=command,
        rows=rows,
        runs=runs,
    )


def _chosen_text(s: dict) -> str:
    return (
        ", ".join(f"{tables.LOSS_LABELS.get(loss, loss)} E_s = {v:g}" for loss, v in s.get("chosen", {}).items())
        or "none"
    )


def sweep_description(s: dict) -> str:
    """One paragraph: the validation out-distribution, the selection rule and the chosen scales."""
    return (
        f"Validation out-distribution **{s.get('val_ood', '?')}** against the validation split of the "
        f"in-distribution (seeds {s.get('seeds')}). Selection: {s.get('selection', '?')}. "
        f"Chosen: {_chosen_text(s)}."
    )


def sweep_table(s: dict) -> tables.Table | None:
    """Loss x score x E_s: validation accuracy, TNR@TPR95 and AUROC against the validation out-distribution and,
    when the sweep has test out-distributions, test accuracy and TNR@TPR95 averaged over them (not used to
    choose); mean ± std over seeds. None when the sweep has no finished run."""
    val_ood = s.get("val_ood", "?")
    records = []
    for run in s.get("runs", {}).values():
        records += as_records(run.get("validation", []))
        records += [t for t in as_records(run.get("test", [])) if t.score == SWEEP_SCORE.get(t.loss)]
    if not records:
        return None
    val = [r for r in records if r.split != "test"]
    test = [r for r in records if r.split == "test"]
    keys = ("loss", "score", "entropic_scale")
    table = tables.comparison(val, tables.EVERYTHING, ("accuracy", "tnr_at_tpr95", "auroc"), keys=keys, joined=False)
    labels = {
        "accuracy": "Validation accuracy (%)",
        "tnr_at_tpr95": f"TNR@TPR95 {val_ood} (%)",
        "auroc": f"AUROC {val_ood} (%)",
    }
    if test:  # two more columns, from the test records of the same rows
        extra = tables.comparison(test, tables.EVERYTHING, ("accuracy", "tnr_at_tpr95"), keys=keys, joined=False)
        by_key = dict(extra.rows)
        table.metrics += ("test_accuracy", "test_tnr_at_tpr95")
        table.rows = [(key, cells + by_key.get(key, [[[]], [[]]])) for key, cells in table.rows]
        labels.update(
            test_accuracy="Test accuracy (%)",
            test_tnr_at_tpr95=f"Test TNR@TPR95, mean over {', '.join(s.get('test_ood', []))} (%) (not used to choose)",
        )
    order = tables.ordered((key[0] for key, _ in table.rows), list(tables.LOSS_LABELS))
    table.rows.sort(key=lambda row: (order.index(row[0][0]), row[0][2]))
    table.metric_labels = labels
    return table


def sweep_figure(s: dict, path: str | os.PathLike, in_name: str | None = None) -> Path | None:
    """Fig. 2 of the 2019 paper for a sweep summary (:func:`isomax.plots.sweep_figure`); None without rows."""
    from .plots import sweep_figure as draw

    if not s.get("rows"):
        return None
    if in_name is None:
        first: dict = next((r for run in s.get("runs", {}).values() for r in run.get("validation", [])), {})
        in_name = first.get("in_dataset", "?")
    rows = [
        dict(
            loss=r["loss"],
            scale=r["scale"],
            accuracy=100 * r["val_accuracy"][0],
            accuracy_std=100 * r["val_accuracy"][1],
            tnr=100 * r["tnr_at_tpr95"][0],
            tnr_std=100 * r["tnr_at_tpr95"][1],
        )
        for r in s["rows"]
    ]
    return draw(rows, path, val_ood=s.get("val_ood", "?"), in_name=in_name)


def _markdown(s: dict) -> str:
    lines = [f"# Entropic-scale sweep: preset `{s['preset']}`", ""]
    if s.get("command"):
        lines += ["Produced by:", "", "```", s["command"], "```", ""]
    lines += [f"{sweep_description(s)} **Warning:** {s['warning']}.", ""]
    table = sweep_table(s)
    if table is not None:
        lines += [tables.to_markdown(table), ""]
    lines += ["![sweep](sweep.png)", ""]
    return "\n".join(lines)
