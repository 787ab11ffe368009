"""Atomic file writes and lock files.

Atomic writes: the bytes go to ``<name>.<pid>.tmp`` next to the target, are flushed to disk, and the
temporary file is renamed over the target (``os.replace`` is atomic on POSIX and Windows), so a reader
(or a run killed mid-write) never sees a half-written file. Parent folders are made.

Locks (:class:`PidLock`): a file holding ``pid host`` while a process holds it.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "PidLock"]


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; ``fsync=False`` skips forcing the bytes to disk first.

    The temporary file is per process (``<name>.<pid>.tmp``), so two writers never share one, and it is
    removed if the write fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8", fsync: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode(encoding), fsync=fsync)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class PidLock:
    """A lock file holding ``pid host`` while a process holds it; the base of ``isomax.runs.RunLock``
    (a run directory in training) and ``isomax.deploy``'s ``OutputLock`` (an ``--out`` being written).

    Created atomically (``os.link`` of a complete temporary file: never an empty lock). A lock whose
    process is gone (same host, pid not running: a ``kill -9``) is stale and taken over; a lock from
    another host is respected. A second process gets ``error`` with :meth:`busy`'s message. Use as a
    context manager; the lock is removed on exit, also on errors.
    """

    error: type[Exception] = RuntimeError

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.held = False

    def busy(self, pid: int, where: str) -> str:
        return f"{self.path} is held by process {pid}{where}"

    def stuck(self) -> str:
        return f"cannot take the lock {self.path}; remove it if no process holds it"

    def _holder(self) -> tuple[int | None, str | None]:
        try:
            pid, host = self.path.read_text().split()[:2]
            return int(pid), host
        except (OSError, ValueError):
            return None, None

    def _mtime(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    def acquire(self):
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(f"{os.getpid()} {socket.gethostname()}\n")
        try:
            for _ in range(3):
                try:
                    os.link(tmp, self.path)
                    self.held = True
                    return self
                except FileExistsError:
                    pid, host = self._holder()
                    if pid is not None and (host != socket.gethostname() or _alive(pid)):
                        where = "" if host == socket.gethostname() else f" on {host}"
                        raise self.error(self.busy(pid, where)) from None
                    if pid is None and time.time() - self._mtime() < 5:  # being replaced right now: look again
                        time.sleep(0.2)
                        continue
                    self.path.unlink(missing_ok=True)  # stale: its process is gone
            raise self.error(self.stuck())
        finally:
            tmp.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            if self._holder()[0] == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
