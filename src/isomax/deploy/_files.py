"""Small, strict helpers for the deploy files: capped JSON reading with validated values, the model
fingerprint, an output lock, per-process temporary files removed on SIGINT/SIGTERM, and checks that an
``--out`` never overwrites a run's files, an input or a directory."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import threading
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from .._io import PidLock, _alive
from ..errors import IsoMaxError, InputError

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "read_json_file",
    "check_depth",
    "finite_number",
    "model_fingerprint",
    "OutputLock",
    "OutputLockedError",
    "check_output_path",
    "terminate_as_interrupt",
    "remove_stale_temps",
    "RUN_FILES",
]

MAX_JSON_BYTES = 1 << 20  # threshold.json / calibration.json are a few hundred bytes
MAX_JSON_DEPTH = 8
#: files of a run directory an ``--out`` may never replace
RUN_FILES = ("checkpoint.pt", "config.json", "log.jsonl", "threshold.json", "calibration.json", ".lock", "results.json")


def read_json_file(path: Path, fix: str) -> object:
    """The JSON value of ``path`` (at most :data:`MAX_JSON_BYTES`, nesting at most :data:`MAX_JSON_DEPTH`);
    any problem is a one-line ``ValueError`` naming the file and ``fix`` (the command that rewrites it)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_JSON_BYTES + 1)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err}); {fix}") from None
    if len(data) > MAX_JSON_BYTES:
        raise InputError(f"{path}: larger than {MAX_JSON_BYTES} bytes, not a file isomax wrote; {fix}")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err}); {fix}") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply; {fix}") from None
    try:
        check_depth(value)
    except ValueError as err:
        raise InputError(f"{path}: {err}; {fix}") from None
    return value


def check_depth(value, limit: int = MAX_JSON_DEPTH) -> None:
    """``ValueError`` if lists/dicts in ``value`` nest deeper than ``limit`` (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (list, dict)):
            if d > limit:
                raise InputError(f"JSON nested deeper than {limit} levels")
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))


def finite_number(name: str, value, *, positive: bool = False, allow_nan: bool = False) -> float:
    """``value`` as a float if it is a real number (not a bool or string), finite (NaN only with ``allow_nan``)."""
    import numpy as np

    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"Expected `{name}` to be a number, but got {type(value).__name__}: {value!r}")
    v = float(value)
    if math.isnan(v) and allow_nan:
        return v
    if not math.isfinite(v):
        raise InputError(f"Expected `{name}` to be a finite number, but got: {value!r}")
    if positive and not v > 0:
        raise InputError(f"Expected `{name}` to be positive, but got: {value!r}")
    return v


def model_fingerprint(model: nn.Module | dict) -> str:
    """SHA-256 (hex) of a model's ``state_dict`` (names, dtypes, shapes, bytes), the heads' ``temperature``
    buffers left out (the temperature is recorded and checked on its own). A model whose ``nn.Linear`` head
    had a temperature folded in (:func:`isomax.deploy.apply_temperature`) keeps the fingerprint of its
    weights before the fold."""
    if isinstance(model, nn.Module):
        cached = getattr(model, "_isomax_fingerprint", None)
        if cached is not None:
            return cached
        state = model.state_dict()
    else:
        state = model
    h = hashlib.sha256()
    for key in sorted(state):
        if key.rpartition(".")[2] == "temperature":  # a head's temperature buffer (`head.`, `net.fc.` of timm models)
            continue
        t = state[key]
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{key}|{t.dtype}|{tuple(state[key].shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# ---- outputs ---------------------------------------------------------------------------------
class OutputLockedError(IsoMaxError, RuntimeError):
    """Another live process writes the same ``--out``."""


class OutputLock(PidLock):
    """``OUT.lock`` holding ``pid host`` while a process writes ``OUT`` (:class:`isomax._io.PidLock`:
    atomic, a lock whose process is gone on this host is taken over)."""

    error = OutputLockedError

    def __init__(self, out: Path, command: str) -> None:
        self.out = Path(out)
        self.command = command
        super().__init__(self.out.with_name(self.out.name + ".lock"))

    def acquire(self) -> "OutputLock":
        self.out.parent.mkdir(parents=True, exist_ok=True)
        return super().acquire()

    def busy(self, pid: int, where: str) -> str:
        return (
            f"--out {self.out} is in use: process {pid}{where} is writing it (`isomax {self.command}`, "
            f"lock {self.path}); wait for it or use another --out"
        )

    def stuck(self) -> str:
        return f"cannot take the lock {self.path}; remove it if no process writes {self.out}"


def remove_stale_temps(out: Path) -> list[Path]:
    """Remove ``OUT.<pid>.tmp*`` files of processes that are gone (a SIGKILL, a full disk); called under the lock."""
    removed = []
    prefix = out.name + "."
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        rest = p.name[len(prefix) :] if p.name.startswith(prefix) else ""
        pid, _, tail = rest.partition(".")
        if pid.isdigit() and tail.startswith("tmp") and int(pid) != os.getpid() and not _alive(int(pid)):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _is_run_dir(folder: Path) -> bool:
    return (folder / "checkpoint.pt").exists() or (folder / "config.json").exists()


def check_output_path(out: Path, run_dir: Path | None = None, inputs=()) -> None:
    """Refuse an ``--out`` that is a directory, a file of a run directory, or one of the ``inputs``."""
    out = Path(out)
    if out.is_dir():
        raise IsADirectoryError(f"--out {out} is a directory; give the path of the file to write")
    resolved = out.resolve()
    if _is_run_dir(resolved.parent) and (resolved.name in RUN_FILES or resolved.suffix in (".pt", ".json", ".jsonl")):
        raise InputError(f"--out {out} is a file of the run directory {resolved.parent}; write the output elsewhere")
    if run_dir is not None and resolved == Path(run_dir).resolve():
        raise InputError(f"--out {out} is the run directory; give the path of a file to write")
    for item in inputs:
        try:
            same = Path(item).resolve() == resolved
        except (OSError, RuntimeError):
            same = False
        if same:
            raise InputError(f"--out {out} is one of the inputs; it would be overwritten")


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Inside: SIGTERM raises ``KeyboardInterrupt`` (as SIGINT does), so ``finally`` blocks remove temporary
    files; only in the main thread (elsewhere signals cannot be handled), restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
