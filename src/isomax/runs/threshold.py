"""``threshold.json``: the operating threshold of a run (``isomax threshold``, :mod:`isomax.deploy.threshold`),
bound to its model (weights' fingerprint), loss, input description and head temperature; read strictly.

The fit lives in :mod:`isomax.deploy.threshold` (:func:`~isomax.deploy.fit_threshold`); this module is the
file format and the checks :meth:`isomax.runs.Run.threshold` makes.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._io import atomic_write_text
from ..errors import InputError, IsoMaxError
from ..heads import canonical_head_name
from ..scores import SCORES
from .files import THRESHOLD
from .strict import check_depth, finite_number, read_json_file

__all__ = [
    "THRESHOLD_FILE",
    "Threshold",
    "MissingThresholdError",
    "ThresholdMismatchError",
    "input_description",
    "load_threshold",
]

THRESHOLD_FILE = THRESHOLD


class MissingThresholdError(IsoMaxError, FileNotFoundError):
    """A run directory has no ``threshold.json``."""


class ThresholdMismatchError(IsoMaxError, ValueError):
    """A threshold fitted for one score (or temperature) was used with another."""


@dataclass
class Threshold:
    """Accept an input when ``score >= threshold`` (higher score = more in-distribution).

    Attributes:
        score: the score's name (``"mds"``, ``"es"``, ... or a detector's ``name``).
        threshold: the score value at and above which inputs are accepted (a finite number).
        target_tpr: the fraction of in-distribution inputs meant to be accepted (NaN: not fitted).
        val_tpr: the fraction of the validation inputs actually accepted.
        n: number of validation inputs it was fitted on.
        temperature: the head temperature the scores were computed under (None: unknown; such a record
            is refused by :meth:`check_score` when a temperature is checked and cannot be saved). Every
            score's values change with it (ES, MPS, energy also their ranking; MDS and max_logit are
            divided by it), so a threshold is refused under another temperature.
        fingerprint: :func:`~isomax.runs.fingerprint.model_fingerprint` of the model it was fitted for (its
            checkpoint's weights).
        loss: the loss the model was trained with.
        input: the input it was fitted on: ``{"channels", "height", "width", "mean", "std"}``.
        extra: free-form provenance (run directory, split, ...).

    Every field is validated when the record is made (a NaN, infinite, boolean or string threshold
    is a ``ValueError``), so a record read from a file is as checked as one fitted in memory.
    """

    score: str
    threshold: float
    target_tpr: float = 0.95
    val_tpr: float = float("nan")
    n: int = 0
    temperature: float | None = None
    extra: dict = field(default_factory=dict)
    fingerprint: str | None = None
    loss: str | None = None
    input: dict | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.score, str) or not self.score:
            raise InputError(f"Expected `score` to be a score name, but got: {self.score!r}")
        self.threshold = finite_number("threshold", self.threshold)
        self.target_tpr = finite_number("target_tpr", self.target_tpr, allow_nan=True)
        if not (math.isnan(self.target_tpr) or 0 < self.target_tpr <= 1):
            raise InputError(f"Expected `target_tpr` to be in (0, 1], but got: {self.target_tpr!r}")
        self.val_tpr = finite_number("val_tpr", self.val_tpr, allow_nan=True)
        if not (math.isnan(self.val_tpr) or 0 <= self.val_tpr <= 1):
            raise InputError(f"Expected `val_tpr` to be in [0, 1], but got: {self.val_tpr!r}")
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 0:
            raise InputError(f"Expected `n` to be a count >= 0, but got: {self.n!r}")
        self.n = int(self.n)
        if self.temperature is not None:
            self.temperature = finite_number("temperature", self.temperature, positive=True)
        for name in ("fingerprint", "loss"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v or len(v) > 200):
                raise InputError(f"Expected `{name}` to be a short string, but got: {v!r}")
        if self.input is not None:
            self.input = _check_input(self.input)
        if not isinstance(self.extra, dict):
            raise InputError(f"Expected `extra` to be a dict, but got: {type(self.extra).__name__}")
        check_depth(self.extra)

    def accept(self, scores) -> Tensor:
        """Boolean tensor: ``scores >= threshold``."""
        s = torch.as_tensor(scores)
        return s >= torch.as_tensor(self.threshold, dtype=s.dtype if s.is_floating_point() else torch.float64)

    def check_score(self, score: str, temperature: float | None = None) -> "Threshold":
        """Raise :class:`ThresholdMismatchError` unless fitted for ``score`` (and ``temperature`` where it matters:
        a record of unknown temperature is refused when a temperature is given)."""
        if score != self.score:
            raise ThresholdMismatchError(
                f"Expected a threshold fitted for score {score!r}, but got one fitted for {self.score!r}; fit one "
                f"for {score!r} (`isomax threshold RUN_DIR --score {score}` or `Predictor(...).fit(val_data)`)"
            )
        if temperature is not None and self.temperature is None:
            raise ThresholdMismatchError(
                "Expected a threshold that records the head temperature it was fitted under, but got one without "
                "(temperature: null): score values change with it; refit it (`isomax threshold RUN_DIR`)"
            )
        # Every score's *values* scale or change with the head temperature (MDS and max_logit keep their ranking).
        if (
            temperature is not None
            and self.temperature is not None
            and not math.isclose(temperature, self.temperature, rel_tol=1e-6)
        ):
            raise ThresholdMismatchError(
                f"Expected the head temperature the threshold was fitted under ({self.temperature:g}), but the model "
                f"has temperature {temperature:g}: score values change with it; refit the threshold after "
                "calibrating (`isomax threshold RUN_DIR`)"
            )
        return self

    def check_model(
        self, fingerprint: str | None = None, loss: str | None = None, input: dict | None = None
    ) -> "Threshold":
        """Raise :class:`ThresholdMismatchError` unless fitted for this model (fingerprint), loss and input
        description; a record without them is refused where they are given."""
        fix = "refit it (`isomax threshold RUN_DIR`)"
        if fingerprint is not None and self.fingerprint != fingerprint:
            what = (
                "does not record the model it was fitted for"
                if self.fingerprint is None
                else f"was fitted for another model (fingerprint {self.fingerprint[:12]}, "
                f"this model {fingerprint[:12]})"
            )
            raise ThresholdMismatchError(f"Expected a threshold fitted for this model, but it {what}; {fix}")
        if loss is not None and self.loss is not None and _canonical(self.loss) != _canonical(loss):
            raise ThresholdMismatchError(
                f"Expected a threshold fitted for loss {loss!r}, but got one for {self.loss!r}; {fix}"
            )
        if input is not None and self.input is not None and not _same_input(self.input, _check_input(input)):
            raise ThresholdMismatchError(
                f"Expected a threshold fitted on the model's input {_describe(input)}, but "
                f"got one fitted on {_describe(self.input)}; {fix}"
            )
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Threshold":
        if not isinstance(d, dict):
            raise InputError(f"Expected a threshold record (a JSON object), but got {type(d).__name__}")
        known = {f for f in cls.__dataclass_fields__}
        missing = {"score", "threshold"} - set(d)
        if missing:
            raise InputError(f"Expected a threshold record with keys {sorted(missing)}, but got keys {sorted(d)}")
        return cls(**{k: v for k, v in d.items() if k in known})

    def save(self, path: str | os.PathLike) -> Path:
        """Write JSON atomically; ``path`` may be a run directory (writes ``threshold.json`` in it). A record
        without its temperature is refused (it would skip the calibration check when read)."""
        path = Path(path)
        if path.is_dir():
            path = path / THRESHOLD_FILE
        if self.temperature is None:
            raise InputError(
                "Expected a threshold with the head `temperature` it was fitted under, but it is None "
                "(it would skip the calibration check when read); pass temperature=head_temperature(model) "
                "to isomax.deploy.fit_threshold"
            )
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")

    def __str__(self) -> str:
        return (
            f"{self.score} >= {self.threshold:.6g} (target TPR {100 * self.target_tpr:.1f}%, validation TPR "
            f"{100 * self.val_tpr:.2f}% on n={self.n})"
        )


def _canonical(loss: str) -> str:
    try:
        return canonical_head_name(loss)
    except ValueError:
        return loss


def _check_input(d) -> dict:
    if not isinstance(d, dict) or set(d) != {"channels", "height", "width", "mean", "std"}:
        raise InputError(f"Expected `input` to be {{channels, height, width, mean, std}}, but got: {d!r}")
    out: dict[str, Any] = {}
    for k in ("channels", "height", "width"):
        v = d[k]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 < v <= 1 << 16:
            raise InputError(f"Expected `input.{k}` to be a positive integer, but got: {v!r}")
        out[k] = int(v)
    for k in ("mean", "std"):
        v = d[k]
        if not isinstance(v, (list, tuple)) or not 0 < len(v) <= 16:
            raise InputError(f"Expected `input.{k}` to be a list of numbers, but got: {v!r}")
        out[k] = [finite_number(f"input.{k}", x, positive=k == "std") for x in v]
    return out


def _same_input(a: dict, b: dict) -> bool:
    return all(a[k] == b[k] for k in ("channels", "height", "width")) and all(
        len(a[k]) == len(b[k]) and all(math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-7) for x, y in zip(a[k], b[k]))
        for k in ("mean", "std")
    )


def _describe(d: dict) -> str:
    return f"{d['channels']}x{d['height']}x{d['width']} mean {d['mean']} std {d['std']}"


def input_description(shape, mean, std) -> dict:
    """``{"channels", "height", "width", "mean", "std"}`` of a model input ``shape = (C, H, W)``."""
    c, h, w = (int(v) for v in shape)
    return _check_input(
        dict(
            channels=c,
            height=h,
            width=w,
            mean=[float(m) for m in np.ravel(mean)],
            std=[float(s) for s in np.ravel(std)],
        )
    )


def load_threshold(run_dir: str | os.PathLike) -> Threshold:
    """The run's ``threshold.json``; :class:`MissingThresholdError` (saying how to fit one) if absent.

    Read strictly: at most 1 MiB, JSON nested at most 8 deep, a known score name, finite numbers of the
    right type (see :class:`Threshold`); every problem is one ``ValueError`` line naming the file and
    the command that rewrites it."""
    path = Path(run_dir)
    path = path / THRESHOLD_FILE if path.is_dir() or not path.suffix else path
    if not path.exists():
        raise MissingThresholdError(
            f"{path.parent} has no {THRESHOLD_FILE}: fit the operating threshold on the validation split first with "
            f"`isomax threshold {path.parent}` (options: --score S, --tpr 0.95), or in Python "
            "`isomax.deploy.fit_run_threshold(run_dir)`"
        )
    fix = f"refit it with `isomax threshold {path.parent}`"
    d = read_json_file(path, fix)
    try:
        if not isinstance(d, dict):
            raise InputError(f"Expected a threshold record (a JSON object), but got {type(d).__name__}")
        t = Threshold.from_dict(d)
        if t.score not in SCORES:
            raise InputError(f"Expected `score` to be one of {list(SCORES)}, but got: {t.score!r}")
    except (ValueError, TypeError) as err:
        raise InputError(f"{path}: {err}; {fix}") from None
    return t
