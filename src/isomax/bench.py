"""``isomax bench``: losses x seeds — train, evaluate, tabulate.

Writes into ``out``:

* ``runs/<loss>-seed<seed>/``: one run directory per trained model (``config.json``, checkpoint),
  accepted by ``isomax evaluate``;
* ``outputs/<loss>-seed<seed>.npz``: per-sample logits for figures (``isomax report``);
* ``results.json``: every record (updated after each run, so an interrupted bench loses nothing:
  rerunning it resumes the unfinished run and skips the finished ones);
* ``results.md``: the accuracy table (Table 2 layout), the seamless comparison (Table 3 layout)
  and every loss x score;
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
              "## Seamless OOD detection (Table 3 layout; best mean in bold)", "", tables.seamless_table(records), "",
              "## Every loss and score", "", tables.all_scores_table(records), ""]
    conversions = sorted({(r["out_dataset"], r["conversion"]) for r in records if r.get("conversion")})
    if conversions:
        parts += ["Out-distribution conversions: " + "; ".join(f"{o}: {c}" for o, c in conversions), ""]
    path.write_text("\n".join(parts))


def run_bench(preset: str, seeds: Sequence[int], out: str | Path, *, losses: Sequence[str] = LOSSES,
              ood: Sequence[str] | None = None, overrides: dict | None = None, progress: bool = True,
              command: str | None = None, log: Callable[[str], None] = print) -> list[dict]:
    """Train and evaluate every loss x seed of a preset; returns all records."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = get_preset(preset).config(**(overrides or {}))
    ood = tuple(ood or base.ood)
    meta = dict(preset=preset, overrides=overrides or {}, seeds=list(seeds), losses=list(losses), ood=list(ood),
                command=command, python=sys.version.split()[0], torch=torch.__version__, platform=platform.platform(),
                device=str(base.device), cuda=torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                threads=torch.get_num_threads(), runs={})
    results_path = out / "results.json"
    records: list[dict] = json.loads(results_path.read_text()) if results_path.exists() else []
    ood_sets = None
    t_start = time.perf_counter()
    for seed in seeds:
        for loss in losses:
            name = f"{loss}-seed{seed}"
            config = base.replace(loss=loss, seed=seed, ood=ood)
            done = any(r["loss"] == loss and r["seed"] == seed for r in records)
            if done:
                log(f"[{name}] already evaluated in {results_path}, skipping")
                continue
            t0 = time.perf_counter()
            train(config, out / "runs" / name, progress=progress, log=log)
            t_train = time.perf_counter() - t0
            if ood_sets is None:
                from .data import load_dataset

                like = load_dataset(config.dataset, "test", data_dir=config.data_dir).shape
                ood_sets = load_ood_sets(ood, like, config.data_dir, log)
            new = evaluate_run(out / "runs" / name, ood_sets=ood_sets, device=config.device, progress=progress,
                               arrays_path=out / "outputs" / f"{name}.npz", log=log)
            records = [r for r in records if not (r["loss"] == loss and r["seed"] == seed)] + new
            save_results(records, out)
            meta["runs"][name] = dict(train_seconds=round(t_train, 1), total_seconds=round(time.perf_counter() - t0, 1))
            acc = new[0]["accuracy"] if new else float("nan")
            log(f"[{name}] test accuracy {100 * acc:.2f}%  ({meta['runs'][name]['total_seconds']:.0f}s)")
    meta["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    (out / "bench.json").write_text(json.dumps(meta, indent=2) + "\n")
    write_markdown(records, out / "results.md", f"isomax bench: preset `{preset}`, seeds {list(seeds)}", command)
    return records
