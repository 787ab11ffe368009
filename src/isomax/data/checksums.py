"""Checking files against published checksums (the tables themselves live in the dataset specs)."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from .errors import ChecksumError, ChecksumWarning

__all__ = ["md5_bytes", "md5_file", "verify_md5", "tree_sha256", "check_tree"]


def md5_bytes(data: bytes | memoryview) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_file(path: os.PathLike | str, chunk: int = 1 << 22) -> str:
    """md5 of a file, read in chunks (never whole in memory)."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def verify_md5(
    dataset: str,
    known: Mapping[str, Sequence[str]],
    path: Path,
    raw: bytes | None = None,
    content: bytes | None = None,
    key: str | None = None,
) -> None:
    """Check ``path`` against ``known[file name]`` (md5s of the stored file) or, for gzipped files,
    ``known[name without .gz]`` (md5s of the uncompressed content, so a re-gzipped or gunzipped
    copy is accepted too). ``raw``: the file's bytes if already read; ``key``: the name to look up
    (default ``path.name``). Files with no known checksum pass."""
    key = key or path.name
    base = key[:-3] if key.endswith(".gz") else key
    file_ok = tuple(known.get(key, ()))
    content_ok = tuple(known.get(base, ()))
    if not file_ok and not content_ok:
        return
    actual = md5_bytes(raw) if raw is not None else md5_file(path)
    if actual in file_ok or actual in content_ok:
        return
    expected = list(dict.fromkeys(file_ok + content_ok))
    if content is not None and content is not raw and content_ok:
        actual_c = md5_bytes(content)
        if actual_c in content_ok:
            return
        expected = list(file_ok) + [f"{c} (uncompressed content)" for c in content_ok if c not in file_ok]
        raise ChecksumError(dataset, path, expected, f"{actual} (uncompressed content: {actual_c})")
    raise ChecksumError(dataset, path, expected, actual)


def tree_sha256(files_bytes: Iterable[tuple[str, bytes]]) -> str:
    """sha256 of the files' bytes concatenated in C-locale sorted path order (how the published
    folder checksums were made)."""
    h = hashlib.sha256()
    for _, b in sorted(files_bytes, key=lambda it: os.fsencode(it[0])):
        h.update(b)
    return h.hexdigest()


def check_tree(known: Sequence[str], folder: Path, actual: str) -> bool | None:
    """Compare a folder's :func:`tree_sha256` with the known ones: True if it matches, None if
    nothing is known, else a :class:`ChecksumWarning` (other legitimate copies, e.g. a PNG export
    of CIFAR-10, have other hashes) and False."""
    if not known:
        return None
    if actual in known:
        return True
    warnings.warn(
        f"{folder}: sha256 of the image files is {actual}; the known copy has "
        f"{' or '.join(known)}. This is a different (or damaged) copy; using it anyway.",
        ChecksumWarning,
        stacklevel=4,
    )
    return False
