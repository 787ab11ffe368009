"""The errors (and the one warning) of :mod:`isomax.data`.

Every problem with the data raises one of these, and its message names the file (or archive
member), what is wrong with it and what to do about it:

- :class:`DatasetError` (a ``ValueError``): a file exists but cannot be used (corrupt, truncated,
  wrong format, refused by a safety check).
- :class:`ChecksumError`: a file differs from its published checksum.
- :class:`DataLimitError`: a file, archive member, archive or image is larger than a size cap
  (see :mod:`isomax.data.limits`).
- :class:`DatasetNotFoundError` (a ``FileNotFoundError``): a data set's files are nowhere in the
  searched directories; lists what was expected, where it looked and how to get the files.
- :class:`DataDirNotFoundError` (a ``FileNotFoundError``): an explicitly given ``data_dir`` does
  not exist (it is never silently replaced by the other data roots).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import IsoMaxError

__all__ = [
    "DatasetError",
    "ChecksumError",
    "ChecksumWarning",
    "DataLimitError",
    "DatasetNotFoundError",
    "DataDirNotFoundError",
]


class DatasetError(IsoMaxError, ValueError):
    """A data file exists but cannot be used (corrupt, truncated, wrong format)."""


class ChecksumError(DatasetError):
    """A data file does not match its published checksum."""

    def __init__(
        self,
        dataset: str,
        path: os.PathLike | str,
        expected: Sequence[str],
        actual: str,
        algo: str = "md5",
        extra: str = "",
    ):
        self.dataset = dataset
        self.path = Path(path)
        self.expected = tuple(expected)
        self.actual = actual
        exp = " or ".join(self.expected)
        msg = (
            f"{dataset}: checksum mismatch for file {self.path}: expected {algo} {exp}, "
            f"got {actual}. The file is corrupt, truncated or a different version; delete it and "
            f"get a fresh copy (or pass verify=False to skip the check)."
        )
        if extra:
            msg += " " + extra
        super().__init__(msg)


class ChecksumWarning(UserWarning):
    """A folder copy of a data set differs from the copy whose checksum is known."""


class DataLimitError(DatasetError):
    """A file, archive member, archive or decoded image exceeds a configured size cap.

    ``what`` names the file (``archive:member`` for a member), ``limit`` the cap's name (one of
    :class:`isomax.data.limits.Limits`' fields), ``cap`` its value and ``actual`` the size found
    (``None`` when only "more than ``cap``" is known: the rest was not read).
    """

    def __init__(
        self, what: str, limit: str, cap: int, actual: int | None, unit: str = "bytes", env: str | None = None
    ):
        self.what = what
        self.limit = limit
        self.cap = int(cap)
        self.actual = None if actual is None else int(actual)
        size = f"more than {cap:,}" if actual is None else f"{actual:,}"
        how = f"raise it with the environment variable {env} or " if env else ""
        super().__init__(
            f"{what}: {size} {unit} exceeds the cap {limit}={cap:,} {unit} (a damaged file or "
            f"a decompression bomb; if the data is genuine, {how}isomax.data.limits.set_limits"
            f"({limit}=...))."
        )


class DatasetNotFoundError(IsoMaxError, FileNotFoundError):
    """The files of a data set were not found in any searched directory."""

    def __init__(
        self,
        dataset: str,
        expected: Iterable[str],
        searched: Iterable[os.PathLike | str],
        how_to_get: str,
        split: str | None = None,
        note: str = "",
    ):
        self.dataset = dataset
        self.expected = list(expected)
        self.searched = [Path(p) for p in searched]
        self.how_to_get = how_to_get
        what = f"dataset '{dataset}'" + (f" (split '{split}')" if split else "")
        lines = [
            f"Could not find {what}.",
            "Expected one of: " + "; ".join(self.expected) + ".",
            "Searched directories (in order):",
        ]
        for p in self.searched:
            lines.append(f"  {p}" + ("" if p.is_dir() else "  (does not exist)"))
        if not self.searched:
            lines.append("  (none)")
        lines.append("How to get it: " + how_to_get)
        lines.append(
            "Point the loader at the data with data_dir=... (CLI: --data-dir) or the "
            "ISOMAX_DATA environment variable (os.pathsep-separated list of directories)."
        )
        if note:
            lines.append(note)
        super().__init__("\n".join(lines))


class DataDirNotFoundError(IsoMaxError, FileNotFoundError):
    """An explicitly given data directory does not exist (or is not a directory)."""

    def __init__(self, path: os.PathLike | str):
        self.path = Path(path)
        state = "is not a directory" if self.path.exists() else "does not exist"
        super().__init__(
            f"data directory {self.path} {state} (given as data_dir / --data-dir). Pass an "
            f"existing folder, or leave it out to search $ISOMAX_DATA, the cache and "
            f"/usr/share/datasets."
        )
