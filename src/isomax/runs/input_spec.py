"""What a model takes as input (the timm "data config" idea): image size and channels, the normalisation it
was trained with, its class names and where they came from.

Recorded at training time in the checkpoint as the ``data`` dict (plain JSON types, :meth:`InputSpec.to_dict`);
:class:`isomax.runs.Run`, :class:`isomax.deploy.Predictor` and ONNX export read it back, and the threshold
binds itself to :meth:`InputSpec.description`. Runs written before it was recorded get the registered data
set's (:meth:`InputSpec.recorded`, with a note saying so): the one fallback of the package.

Example:
    >>> spec = InputSpec(channels=1, height=28, width=28, mean=(0.286,), std=(0.353,), dataset="fashion-mnist")
    >>> spec.shape, InputSpec.from_dict(spec.to_dict()) == spec
    ((1, 28, 28), True)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..errors import InputError
from .threshold import input_description

__all__ = ["InputSpec"]

_MAX_SIDE = 1 << 16
# the keys InputSpec knows, in the order training has always written them (the checkpoint's `data`)
_KNOWN = ("dataset", "channels", "height", "width", "num_classes", "classes", "mean", "std")


def _count(name: str, v: object, *, zero: bool = False) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not (0 if zero else 1) <= v <= _MAX_SIDE:
        raise InputError(f"Expected `{name}` to be a positive integer, but got: {v!r}")
    return v


def _numbers(name: str, v: object, channels: int, *, positive: bool) -> tuple[float, ...]:
    from .strict import finite_number

    if not isinstance(v, (list, tuple)) or len(v) not in (1, channels):
        raise InputError(f"Expected `{name}` to be a list of 1 or {channels} numbers, but got: {v!r}")
    return tuple(finite_number(name, x, positive=positive) for x in v)


@dataclass(frozen=True)
class InputSpec:
    """A model's input: ``channels`` x ``height`` x ``width`` images in [0, 1] normalised by ``mean`` / ``std``
    (per channel, or one value for all); the ``classes`` it predicts (None: not recorded), their number, the
    ``dataset`` it was trained on, and ``extra``: whatever else training recorded (how a folder data set was
    read: ``img_size``, ``data_path``, ``source``, ...), kept as it was so it round-trips.

    Every field is validated when made (:class:`~isomax.errors.InputError` naming it), so a spec read from a
    checkpoint is as checked as one built in memory."""

    channels: int
    height: int
    width: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...] | None = None
    num_classes: int | None = None
    dataset: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("channels", "height", "width"):
            _count(name, getattr(self, name))
        object.__setattr__(self, "mean", _numbers("mean", self.mean, self.channels, positive=False))
        object.__setattr__(self, "std", _numbers("std", self.std, self.channels, positive=True))
        if self.num_classes is not None:
            _count("num_classes", self.num_classes)
        if self.classes is not None:
            if not isinstance(self.classes, (list, tuple)) or not all(isinstance(c, str) for c in self.classes):
                raise InputError(f"Expected `classes` to be a list of names, but got: {self.classes!r}")
            object.__setattr__(self, "classes", tuple(self.classes))
        if self.dataset is not None and not isinstance(self.dataset, str):
            raise InputError(f"Expected `dataset` to be a name or path, but got: {self.dataset!r}")
        if not isinstance(self.extra, Mapping):
            raise InputError(f"Expected `extra` to be a dict, but got: {type(self.extra).__name__}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        return (self.channels, self.height, self.width)

    def description(self) -> dict:
        """``{"channels", "height", "width", "mean", "std"}`` (per channel): what a threshold is bound to
        (:func:`isomax.runs.threshold.input_description`)."""
        c = self.channels
        return input_description(
            self.shape, self.mean * (c if len(self.mean) == 1 else 1), self.std * (c if len(self.std) == 1 else 1)
        )

    def class_names(self) -> list[str]:
        """The recorded class names when there is one per class, else the class indices as strings."""
        n = self.num_classes if self.num_classes is not None else len(self.classes or ())
        if self.classes is not None and len(self.classes) == n:
            return list(self.classes)
        return [str(i) for i in range(n)]

    # ---- the checkpoint's ``data`` dict ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The checkpoint's ``data`` record (plain JSON types), as training has always written it."""
        d = dict(
            dataset=self.dataset,
            channels=self.channels,
            height=self.height,
            width=self.width,
            num_classes=self.num_classes,
            classes=list(self.classes) if self.classes is not None else None,
            mean=list(self.mean),
            std=list(self.std),
        )
        return {**d, **{k: v for k, v in self.extra.items() if k not in d}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "InputSpec":
        """A spec from a ``data`` record; :class:`~isomax.errors.InputError` naming the bad or missing value."""
        if not isinstance(d, Mapping):
            raise InputError(f"Expected an input description (a dict), but got {type(d).__name__}")
        missing = [k for k in ("channels", "height", "width", "mean", "std") if k not in d]
        if missing:
            raise InputError(f"Expected an input description with {missing}, but got the keys {sorted(d)}")
        return cls(
            channels=d["channels"],
            height=d["height"],
            width=d["width"],
            mean=d["mean"],
            std=d["std"],
            classes=d.get("classes"),
            num_classes=d.get("num_classes"),
            dataset=d.get("dataset"),
            extra={k: v for k, v in d.items() if k not in _KNOWN},
        )

    @classmethod
    def from_data(cls, data: Any, mean: Sequence[float], std: Sequence[float], **extra: Any) -> "InputSpec":
        """The spec of a model trained on ``data`` (an ImageData: ``shape``, ``name``, ``classes``,
        ``num_classes``) with ``mean`` / ``std``; ``extra``: anything else to record."""
        c, h, w = (int(v) for v in data.shape)
        return cls(
            channels=c,
            height=h,
            width=w,
            mean=tuple(float(m) for m in mean),
            std=tuple(float(s) for s in std),
            classes=tuple(str(n) for n in data.classes) if data.classes else None,
            num_classes=int(data.num_classes),
            dataset=data.name,
            extra=extra,
        )

    @classmethod
    def recorded(cls, data: Mapping[str, Any] | None, dataset: str) -> tuple["InputSpec", list[str]]:
        """The spec recorded with a run (its checkpoint's ``data``), completed from the registered data set
        ``dataset`` where the run predates the record: the whole spec when no size and normalisation were
        recorded, the class names when only they are missing. Returns ``(spec, notes)``: one note per thing
        not recorded, saying where it came from."""
        from ..data import dataset_info

        data = dict(data or {})
        try:
            info = dataset_info(dataset)
        except ValueError:  # not a registered data set (a folder): only what was recorded
            info = None
        notes = []
        if all(data.get(k) for k in ("channels", "height", "width", "mean", "std")):
            spec = cls.from_dict(data)
        elif info is None or info.shape is None or info.mean is None or info.std is None:
            raise InputError(
                f"the run records no input description (size, normalisation) and {dataset!r} is not a "
                "registered data set to take it from"
            )
        else:
            c, h, w = info.shape
            spec = cls(c, h, w, info.mean, info.std, None, data.get("num_classes") or info.num_classes, dataset)
            notes.append(f"input size and normalisation: not recorded with the run; using {dataset}'s")
        n = spec.num_classes
        if spec.classes is None or (n is not None and len(spec.classes) != n):
            if info is not None and info.classes and (n is None or len(info.classes) == n):
                spec = dataclasses.replace(spec, classes=info.classes)
                notes.append(f"class names: not recorded with the run; using {dataset}'s")
            else:
                notes.append("class names: not recorded with the run; using class indices")
        return spec, notes
