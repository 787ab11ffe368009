"""Atomic file writes: a reader (or a run killed mid-write) never sees a half-written file.

The bytes go to ``<name>.<pid>.tmp`` next to the target, are flushed to disk, and the temporary file is
renamed over the target (``os.replace`` is atomic on POSIX and Windows). Parent folders are made.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text"]


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
