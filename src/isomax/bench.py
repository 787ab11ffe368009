"""``isomax bench``: losses x seeds — train, evaluate, tabulate.

Writes into ``out``:

* ``runs/<loss>-seed<seed>/``: one run directory per trained model (``config.json``, checkpoint),
  accepted by ``isomax evaluate``;
* ``outputs/<loss>-seed<seed>.npz``: per-sample logits for figures (``isomax report``);
* ``results.json``: every record (:class:`isomax.records.RunRecord`; updated after each run, so an
  interrupted bench loses nothing: rerunning it resumes the unfinished run and skips the finished ones);
* ``results.md``: the tables of :func:`isomax.tables.standard_tables` that have records: accuracy
  (Table 2 layout), the seamless comparison (Table 3), with ``methods`` the comparisons with ODIN /
  Mahalanobis (Table 4) and Outlier Exposure (Table 5), the IsoMax scores (Table 6) and every
  loss x training method x score;
* with ``methods=("oe",)``: ``runs/softmax-oe-seed<seed>/``, SoftMax trained with Outlier Exposure
  (records: loss ``softmax``, training method ``oe``, score ``es``; no logits file);
* ``bench.json``: preset, configuration overrides, software versions, device, timings.

With ``eval_limit`` set in the configuration, each out-distribution is evaluated on a fixed subset
of that many images (:func:`isomax.sampling.seeded_subset`, seed 0, the same for every run), and the
records say so (``eval_limit``).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from .errors import InputError
from . import tables
from ._io import atomic_write_text
from .evaluation import DETECTOR_METHODS, evaluate_run, load_ood_sets
from .heads import canonical_head_name
from .registry import BASELINE_LOSS, PAPER_LOSSES
from .presets import Runtime, TrainConfig, get_preset, split_settings
from .records import OUTLIER_EXPOSURE, STANDARD, RunRecord, as_records, read_records, write_records
from .sampling import seeded_subset
from .training import train
from .deploy.fit import fit_deployment

__all__ = ["run_bench", "write_markdown", "LOSSES", "EVAL_SUBSET_SEED"]

#: The losses a bench trains by default (as ``isomax bench``; add ``dismax`` / ``dismax-fpr`` with ``losses=``).
LOSSES = PAPER_LOSSES  # softmax, isomax, isomaxplus
#: Seed of the fixed evaluation subsets (``eval_limit``): the same images for every run and seed.
EVAL_SUBSET_SEED = 0


def write_markdown(records: Sequence[RunRecord | dict], path: Path, title: str, command: str | None = None) -> None:
    """``results.md``: the tables of :func:`isomax.tables.standard_tables` that have records."""
    records = as_records(records)
    parts = [f"# {title}", ""]
    if command:
        parts += ["Produced by:", "", "```", command, "```", ""]
    for spec in tables.standard_tables(records):
        if spec.table is not None:
            parts += spec.markdown()
    conversions = sorted({(r.out_dataset, r.conversion) for r in records if r.conversion})
    if conversions:
        parts += ["Out-distribution conversions: " + "; ".join(f"{o}: {c}" for o, c in conversions), ""]
    limits = sorted({r.eval_limit for r in records if r.eval_limit})
    if limits:
        parts += [
            f"Out-distributions evaluated on a fixed subset of at most {', '.join(map(str, limits))} images each "
            f"(seed {EVAL_SUBSET_SEED}, the same for every run); the in-distribution on its whole test split.",
            "",
        ]
    atomic_write_text(path, "\n".join(parts))


@dataclass(frozen=True)
class _Plan:
    """One model to train per seed: its loss, training method and configuration changes."""

    loss: str
    method: str
    changes: dict

    def name(self, seed: int) -> str:
        return f"{self.loss}-oe-seed{seed}" if self.method == OUTLIER_EXPOSURE else f"{self.loss}-seed{seed}"


def _plans(losses: Sequence[str], methods: Sequence[str], outlier_data: str | None) -> list[_Plan]:
    unknown = [m for m in methods if m not in (*DETECTOR_METHODS, OUTLIER_EXPOSURE)]
    if unknown:
        raise InputError(f"Expected methods in {list(DETECTOR_METHODS) + [OUTLIER_EXPOSURE]}, but got: {unknown}")
    if OUTLIER_EXPOSURE in methods and not outlier_data:
        raise InputError("Expected --outlier-data (a name or folder of outlier images) for the 'oe' method")
    plans = [_Plan(loss, STANDARD, dict(loss=loss)) for loss in losses]
    if OUTLIER_EXPOSURE in methods:
        plans.append(_Plan(BASELINE_LOSS, OUTLIER_EXPOSURE, dict(loss=BASELINE_LOSS, outlier_data=outlier_data)))
    return plans


def _todo(
    records: Sequence[RunRecord], plan: _Plan, seed: int, detectors: Sequence[str], methods_on: Sequence[str]
) -> tuple[bool, list[str]]:
    """(plain scores still to evaluate?, detectors still to fit) for one run."""
    mine = [r for r in records if r.loss == plan.loss and r.seed == seed and r.method == plan.method]
    todo_plain = not any(r.score not in DETECTOR_METHODS for r in mine)
    if plan.method != STANDARD:  # detectors are fitted on standard models only
        return todo_plain, []
    return todo_plain, [m for m in detectors if plan.loss in methods_on and not any(r.score == m for r in mine)]


def _meta(out: Path, runtime: Runtime, **fields) -> dict:
    """bench.json's content, keeping the timings of earlier invocations (a bench run in several goes)."""
    meta = dict(
        fields,
        python=sys.version.split()[0],
        torch=torch.__version__,
        platform=platform.platform(),
        device=str(runtime.device),
        cuda=torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        threads=torch.get_num_threads(),
        runs={},
    )
    if (out / "bench.json").exists():
        earlier = json.loads((out / "bench.json").read_text()).get("runs", {})
        meta["runs"] = {k: v if isinstance(v, list) else [v] for k, v in earlier.items()}
    return meta


def _evaluate(
    config: TrainConfig,
    runtime: Runtime,
    out: Path,
    name: str,
    ood_sets: list,
    plain: bool,
    methods: list[str],
    detector_options: dict | None,
    progress: bool,
    log: Callable[[str], None],
) -> list[RunRecord]:
    """Records of one trained run: its plain scores (and logits file) if ``plain``, and the detectors ``methods``."""
    new = evaluate_run(
        out / "runs" / name,
        ood_sets=ood_sets,
        device=runtime.device,
        progress=progress,
        arrays_path=out / "outputs" / f"{name}.npz" if plain else None,
        scores=None if plain else (),
        methods=methods,
        detector_options=detector_options,
        log=log,
    )
    return [r.replace(epochs=config.epochs, eval_limit=config.eval_limit) for r in as_records(new)]


def _log_run(meta: dict, name: str, t0: float, t_train: float, methods: list[str], t_start: float, out: Path) -> dict:
    """Add a run's timing to bench.json (written at once, so a killed bench keeps it); returns the timing."""
    timing = dict(
        train_seconds=round(t_train, 1),
        total_seconds=round(time.perf_counter() - t0, 1),
        methods=methods,
        threads=torch.get_num_threads(),
    )
    meta["runs"].setdefault(name, []).append(timing)
    meta["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    atomic_write_text(out / "bench.json", json.dumps(meta, indent=2) + "\n")
    return timing


def _ood_sets(config: TrainConfig, runtime: Runtime, ood: Sequence[str], log: Callable[[str], None]) -> list:
    """The out-distributions, shaped like the in-distribution, cut to ``config.eval_limit`` images each."""
    from .inputs import load_test

    in_test = load_test(config, runtime.data_dir, runtime.workers)
    sets = [
        seeded_subset(s, config.eval_limit, EVAL_SUBSET_SEED)
        for s in load_ood_sets(ood, in_test.shape, runtime.data_dir, log, stream=getattr(in_test, "workers", None))
    ]
    if config.eval_limit:
        log(
            "out-distributions: "
            + ", ".join(f"{s.name} {len(s)} images" for s in sets)
            + f" (fixed subsets, seed {EVAL_SUBSET_SEED})"
        )
    return sets


def run_bench(
    preset: str,
    seeds: Sequence[int],
    out: str | Path,
    *,
    losses: Sequence[str] = LOSSES,
    ood: Sequence[str] | None = None,
    overrides: dict | None = None,
    progress: bool = True,
    command: str | None = None,
    methods: Sequence[str] = (),
    methods_on: Sequence[str] = (BASELINE_LOSS,),
    outlier_data: str | None = None,
    detector_options: dict | None = None,
    log: Callable[[str], None] = print,
) -> list[RunRecord]:
    """Train and evaluate every loss x seed of a preset; returns all records.

    ``methods``: comparison methods of the 2021 paper's Tables 4-5. ``"odin"`` and ``"mahalanobis"``
    are fitted on each run of a loss in ``methods_on`` (default: SoftMax, as in the paper;
    ``detector_options`` go to :func:`isomax.detectors.fit_detectors`). ``"oe"`` trains one more
    SoftMax run per seed with Outlier Exposure on ``outlier_data`` (``runs/softmax-oe-seed<s>``),
    recorded as loss ``softmax``, training method ``oe``, score ``es`` (its entropic score).
    """
    losses = [canonical_head_name(name) for name in losses]
    methods_on = [canonical_head_name(name) for name in methods_on]
    plans = _plans(losses, methods, outlier_data)
    detectors = [m for m in methods if m in DETECTOR_METHODS]
    config_changes, runtime_changes = split_settings(overrides or {})  # TrainConfig and Runtime fields, flat
    out, base = Path(out), get_preset(preset).config(**config_changes)
    runtime = get_preset(preset).runtime(**runtime_changes)
    out.mkdir(parents=True, exist_ok=True)
    ood = tuple(ood or base.ood)
    meta = _meta(
        out,
        runtime,
        preset=preset,
        overrides=overrides or {},
        seeds=list(seeds),
        losses=list(losses),
        ood=list(ood),
        methods=list(methods),
        methods_on=list(methods_on),
        outlier_data=outlier_data,
        command=command,
    )
    results_path = out / "results.json"
    records = read_records(results_path) if results_path.exists() else []
    ood_sets: list = []  # loaded once, when the first run is evaluated
    t_start = time.perf_counter()
    for seed in seeds:
        for plan in plans:
            name = plan.name(seed)
            todo_plain, todo_methods = _todo(records, plan, seed, detectors, methods_on)
            if not todo_plain and not todo_methods:
                log(f"[{name}] already evaluated in {results_path}, skipping")
                continue
            config = base.replace(seed=seed, ood=ood, **plan.changes)
            t0 = time.perf_counter()
            fit_deployment(train(config, out / "runs" / name, runtime=runtime, progress=progress, log=log), log=log)
            t_train = time.perf_counter() - t0
            ood_sets = ood_sets or _ood_sets(config, runtime, ood, log)
            new = _evaluate(
                config, runtime, out, name, ood_sets, todo_plain, todo_methods, detector_options, progress, log
            )
            records = [r for r in records if r.key not in {n.key for n in new}] + new
            write_records(records, results_path)
            timing = _log_run(meta, name, t0, t_train, todo_methods, t_start, out)
            log(
                f"[{name}] test accuracy {100 * (new[0].accuracy if new else float('nan')):.2f}%  "
                f"({timing['total_seconds']:.0f}s)"
            )
    meta["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    atomic_write_text(out / "bench.json", json.dumps(meta, indent=2) + "\n")
    write_markdown(records, out / "results.md", f"isomax bench: preset `{preset}`, seeds {list(seeds)}", command)
    return records
