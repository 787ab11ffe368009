"""Predicting image files with a run into a resumable CSV (the engine of ``isomax predict``).

:func:`run_predict` writes a CSV with the columns :data:`CSV_COLUMNS`, one row per input file, in input
order (folders recursively, natural path order). Rows go to ``OUT.partial`` as each batch is done
(flushed to disk), so an interrupted run loses nothing: rerunning the same command skips the paths
already in ``OUT.partial`` (if it was made with the same model, score, threshold and temperature, the
row is complete and its file still has the size and mtime it had) and at the end writes ``OUT``
atomically (temporary file + rename) and removes the partial file. ``OUT.lock`` is held meanwhile.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm
from ..errors import InputError

__all__ = [
    "run_predict",
    "CSV_COLUMNS",
    "PredictSummary",
    "list_inputs",
    "read_images",
]

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
def _display(path: str) -> str:
    """``path`` as it can be written to a UTF-8 CSV: undecodable bytes of a file name as ``\\xNN``."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def list_inputs(
    inputs: Sequence[str | os.PathLike], skipped: dict[str, int] | None = None
) -> tuple[list[str], dict[str, str]]:
    """Image paths (folders expanded recursively, natural order; duplicates once) and ``{path: error}`` for the
    ones that cannot be read: missing, not a regular file (FIFO, device, socket: never opened), a file name that
    is not valid UTF-8 (listed with ``\\xNN`` escapes). ``skipped`` counts what folders left out
    (:func:`isomax.data.images.list_image_files`)."""
    from ..data.images import list_image_files

    paths, errors, seen = [], {}, set()
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = list_image_files(p, skipped)
        else:
            found = [p]
            if not p.exists():
                errors[_display(str(p))] = "no such file or directory"
            elif not p.is_file():
                errors[_display(str(p))] = "not a regular file (a FIFO, device or socket); not read"
        for f in found:
            key = _display(str(f))
            if key != str(f) and key not in errors:
                errors[key] = "file name is not valid UTF-8 (shown with \\x escapes); not read: rename it"
            if key not in seen:
                seen.add(key)
                paths.append(key)
    return paths, errors


def read_images(
    paths: Sequence[str], like: tuple[int, int, int]
) -> tuple[torch.Tensor, list[int], dict[int, str], list[str]]:
    """Decode and convert images to ``like = (C, H, W)`` uint8, as ``evaluate`` converts out-distribution images.

    One image at a time: decoded at a reduced size where the format allows
    (:func:`isomax.data.images.decode_image_bytes` with ``like``) and converted right away, so memory is
    bounded by the batch at the model's input size (plus one decoded image), not by the images' pixels.

    Returns ``(images (K, C, H, W), indices of the K decoded paths, {index: error} of the others,
    conversion descriptions)``.
    """
    from ..data.images import _desc, convert_like, decode_image_bytes, read_file

    out = torch.empty((len(paths),) + tuple(like), dtype=torch.uint8)
    ok: list[int] = []
    errors: dict[int, str] = {}
    conversions: list[str] = []
    for i, p in enumerate(paths):
        try:
            data = read_file(Path(p))  # size caps of isomax.data.limits apply
            info: dict = {}
            a = decode_image_bytes(p, data, like=like, info=info)
            del data
        except (OSError, ValueError) as err:  # unreadable, undecodable or over a cap: reported, not fatal
            # PIL names the in-memory buffer (with its address): say "file", so reruns give the same text
            errors[i] = re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "file", str(err).removeprefix(f"{p}: "))
            continue
        y, rec = convert_like(torch.from_numpy(a if a.flags.writeable else a.copy())[None], like)
        if "size" in info:  # decoded at a reduced size: say from what
            rec = f"{_desc(a.shape[0], *info['size'])} decoded at {a.shape[1]}x{a.shape[2]}, then {rec}"
        out[len(ok)] = y[0]
        ok.append(i)
        if rec and rec not in conversions:
            conversions.append(rec)
    return out[: len(ok)], ok, errors, conversions


# ------------------------------------------------------------------------------------------------
# predict
# ------------------------------------------------------------------------------------------------
#: the partial file's columns: the CSV's, the input's size and mtime when it was read (a resumed row is reused
#: only if the file is unchanged), and an end mark (a row cut by a kill lacks it and is predicted again)
PARTIAL_COLUMNS = CSV_COLUMNS + ("size", "mtime_ns", "end")


def _fmt(v: float) -> str:
    return repr(float(v))


def _partial_paths(out: Path) -> tuple[Path, Path]:
    return out.with_name(out.name + ".partial"), out.with_name(out.name + ".partial.json")


def _stat_key(path: str) -> tuple[str, str]:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return "", ""
    return str(st.st_size), str(st.st_mtime_ns)


def _write_csv(path: Path, rows, columns=CSV_COLUMNS) -> None:
    """The CSV of ``rows`` (dicts of ``columns``), written atomically."""
    from .._io import atomic_write_text

    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _resume_partial(
    out: Path, partial: Path, partial_meta: Path, meta: dict, n_paths: int, log: Callable[[str], None]
) -> dict[str, dict]:
    """The rows an interrupted run of the same command left in ``partial`` (``{path: row}``), or a fresh
    ``partial`` file with only the header. A row is reused only if complete (its end mark is there) and its
    file has the size and mtime it had when it was predicted."""
    done: dict[str, dict] = {}
    try:
        same = partial.exists() and json.loads(partial_meta.read_text()) == meta
    except (OSError, ValueError):
        same = False
    if same:
        with open(partial, newline="", encoding="utf-8", errors="replace") as fh:
            for row in csv.DictReader(fh):
                done[row["path"]] = row
        n_read = len(done)
        done = {p: r for p, r in done.items() if r.get("end") == "." and (r["size"], r["mtime_ns"]) == _stat_key(p)}
        # rewrite the partial file with the reused rows, so appended rows start on a fresh line
        _write_csv(partial, done.values(), PARTIAL_COLUMNS)
        dropped = (
            f" ({n_read - len(done)} rows cut by the interruption or of files changed since: predicted again)"
            if n_read > len(done)
            else ""
        )
        log(f"resuming: {len(done)} of {n_paths} inputs already in {partial}{dropped}")
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_csv(partial, [], PARTIAL_COLUMNS)
        from .._io import atomic_write_text

        atomic_write_text(partial_meta, json.dumps(meta) + "\n")
    return done


def _predict_chunk(
    chunk: list[str],
    run,
    predictor,
    missing: dict[str, str],
    strict: bool,
    thr: str,
    conversions_seen: list[str],
    log: Callable[[str], None],
) -> dict[int, list[str]]:
    """Partial-file rows (by position in ``chunk``) of one batch of paths: a prediction, or the reason it failed."""
    stats = [_stat_key(p) for p in chunk]  # before reading: a file changed while read is predicted again on resume
    readable = [i for i, p in enumerate(chunk) if p not in missing]
    images, ok, errors, conversions = read_images([chunk[i] for i in readable], run.input.shape)
    ok = [readable[k] for k in ok]
    errors = {readable[k]: e for k, e in errors.items()}
    for i, p in enumerate(chunk):
        if p in missing:
            errors[i] = missing[p]
    for c in conversions:
        if c not in conversions_seen:
            conversions_seen.append(c)
            log(
                f"converting inputs to the model's input ({run.input.shape[1]}x{run.input.shape[2]}, "
                f"{run.input.shape[0]} channel(s)) as `evaluate` does: {c}"
            )
    if errors and strict:
        i, reason = min(errors.items())
        raise InputError(f"{chunk[i]}: {reason} (--strict; rerun without it to list unreadable files and go on)")
    rows: dict[int, list[str]] = {
        i: [chunk[i], "", "", "", thr, "", reason, *stats[i], "."] for i, reason in errors.items()
    }
    if ok:
        pred = predictor.predict(images)
        for k, i in enumerate(ok):
            rows[i] = [
                chunk[i],
                run.class_names[int(pred.label[k])],
                _fmt(pred.probability[k]),
                _fmt(pred.score[k]),
                thr,
                str(bool(pred.accepted[k])).lower(),
                "",
                *stats[i],
                ".",
            ]
    return rows


def _finish(
    out: Path,
    partial: Path,
    partial_meta: Path,
    paths: list[str],
    done: dict[str, dict],
    threshold,
    n_resumed: int,
    conversions_seen: list[str],
    log: Callable[[str], None],
) -> PredictSummary:
    """The final CSV (atomically, in input order) from the partial file, which is then removed."""
    with open(partial, newline="", encoding="utf-8", errors="replace") as fh:
        for row in csv.DictReader(fh):
            if row.get("end") == ".":
                done[row["path"]] = row
    lost = [p for p in paths if p not in done]
    if lost:  # only if something else edited the partial file while we held the lock
        raise InputError(f"{partial}: rows of {len(lost)} inputs (first {lost[0]}) are missing; rerun the command")
    rows = [done[p] for p in paths]
    _write_csv(out, rows)
    partial.unlink()
    partial_meta.unlink()
    failed = [r for r in rows if r["error"]]
    summary = PredictSummary(
        out,
        len(paths),
        len(paths) - len(failed),
        sum(r["accepted"] == "true" for r in rows),
        len(failed),
        n_resumed,
        conversions_seen,
    )
    for r in failed:
        log(f"skipped {r['path']}: {r['error']}")
    log(
        f"{summary.n_predicted} predicted, {summary.n_accepted} accepted ({threshold.score} >= "
        f"{threshold.threshold:.6g}), {summary.n_failed} unreadable; wrote {out}"
    )
    return summary


def run_predict(
    run_dir: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    batch_size: int = 256,
    device: str = "auto",
    strict: bool = False,
    progress: bool = True,
    score: str | None = None,
    log: Callable[[str], None] = print,
) -> PredictSummary:
    """Classify image files with a run's model and accept / reject them with its threshold; write a CSV.

    Args:
        run_dir: a run directory with ``threshold.json`` (``isomax threshold RUN_DIR`` fits it).
        inputs: image files and folders (searched recursively).
        out: CSV to write (atomically); ``OUT.partial`` holds the rows of an interrupted run. Refused if it is
            a directory, a file of a run directory or one of the inputs; ``OUT.lock`` is held while writing
            (a second ``predict`` on the same ``out`` is refused).
        strict: raise on the first unreadable file instead of listing it with its reason.
        score: expected score name; refused if the run's threshold was fitted for another.
    """
    from ..runs import Run
    from ._files import OutputLock, check_output_path, remove_stale_temps, terminate_as_interrupt
    from .predictor import Predictor

    if batch_size < 1:
        raise InputError(f"Expected `batch_size` to be >= 1, but got: {batch_size}")
    out = Path(out)
    check_output_path(out, Path(run_dir), inputs)
    run = Run.load(run_dir, device)
    for note in run.notes:
        log(note)
    predictor = Predictor.from_run(run, score)
    threshold = predictor.threshold_
    assert threshold is not None  # from_run always passes the run's Threshold
    skipped: dict[str, int] = {}
    paths, missing = list_inputs(inputs, skipped)
    for why, n in sorted(skipped.items()):
        log(f"note: skipped {n} {why} {'entry' if n == 1 else 'entries'} in the input folders")
    if not paths:
        raise InputError(f"Expected image files or folders with images, but found none in: {[str(i) for i in inputs]}")
    if strict and missing:
        p, reason = next(iter(missing.items()))
        if reason == "no such file or directory":
            raise FileNotFoundError(f"{p}: no such file or directory (--strict)")
        raise InputError(f"{p}: {reason} (--strict)")
    check_output_path(out, None, paths)

    with OutputLock(out, "predict"), terminate_as_interrupt():
        partial, partial_meta = _partial_paths(out)
        for stale in (out, partial, partial_meta):
            remove_stale_temps(stale)
        meta = dict(
            run_dir=str(Path(run_dir).resolve()),
            fingerprint=run.fingerprint,
            score=threshold.score,
            threshold=threshold.threshold,
            temperature=threshold.temperature,
            columns=list(PARTIAL_COLUMNS),
        )
        done = _resume_partial(out, partial, partial_meta, meta, len(paths), log)
        n_resumed = sum(p in done for p in paths)
        todo = [p for p in paths if p not in done]

        conversions_seen: list[str] = []
        thr = _fmt(threshold.threshold)
        with (
            open(partial, "a", newline="", encoding="utf-8") as fh,
            tqdm(total=len(todo), desc="predict", unit="img", disable=not progress) as bar,
        ):
            writer = csv.writer(fh)
            for start in range(0, len(todo), batch_size):
                chunk = todo[start : start + batch_size]
                rows = _predict_chunk(chunk, run, predictor, missing, strict, thr, conversions_seen, log)
                writer.writerows(rows[i] for i in sorted(rows))
                fh.flush()
                os.fsync(fh.fileno())
                bar.update(len(chunk))

        return _finish(out, partial, partial_meta, paths, done, threshold, n_resumed, conversions_seen, log)
