"""The decoded-image cache: image folders and archives are decoded once and kept as ``.npy``.

An entry is ``<cache_dir>/decoded/<key>.images.npy`` (uint8 N, C, H, W), optionally
``<key>.labels.npy`` (int64) and ``<key>.json`` (metadata), written atomically. The key holds the
data set's name and a fingerprint of its files (relative path, size, mtime): a changed file gives a
new key. Reading is safe from untrusted caches: ``np.load(allow_pickle=False)`` and JSON, never
pickle; a broken or inconsistent entry is ignored and rebuilt.

Location and size: ``$ISOMAX_CACHE/decoded`` (default ``~/.cache/isomax/decoded``), at most
``$ISOMAX_CACHE_MAX_GB`` GiB (default 4; 0 disables the cache). Writing an entry first removes the
least recently used ones until it fits; an entry larger than the cap is not written. ``isomax cache
info`` lists the entries, ``isomax cache clear`` removes them (:func:`cache_entries`,
:func:`cache_clear`). Only the in-memory path uses this cache; the streaming path decodes in its
workers and writes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import InputError
from .images import IMAGE_EXTENSIONS
from .paths import cache_dir, check_not_loop

__all__ = [
    "CACHE_VERSION",
    "fingerprint",
    "scan_tree",
    "tree_fingerprint",
    "cache_load",
    "cache_save",
    "cache_max_bytes",
    "cache_entries",
    "cache_clear",
]

#: part of every key: bump it when the decoded pixels of an unchanged file would change
CACHE_VERSION = "2"  # 2: EXIF orientation applied


def fingerprint(paths: Iterable[Path], base: Path, extra: str = "") -> str:
    """A short key from (relative path, size, mtime) of ``paths`` under ``base``."""
    h = hashlib.sha1(usedforsecurity=False)
    h.update(f"v{CACHE_VERSION}|{os.path.abspath(base)}|{extra}".encode("utf-8", "surrogateescape"))
    for p in paths:
        st = p.stat()
        h.update(
            f"|{p.relative_to(base).as_posix() if p != base else '.'}:{st.st_size}:{st.st_mtime_ns}".encode(
                "utf-8", "surrogateescape"
            )
        )
    return h.hexdigest()[:20]


def scan_tree(root: Path, images_only: bool = True) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of the files under ``root`` (recursive, hidden skipped,
    directory symlinks followed), sorted in C-locale order. Cheap: one scandir pass, no decoding.
    With ``images_only`` only image files (``IMAGE_EXTENSIONS``) are listed."""
    out: list[tuple[str, int, int]] = []
    stack = [(root, "")]
    while stack:
        d, prefix = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                if e.name.startswith("."):
                    continue
                if e.is_dir(follow_symlinks=True):
                    if e.is_symlink():
                        check_not_loop(e.path, str(d))
                    stack.append((Path(e.path), prefix + e.name + "/"))
                elif not images_only or e.name.lower().endswith(IMAGE_EXTENSIONS):
                    st = e.stat()
                    out.append((prefix + e.name, st.st_size, st.st_mtime_ns))
    out.sort(key=lambda t: os.fsencode(t[0]))
    return out


def tree_fingerprint(root: Path, scan: list[tuple[str, int, int]], extra: str = "") -> str:
    """A short key from a :func:`scan_tree` listing."""
    h = hashlib.sha1(usedforsecurity=False)
    h.update(f"v{CACHE_VERSION}|{os.path.abspath(root)}|{extra}".encode("utf-8", "surrogateescape"))
    for rel, size, mtime in scan:
        h.update(f"|{rel}:{size}:{mtime}".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:20]


def cache_load(key: str) -> tuple[np.ndarray, np.ndarray | None, dict] | None:
    """(images, labels or None, metadata) of a cache entry, or None if absent or unusable."""
    d = cache_dir() / "decoded"
    meta_p = d / f"{key}.json"
    if not meta_p.is_file():
        return None
    try:
        meta = json.loads(meta_p.read_text())
        images = np.load(d / f"{key}.images.npy", allow_pickle=False)
        labels = np.load(d / f"{key}.labels.npy", allow_pickle=False) if meta.get("has_labels") else None
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[0] != meta["n"]:
            return None
        if labels is not None and (labels.dtype != np.int64 or labels.shape != (meta["n"],)):
            return None
        with contextlib.suppress(OSError):
            os.utime(meta_p)  # recently used: evicted last
        return images, labels, meta
    except Exception:  # noqa: BLE001 - a broken cache entry is rebuilt
        return None


def cache_save(key: str, images: np.ndarray, labels: np.ndarray | None, meta: dict) -> None:
    """Write a cache entry atomically (each file via a temporary name); errors are ignored."""
    d = cache_dir() / "decoded"
    size = images.nbytes + (0 if labels is None else labels.nbytes)
    cap = cache_max_bytes()
    if size > cap:  # larger than the whole cache: decode again next time rather than evict everything
        return
    try:
        used = cache_entries()
        total = sum(e["bytes"] for e in used)
        for e in sorted(used, key=lambda e: e["mtime"]):  # least recently used first
            if total + size <= cap:
                break
            _remove_entry(d, e["key"])
            total -= e["bytes"]
        d.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        tmp_i, tmp_l = d / f".{key}.{pid}.images.npy", d / f".{key}.{pid}.labels.npy"
        np.save(tmp_i, images)
        os.replace(tmp_i, d / f"{key}.images.npy")
        if labels is not None:
            np.save(tmp_l, labels)
            os.replace(tmp_l, d / f"{key}.labels.npy")
        meta = dict(meta, n=int(images.shape[0]), has_labels=labels is not None)
        tmp_m = d / f".{key}.{pid}.json"
        tmp_m.write_text(json.dumps(meta))
        os.replace(tmp_m, d / f"{key}.json")
    except OSError:  # read-only home etc.: just don't cache
        pass


DEFAULT_CACHE_MAX_GB = 4.0


def cache_max_bytes() -> int:
    """The cap of the decoded-image cache in bytes: ``$ISOMAX_CACHE_MAX_GB`` GiB (default 4; 0 disables it)."""
    raw = os.environ.get("ISOMAX_CACHE_MAX_GB", "").strip()
    try:
        gb = float(raw) if raw else DEFAULT_CACHE_MAX_GB
    except ValueError:
        raise InputError(f"Expected ISOMAX_CACHE_MAX_GB to be a number of GiB, but got: {raw!r}") from None
    if not gb >= 0:
        raise InputError(f"Expected ISOMAX_CACHE_MAX_GB to be >= 0, but got: {raw!r}")
    return int(gb * 2**30)


def cache_entries() -> list[dict]:
    """Every entry of the decoded-image cache: key, name, bytes (all its files), mtime (last use)."""
    d = cache_dir() / "decoded"
    if not d.is_dir():
        return []
    out = []
    for meta_p in d.glob("*.json"):
        key = meta_p.name[: -len(".json")]
        files = [meta_p, d / f"{key}.images.npy", d / f"{key}.labels.npy"]
        size = sum(f.stat().st_size for f in files if f.is_file())
        try:
            name = json.loads(meta_p.read_text()).get("source", "?")
        except (OSError, ValueError):
            name = "?"
        out.append(dict(key=key, name=name, bytes=size, mtime=meta_p.stat().st_mtime))
    return out


def _remove_entry(d: Path, key: str) -> None:
    for suffix in (".json", ".images.npy", ".labels.npy"):
        (d / f"{key}{suffix}").unlink(missing_ok=True)


def cache_clear() -> tuple[int, int]:
    """Remove every entry (and stray temporary files) of the decoded-image cache: (entries, bytes) removed."""
    d = cache_dir() / "decoded"
    entries = cache_entries()
    for e in entries:
        _remove_entry(d, e["key"])
    if d.is_dir():
        for tmp in d.glob(".*.npy"):
            tmp.unlink(missing_ok=True)
        for tmp in d.glob(".*.json"):
            tmp.unlink(missing_ok=True)
    return len(entries), sum(e["bytes"] for e in entries)
