"""Where data is searched for: the data roots, the cache folder and the candidate sub-folders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from .errors import DataDirNotFoundError, DatasetError

__all__ = [
    "SYSTEM_DATA_DIRS",
    "cache_dir",
    "search_roots",
    "data_roots",
    "find_data_dir",
    "unique_paths",
    "candidate_dirs",
    "first_file",
    "check_not_loop",
]

#: System-wide locations searched after the user's ones (Debian's dataset packages live here).
SYSTEM_DATA_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)


def cache_dir() -> Path:
    """``$ISOMAX_CACHE`` if set, else ``~/.cache/isomax`` (downloads and decoded-image caches)."""
    env = os.environ.get("ISOMAX_CACHE")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/isomax").expanduser()


def search_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Every candidate root in search order, existing or not (used for error messages)."""
    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    env = os.environ.get("ISOMAX_DATA")
    if env:
        roots.extend(Path(p).expanduser() for p in env.split(os.pathsep) if p.strip())
    roots.append(cache_dir())
    roots.extend(SYSTEM_DATA_DIRS)
    return unique_paths(roots)


def check_data_dir(data_dir: str | os.PathLike | None) -> None:
    """:class:`DataDirNotFoundError` if an explicitly given ``data_dir`` is not a directory."""
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise DataDirNotFoundError(Path(data_dir).expanduser())


def data_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The existing roots in search order; an explicit ``data_dir`` must exist (else
    :class:`DataDirNotFoundError`: a typo must not silently fall back to the other roots)."""
    check_data_dir(data_dir)
    return [r for r in search_roots(data_dir) if r.is_dir()]


def find_data_dir(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The existing data roots, in search order.

    Order: the explicit ``data_dir`` (which must exist: :class:`DataDirNotFoundError`); the entries
    of ``$ISOMAX_DATA`` (``os.pathsep``-separated, missing ones skipped); the cache
    ``~/.cache/isomax`` (or ``$ISOMAX_CACHE``); ``/usr/share/datasets``. Nothing relative to the
    working directory is searched implicitly: pass ``data_dir`` (CLI ``--data-dir``).
    """
    return data_roots(data_dir)


def unique_paths(paths: Iterable[Path]) -> list[Path]:
    """``paths`` in order without repeats (compared as absolute paths)."""
    seen: set[str] = set()
    out: list[Path] = []
    for p in paths:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def candidate_dirs(roots: Sequence[Path], subdirs: Sequence[str], bare: bool = True) -> list[Path]:
    """Named sub-folders of every root first, then the roots themselves (so that a root holding
    one data set's files cannot shadow another set's named folder further down the list)."""
    out = [r / s for r in roots for s in subdirs]
    if bare:
        out += list(roots)
    return unique_paths(out)


def first_file(dirs: Iterable[Path], names: Sequence[str]) -> Path | None:
    """The first ``dir / name`` that is a file, dirs outer, names inner."""
    for d in dirs:
        for n in names:
            p = d / n
            if p.is_file():
                return p
    return None


def check_not_loop(link: str, parent: str) -> None:
    """:class:`DatasetError` if the directory symlink ``link`` (inside ``parent``) points to
    ``parent`` or one of its ancestors: following it would list the same files forever."""
    target = os.path.realpath(link)
    here = os.path.realpath(parent)
    if here == target or here.startswith(target.rstrip(os.sep) + os.sep):
        raise DatasetError(
            f"{link}: symbolic link loop (it points to {target}, which contains "
            f"it); remove the link or load a folder without it"
        )
