"""Small, strict helpers for the deploy files: capped JSON reading with validated values, the model
fingerprint, an output lock, per-process temporary files removed on SIGINT/SIGTERM, and checks that an
``--out`` never overwrites a run's files, an input or a directory."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Iterable, Iterator, NoReturn

from .._io import PidLock, _alive
from ..errors import IsoMaxError, InputError
from ..runs import files as _run_files
from ..runs.fingerprint import model_fingerprint
from ..runs.strict import MAX_JSON_BYTES, MAX_JSON_DEPTH, check_depth, finite_number, read_json_file

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

#: files of a run directory an ``--out`` may never replace
RUN_FILES = _run_files.RUN_FILES


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
    removed: list[Path] = []
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
    return (folder / _run_files.CHECKPOINT).exists() or (folder / _run_files.CONFIG).exists()


def check_output_path(out: Path, run_dir: Path | None = None, inputs: Iterable[str | os.PathLike] = ()) -> None:
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

    def handler(signum: int, frame: FrameType | None) -> NoReturn:
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
