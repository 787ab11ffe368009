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
from typing import Callable, Sequence

import numpy as np

from . import tables

__all__ = ["run_sweep", "DEFAULT_SCALES", "SWEEP_SCORE"]

DEFAULT_SCALES = (1.0, 3.0, 10.0, 30.0, 100.0)
#: The seamless score of each loss, used to choose the scale.
SWEEP_SCORE = {"isomax": "es", "isomaxplus": "mds"}
WARNING = ("the validation out-distribution {name!r} is used to choose E_s: keep it out of the test "
           "out-distributions of every later evaluation (e.g. `isomax bench --ood ...` without it)")


def _norm(name: str) -> str:
    base = Path(str(name).rstrip("/\\")).name or str(name)
    return base.lower().replace("-", "").replace("_", "").replace(" ", "")


def _check(scales, losses, val_ood, test_ood, overrides) -> None:
    from .heads import canonical_head_name

    if not scales:
        raise ValueError("Expected at least one entropic scale in --scales")
    bad = [s for s in scales if not (np.isfinite(s) and s > 0)]
    if bad:
        raise ValueError(f"Expected positive entropic scales, but got: {bad}")
    for loss in losses:
        if canonical_head_name(loss) not in SWEEP_SCORE:
            raise ValueError(f"Expected losses among {list(SWEEP_SCORE)} (SoftMax has no entropic scale), but got {loss!r}")
    if not val_ood:
        raise ValueError("Expected a validation out-distribution (--val-ood NAME)")
    clash = [t for t in test_ood if _norm(t) == _norm(val_ood)]
    if clash:
        raise ValueError(f"the validation out-distribution {val_ood!r} is also a test out-distribution ({clash[0]!r}); "
                         "a set used to choose E_s must not be used to test: pick another --val-ood or drop it from --test-ood")
    if "entropic_scale" in (overrides or {}):
        raise ValueError("--entropic-scale is what the sweep varies: use --scales")


def _run_name(loss: str, scale: float, seed: int) -> str:
    return f"{loss}-es{scale:g}-seed{seed}"


def run_sweep(preset: str, val_ood: str, out: str | os.PathLike, *, scales: Sequence[float] = DEFAULT_SCALES,
              losses: Sequence[str] = ("isomax",), seeds: Sequence[int] = (0,), test_ood: Sequence[str] = (),
              overrides: dict | None = None, progress: bool = True, command: str | None = None,
              log: Callable[[str], None] = print) -> dict:
    """Train and evaluate losses x scales x seeds; write sweep.json, sweep.md and sweep.png; return the summary."""
    from .data import normalization
    from .evaluation import evaluate_model, evaluate_run, load_ood_sets
    from .heads import canonical_head_name
    from .presets import get_preset
    from .training import load_data, resolve_device, train

    losses = [canonical_head_name(l) for l in losses]
    scales = [float(s) for s in scales]
    test_ood = list(test_ood or ())
    _check(scales, losses, val_ood, test_ood, overrides)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = get_preset(preset).config(**(overrides or {}))
    log("warning: " + WARNING.format(name=val_ood))
    if any(_norm(o) == _norm(val_ood) for o in base.ood):
        log(f"warning: preset {preset!r} lists {val_ood!r} among its default test out-distributions {list(base.ood)}; "
            "pass --ood without it to later benchmarks")

    path = out / "sweep.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    runs: dict = previous.get("runs", {}) if previous.get("val_ood") == val_ood else {}
    _, val_set = load_data(base)
    val_sets = load_ood_sets([val_ood], val_set.shape, base.data_dir, log)
    test_sets = load_ood_sets(test_ood, val_set.shape, base.data_dir, log) if test_ood else []
    mean, std = normalization(base.dataset)
    for seed in seeds:
        for loss in losses:
            for scale in scales:
                name = _run_name(loss, scale, seed)
                config = base.replace(loss=loss, seed=seed, entropic_scale=scale, ood=tuple(test_ood) or base.ood)
                cached = runs.get(name)
                if cached and cached.get("config") == json.loads(json.dumps(config.to_dict())) \
                        and cached.get("test_ood") == test_ood:
                    log(f"[{name}] already in {path}, skipping")
                    continue
                result = train(config, out / "runs" / name, progress=progress, log=log)
                device = resolve_device(config.device)
                val_records, _ = evaluate_model(result.model, loss, val_set, val_sets, mean, std, device=device,
                                                batch_size=config.eval_batch_size, amp=config.amp,
                                                scores=(SWEEP_SCORE[loss],), meta=dict(model=config.model, seed=seed),
                                                progress=progress)
                test_records = []
                if test_sets:
                    test_records = evaluate_run(out / "runs" / name, ood_sets=test_sets, device=config.device,
                                                arrays_path=out / "outputs" / f"{name}.npz", progress=progress, log=log)
                runs[name] = dict(loss=loss, scale=scale, seed=seed, config=json.loads(json.dumps(config.to_dict())),
                                  val_accuracy=result.history[-1]["val_accuracy"] if result.history else None,
                                  validation=[dict(r, split="validation", entropic_scale=scale) for r in val_records],
                                  test=[dict(r, split="test", entropic_scale=scale) for r in test_records],
                                  test_ood=test_ood)
                v = runs[name]["validation"][0]
                log(f"[{name}] val accuracy {100 * v['accuracy']:.2f}%  {val_ood}: TNR@TPR95 "
                    f"{100 * v['tnr_at_tpr95']:.1f}%  AUROC {100 * v['auroc']:.1f}%")
                _write_json(path, _summary(preset, overrides, losses, scales, seeds, val_ood, test_ood, runs, command))
    summary = _summary(preset, overrides, losses, scales, seeds, val_ood, test_ood, runs, command)
    _write_json(path, summary)
    (out / "sweep.md").write_text(_markdown(summary))
    if summary["rows"]:
        from .plots import sweep_figure

        sweep_figure([dict(loss=r["loss"], scale=r["scale"], accuracy=100 * r["val_accuracy"][0],
                           accuracy_std=100 * r["val_accuracy"][1], tnr=100 * r["tnr_at_tpr95"][0],
                           tnr_std=100 * r["tnr_at_tpr95"][1]) for r in summary["rows"]],
                     out / "sweep.png", val_ood=val_ood, in_name=base.dataset)
    return summary


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def _summary(preset, overrides, losses, scales, seeds, val_ood, test_ood, runs, command) -> dict:
    rows, chosen = [], {}
    for loss in losses:
        for scale in scales:
            rs = [runs[n] for n in (_run_name(loss, scale, s) for s in seeds) if n in runs]
            if not rs:
                continue
            val = [r["validation"][0] for r in rs if r["validation"]]
            row = dict(loss=loss, scale=scale, score=SWEEP_SCORE[loss], seeds=[r["seed"] for r in rs],
                       val_accuracy=tables.aggregate(v["accuracy"] for v in val)[:2],
                       tnr_at_tpr95=tables.aggregate(v["tnr_at_tpr95"] for v in val)[:2],
                       auroc=tables.aggregate(v["auroc"] for v in val)[:2])
            test = [t for r in rs for t in r["test"] if t["score"] == SWEEP_SCORE[loss]]
            if test:
                row["test_accuracy"] = tables.aggregate({(t["seed"]): t["accuracy"] for t in test}.values())[:2]
                per_seed = {}
                for t in test:
                    per_seed.setdefault(t["seed"], []).append(t["tnr_at_tpr95"])
                row["test_tnr_at_tpr95_mean_over_ood"] = tables.aggregate(np.mean(v) for v in per_seed.values())[:2]
            rows.append(row)
        mine = [r for r in rows if r["loss"] == loss]
        if mine:
            best = max(mine, key=lambda r: (r["tnr_at_tpr95"][0], r["auroc"][0]))
            chosen[loss] = best["scale"]
    return dict(preset=preset, overrides=overrides or {}, losses=list(losses), scales=list(scales), seeds=list(seeds),
                val_ood=val_ood, validation_in_distribution="validation split of the training set",
                test_ood=list(test_ood), warning=WARNING.format(name=val_ood), selection="max mean TNR@TPR95, then AUROC, "
                "of the seamless score (IsoMax: ES, IsoMax+: MDS) on the validation split vs the validation out-distribution",
                chosen=chosen, command=command, rows=rows, runs=runs)


def _pct(pair) -> str:
    mean, std = pair
    return "–" if mean is None or not np.isfinite(mean) else f"{100 * mean:.1f}±{100 * std:.1f}"


def _markdown(s: dict) -> str:
    lines = [f"# Entropic-scale sweep: preset `{s['preset']}`", ""]
    if s.get("command"):
        lines += ["Produced by:", "", "```", s["command"], "```", ""]
    lines += [f"Validation out-distribution: **{s['val_ood']}** against the validation split of the in-distribution "
              f"(seeds {s['seeds']}). **Warning:** {s['warning']}.", "",
              f"Selection: {s['selection']}. Chosen: " + (", ".join(
                  f"{tables.LOSS_LABELS.get(l, l)} E_s = {v:g}" for l, v in s["chosen"].items()) or "none") + ".", ""]
    has_test = any("test_accuracy" in r for r in s["rows"])
    head = ["Loss", "Score", "E_s", "Val accuracy (%)", f"TNR@TPR95 {s['val_ood']} (%)", f"AUROC {s['val_ood']} (%)"]
    if has_test:
        head += ["Test accuracy (%)", f"Test TNR@TPR95, mean over {', '.join(s['test_ood'])} (%) (not used to choose)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in s["rows"]:
        best = s["chosen"].get(r["loss"]) == r["scale"]
        cells = [tables.LOSS_LABELS.get(r["loss"], r["loss"]), tables.SCORE_LABELS.get(r["score"], r["score"]),
                 f"**{r['scale']:g}**" if best else f"{r['scale']:g}", _pct(r["val_accuracy"]), _pct(r["tnr_at_tpr95"]),
                 _pct(r["auroc"])]
        if has_test:
            cells += [_pct(r.get("test_accuracy", (None, None))),
                      _pct(r.get("test_tnr_at_tpr95_mean_over_ood", (None, None)))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "![sweep](sweep.png)", ""]
    return "\n".join(lines)
