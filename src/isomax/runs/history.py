"""One finished training epoch, as ``log.jsonl`` and the checkpoint's ``history`` hold it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import InputError

__all__ = ["EpochRecord"]

_FLOATS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")


@dataclass(frozen=True)
class EpochRecord:
    """``epoch`` (1-based: the number of epochs done), the mean training loss and accuracy, the validation loss
    and accuracy (NaN without a validation split), the learning rate at the end of the epoch, its duration in
    seconds, and the IsoMax+ head's ``distance_scale`` (None for other heads). ``extra``: keys written by
    another version, kept so they round-trip.

    Example:
        >>> r = EpochRecord(1, 0.5, 0.8, float("nan"), float("nan"), 0.1, 2.0)
        >>> EpochRecord.from_dict(r.to_dict()).train_accuracy
        0.8
    """

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float
    distance_scale: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.epoch, bool) or not isinstance(self.epoch, int) or self.epoch < 1:
            raise InputError(f"Expected `epoch` to be a positive integer, but got: {self.epoch!r}")
        for name in _FLOATS + (("distance_scale",) if self.distance_scale is not None else ()):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InputError(f"Expected `{name}` to be a number, but got: {v!r}")
            object.__setattr__(self, name, float(v))

    @property
    def has_validation(self) -> bool:
        return not math.isnan(self.val_accuracy)

    def to_dict(self) -> dict:
        """The JSON form: the fields in their order, ``distance_scale`` only when set, then ``extra``."""
        d: dict[str, Any] = {"epoch": self.epoch, **{k: getattr(self, k) for k in _FLOATS}}
        if self.distance_scale is not None:
            d["distance_scale"] = self.distance_scale
        return {**d, **{k: v for k, v in self.extra.items() if k not in d}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EpochRecord":
        """A record of ``log.jsonl`` / the checkpoint's ``history``; :class:`~isomax.errors.InputError` naming a
        missing or bad value."""
        if not isinstance(d, Mapping):
            raise InputError(f"Expected an epoch record (a dict), but got {type(d).__name__}")
        missing = [k for k in ("epoch",) + _FLOATS if k not in d]
        if missing:
            raise InputError(f"Expected an epoch record with {missing}, but got the keys {sorted(d)}")
        known = ("epoch", "distance_scale") + _FLOATS
        return cls(
            **{k: d[k] for k in ("epoch",) + _FLOATS},
            distance_scale=d.get("distance_scale"),
            extra={k: v for k, v in d.items() if k not in known},
        )
