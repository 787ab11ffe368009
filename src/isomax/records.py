"""Typed result records: one per in-dataset x out-dataset x model x loss x training method x score x seed.

A :class:`RunRecord` says which model, loss and **training method** produced it and which **score**
was measured; JSON (``results.json``, a list of :meth:`RunRecord.to_dict`) is its serialised form.

Training methods (:data:`METHODS`): ``"standard"`` (the loss alone) and ``"oe"`` (Outlier Exposure,
Hendrycks et al. 2019: the loss plus a cross-entropy to the uniform distribution on outlier images).
An Outlier Exposure run is scored with its entropic score: ``method="oe", score="es"``. Files
written before the method field existed stored it as ``score="oe"``; :meth:`RunRecord.from_dict`
reads them as ``method="oe", score="es"``.

Metrics are fractions in [0, 1] (:data:`METRICS`); ``accuracy`` is the in-distribution test
accuracy of the model (the same in every record of a run).

Example:
    >>> r = RunRecord.from_dict(dict(in_dataset="fashion-mnist", out_dataset="mnist", model="cnn-28", loss="softmax",
    ...                              score="oe", seed=0, accuracy=0.9, tnr_at_tpr95=0.5, auroc=0.9, dtacc=0.8,
    ...                              auin=0.9, auout=0.9, fpr_at_tpr95=0.5))
    >>> r.method, r.score
    ('oe', 'es')
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .errors import InputError
from ._io import atomic_write_text
from .metrics import METRIC_NAMES

__all__ = [
    "RunRecord",
    "METHODS",
    "METRICS",
    "REQUIRED_FIELDS",
    "STANDARD",
    "OUTLIER_EXPOSURE",
    "as_records",
    "read_records",
    "write_records",
    "records_to_json",
]

STANDARD = "standard"
OUTLIER_EXPOSURE = "oe"
#: Training methods: the loss alone, or the loss plus Outlier Exposure.
METHODS = (STANDARD, OUTLIER_EXPOSURE)
#: OOD-detection metrics of a record (fractions; higher is better except ``fpr_at_tpr95``): the one tuple of
#: metric names, :data:`isomax.metrics.METRIC_NAMES` (what :func:`isomax.metrics.ood_metrics` computes).
METRICS = METRIC_NAMES
_ROLES = ("near", "far", "noise")  # isomax.data.roles.ROLE_ORDER
# Pre-method files stored Outlier Exposure as a score.
_LEGACY_OE_SCORE = "oe"


@dataclass(frozen=True)
class RunRecord:
    """One evaluation result (see the module docstring)."""

    in_dataset: str
    out_dataset: str
    model: str | None
    loss: str  # canonical head/loss name: softmax | isomax | isomaxplus | dismax | dismax-fpr | logitnorm
    score: str  # isomax.scores.SCORES name, or a detector (odin, mahalanobis)
    seed: int | None
    accuracy: float
    tnr_at_tpr95: float | None = None  # the metrics (METRICS); None: not measured
    auroc: float | None = None
    dtacc: float | None = None
    auin: float | None = None
    auout: float | None = None
    fpr_at_tpr95: float | None = None
    method: str = STANDARD  # training method (METHODS)
    epochs: int | None = None  # training epochs of the model, when recorded
    conversion: str | None = None  # how the out-distribution was converted to the in-distribution's shape
    params: dict | None = None  # hyperparameters a detector chose (ODIN, Mahalanobis)
    outlier_data: str | None = None  # the outlier images of an Outlier Exposure run
    eval_limit: int | None = None  # at most this many images per evaluation set (a fixed seeded subset)
    split: str | None = None  # "validation" or "test" in an entropic-scale sweep (None: the test split)
    entropic_scale: float | None = None  # E_s of the run, in an entropic-scale sweep
    run: str | None = None  # the run directory's unique key in an `isomax evaluate` of several runs
    auroc_midpoint: float | None = None  # AUROC with ties counted one half (sklearn), when ties move it (metrics)
    aurc: float | None = None  # selective classification: area under the risk-coverage curve of the score (deploy)
    e_aurc: float | None = None  # AURC minus the AURC of an oracle ranking
    point: str | None = None  # a named point of a study (scripts/schedule_study.py)
    head_weight_decay: float | None = None  # TrainConfig.head_weight_decay of the run, when not the default
    role: str | None = None  # near / far / noise (isomax.data.roles) as written; None: derived when read (ood_role)
    n_in: int | None = None  # in-distribution test images the metrics were computed on, when recorded
    n_out: int | None = None  # out-distribution images the metrics were computed on, when recorded
    # the OpenOOD / pytorch-ood convention (out-distribution positive): isomax.metrics.ood_metrics(out_positive=True)
    auroc_out_positive: float | None = None
    fpr_at_tpr95_out_positive: float | None = None
    aupr_in_out_positive: float | None = None
    aupr_out_out_positive: float | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"Expected `method` to be one of {list(METHODS)}, but got: {self.method!r}")
        if self.role not in (None, *_ROLES):
            raise InputError(f"Expected `role` to be one of {list(_ROLES)}, but got: {self.role!r}")

    # --- dict-like access (tables group by field name) -------------------------------------------------------

    def get(self, name: str, default: Any = None) -> Any:
        """The field ``name`` (``default`` for an unknown name), so that code can group records by field;
        ``"role"`` is :attr:`ood_role`."""
        if name == "role":
            return self.ood_role
        return getattr(self, name, default) if name in _FIELDS else default

    @property
    def ood_role(self) -> str | None:
        """near / far / noise: the recorded ``role``, else :func:`isomax.data.roles.ood_role` of today's table
        (records written before roles existed)."""
        if self.role is not None:
            return self.role
        from .data.roles import ood_role

        return ood_role(self.in_dataset, self.out_dataset)

    def replace(self, **changes) -> "RunRecord":
        return dataclasses.replace(self, **changes)

    @property
    def run_key(self) -> tuple:
        """Which trained model the record belongs to: (in_dataset, model, loss, method, seed)."""
        return (self.in_dataset, self.model, self.loss, self.method, self.seed)

    @property
    def key(self) -> tuple:
        """What makes a record unique: the run, the out-distribution, the score (and the sweep's split / E_s)."""
        return self.run_key + (self.out_dataset, self.score, self.split, self.entropic_scale)

    # --- JSON ----------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The JSON form: the required fields and the metrics, then the optional fields that are set."""
        d = {f: getattr(self, f) for f in _REQUIRED + METRICS}
        d.update({f: getattr(self, f) for f in _OPTIONAL if getattr(self, f) is not None})
        d["method"] = self.method
        return d

    @classmethod
    def from_dict(cls, d: "RunRecord | Mapping[str, Any]") -> "RunRecord":
        """Read a record of ``results.json`` (including files written before the ``method`` field)."""
        if isinstance(d, RunRecord):
            return d
        d = dict(d)
        unknown = set(d) - set(_FIELDS)
        if unknown:
            raise InputError(
                f"Unknown record field(s): {sorted(unknown)}; expected fields of RunRecord: {list(_FIELDS)}"
            )
        missing = [f for f in _REQUIRED if f not in d]
        if missing:
            raise InputError(f"Expected record fields {missing}, but the record has only {sorted(d)}")
        if d["score"] == _LEGACY_OE_SCORE:
            d["score"], d["method"] = "es", OUTLIER_EXPOSURE
        if d.get("method") is None:
            d["method"] = STANDARD
        return cls(**d)


_FIELDS = tuple(f.name for f in dataclasses.fields(RunRecord))
_REQUIRED = tuple(f.name for f in dataclasses.fields(RunRecord) if f.default is dataclasses.MISSING)
#: the fields every record has (with :data:`METRICS`: the keys every ``results.json`` record holds)
REQUIRED_FIELDS = _REQUIRED
_OPTIONAL = tuple(f for f in _FIELDS if f not in _REQUIRED + METRICS + ("method",))


def as_records(records: Iterable[RunRecord | Mapping[str, Any]]) -> list[RunRecord]:
    """Records from records or dicts (the JSON form), in order."""
    return [RunRecord.from_dict(r) for r in records]


def records_to_json(records: Iterable[RunRecord | Mapping[str, Any]]) -> str:
    """``results.json`` text: a list of :meth:`RunRecord.to_dict`."""
    return json.dumps([r.to_dict() for r in as_records(records)], indent=1) + "\n"


def read_records(path: str | os.PathLike) -> list[RunRecord]:
    """The records of a ``results.json``; a ``ValueError`` naming the file if it cannot be read."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"cannot read {path}: {err}") from err
    if not isinstance(data, list):
        raise InputError(f"{path} should hold a list of records, but holds a {type(data).__name__}")
    try:
        return as_records(r for r in data if isinstance(r, dict))
    except (TypeError, ValueError) as err:
        raise InputError(f"cannot read the records of {path}: {err}") from err


def write_records(records: Sequence[RunRecord | Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write ``results.json`` atomically."""
    return atomic_write_text(path, records_to_json(records))
