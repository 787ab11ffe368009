"""Training losses: IsoMax / IsoMax+ (with the entropic scale) and the SoftMax baseline.

The papers' reference code computes the loss "probability first, logarithm second"::

    p = softmax(E_s * logits)         # logits = -distances, from the head
    loss = -log(p[range(B), targets])

:class:`IsoMaxLoss` computes the same quantity as ``cross_entropy(E_s * logits, targets)``, i.e.
through ``log_softmax``. Wherever the reference is finite the two agree to floating-point
rounding (tested in float64 and float32). Where the target probability underflows to 0 in the
reference's floating-point type, the reference returns ``inf`` (and its gradient is NaN), which
ends a training run; :class:`IsoMaxLoss` instead returns the exact finite value
``E_s * (max_j logits_j - logits_y) + log sum_j exp(E_s * (logits_j - max_j logits_j))`` with a
finite gradient. It therefore never returns inf or NaN for finite logits.

The entropic scale ``E_s`` is used only here, at training time. At inference, probabilities are
``softmax(logits)`` without it (the "entropy maximisation trick").
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._validation import check_finite, check_targets, check_tensor

__all__ = ["IsoMaxLoss", "SoftMaxLoss", "make_loss", "reference_isomax_loss"]

_REDUCTIONS = ("mean", "sum", "none")


class IsoMaxLoss(nn.Module):
    """IsoMax / IsoMax+ loss: ``-log softmax(E_s * logits)[target]``. Replaces ``nn.CrossEntropyLoss``.

    Works with :class:`isomax.IsoMaxHead`, :class:`isomax.IsoMaxPlusHead` and any
    :class:`isomax.DistanceHead` (their logits are negative distances).

    Args:
        entropic_scale: ``E_s`` (10 in both papers, never tuned).
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``, as in PyTorch losses.
        g: optional function applied to the logits instead of multiplication by
            ``entropic_scale`` (the ``g()`` of Eq. 5 of the 2019 paper, expressed on logits).
        validate_args: check shapes, label range and finiteness (needs one device sync).

    Example:
        >>> head, criterion = IsoMaxPlusHead(342, 10), IsoMaxLoss()
        >>> loss = criterion(head(torch.randn(8, 342)), torch.randint(0, 10, (8,)))
    """

    def __init__(
        self,
        entropic_scale: float = 10.0,
        reduction: str = "mean",
        *,
        g: Callable[[Tensor], Tensor] | None = None,
        validate_args: bool = True,
    ) -> None:
        super().__init__()
        if not (isinstance(entropic_scale, (int, float)) and entropic_scale > 0):
            raise ValueError(f"Expected `entropic_scale` to be a positive number, but got: {entropic_scale!r}")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"Expected `reduction` to be one of {_REDUCTIONS}, but got: {reduction!r}")
        self.entropic_scale = float(entropic_scale)
        self.reduction = reduction
        self.g = g
        self.validate_args = validate_args

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        check_tensor("logits", logits, ndim=2, floating=True)
        check_targets("targets", targets, logits.shape[0], logits.shape[1], self.validate_args)
        if self.validate_args:
            check_finite("logits", logits)
        with torch.autocast(device_type=logits.device.type, enabled=False):
            z = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
            z = self.g(z) if self.g is not None else self.entropic_scale * z
            return F.cross_entropy(z, targets.long(), reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"entropic_scale={self.entropic_scale}, reduction={self.reduction!r}"


class SoftMaxLoss(IsoMaxLoss):
    """The SoftMax baseline loss: plain cross-entropy on the logits of an ``nn.Linear``.

    Same as ``nn.CrossEntropyLoss`` with the argument checks of this library.
    """

    def __init__(self, reduction: str = "mean", *, validate_args: bool = True) -> None:
        super().__init__(1.0, reduction, validate_args=validate_args)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


def make_loss(kind: str, entropic_scale: float = 10.0, **kwargs) -> nn.Module:
    """The loss that goes with a head: ``"softmax"`` -> :class:`SoftMaxLoss`, else :class:`IsoMaxLoss`."""
    from .heads import canonical_head_name

    if canonical_head_name(kind) == "softmax":
        return SoftMaxLoss(**kwargs)
    return IsoMaxLoss(entropic_scale, **kwargs)


def reference_isomax_loss(logits: Tensor, targets: Tensor, entropic_scale: float = 10.0) -> Tensor:
    """The papers' formula, transcribed: probability first, logarithm second (mean reduction).

    Returns ``inf`` where the target probability underflows. Kept for comparison and tests;
    train with :class:`IsoMaxLoss`.
    """
    probabilities = torch.softmax(entropic_scale * logits, dim=1)
    return -torch.log(probabilities[torch.arange(logits.shape[0]), targets]).mean()
