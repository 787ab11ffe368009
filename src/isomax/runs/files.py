"""Run directories: what ``train``, ``evaluate``, ``bench``, ``sweep`` and ``report`` share.

A run directory holds:

* ``config.json``: the :class:`~isomax.presets.TrainConfig` (written when training starts) and, next to its
  fields, flat, the :class:`~isomax.presets.Runtime` of the last start (device, threads, data directory,
  evaluation batch size, workers): so the file is a valid ``--config`` file and later commands find the data
  where training did. Only the TrainConfig fields define the run (:func:`check_config`);
* ``checkpoint.pt``: model, optimiser and scheduler state, epoch, history, the configuration and
  the input description ``data`` (channels, size, mean/std, class names) recorded at training
  time. Only tensors and plain Python types are stored, and it is read with
  ``torch.load(weights_only=True)``: a crafted file cannot run code, it is refused with
  :class:`CheckpointError`;
* ``log.jsonl``: one JSON line per finished epoch;
* ``.lock`` while a process trains in it (:class:`RunLock`): the pid and host of that process;
* ``calibration.json`` and ``threshold.json`` once fitted (:mod:`isomax.runs.calibration`,
  :mod:`isomax.runs.threshold`); ``results.json`` where an evaluation wrote its records there.

The file names are defined here once (:data:`RUN_FILES`); :class:`isomax.runs.Run` reads them all.

Every file is written atomically (temporary file, fsync, rename), so a kill at any point leaves
either the old or the new version.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .._io import PidLock, atomic_write_bytes, atomic_write_text
from ..errors import IsoMaxError, InputError
from ..presets import Runtime, TrainConfig
from .history import EpochRecord
from .strict import read_json_file

__all__ = [
    "CHECKPOINT",
    "CONFIG",
    "LOG",
    "LOCK",
    "CheckpointError",
    "RunLockedError",
    "RunLock",
    "atomic_write_bytes",
    "atomic_write_text",
    "write_json",
    "savez_atomic",
    "read_config",
    "read_runtime",
    "check_config",
    "write_config",
    "config_record",
    "save_checkpoint",
    "load_checkpoint",
    "load_state",
    "THRESHOLD",
    "CALIBRATION",
    "RESULTS",
    "RUN_FILES",
    "write_log",
    "append_log",
    "read_log",
    "MAX_LOG_BYTES",
    "unique_keys",
]

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
LOG = "log.jsonl"
LOCK = ".lock"
THRESHOLD = "threshold.json"
CALIBRATION = "calibration.json"
RESULTS = "results.json"
#: every file a run directory may hold (an ``--out`` may never replace one of them)
RUN_FILES = (CHECKPOINT, CONFIG, LOG, THRESHOLD, CALIBRATION, LOCK, RESULTS)
_CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "epoch", "history")  # what resuming needs
_MODEL_KEYS = ("model", "epoch", "history")  # what loading a trained model needs


class CheckpointError(IsoMaxError, ValueError):
    """A checkpoint that cannot be read, is not one isomax wrote, or does not match its configuration."""


class RunLockedError(IsoMaxError, RuntimeError):
    """Another live process trains in this run directory."""


# ---- atomic writes (isomax._io) ---------------------------------------------------------------
def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


def savez_atomic(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """``np.savez_compressed`` into memory, then an atomic write (a kill never leaves a truncated .npz)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub types the first keyword
    return atomic_write_bytes(path, buf.getvalue())


# ---- configuration ---------------------------------------------------------------------------
def _read_config_dict(run_dir: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    path = Path(run_dir) / CONFIG
    d = read_json_file(path, "not a configuration written by isomax")  # capped size and nesting
    if not isinstance(d, dict):
        raise InputError(f"cannot read {path}: not a configuration written by isomax (a {type(d).__name__})")
    return path, d


def read_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The run's :class:`TrainConfig` (``config.json`` without its runtime keys: :func:`read_runtime`)."""
    path, d = _read_config_dict(run_dir)
    try:
        return TrainConfig.from_dict(d)
    except (TypeError, AttributeError) as err:
        raise InputError(f"cannot read {path}: not a configuration written by isomax ({err})") from err


def read_runtime(run_dir: str | os.PathLike) -> Runtime:
    """The :class:`Runtime` of the run's last start, as ``config.json`` recorded it (defaults for what it
    does not hold: a run saved by :func:`isomax.deploy.save_run`)."""
    path, d = _read_config_dict(run_dir)
    try:
        return Runtime.from_dict(d)
    except InputError as err:
        raise InputError(f"cannot read {path}: {err}") from err


def check_config(run_dir: str | os.PathLike, config: TrainConfig) -> None:
    """Refuse to continue a run of ``run_dir`` that has a checkpoint made with another configuration.

    Only the fields that define the model count (the :class:`TrainConfig`): a run resumes on another
    device, with other threads, data directory, evaluation batch size or workers (its
    :class:`~isomax.presets.Runtime`, which ``config.json`` records too). A ``config.json`` without a
    checkpoint (a start that failed before its first epoch) never blocks.
    """
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).exists() or not (run_dir / CHECKPOINT).exists():
        return
    saved, new = read_config(run_dir).to_dict(), config.to_dict()  # runtime settings are not in it
    if saved != new:
        diff = {k: (v, new[k]) for k, v in saved.items() if new[k] != v}
        raise InputError(
            f"{run_dir} already holds a run with a different configuration {diff} (saved, requested); "
            "use another output directory or --no-resume to start over"
        )


def config_record(config: TrainConfig, runtime: Runtime | None = None) -> dict[str, Any]:
    """What ``config.json`` (and the checkpoint's ``config``) hold: the TrainConfig fields, then the Runtime's,
    flat (the format of the files written before the two were separate)."""
    return {**config.to_dict(), **(runtime or Runtime()).to_dict()}


def write_config(run_dir: str | os.PathLike, config: TrainConfig, runtime: Runtime | None = None) -> Path:
    """Write ``config.json``: :func:`config_record` (a valid ``--config`` file)."""
    return write_json(Path(run_dir) / CONFIG, config_record(config, runtime))


# ---- checkpoints -----------------------------------------------------------------------------
def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Save ``state`` (tensors and plain types only) atomically."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu", keys: tuple[str, ...] = _CHECKPOINT_KEYS
) -> dict:
    """Read a checkpoint with ``weights_only=True`` and check that it has ``keys`` (default: all that
    resuming needs; :meth:`isomax.runs.Run.load` asks only for the model's).

    Raises :class:`CheckpointError` (one line, naming the file) for anything unreadable: truncated,
    random bytes, a pickle that would run code, a bare tensor, missing keys. ``OSError`` (missing,
    permission) propagates as is.
    """
    path = Path(path)
    with open(path, "rb") as fh:  # OSError here: the caller reports the path
        data = fh.read()
    try:
        state = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for bad bytes; all mean "not a checkpoint"
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(
            f"cannot read checkpoint {path}: not a checkpoint written by isomax "
            f"(only tensors and plain types are loaded; {type(err).__name__}: {first})"
        ) from err
    missing = [k for k in keys if not isinstance(state, dict) or k not in state]
    if missing:
        got = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"cannot read checkpoint {path}: expected the keys {list(keys)}, but {missing} are missing (got {got})"
        )
    if not isinstance(state["model"], dict) or not all(isinstance(v, torch.Tensor) for v in state["model"].values()):
        raise CheckpointError(f"cannot read checkpoint {path}: `model` is not a state dict of tensors")
    if not isinstance(state["epoch"], int) or not isinstance(state["history"], list):
        raise CheckpointError(f"cannot read checkpoint {path}: `epoch` must be an int and `history` a list")
    return state


def load_state(module, state: dict, path: str | os.PathLike, what: str, config: TrainConfig) -> None:
    """``module.load_state_dict(state)`` with a one-line :class:`CheckpointError` when they do not match."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, IndexError, TypeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(
            f"checkpoint {path} does not match its configuration (model {config.model!r}, loss "
            f"{config.loss!r}): the {what} state differs ({first})"
        ) from err


# ---- epoch log -------------------------------------------------------------------------------
def write_log(run_dir: str | os.PathLike, history: list[dict]) -> None:
    """``log.jsonl`` holding exactly ``history`` (the checkpoint's epochs)."""
    atomic_write_text(Path(run_dir) / LOG, "".join(json.dumps(r) + "\n" for r in history))


def append_log(run_dir: str | os.PathLike, record: dict) -> None:
    with open(Path(run_dir) / LOG, "a") as fh:
        fh.write(json.dumps(record) + "\n")


MAX_LOG_BYTES = 64 << 20  # an epoch line is about 200 bytes


def read_log(run_dir: str | os.PathLike) -> list[EpochRecord]:
    """The epochs of ``log.jsonl`` (none if the run has no log). A line that is not an epoch record (the last
    one cut by a kill, or one written by something else) is skipped; a log over :data:`MAX_LOG_BYTES` is
    refused with :class:`~isomax.errors.InputError`."""
    path = Path(run_dir) / LOG
    if not path.is_file():
        return []
    with open(path, "rb") as fh:
        data = fh.read(MAX_LOG_BYTES + 1)
    if len(data) > MAX_LOG_BYTES:
        raise InputError(f"{path}: larger than {MAX_LOG_BYTES >> 20} MiB, not a log isomax wrote")
    records = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            records.append(EpochRecord.from_dict(json.loads(line)))
        except (json.JSONDecodeError, RecursionError, InputError):
            continue
    return records


# ---- lock ------------------------------------------------------------------------------------
class RunLock(PidLock):
    """``run_dir/.lock`` holding ``pid host`` while a process trains in ``run_dir`` (see
    :class:`isomax._io.PidLock`: atomic, stale locks of killed processes taken over, a second live
    process gets :class:`RunLockedError`). Use as a context manager."""

    error = RunLockedError

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        super().__init__(self.run_dir / LOCK)

    def busy(self, pid: int, where: str) -> str:
        return (
            f"{self.run_dir} is in use: process {pid}{where} is training in it (lock {self.path}); wait for it or "
            "use another --out (if that process is not isomax, delete the lock)"
        )

    def stuck(self) -> str:
        return f"cannot take the lock {self.path}; remove it if no process trains in {self.run_dir}"


# ---- unique keys -------------------------------------------------------------------------------
def unique_keys(inputs: Sequence[str | os.PathLike], names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Keys that tell ``inputs`` apart: ``names[i]`` where it is unique, else the shortest trailing part
    of the input's resolved path that is (``a/imgs``, ``b/imgs``); and one note per renamed group.

    Raises ``ValueError`` when two inputs are the same (same resolved path, or the same name that is
    no path): merging them would count one input twice.
    """
    keys, notes = list(names), []
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(name, []).append(i)
    for name, idx in groups.items():
        if len(idx) < 2:
            continue
        parts = {}
        for i in idx:
            p = Path(inputs[i]).expanduser()
            parts[i] = p.resolve().parts if p.exists() else (str(inputs[i]),)
        for a in idx:
            for b in idx:
                if a < b and parts[a] == parts[b]:
                    raise InputError(f"{str(inputs[a])!r} and {str(inputs[b])!r} are the same input; list it once")
        for i in idx:
            for k in range(1, len(parts[i]) + 1):
                key = "/".join(parts[i][-k:]).lstrip("/") or "/"
                if all(tuple(parts[j][-k:]) != tuple(parts[i][-k:]) for j in idx if j != i):
                    break
            keys[i] = key
        notes.append(f"{len(idx)} inputs are named {name!r}; told apart as " + ", ".join(repr(keys[i]) for i in idx))
    return keys, notes
