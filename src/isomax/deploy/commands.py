"""The bodies of ``isomax predict``, ``isomax threshold``, ``isomax calibrate`` and ``isomax export``,
and their argparse parsers (``add_*_parser(subparsers)``; each sets ``handler`` so ``cli.py`` runs
``args.handler(args)``).

``predict`` writes a CSV with the columns :data:`CSV_COLUMNS`, one row per input file, in input
order (folders recursively, natural path order). Rows go to ``OUT.partial`` as each batch is done
(flushed to disk), so an interrupted run loses nothing: rerunning the same command skips the paths
already in ``OUT.partial`` (if it was made with the same run, score and threshold) and at the end
writes ``OUT`` atomically (temporary file + rename) and removes the partial file.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

__all__ = ["run_predict", "run_threshold", "run_calibrate", "run_export", "add_predict_parser", "add_threshold_parser",
           "add_calibrate_parser", "add_export_parser", "CSV_COLUMNS", "PredictSummary", "list_inputs", "read_images"]

CSV_COLUMNS = ("path", "class", "probability", "score", "threshold", "accepted", "error")


@dataclass
class PredictSummary:
    out: Path
    n_inputs: int
    n_predicted: int
    n_accepted: int
    n_failed: int
    n_resumed: int
    conversions: list[str]


# ------------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------------
def list_inputs(inputs: Sequence[str | os.PathLike]) -> tuple[list[str], dict[str, str]]:
    """Image paths (folders expanded recursively, natural order; duplicates once) and ``{path: error}`` for missing ones."""
    from ..data.images import list_image_files

    paths, missing, seen = [], {}, set()
    for item in inputs:
        p = Path(item)
        found = list_image_files(p) if p.is_dir() else [p] if p.exists() else None
        if found is None:
            missing[str(p)] = "no such file or directory"
            found = [p]
        for f in found:
            key = str(f)
            if key not in seen:
                seen.add(key)
                paths.append(key)
    return paths, missing


def read_images(paths: Sequence[str], like: tuple[int, int, int]) -> tuple[torch.Tensor, list[int], dict[int, str], list[str]]:
    """Decode and convert images to ``like = (C, H, W)`` uint8, as ``evaluate`` converts out-distribution images.

    Returns ``(images (K, C, H, W), indices of the K decoded paths, {index: error} of the others,
    conversion descriptions)``.
    """
    from ..data.images import convert_like, decode_image_bytes, read_file

    arrays, ok, errors = [], [], {}
    for i, p in enumerate(paths):
        try:
            arrays.append(decode_image_bytes(p, read_file(Path(p))))  # size caps of isomax.data.limits apply
            ok.append(i)
        except (OSError, ValueError) as err:  # unreadable, undecodable or over a cap: reported, not fatal
            # PIL names the in-memory buffer (with its address): say "file", so reruns give the same text
            errors[i] = re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "file", str(err).removeprefix(f"{p}: "))
    out = torch.empty((len(arrays),) + tuple(like), dtype=torch.uint8)
    groups: dict[tuple[int, ...], list[int]] = {}
    for j, a in enumerate(arrays):
        groups.setdefault(a.shape, []).append(j)
    conversions = []
    for shape, idx in groups.items():
        y, rec = convert_like(torch.from_numpy(np.stack([arrays[j] for j in idx])), like)
        out[torch.as_tensor(idx, dtype=torch.long)] = y
        if rec:
            conversions.append(rec)
    return out, ok, errors, conversions


# ------------------------------------------------------------------------------------------------
# predict
# ------------------------------------------------------------------------------------------------
def _fmt(v: float) -> str:
    return repr(float(v))


def _partial_paths(out: Path) -> tuple[Path, Path]:
    return out.with_name(out.name + ".partial"), out.with_name(out.name + ".partial.json")


def _write_csv(path: Path, rows) -> None:
    """The CSV of ``rows`` (dicts of :data:`CSV_COLUMNS`), written atomically."""
    from .._io import atomic_write_text

    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _resume_partial(out: Path, partial: Path, partial_meta: Path, meta: dict, n_paths: int,
                    log: Callable[[str], None]) -> dict[str, dict]:
    """The rows an interrupted run of the same command left in ``partial`` (``{path: row}``), or a fresh
    ``partial`` file with only the header."""
    done: dict[str, dict] = {}
    if partial.exists() and partial_meta.exists() and json.loads(partial_meta.read_text()) == meta:
        with open(partial, newline="") as fh:
            for row in csv.DictReader(fh):
                done[row["path"]] = row
        # a row cut by the interruption has missing fields: drop it (that file is predicted again) and
        # rewrite the partial file with the complete rows, so appended rows start on a fresh line
        done = {p: r for p, r in done.items() if r.get("error") is not None}
        _write_csv(partial, done.values())
        log(f"resuming: {len(done)} of {n_paths} inputs already in {partial}")
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial_meta.write_text(json.dumps(meta) + "\n")
        with open(partial, "w", newline="") as fh:
            csv.writer(fh).writerow(CSV_COLUMNS)
    return done


def _predict_chunk(chunk: list[str], run, predictor, missing: dict[str, str], strict: bool, thr: str,
                   conversions_seen: list[str], log: Callable[[str], None]) -> dict[int, list[str]]:
    """CSV rows (by position in ``chunk``) of one batch of paths: a prediction, or the reason it failed."""
    images, ok, errors, conversions = read_images(chunk, run.input_shape)
    for i, p in enumerate(chunk):
        if p in missing:
            errors[i] = missing[p]
    for c in conversions:
        if c not in conversions_seen:
            conversions_seen.append(c)
            log(f"converting inputs to the model's input ({run.input_shape[1]}x{run.input_shape[2]}, "
                f"{run.input_shape[0]} channel(s)) as `evaluate` does: {c}")
    if errors and strict:
        i, reason = next(iter(errors.items()))
        raise ValueError(f"{chunk[i]}: {reason} (--strict; rerun without it to list unreadable files and go on)")
    rows: dict[int, list[str]] = {i: [chunk[i], "", "", "", thr, "", reason] for i, reason in errors.items()}
    if ok:
        pred = predictor.predict(images)
        for k, i in enumerate(ok):
            rows[i] = [chunk[i], run.class_names[int(pred.label[k])], _fmt(pred.probability[k]),
                       _fmt(pred.score[k]), thr, str(bool(pred.accepted[k])).lower(), ""]
    return rows


def _finish(out: Path, partial: Path, partial_meta: Path, paths: list[str], done: dict[str, dict], threshold,
            n_resumed: int, conversions_seen: list[str], log: Callable[[str], None]) -> PredictSummary:
    """The final CSV (atomically, in input order) from the partial file, which is then removed."""
    with open(partial, newline="") as fh:
        for row in csv.DictReader(fh):
            done[row["path"]] = row
    _write_csv(out, (done[p] for p in paths))
    partial.unlink()
    partial_meta.unlink()
    rows = [done[p] for p in paths]
    failed = [r for r in rows if r["error"]]
    summary = PredictSummary(out, len(paths), len(paths) - len(failed), sum(r["accepted"] == "true" for r in rows),
                             len(failed), n_resumed, conversions_seen)
    for r in failed:
        log(f"skipped {r['path']}: {r['error']}")
    log(f"{summary.n_predicted} predicted, {summary.n_accepted} accepted ({threshold.score} >= "
        f"{threshold.threshold:.6g}), {summary.n_failed} unreadable; wrote {out}")
    return summary


def run_predict(run_dir: str | os.PathLike, inputs: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                batch_size: int = 256, device: str = "auto", strict: bool = False, progress: bool = True,
                score: str | None = None, log: Callable[[str], None] = print) -> PredictSummary:
    """Classify image files with a run's model and accept / reject them with its threshold; write a CSV.

    Args:
        run_dir: a run directory with ``threshold.json`` (``isomax threshold RUN_DIR`` fits it).
        inputs: image files and folders (searched recursively).
        out: CSV to write (atomically); ``OUT.partial`` holds the rows of an interrupted run.
        strict: raise on the first unreadable file instead of listing it with its reason.
        score: expected score name; refused if the run's threshold was fitted for another.
    """
    from ..training import resolve_device
    from .predictor import Predictor
    from .run import load_deployed

    if batch_size < 1:
        raise ValueError(f"Expected `batch_size` to be >= 1, but got: {batch_size}")
    out = Path(out)
    dev = resolve_device(device)
    run = load_deployed(run_dir, dev, score)
    for note in run.notes:
        log(note)
    predictor = Predictor(run.model, run.threshold.score, run.threshold, mean=run.mean, std=run.std, device=dev)
    paths, missing = list_inputs(inputs)
    if not paths:
        raise ValueError(f"Expected image files or folders with images, but found none in: {[str(i) for i in inputs]}")
    if strict and missing:
        raise FileNotFoundError(f"{next(iter(missing))}: no such file or directory (--strict)")

    partial, partial_meta = _partial_paths(out)
    meta = dict(run_dir=str(Path(run_dir).resolve()), score=run.threshold.score, threshold=run.threshold.threshold,
                columns=list(CSV_COLUMNS))
    done = _resume_partial(out, partial, partial_meta, meta, len(paths), log)
    n_resumed = len(done)
    todo = [p for p in paths if p not in done]

    conversions_seen: list[str] = []
    thr = _fmt(run.threshold.threshold)
    with open(partial, "a", newline="") as fh, tqdm(total=len(todo), desc="predict", unit="img",
                                                     disable=not progress) as bar:
        writer = csv.writer(fh)
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            rows = _predict_chunk(chunk, run, predictor, missing, strict, thr, conversions_seen, log)
            writer.writerows(rows[i] for i in sorted(rows))
            fh.flush()
            os.fsync(fh.fileno())
            bar.update(len(chunk))

    return _finish(out, partial, partial_meta, paths, done, run.threshold, n_resumed, conversions_seen, log)


# ------------------------------------------------------------------------------------------------
# threshold, calibrate, export
# ------------------------------------------------------------------------------------------------
def run_threshold(run_dir, score: str | None = None, target_tpr: float = 0.95, *, device: str = "auto",
                  data_dir: str | None = None, test: bool = True, progress: bool = True,
                  log: Callable[[str], None] = print):
    """``isomax threshold``: :func:`isomax.deploy.fit_run_threshold`, plus the TPR it achieves on the test split."""
    from .threshold import fit_run_threshold

    return fit_run_threshold(run_dir, score, target_tpr, device=device, data_dir=data_dir, progress=progress,
                             report_test=test, log=log)


def run_calibrate(run_dir, *, device: str = "auto", data_dir: str | None = None, progress: bool = True,
                  log: Callable[[str], None] = print):
    from .calibration import calibrate_run

    return calibrate_run(run_dir, device=device, data_dir=data_dir, progress=progress, log=log)


def run_export(run_dir, out, *, exporter: str = "auto", log: Callable[[str], None] = print):
    from .export import export_onnx

    return export_onnx(run_dir, out, exporter=exporter, log=log)


def _tpr(value: str) -> float:
    v = float(value)
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {value}")
    return v


def _run_parser(subparsers, name: str, help: str, description: str) -> argparse.ArgumentParser:
    """A subcommand taking a run directory first (all four commands here)."""
    p = subparsers.add_parser(name, help=help, description=description)
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    return p


def _common_flags(p: argparse.ArgumentParser, *, data_dir: bool = True, device: bool = True) -> None:
    if data_dir:
        p.add_argument("--data-dir", default=None, help="where the run's dataset is (default: the run's, $ISOMAX_DATA)")
    if device:
        p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_threshold_parser(subparsers) -> argparse.ArgumentParser:
    from ..scores import SCORES

    p = _run_parser(
        subparsers, "threshold", help="fit the accept/reject threshold of a run on its validation split",
        description="Fit the score threshold that accepts --tpr of the run's in-distribution validation split "
                    "(never test or out-distribution data) and write RUN_DIR/threshold.json. Inputs with score >= "
                    "threshold are accepted as in-distribution by `isomax predict` and `isomax export`. Also reports "
                    "the TPR the threshold achieves on the test split (for information).")
    p.add_argument("--score", choices=list(SCORES), default=None,
                   help="score (default: mds for IsoMax+, mmles for DisMax, es for IsoMax and SoftMax)")
    p.add_argument("--tpr", type=_tpr, default=0.95, help="fraction of in-distribution inputs to accept (default 0.95)")
    p.add_argument("--no-test", action="store_true", help="do not measure the achieved TPR on the test split")
    _common_flags(p)
    p.set_defaults(handler=lambda a: (run_threshold(a.run_dir, a.score, a.tpr, device=a.device, data_dir=a.data_dir,
                                                    test=not a.no_test, progress=not a.no_progress), 0)[1])
    return p


def add_calibrate_parser(subparsers) -> argparse.ArgumentParser:
    p = _run_parser(
        subparsers, "calibrate", help="fit the head temperature of a run on its validation split",
        description="Fit the temperature dividing the logits by NLL on the validation split, report test ECE "
                    "(15 bins), NLL and Brier before/after, and write RUN_DIR/calibration.json (used by predict, "
                    "threshold and export). Refit the threshold afterwards.")
    _common_flags(p)
    p.set_defaults(handler=lambda a: (run_calibrate(a.run_dir, device=a.device, data_dir=a.data_dir,
                                                    progress=not a.no_progress), 0)[1])
    return p


def add_predict_parser(subparsers) -> argparse.ArgumentParser:
    p = _run_parser(
        subparsers, "predict", help="classify image files and accept/reject them as in-distribution",
        description="Run RUN_DIR's model on image files and folders (recursively; any size and mode, converted to "
                    "the model's input as `evaluate` converts out-distribution images) and write a CSV: path, "
                    "class, probability, score, threshold, accepted, error. Needs RUN_DIR/threshold.json "
                    "(`isomax threshold RUN_DIR`). Unreadable files get a row with the reason (--strict: fail). "
                    "An interrupted run resumes where it stopped when rerun.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("--out", required=True, type=Path, help="CSV to write")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--strict", action="store_true", help="fail on the first unreadable file")
    _common_flags(p, data_dir=False)
    p.set_defaults(handler=lambda a: (run_predict(a.run_dir, a.inputs, a.out, batch_size=a.batch_size, device=a.device,
                                                  strict=a.strict, progress=not a.no_progress), 0)[1])
    return p


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    p = _run_parser(
        subparsers, "export", help="export a run (model, score, threshold) as one ONNX graph",
        description="Write one ONNX graph: uint8 images (N, H, W, C) -> logits, class, probability, score, accepted, "
                    "with the normalisation and RUN_DIR/threshold.json inside and the class names, input size, "
                    "mean/std, score, threshold and target TPR in its metadata.")
    p.add_argument("--out", required=True, type=Path, help="ONNX file to write")
    p.add_argument("--exporter", choices=("auto", "dynamo", "legacy"), default="auto",
                   help="torch.onnx.export(dynamo=True), the legacy TorchScript exporter, or auto: dynamo when "
                        "torch.export can trace the model, else legacy (default)")
    _common_flags(p, data_dir=False, device=False)
    p.set_defaults(handler=lambda a: (run_export(a.run_dir, a.out, exporter=a.exporter), 0)[1])
    return p
