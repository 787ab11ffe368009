"""Migration aliases with the class names and signatures of the papers' reference code
(github.com/dlmacedo/entropic-out-of-distribution-detection), so its users switch without edits::

    from isomax import IsoMaxPlusLossFirstPart, IsoMaxPlusLossSecondPart
    model.classifier = IsoMaxPlusLossFirstPart(num_features, num_classes)
    criterion = IsoMaxPlusLossSecondPart()

Differences from the reference: the loss is computed stably (never ``inf``, see
:mod:`isomax.losses`), distances are accurate and fast (see :mod:`isomax.heads`), and
``temperature`` is a buffer saved in the ``state_dict``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .heads import IsoMaxHead, IsoMaxPlusHead
from .losses import IsoMaxLoss

__all__ = ["IsoMaxLossFirstPart", "IsoMaxLossSecondPart", "IsoMaxPlusLossFirstPart", "IsoMaxPlusLossSecondPart"]


class IsoMaxLossFirstPart(IsoMaxHead):
    """Alias of :class:`isomax.IsoMaxHead` (replaces the last ``nn.Linear``)."""

    def __init__(self, num_features: int, num_classes: int, temperature: float = 1.0) -> None:
        super().__init__(num_features, num_classes, temperature=temperature)


class IsoMaxPlusLossFirstPart(IsoMaxPlusHead):
    """Alias of :class:`isomax.IsoMaxPlusHead` (replaces the last ``nn.Linear``)."""

    def __init__(self, num_features: int, num_classes: int, temperature: float = 1.0) -> None:
        super().__init__(num_features, num_classes, temperature=temperature)


class IsoMaxLossSecondPart(IsoMaxLoss):
    """Alias of :class:`isomax.IsoMaxLoss` (replaces ``nn.CrossEntropyLoss``).

    The reference's ``debug=True`` also returned intra/inter-class distances; here it returns
    ``(loss, intra_class_logits, inter_class_logits)``, logits being negative distances.
    """

    def __init__(self, entropic_scale: float = 10.0, *args, **kwargs) -> None:
        # Some reference versions take the head (``model_classifier``) as first argument.
        if not isinstance(entropic_scale, (int, float)):
            entropic_scale = kwargs.pop("entropic_scale", 10.0)
        super().__init__(entropic_scale)

    # override ignored: it adds the reference's `debug` argument and its tuple result
    def forward(self, logits: Tensor, targets: Tensor, debug: bool = False):  # type: ignore[override]
        loss = super().forward(logits, targets)
        if not debug:
            return loss
        mask = targets.new_zeros(logits.shape, dtype=torch.bool)
        mask[range(logits.shape[0]), targets] = True
        return loss, logits[mask].detach(), logits[~mask].detach()


class IsoMaxPlusLossSecondPart(IsoMaxLossSecondPart):
    """Alias of :class:`isomax.IsoMaxLoss` for IsoMax+ (replaces ``nn.CrossEntropyLoss``)."""
