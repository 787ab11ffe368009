"""Size caps on what the data layer reads: defence against damaged files and decompression bombs.

Three caps, each with a default, an environment variable and a keyword of :func:`set_limits`:

=====================  ==============================  =========================================
cap                    default                         what it bounds
=====================  ==============================  =========================================
``member_bytes``       256 MiB (``ISOMAX_MAX_MEMBER``  one file or archive member as read (a tar
                       ``_BYTES``)                     or zip member, an image file, a gunzipped
                                                       idx file, a CIFAR pickle, an SVHN .mat)
``archive_bytes``      1 GiB (``ISOMAX_MAX_ARCHIVE``   the sum of the members read from one
                       ``_BYTES``)                     archive
``image_pixels``       89,478,485 (PIL's default       width x height of one image, checked from
                       ``Image.MAX_IMAGE_PIXELS``;     its header before it is decoded
                       ``ISOMAX_MAX_IMAGE_PIXELS``)
=====================  ==============================  =========================================

The real sets are far below these (the largest member, CIFAR-100's ``train`` pickle, is 155 MB; the
largest image, 64x64). Archives are read member by member: a member's declared size is checked
before it is read and at most one member's bytes are held at a time (images are decoded as they
come, so memory beyond the data set itself is one member). A size above a cap raises
:class:`~isomax.data.errors.DataLimitError` naming the archive, the member, the cap and how to
raise it. Byte sizes in the environment accept a K, M or G suffix (powers of 1024): ``512M``.

Precedence: :func:`set_limits` (for the process) over the environment over the defaults;
:func:`current_limits` is read at every load, so changing the environment takes effect at once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields, replace
from typing import Protocol

from ..errors import InputError
from .errors import DataLimitError

__all__ = ["Limits", "DEFAULT_LIMITS", "ENV_VARS", "current_limits", "set_limits", "reset_limits", "read_capped"]


@dataclass(frozen=True)
class Limits:
    """Size caps (see the module docstring); ``None`` for a field means no cap."""

    member_bytes: int | None = 256 * 2**20
    archive_bytes: int | None = 2**30
    image_pixels: int | None = 89_478_485  # PIL's Image.MAX_IMAGE_PIXELS default

    def check(self, limit: str, actual: int, what: str) -> None:
        """Raise :class:`DataLimitError` if ``actual`` exceeds the cap ``limit``."""
        cap = getattr(self, limit)
        if cap is not None and actual > cap:
            raise DataLimitError(
                what, limit, cap, actual, unit="pixels" if limit == "image_pixels" else "bytes", env=ENV_VARS[limit]
            )


DEFAULT_LIMITS = Limits()

#: the environment variable of each cap
ENV_VARS = {
    "member_bytes": "ISOMAX_MAX_MEMBER_BYTES",
    "archive_bytes": "ISOMAX_MAX_ARCHIVE_BYTES",
    "image_pixels": "ISOMAX_MAX_IMAGE_PIXELS",
}

_OVERRIDES: dict[str, int | None] = {}
_SUFFIX = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}


def _parse_size(var: str, text: str) -> int | None:
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    if t in ("none", "off", "inf"):
        return None
    m = re.fullmatch(r"(\d+)\s*([kmg]?)", t)
    if m is None:
        raise InputError(
            f"environment variable {var}={text!r}: expected a whole number with an "
            f"optional K/M/G suffix (e.g. 512M), or 'none' for no cap"
        )
    return int(m.group(1)) * _SUFFIX[m.group(2)]


def current_limits() -> Limits:
    """The caps in force now: :func:`set_limits` overrides, else the environment, else defaults."""
    values = {}
    for f in fields(Limits):
        if f.name in _OVERRIDES:
            values[f.name] = _OVERRIDES[f.name]
        elif os.environ.get(ENV_VARS[f.name], "").strip():
            values[f.name] = _parse_size(ENV_VARS[f.name], os.environ[ENV_VARS[f.name]])
    return replace(DEFAULT_LIMITS, **values)


def set_limits(**caps: int | None) -> Limits:
    """Set caps for this process: ``member_bytes=``, ``archive_bytes=``, ``image_pixels=`` (``None``
    removes a cap). Returns the caps now in force; :func:`reset_limits` undoes the overrides."""
    names = {f.name for f in fields(Limits)}
    for k, v in caps.items():
        if k not in names:
            raise InputError(f"unknown cap {k!r}; known: {', '.join(sorted(names))}")
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise InputError(f"cap {k} must be a non-negative int or None; got {v!r}")
    _OVERRIDES.update(caps)
    return current_limits()


def reset_limits() -> None:
    """Forget :func:`set_limits` overrides (back to the environment and the defaults)."""
    _OVERRIDES.clear()


class _Readable(Protocol):
    """A binary file opened for reading (a file, a gzip or zip member, an extracted tar member)."""

    def read(self, size: int = ..., /) -> bytes: ...


def read_capped(f: _Readable, what: str, limits: Limits | None = None, size_hint: int | None = None) -> bytes:
    """Read ``f`` to its end, but never more than ``member_bytes`` + 1 bytes: more raises
    :class:`DataLimitError`. Guards against sizes that no header or ``stat`` tells (character
    devices, lying headers), and against reading them whole first. ``size_hint``: the expected
    size, if known (avoids allocating a cap-sized buffer for a small file)."""
    cap = (limits or current_limits()).member_bytes
    if cap is None:
        return f.read()
    data = f.read((cap if size_hint is None else min(cap, size_hint)) + 1)
    if size_hint is not None and len(data) > size_hint:  # longer than declared: read on, capped
        data += f.read(cap + 1 - len(data))
    if len(data) > cap:
        raise DataLimitError(what, "member_bytes", cap, None, env=ENV_VARS["member_bytes"])
    return data
