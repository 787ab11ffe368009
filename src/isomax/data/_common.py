"""Shared pieces of :mod:`isomax.data`: the in-memory container, errors, search paths, checksums."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import torch

__all__ = [
    "ImageData",
    "DatasetError",
    "DatasetNotFoundError",
    "ChecksumError",
    "find_data_dir",
    "search_roots",
    "cache_dir",
    "md5_bytes",
    "md5_file",
]


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
class DatasetError(ValueError):
    """A data file exists but cannot be used (corrupt, truncated, wrong format)."""


class ChecksumError(DatasetError):
    """A data file does not match its published checksum."""

    def __init__(self, dataset: str, path: os.PathLike | str, expected: Sequence[str], actual: str,
                 algo: str = "md5", extra: str = ""):
        self.dataset = dataset
        self.path = Path(path)
        self.expected = tuple(expected)
        self.actual = actual
        exp = " or ".join(self.expected)
        msg = (f"{dataset}: checksum mismatch for file {self.path}: expected {algo} {exp}, "
               f"got {actual}. The file is corrupt, truncated or a different version; delete it and "
               f"get a fresh copy (or pass verify=False to skip the check).")
        if extra:
            msg += " " + extra
        super().__init__(msg)


class DatasetNotFoundError(FileNotFoundError):
    """The files of a data set were not found in any searched directory."""

    def __init__(self, dataset: str, expected: Iterable[str], searched: Iterable[os.PathLike | str],
                 how_to_get: str, split: str | None = None, note: str = ""):
        self.dataset = dataset
        self.expected = list(expected)
        self.searched = [Path(p) for p in searched]
        self.how_to_get = how_to_get
        what = f"dataset '{dataset}'" + (f" (split '{split}')" if split else "")
        lines = [f"Could not find {what}.",
                 "Expected one of: " + "; ".join(self.expected) + ".",
                 "Searched directories (in order):"]
        for p in self.searched:
            lines.append(f"  {p}" + ("" if p.is_dir() else "  (does not exist)"))
        if not self.searched:
            lines.append("  (none)")
        lines.append("How to get it: " + how_to_get)
        lines.append("Point the loader at the data with data_dir=... (CLI: --data-dir) or the "
                     "ISOMAX_DATA environment variable (os.pathsep-separated list of directories).")
        if note:
            lines.append(note)
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------------------------
# container
# --------------------------------------------------------------------------------------------
@dataclass
class ImageData:
    """An in-memory image set: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,) or None."""

    images: torch.Tensor
    labels: torch.Tensor | None
    name: str
    classes: list[str] | None
    conversion: str | None = None
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.images, torch.Tensor):
            raise TypeError("images must be a torch.Tensor")
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be a uint8 tensor (N, C, H, W); got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if self.labels is not None:
            if not isinstance(self.labels, torch.Tensor):
                self.labels = torch.as_tensor(self.labels)
            if self.labels.dtype != torch.int64:
                self.labels = self.labels.to(torch.int64)
            if self.labels.shape != (self.images.shape[0],):
                raise ValueError(f"labels must have shape ({self.images.shape[0]},); got "
                                 f"{tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image; pass as ``like=`` to :func:`load_ood`."""
        _, c, h, w = self.images.shape
        return (int(c), int(h), int(w))

    @property
    def num_classes(self) -> int | None:
        if self.classes is not None:
            return len(self.classes)
        if self.labels is not None and len(self.labels):
            return int(self.labels.max()) + 1
        return None

    def subset(self, index) -> "ImageData":
        """A new ImageData with the samples selected by ``index`` (indices, bool mask or slice)."""
        if isinstance(index, slice):
            idx = index
        else:
            idx = torch.as_tensor(index)
            if idx.dtype == torch.bool:
                idx = idx.nonzero().flatten()
            idx = idx.to(torch.int64).to(self.images.device)
        return ImageData(
            images=self.images[idx],
            labels=None if self.labels is None else self.labels[idx],
            name=self.name,
            classes=None if self.classes is None else list(self.classes),
            conversion=self.conversion,
            source=self.source,
        )

    def __repr__(self) -> str:
        lab = "None" if self.labels is None else f"int64({len(self.labels)})"
        return (f"ImageData(name={self.name!r}, n={len(self)}, shape={self.shape}, labels={lab}, "
                f"classes={None if self.classes is None else len(self.classes)}, "
                f"conversion={self.conversion!r})")


# --------------------------------------------------------------------------------------------
# search paths
# --------------------------------------------------------------------------------------------
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


def find_data_dir(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The existing data roots, in search order.

    Order: the explicit ``data_dir``; the entries of ``$ISOMAX_DATA`` (``os.pathsep``-separated);
    the cache ``~/.cache/isomax`` (or ``$ISOMAX_CACHE``); ``/usr/share/datasets``. Nothing relative
    to the working directory is searched implicitly: pass ``data_dir`` (CLI ``--data-dir``).
    """
    return [r for r in search_roots(data_dir) if r.is_dir()]


# --------------------------------------------------------------------------------------------
# checksums
# --------------------------------------------------------------------------------------------
def md5_bytes(data: bytes | memoryview) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_file(path: os.PathLike | str, chunk: int = 1 << 22) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()
