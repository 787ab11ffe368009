"""The in-memory image set every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from ..errors import InputError

__all__ = ["ImageData"]


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
            raise InputError(
                f"images must be a uint8 tensor (N, C, H, W); got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels is not None:
            if not isinstance(self.labels, torch.Tensor):
                self.labels = torch.as_tensor(self.labels)
            if self.labels.dtype != torch.int64:
                self.labels = self.labels.to(torch.int64)
            if self.labels.shape != (self.images.shape[0],):
                raise InputError(f"labels must have shape ({self.images.shape[0]},); got {tuple(self.labels.shape)}")

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
        idx: slice | torch.Tensor
        if isinstance(index, slice):
            idx = index
        else:
            t = torch.as_tensor(index)
            if t.dtype == torch.bool:
                t = t.nonzero().flatten()
            idx = t.to(torch.int64).to(self.images.device)
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
        return (
            f"ImageData(name={self.name!r}, n={len(self)}, shape={self.shape}, labels={lab}, "
            f"classes={None if self.classes is None else len(self.classes)}, "
            f"conversion={self.conversion!r})"
        )
