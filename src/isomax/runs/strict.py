"""Strict reading of the small JSON files of a run directory (``threshold.json``, ``calibration.json``):
capped size and nesting, validated numbers; every problem is one :class:`~isomax.errors.InputError` line
naming the file and the command that rewrites it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["MAX_JSON_BYTES", "MAX_JSON_DEPTH", "read_json_file", "check_depth", "finite_number"]

MAX_JSON_BYTES = 1 << 20  # threshold.json / calibration.json are a few hundred bytes
MAX_JSON_DEPTH = 8


def read_json_file(path: Path, fix: str) -> object:
    """The JSON value of ``path`` (at most :data:`MAX_JSON_BYTES`, nesting at most :data:`MAX_JSON_DEPTH`);
    any problem is a one-line ``InputError`` naming the file and ``fix`` (the command that rewrites it)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_JSON_BYTES + 1)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err}); {fix}") from None
    if len(data) > MAX_JSON_BYTES:
        raise InputError(f"{path}: larger than {MAX_JSON_BYTES} bytes, not a file isomax wrote; {fix}")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err}); {fix}") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply; {fix}") from None
    try:
        check_depth(value)
    except ValueError as err:
        raise InputError(f"{path}: {err}; {fix}") from None
    return value


def check_depth(value: object, limit: int = MAX_JSON_DEPTH) -> None:
    """``InputError`` if lists/dicts in ``value`` nest deeper than ``limit`` (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (list, dict)):
            if d > limit:
                raise InputError(f"JSON nested deeper than {limit} levels")
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))


def finite_number(name: str, value: object, *, positive: bool = False, allow_nan: bool = False) -> float:
    """``value`` as a float if it is a real number (not a bool or string), finite (NaN only with ``allow_nan``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"Expected `{name}` to be a number, but got {type(value).__name__}: {value!r}")
    v = float(value)
    if math.isnan(v) and allow_nan:
        return v
    if not math.isfinite(v):
        raise InputError(f"Expected `{name}` to be a finite number, but got: {value!r}")
    if positive and not v > 0:
        raise InputError(f"Expected `{name}` to be positive, but got: {value!r}")
    return v
