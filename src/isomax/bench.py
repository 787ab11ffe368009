"""``isomax bench``: losses x seeds — train, evaluate, tabulate.

Writes into ``out``:

* ``runs/<loss>-seed<seed>/``: one run directory per trained model (``config.json``, checkpoint),
  accepted by ``isomax evaluate``;
* ``outputs/<loss>-seed<seed>.npz``: per-sample logits for figures (``isomax report``);
* ``results.json``: every record (updated after each run, so an interrupted bench loses nothing:
  rerunning it resumes the unfinished run and skips the finished ones);
* ``results.md``: the accuracy table (Table 2 layout), the seamless comparison (Table 3 layout),
  with ``methods`` the comparisons with ODIN / Mahalanobis (Table 4) and Outlier Exposure
  (Table 5 layout), and every loss x score;
* with ``methods=("oe",)``: ``runs/softmax-oe-seed<seed>/``, SoftMax trained with Outlier Exposure
  (records: loss ``softmax``, score ``oe``; no logits file);
* ``bench.json``: preset, configuration overrides, software versions, device, timings.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from . import tables
from .evaluation import evaluate_run, load_ood_sets, save_results
from .presets import get_preset
from .training import train

__all__ = ["run_bench", "write_markdown", "LOSSES"]

LOSSES = ("softmax", "isomax", "isomaxplus")


def write_markdown(records: Sequence[dict], path: Path, title: str, command: str | None = None) -> None:
    parts = [f"# {title}", ""]
    if command:
        parts += ["Produced by:", "", "```", command, "```", ""]
    parts += ["## Test accuracy (Table 2 layout; mean ± std over seeds)", "", tables.accuracy_table(records), "",
              "## Seamless OOD detection (Table 3 layout; best mean in bold)", "", tables.seamless_table(records), ""]
    present = {(r["loss"], r["score"]) for r in records}
    if present & {("softmax", "odin"), ("softmax", "mahalanobis")}:
        parts += ["## Comparison with input preprocessing and adversarial validation (Table 4 layout; ODIN and "
                  "Mahalanobis on SoftMax models, hyperparameters chosen on validation vs FGSM samples)", "",
                  tables.preprocessing_table(records), ""]
    if ("softmax", "oe") in present:
        parts += ["## Comparison with Outlier Exposure (Table 5 layout; averaged over out-distributions)", "",
                  tables.outlier_exposure_table(records), ""]
    parts += ["## Every loss and score", "", tables.all_scores_table(records), ""]
    conversions = sorted({(r["out_dataset"], r["conversion"]) for r in records if r.get("conversion")})
    if conversions:
        parts += ["Out-distribution conversions: " + "; ".join(f"{o}: {c}" for o, c in conversions), ""]
    path.write_text("\n".join(parts))


def run_bench(preset: str, seeds: Sequence[int], out: str | Path, *, losses: Sequence[str] = LOSSES,
              ood: Sequence[str] | None = None, overrides: dict | None = None, progress: bool = True,
              command: str | None = None, methods: Sequence[str] = (), methods_on: Sequence[str] = ("softmax",),
              outlier_data: str | None = None, detector_options: dict | None = None,
              log: Callable[[str], None] = print) -> list[dict]:
    """Train and evaluate every loss x seed of a preset; returns all records.

    ``methods``: comparison methods of the 2021 paper's Tables 4-5. ``"odin"`` and ``"mahalanobis"``
    are fitted on each run of a loss in ``methods_on`` (default: SoftMax, as in the paper;
    ``detector_options`` go to :func:`isomax.detectors.fit_detectors`). ``"oe"`` trains one more
    SoftMax run per seed with Outlier Exposure on ``outlier_data`` (``runs/softmax-oe-seed<s>``),
    recorded as loss ``softmax``, score ``oe`` (its entropic score).
    """
    from .evaluation import DETECTOR_METHODS

    unknown = [m for m in methods if m not in DETECTOR_METHODS + ("oe",)]
    if unknown:
        raise ValueError(f"Expected methods in {list(DETECTOR_METHODS) + ['oe']}, but got: {unknown}")
    if "oe" in methods and not outlier_data:
        raise ValueError("Expected --outlier-data (a name or folder of outlier images) for the 'oe' method")
    detectors = [m for m in methods if m in DETECTOR_METHODS]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = get_preset(preset).config(**(overrides or {}))
    ood = tuple(ood or base.ood)
    meta = dict(preset=preset, overrides=overrides or {}, seeds=list(seeds), losses=list(losses), ood=list(ood),
                methods=list(methods), methods_on=list(methods_on), outlier_data=outlier_data,
                command=command, python=sys.version.split()[0], torch=torch.__version__, platform=platform.platform(),
                device=str(base.device), cuda=torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                threads=torch.get_num_threads(), runs={})
    meta_path = out / "bench.json"
    if meta_path.exists():  # keep the timings of earlier invocations (a bench run in several goes)
        earlier = json.loads(meta_path.read_text()).get("runs", {})
        meta["runs"] = {k: v if isinstance(v, list) else [v] for k, v in earlier.items()}
    results_path = out / "results.json"
    records: list[dict] = json.loads(results_path.read_text()) if results_path.exists() else []
    ood_sets = None
    t_start = time.perf_counter()
    runs = [(loss, f"{loss}-seed", dict(loss=loss), None) for loss in losses]
    if "oe" in methods:
        runs.append(("softmax", "softmax-oe-seed", dict(loss="softmax", outlier_data=outlier_data), "oe"))
    for seed in seeds:
        for loss, prefix, changes, tag in runs:
            name = f"{prefix}{seed}"
            config = base.replace(seed=seed, ood=ood, **changes)
            mine = [r for r in records if r["loss"] == loss and r["seed"] == seed]
            if tag == "oe":
                todo_plain, todo_methods = not any(r["score"] == "oe" for r in mine), []
            else:
                todo_plain = not any(r["score"] not in DETECTOR_METHODS + ("oe",) for r in mine)
                todo_methods = [m for m in detectors if loss in methods_on and not any(r["score"] == m for r in mine)]
            if not todo_plain and not todo_methods:
                log(f"[{name}] already evaluated in {results_path}, skipping")
                continue
            t0 = time.perf_counter()
            train(config, out / "runs" / name, progress=progress, log=log)
            t_train = time.perf_counter() - t0
            if ood_sets is None:
                from .data import load_dataset

                like = load_dataset(config.dataset, "test", data_dir=config.data_dir).shape
                ood_sets = load_ood_sets(ood, like, config.data_dir, log)
            scores = None if todo_plain else ()
            new = evaluate_run(out / "runs" / name, ood_sets=ood_sets, device=config.device, progress=progress,
                               arrays_path=out / "outputs" / f"{name}.npz" if todo_plain else None, scores=scores,
                               methods=todo_methods, detector_options=detector_options, log=log)
            replaced = {(r["loss"], r["seed"], r["score"]) for r in new}
            records = [r for r in records if (r["loss"], r["seed"], r["score"]) not in replaced] + new
            save_results(records, out)
            timing = dict(train_seconds=round(t_train, 1), total_seconds=round(time.perf_counter() - t0, 1),
                          methods=todo_methods, threads=torch.get_num_threads())
            meta["runs"].setdefault(name, []).append(timing)
            meta["wall_seconds"] = round(time.perf_counter() - t_start, 1)
            meta_path.write_text(json.dumps(meta, indent=2) + "\n")
            acc = new[0]["accuracy"] if new else float("nan")
            log(f"[{name}] test accuracy {100 * acc:.2f}%  ({timing['total_seconds']:.0f}s)")
    meta["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    write_markdown(records, out / "results.md", f"isomax bench: preset `{preset}`, seeds {list(seeds)}", command)
    return records
