"""Reading tar (any compression) and zip archives in place, member by member, under size caps.

A member's declared size is checked against ``member_bytes`` and the running sum against
``archive_bytes`` (:mod:`isomax.data.limits`) *before* the member is read; the read itself is
bounded too (a lying header cannot make it longer). Members are handed out one at a time and the
callers decode each before asking for the next, so at most one member's bytes are in memory beyond
the data set being built. Nothing is extracted to disk.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .errors import DatasetError
from .images import (
    IMAGE_EXTENSIONS,
    decode_image_bytes,
    natural_key,
    quiet_torchvision_deprecation,
)
from .limits import Limits, current_limits, read_capped

__all__ = ["iter_members", "is_image_name", "read_archive_images"]

_ARCHIVE_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    EOFError,
    OSError,
    zlib.error,
    NotImplementedError,
    RuntimeError,
)


def is_image_name(name: str) -> bool:
    """A member that holds an image: image extension, not hidden (``._x.jpg`` of macOS tars)."""
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


def _checked(path: Path, name: str, size: int, total: int, limits: Limits) -> int:
    limits.check("member_bytes", size, f"{path}: member {name}")
    limits.check("archive_bytes", total + size, f"{path}: members read so far, up to and including {name}")
    return total + size


def _iter_tar(path: Path, want: Callable[[str], bool], limits: Limits) -> Iterator[tuple[str, bytes]]:
    total = 0
    with tarfile.open(path, "r:*") as tf:
        for m in tf:
            if not m.isfile() or not want(m.name):
                continue
            total = _checked(path, m.name, m.size, total, limits)
            f = tf.extractfile(m)
            if f is None:
                continue
            data = read_capped(f, f"{path}: member {m.name}", limits, size_hint=m.size)
            yield m.name, data
            del data  # the caller holds the only reference while it decodes


def _iter_zip(path: Path, want: Callable[[str], bool], limits: Limits) -> Iterator[tuple[str, bytes]]:
    total = 0
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.is_dir() or not want(info.filename):
                continue
            total = _checked(path, info.filename, info.file_size, total, limits)
            with zf.open(info) as f:
                data = read_capped(f, f"{path}: member {info.filename}", limits, size_hint=info.file_size)
            yield info.filename, data
            del data


def iter_members(
    path: os.PathLike | str, want: Callable[[str], bool], limits: Limits | None = None
) -> Iterator[tuple[str, bytes]]:
    """(member name, bytes) of each regular member of the tar or zip archive ``path`` whose name
    ``want`` accepts, in archive order, one at a time, under the size caps (``limits``: default
    :func:`~isomax.data.limits.current_limits`). A damaged archive is a :class:`DatasetError`
    naming it; a cap exceeded is a :class:`~isomax.data.errors.DataLimitError` naming the
    archive, the member and the cap."""
    path = Path(path)
    limits = limits or current_limits()
    try:
        is_zip = zipfile.is_zipfile(path)
        yield from (_iter_zip if is_zip else _iter_tar)(path, want, limits)
    except DatasetError:
        raise
    except _ARCHIVE_ERRORS as e:
        raise DatasetError(f"{path}: corrupt or truncated archive ({type(e).__name__}: {e})") from e


def read_archive_images(path: os.PathLike | str, limits: Limits | None = None) -> list[tuple[str, np.ndarray]]:
    """(member name, uint8 (C, H, W) array) of every image member, in natural name order.

    Each member is decoded as soon as it is read and its bytes dropped before the next is read."""
    limits = limits or current_limits()
    out: list[tuple[str, np.ndarray]] = []
    with quiet_torchvision_deprecation():
        for name, data in iter_members(path, is_image_name, limits):
            out.append((name, decode_image_bytes(f"{path}: member {name}", data, limits)))
            del data
    out.sort(key=lambda it: natural_key(it[0]))
    return out
