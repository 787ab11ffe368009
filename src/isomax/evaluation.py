"""Evaluation: test accuracy and, for every out-distribution, every applicable score and metric.

Records (:class:`~isomax.records.RunRecord`, one per in-distribution x out-distribution x score) are
what ``results.json`` holds (:func:`isomax.records.write_records`): :data:`RECORD_KEYS` and more
(metrics are fractions in [0, 1]). Per-sample logits are kept in a compact ``.npz`` per
run for figures (:mod:`isomax.report`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .errors import InputError
from .detectors import DETECTORS
from .deploy.selective import selective_metrics
from .heads import canonical_head_name
from . import registry
from .metrics import ood_metrics
from .scores import SCORES
from .data.roles import ood_role
from .inference import batches, predict_logits  # predict_logits: re-exported (isomax.evaluation.predict_logits)
from .records import METRICS, OUTLIER_EXPOSURE, REQUIRED_FIELDS, RunRecord, write_records
from .runs import RESULTS, Run, savez_atomic, unique_keys

__all__ = [
    "predict_logits",
    "applicable_scores",
    "evaluate_model",
    "evaluate_detectors",
    "evaluate_run",
    "save_results",
    "RECORD_KEYS",
    "DETECTOR_METHODS",
]

#: the keys every record of ``results.json`` has: :class:`~isomax.records.RunRecord`'s required fields and metrics
RECORD_KEYS = REQUIRED_FIELDS + METRICS
#: post-hoc detectors fitted per model (isomax.detectors), read live from the registry (``register_detector``
#: adds to it); their records also hold ``params`` (the chosen hyperparameters)
DETECTOR_METHODS = DETECTORS.keys()


def applicable_scores(loss: str) -> tuple[str, ...]:
    """The plain scores that make sense for a head (:func:`isomax.registry.applicable_scores`): MDS needs distance
    logits (IsoMax, IsoMax+, DisMax); MMLS / MMLES / MMLEPS are DisMax's scores (of its enhanced logits)."""
    return registry.applicable_scores(loss)


def evaluate_model(
    model: nn.Module,
    loss: str,
    in_test,
    ood_sets: Sequence,
    mean,
    std,
    *,
    device: torch.device,
    batch_size: int = 1000,
    amp: bool = True,
    scores: Iterable[str] | None = None,
    meta: dict | None = None,
    progress: bool = True,
) -> tuple[list[RunRecord], dict[str, np.ndarray]]:
    """Records for every out-distribution x score, and the arrays to keep (logits, labels)."""
    scores = tuple(scores) if scores is not None else applicable_scores(loss)
    logits_in = predict_logits(model, in_test, mean, std, device, batch_size, amp, f"{in_test.name} (in)", progress)
    accuracy = float((logits_in.argmax(1) == in_test.labels).float().mean())
    score_in = {s: SCORES[s](logits_in) for s in scores}
    arrays = {"logits/in": logits_in.numpy(), "labels/in": in_test.labels.numpy()}
    scale = getattr(getattr(model, "head", None), "distance_scale", None)
    if scale is not None:
        arrays["distance_scale"] = np.asarray(float(scale.detach().abs()))
    records = []
    base = dict(
        in_dataset=in_test.name,
        model=(meta or {}).get("model"),
        loss=canonical_head_name(loss),
        seed=(meta or {}).get("seed"),
        accuracy=accuracy,
    )
    # selective classification (a rejector also rejects misclassified in-distribution inputs): per score
    selective = selective_metrics(logits_in, in_test.labels, score_in)
    for ood in ood_sets:
        logits_out = predict_logits(model, ood, mean, std, device, batch_size, amp, f"{ood.name} (out)", progress)
        arrays[f"logits/{ood.name}"] = logits_out.numpy()
        for s in scores:
            m = ood_metrics(score_in[s], SCORES[s](logits_out))
            rec = dict(
                base, out_dataset=ood.name, score=s, **m, aurc=selective[s]["aurc"], e_aurc=selective[s]["e_aurc"]
            )
            if ood_role(in_test.name, ood.name):
                rec["role"] = ood_role(in_test.name, ood.name)
            if ood.conversion:
                rec["conversion"] = ood.conversion
            records.append(RunRecord.from_dict(rec))
    return records, arrays


def evaluate_detectors(
    model: nn.Module,
    loss: str,
    in_test,
    ood_sets: Sequence,
    mean,
    std,
    *,
    methods: Sequence[str],
    train_data,
    val_data,
    device: torch.device,
    accuracy: float,
    batch_size: int = 500,
    meta: dict | None = None,
    detector_options: dict | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[RunRecord]:
    """Records of the post-hoc detectors (:mod:`isomax.detectors`) for every out-distribution.

    ODIN and Mahalanobis choose their hyperparameters on ``val_data`` against FGSM samples made
    from it (never on ``ood_sets``); Mahalanobis fits its class statistics on ``train_data``.
    ``detector_options`` go to :func:`isomax.detectors.fit_detectors` (e.g. ``max_samples``).
    Each record has ``score`` = the method name and ``params`` = the chosen hyperparameters.
    """
    from .detectors import fit_detectors

    unknown = [m for m in methods if m not in DETECTOR_METHODS]
    if unknown:
        raise InputError(f"Expected detector methods in {list(DETECTOR_METHODS)}, but got: {unknown}")
    detectors = fit_detectors(
        model,
        methods,
        train=train_data,
        val=val_data,
        mean=mean,
        std=std,
        device=device,
        batch_size=batch_size,
        log=log,
        **(detector_options or {}),
    )
    base = dict(
        in_dataset=in_test.name,
        model=(meta or {}).get("model"),
        loss=canonical_head_name(loss),
        seed=(meta or {}).get("seed"),
        accuracy=accuracy,
    )
    records = []
    for name, det in detectors.items():

        def run(data, what):
            return det.predict_data(
                tqdm(
                    batches(data, mean, std, device, batch_size),
                    desc=f"{name} {what}",
                    leave=False,
                    disable=not progress,
                    unit="batch",
                )
            )

        s_in = run(in_test, f"{in_test.name} (in)")
        for ood in ood_sets:
            m = ood_metrics(s_in, run(ood, f"{ood.name} (out)"))
            rec = dict(base, out_dataset=ood.name, score=name, **m, params=det.params())
            if ood_role(in_test.name, ood.name):
                rec["role"] = ood_role(in_test.name, ood.name)
            if ood.conversion:
                rec["conversion"] = ood.conversion
            records.append(RunRecord.from_dict(rec))
    return records


def load_ood_sets(
    names: Sequence[str],
    like: tuple[int, int, int],
    data_dir=None,
    log: Callable[[str], None] = print,
    stream: int | None = None,
) -> list:
    """Out-distribution sets converted ``like`` the in-distribution, each under a unique name (see
    :func:`isomax.runs.unique_keys`; the same input listed twice is refused). With ``stream`` (a number
    of workers: a folder run), image folders are read by the streaming path at the run's input size
    (same resize + center crop as its test split) instead of being decoded into memory."""
    from .data import load_ood

    def one(name):
        if stream is not None and Path(name).expanduser().is_dir():
            from .data.folder import folder_images

            return folder_images(name, like[1], workers=stream)
        return load_ood(name, like=like, data_dir=data_dir)

    sets = [one(name) for name in names]
    keys, notes = unique_keys(names, [d.name for d in sets])  # two folders named imgs/ are never merged
    for note in notes:
        log(f"note: out-distributions: {note}")
    for data, key in zip(sets, keys):
        data.name = key
        if data.conversion:
            log(f"out-distribution {data.name}: {len(data)} images ({data.conversion})")
    return sets


def evaluate_run(
    run_dir: str | os.PathLike,
    ood: Sequence[str] | None = None,
    *,
    data_dir: str | None = None,
    device: str = "auto",
    scores: Iterable[str] | None = None,
    arrays_path: str | os.PathLike | None = None,
    ood_sets: Sequence | None = None,
    progress: bool = True,
    methods: Sequence[str] = (),
    detector_options: dict | None = None,
    log: Callable[[str], None] = print,
) -> list[RunRecord]:
    """Evaluate a run directory made by ``isomax train`` against out-distributions (names or folders).

    ``methods``: post-hoc detectors (:data:`DETECTOR_METHODS`) to fit on the run's training and
    validation splits and evaluate too; ``scores=()`` with ``methods`` evaluates only them.
    """
    run = Run.load(run_dir, device, calibrated=False)  # the model as trained (the published numbers)
    model, config, dev = run.model, run.config, run.device
    _check_validation_split(run_dir, config, methods)
    in_test = run.test_data(data_dir)
    data_dir = data_dir or run.runtime.data_dir  # the run's (config.json records where training found it)
    batch_size = run.runtime.eval_batch_size
    if ood_sets is None:
        ood_sets = load_ood_sets(
            list(ood or config.ood), in_test.shape, data_dir, log, stream=getattr(in_test, "workers", None)
        )
    mean, std = run.input.mean, run.input.std  # what the run was trained with
    meta = dict(model=config.model, seed=config.seed)
    scores = tuple(scores) if scores is not None else None
    if config.outlier_data:  # an Outlier Exposure run (training method "oe"): its entropic score
        scores, methods = ("es",), ()
    records: list[RunRecord]
    arrays: dict[str, np.ndarray] | None
    if scores == () and methods:  # detectors only: no plain-score records nor arrays
        records, arrays = [], None
        logits_in = predict_logits(model, in_test, mean, std, dev, batch_size, config.amp, None, progress)
        accuracy = float((logits_in.argmax(1) == in_test.labels).float().mean())
    else:
        records, arrays = evaluate_model(
            model,
            config.loss,
            in_test,
            ood_sets,
            mean,
            std,
            device=dev,
            batch_size=batch_size,
            amp=config.amp,
            scores=scores,
            meta=meta,
            progress=progress,
        )
        accuracy = records[0].accuracy if records else float("nan")
    if methods:
        train_data, val_data = run.train_val_data(data_dir)
        records += evaluate_detectors(
            model,
            config.loss,
            in_test,
            ood_sets,
            mean,
            std,
            methods=methods,
            train_data=train_data,
            val_data=val_data,
            device=dev,
            accuracy=accuracy,
            batch_size=min(500, batch_size),
            meta=meta,
            detector_options=detector_options,
            progress=progress,
            log=log,
        )
    if config.outlier_data:
        records = [r.replace(method=OUTLIER_EXPOSURE, outlier_data=config.outlier_data) for r in records]
        arrays = None  # no logits file: figures would take them for a plain SoftMax run
    warn_if_near_chance(accuracy, in_test.num_classes, str(run_dir), log)
    if arrays_path is not None and arrays is not None:
        _save_arrays(
            arrays_path,
            arrays,
            dict(run=str(run_dir), loss=config.loss, model=config.model, seed=config.seed, in_dataset=in_test.name),
        )
    return records


def _check_validation_split(run_dir, config, methods: Sequence[str]) -> None:
    if methods and config.val_fraction == 0:
        raise InputError(
            f"{run_dir} was trained with val_fraction=0: {', '.join(methods)} choose their "
            "hyperparameters on the validation split, which this run does not have; train with "
            "--val-fraction > 0 or drop --methods"
        )


def _save_arrays(path: str | os.PathLike, arrays: dict, meta: dict) -> None:
    """The per-sample logits of one run, written atomically (a kill never leaves a truncated .npz)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    savez_atomic(path, **arrays, meta=np.asarray(json.dumps(meta)))


def near_chance(accuracy: float, num_classes: int | None) -> bool:
    """True when ``accuracy`` is below 1.5x chance (1 / ``num_classes``): OOD metrics of such a model mean nothing."""
    return bool(num_classes) and accuracy == accuracy and accuracy < 1.5 / (num_classes or 1)


def warn_if_near_chance(
    accuracy: float, num_classes: int | None, what: str, log: Callable[[str], None] = print
) -> None:
    if num_classes and near_chance(accuracy, num_classes):
        log(
            f"warning: {what}: test accuracy {100 * accuracy:.2f}% is near chance ({100 / num_classes:.1f}%); "
            "its OOD detection numbers are meaningless (did training diverge? lower --lr)"
        )


def clear_evaluation_out(out_dir: str | os.PathLike) -> list[Path]:
    """``isomax evaluate`` owns its ``--out``: remove what an earlier evaluation left there (``results.json``,
    ``results.md``, ``outputs/*.npz``), so a report never mixes runs of two evaluations (also after one was
    killed midway). Other files are left alone. Returns the removed paths."""
    out_dir = Path(out_dir)
    old = [out_dir / RESULTS, out_dir / "results.md"]
    if (out_dir / "outputs").is_dir():
        old += sorted(p for p in (out_dir / "outputs").iterdir() if p.name.endswith(".npz") or ".npz." in p.name)
    removed = [p for p in old if p.is_file()]
    for p in removed:
        p.unlink()
    return removed


def save_results(records: Sequence[RunRecord], out_dir: str | os.PathLike) -> Path:
    """Write ``out_dir/results.json`` atomically (:func:`isomax.records.write_records`, its one writer)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_records(records, out_dir / RESULTS)
