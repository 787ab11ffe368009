"""Training losses: IsoMax / IsoMax+ / DisMax (with the entropic scale), the SoftMax baseline and LogitNorm.

The papers' reference code computes the loss "probability first, logarithm second"::

    p = softmax(E_s * logits)         # logits = -distances, from the head
    loss = -log(p[range(B), targets])

:class:`IsoMaxLoss` computes the same quantity as ``cross_entropy(E_s * logits, targets)``, i.e.
through ``log_softmax``. Wherever the reference is finite the two agree to floating-point
rounding (tested in float64 and float32). Where the target probability underflows to 0 in the
reference's floating-point type, the reference returns ``inf`` (and its gradient is NaN), which
ends a training run; :class:`IsoMaxLoss` instead returns the exact finite value
``E_s * (max_j logits_j - logits_y) + log sum_j exp(E_s * (logits_j - max_j logits_j))`` with a
finite gradient. It therefore never returns inf or NaN for finite logits. An empty batch, or one
whose every target is ``ignore_index``, gives 0 with zero gradients for the ``"mean"`` reduction
(``F.cross_entropy`` gives NaN there: 0/0), as it gives 0 for ``"sum"``.

The entropic scale ``E_s`` is used only here, at training time. At inference, probabilities are
``softmax(logits)`` without it (the "entropy maximisation trick").

The built-in losses are registered at the end of this module, one :class:`isomax.registry.LossSpec` each
(head, factory, deployed score, sweep score, label, colour, ...); :func:`make_loss` and
:func:`isomax.heads.make_head` look names up there.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import InputError
from .heads import DisMaxHead, IsoMaxHead, IsoMaxPlusHead
from .registry import LossSpec, get_loss, register_loss
from ._validation import (
    all_finite,
    check_finite,
    check_positive_finite,
    check_targets,
    check_tensor,
    value_checks_enabled,
)

__all__ = [
    "IsoMaxLoss",
    "SoftMaxLoss",
    "LogitNormLoss",
    "DisMaxLoss",
    "fpr_batch",
    "make_loss",
    "reference_isomax_loss",
]

_REDUCTIONS = ("mean", "sum", "none")


class IsoMaxLoss(nn.Module):
    """IsoMax / IsoMax+ loss: ``-log softmax(E_s * logits)[target]``. Replaces ``nn.CrossEntropyLoss``.

    Works with :class:`isomax.IsoMaxHead`, :class:`isomax.IsoMaxPlusHead` and any
    :class:`isomax.DistanceHead` (their logits are negative distances). Takes the arguments of
    ``nn.CrossEntropyLoss`` with exactly its semantics: the loss is
    ``F.cross_entropy(entropic_scale * logits, targets, weight, ignore_index=..., reduction=...,
    label_smoothing=...)`` (or ``g(logits)`` in place of ``entropic_scale * logits``).

    Args:
        entropic_scale: ``E_s`` (10 in both papers, never tuned); finite and > 0.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``, as in PyTorch losses.
        weight: optional per-class weights, shape (num_classes,), as in ``nn.CrossEntropyLoss``.
        ignore_index: targets equal to it contribute nothing (and are not range-checked).
        label_smoothing: in [0, 1], as in ``nn.CrossEntropyLoss``.
        g: optional function applied to the logits instead of multiplication by
            ``entropic_scale`` (the ``g()`` of Eq. 5 of the 2019 paper, expressed on logits).
        validate_args: shapes and dtypes are always checked (free). With True (default) the label
            range is checked too, and NaN/inf logits are reported whenever they make the loss
            non-finite (NaN and +inf always do; a -inf logit of a non-target class is allowed where
            the loss stays finite, as with ``CrossEntropyLoss``), where that costs no host-device
            sync (eager mode, CPU tensors); skipped under ``torch.compile`` / ``torch.export`` and
            on accelerators, see :mod:`isomax._validation`.

    Example:
        >>> head, criterion = IsoMaxPlusHead(342, 10), IsoMaxLoss()
        >>> loss = criterion(head(torch.randn(8, 342)), torch.randint(0, 10, (8,)))
    """

    weight: Tensor | None  # a buffer (declared for the type checker: nn.Module.__getattr__ is untyped)

    def __init__(
        self,
        entropic_scale: float = 10.0,
        reduction: str = "mean",
        *,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        g: Callable[[Tensor], Tensor] | None = None,
        validate_args: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(entropic_scale, bool) or not isinstance(entropic_scale, (int, float)):
            raise InputError(f"Expected `entropic_scale` to be a positive finite number, but got: {entropic_scale!r}")
        check_positive_finite("entropic_scale", entropic_scale)
        if reduction not in _REDUCTIONS:
            raise InputError(f"Expected `reduction` to be one of {_REDUCTIONS}, but got: {reduction!r}")
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise InputError(f"Expected `ignore_index` to be an int, but got: {ignore_index!r}")
        if (
            isinstance(label_smoothing, bool)
            or not isinstance(label_smoothing, (int, float))
            or not 0.0 <= label_smoothing <= 1.0
        ):
            raise InputError(f"Expected `label_smoothing` to be a number in [0, 1], but got: {label_smoothing!r}")
        if weight is not None:
            check_tensor("weight", weight, ndim=1, floating=True)
        self.entropic_scale = float(entropic_scale)
        self.reduction = reduction
        self.ignore_index = ignore_index
        self.label_smoothing = float(label_smoothing)
        self.register_buffer("weight", weight)  # None stays None (and out of the state_dict), as in torch.nn losses
        self.g = g
        self.validate_args = validate_args

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        check_tensor("logits", logits, ndim=2, floating=True)
        check_targets("targets", targets, logits.shape[0], logits.shape[1], self.validate_args, self.ignore_index)
        if self.weight is not None and self.weight.shape[0] != logits.shape[1]:
            raise InputError(
                f"Expected `weight` to have {logits.shape[1]} entries (one per class), but got {self.weight.shape[0]}"
            )
        if torch.is_autocast_enabled(logits.device.type):  # the loss in float32 under mixed precision
            with torch.autocast(device_type=logits.device.type, enabled=False):
                loss = self._loss(logits.float(), targets)
        else:
            loss = self._loss(logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits, targets)
        if self.reduction == "mean":
            # an empty batch, or one whose every target is ignore_index: F.cross_entropy's mean is 0/0 = NaN;
            # here 0 (its gradient is 0 either way). A where, not a branch: no graph break under torch.compile.
            counted = (targets != self.ignore_index).sum() if targets.numel() else targets.new_zeros(())
            loss = torch.where(counted > 0, loss, torch.zeros_like(loss))
        # NaN/inf logits make the loss NaN/inf (log_softmax is finite for finite input): one check of
        # the (usually 0-d) result instead of a pass over the logits; the cause is looked for only then.
        if self.validate_args and value_checks_enabled(loss) and not all_finite(loss):
            check_finite("logits", logits)
        return loss

    def _loss(self, z: Tensor, targets: Tensor) -> Tensor:
        z = self.g(z) if self.g is not None else z * self.entropic_scale
        weight = self.weight.to(z.dtype) if self.weight is not None else None
        return F.cross_entropy(
            z,
            targets.long(),
            weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )

    def extra_repr(self) -> str:
        extra = "" if self.ignore_index == -100 else f", ignore_index={self.ignore_index}"
        extra += f", label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
        return f"entropic_scale={self.entropic_scale}, reduction={self.reduction!r}{extra}"


class SoftMaxLoss(IsoMaxLoss):
    """The SoftMax baseline loss: plain cross-entropy on the logits of an ``nn.Linear``.

    Same as ``nn.CrossEntropyLoss`` (same arguments) with the argument checks of this library.
    """

    def __init__(
        self,
        reduction: str = "mean",
        *,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        validate_args: bool = True,
    ) -> None:
        super().__init__(
            1.0,
            reduction,
            weight=weight,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            validate_args=validate_args,
        )

    def extra_repr(self) -> str:
        return super().extra_repr().replace("entropic_scale=1.0, ", "")


class LogitNormLoss(nn.Module):
    """LogitNorm loss (Wei et al., "Mitigating Neural Network Overconfidence with Logit
    Normalization", ICML 2022): cross-entropy of ``logits / (temperature * |logits|_2)``.

    Trains a plain linear head (``head_kind("logitnorm") == "softmax"``). The loss itself is
    ``pytorch_ood.loss.LogitNorm`` (install ``pytorch-ood``); this class adds this library's
    argument checks. Labels < 0 are dropped, as in pytorch-ood.

    Args:
        temperature: ``tau``; 0.04, the paper's value for CIFAR-10 (pytorch-ood's own default is 1).
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.
        validate_args: as in :class:`IsoMaxLoss`.
    """

    def __init__(self, temperature: float = 0.04, reduction: str = "mean", *, validate_args: bool = True) -> None:
        super().__init__()
        try:
            from pytorch_ood.loss import LogitNorm
        except ImportError as err:  # pragma: no cover - pytorch-ood is a dependency
            raise ImportError("The 'logitnorm' loss needs pytorch-ood: pip install pytorch-ood") from err
        self.temperature = check_positive_finite("temperature", temperature)
        if reduction not in _REDUCTIONS:
            raise InputError(f"Expected `reduction` to be one of {_REDUCTIONS}, but got: {reduction!r}")
        self.reduction = reduction
        self.validate_args = validate_args
        self.loss = LogitNorm(t=self.temperature, reduction=reduction)

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        check_tensor("logits", logits, ndim=2, floating=True)
        check_targets("targets", targets, logits.shape[0], logits.shape[1], self.validate_args, ignore_index=-1)
        if self.validate_args and value_checks_enabled(logits):
            check_finite("logits", logits)
        return self.loss(logits, targets.long())

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"


class DisMaxLoss(IsoMaxLoss):
    """DisMax loss (Macedo et al. 2022, arXiv 2205.05874): the IsoMax loss on :class:`isomax.DisMaxHead`'s
    enhanced logits, optionally with Fractional Probability Regularization (FPR).

    With class targets (B,) it is exactly :class:`IsoMaxLoss` (``-log softmax(E_s * logits)_y``, all
    of ``nn.CrossEntropyLoss``'s arguments). FPR (``fpr=True``) trains on batches made by
    :func:`fpr_batch` (:meth:`batch_transform`; ``isomax train --loss dismax-fpr`` applies it at every
    training step): the first ``h = B // 2`` rows are unchanged images, the others mosaics of four,
    and the targets are (B, 4) class indices, one per quadrant. The loss is then::

        L1 = mean_{i < h} -log softmax(E_s z_i)_{y_i}
        L2 = mean_{i >= h} KL(t_i || softmax(E_s z_i)),  t_i = 0.25 on each quadrant's class (equal classes add up)
        loss = (L1 + alpha * L2) / 2

    computed through ``log_softmax`` (finite for finite logits; the reference code takes the
    logarithm of probabilities, which can be -inf). FPR targets need ``reduction="mean"`` and no
    ``weight`` or ``label_smoothing``; class targets (B,) are always accepted (validation loss).

    Args:
        entropic_scale, reduction, validate_args, and the keyword arguments of :class:`IsoMaxLoss`.
        fpr: whether the training step should apply :func:`fpr_batch` (and the loss accept its targets).
        alpha: weight of the FPR term (1 in the paper); finite and >= 0.

    Example:
        >>> head, criterion = DisMaxHead(342, 10), DisMaxLoss(fpr=True)
        >>> x, targets = criterion.batch_transform(torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,)))
        >>> loss = criterion(head(torch.randn(8, 342)), targets)
    """

    def __init__(
        self, entropic_scale: float = 10.0, reduction: str = "mean", *, fpr: bool = False, alpha: float = 1.0, **kwargs
    ) -> None:
        super().__init__(entropic_scale, reduction, **kwargs)
        if not isinstance(fpr, bool):
            raise InputError(f"Expected `fpr` to be a bool, but got: {fpr!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (math.isfinite(alpha) and alpha >= 0):
            raise InputError(f"Expected `alpha` to be a finite number >= 0, but got: {alpha!r}")
        self.fpr = fpr
        self.alpha = float(alpha)

    def batch_transform(self, images: Tensor, labels: Tensor, *, generator: torch.Generator | None = None):
        """``fpr_batch(images, labels)`` with ``fpr=True``; ``(images, labels)`` unchanged otherwise."""
        return fpr_batch(images, labels, generator=generator) if self.fpr else (images, labels)

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        if not (isinstance(targets, Tensor) and targets.ndim == 2):
            return super().forward(logits, targets)
        if not self.fpr:
            raise InputError(
                f"Expected `targets` of shape (batch,), but got {tuple(targets.shape)} (FPR targets need "
                "DisMaxLoss(fpr=True))"
            )
        check_tensor("logits", logits, ndim=2, floating=True)
        n = logits.shape[0]
        if targets.shape != (n, 4):
            raise InputError(f"Expected FPR `targets` of shape (batch, 4) = {(n, 4)}, but got {tuple(targets.shape)}")
        if n < 2:
            raise InputError(f"Expected at least 2 rows for FPR (half plain, half mosaics), but got {n}")
        if self.reduction != "mean" or self.weight is not None or self.label_smoothing:
            raise InputError("Expected reduction='mean' and no `weight` or `label_smoothing` with FPR targets")
        check_targets("targets", targets.reshape(-1), 4 * n, logits.shape[1], self.validate_args)
        if torch.is_autocast_enabled(logits.device.type):  # the loss in float32 under mixed precision
            with torch.autocast(device_type=logits.device.type, enabled=False):
                loss = self._fpr_loss(logits.float(), targets)
        else:
            loss = self._fpr_loss(
                logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits, targets
            )
        if self.validate_args and value_checks_enabled(loss) and not all_finite(loss):
            check_finite("logits", logits)
        return loss

    def _fpr_loss(self, z: Tensor, targets: Tensor) -> Tensor:
        h = z.shape[0] // 2
        log_p = torch.log_softmax(self.g(z) if self.g is not None else z * self.entropic_scale, dim=1)  # (B, C)
        plain = -log_p[:h].gather(1, targets[:h, :1].long()).mean()
        # 0.25 on each quadrant's class, equal classes adding up: (B - h, C)
        t = F.one_hot(targets[h:].long(), z.shape[1]).to(z.dtype).sum(dim=1) * 0.25
        mixed = F.kl_div(log_p[h:], t, reduction="batchmean")  # sum t (log t - log p) / (B - h), 0 log 0 = 0
        return (plain + self.alpha * mixed) / 2

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", fpr=True, alpha={self.alpha}" if self.fpr else "")


def fpr_batch(images: Tensor, labels: Tensor, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The batch of DisMax's Fractional Probability Regularization: ``(images, targets (B, 4))``.

    1. Shuffle images and labels with one permutation (``torch.randperm`` with ``generator``, on its
       device; the global CPU generator if None; then moved to the images' device).
    2. Rows ``i < h = B // 2`` stay as they are; their four targets are their label.
    3. Rows ``i >= h`` become mosaics: the top-left quadrant of image ``i``, the bottom-left from image
       ``i - 1``, the top-right from ``i - 2``, the bottom-right from ``i - 3`` (indices cyclic within
       the second half, i.e. ``torch.roll`` by 1, 2, 3); quadrants split rows at ``H // 2`` and columns
       at ``W // 2``. Their targets are the labels of those four images, in that order.

    ``images``: (B, C, H, W), any size, dtype and device (B >= 2); ``labels``: (B,) class indices.
    The input tensors are not modified. Use with :class:`DisMaxLoss` ``(fpr=True)``.
    """
    check_tensor("images", images, ndim=4)
    labels = check_tensor("labels", labels, ndim=1)
    n = images.shape[0]
    if labels.shape[0] != n:
        raise InputError(f"Expected `labels` to have {n} entries (one per image), but got {labels.shape[0]}")
    if n < 2:
        raise InputError(f"Expected at least 2 images for FPR (half plain, half mosaics), but got {n}")
    gen_device = generator.device if generator is not None else torch.device("cpu")
    perm = torch.randperm(n, generator=generator, device=gen_device).to(images.device)
    x, y = images[perm], labels[perm.to(labels.device)]  # fresh tensors: modified in place below
    h, rows, cols = n // 2, images.shape[2] // 2, images.shape[3] // 2
    m = x[h:]  # (B - h, C, H, W), a view of x
    bottom_left = torch.roll(m[:, :, rows:, :cols], 1, 0)  # rolls copy: every quadrant comes from the unmixed images
    top_right = torch.roll(m[:, :, :rows, cols:], 2, 0)
    bottom_right = torch.roll(m[:, :, rows:, cols:], 3, 0)
    m[:, :, rows:, :cols] = bottom_left
    m[:, :, :rows, cols:] = top_right
    m[:, :, rows:, cols:] = bottom_right
    y2 = y[h:]
    targets = torch.cat(
        [
            y[:h, None].expand(h, 4),
            torch.stack([y2, torch.roll(y2, 1, 0), torch.roll(y2, 2, 0), torch.roll(y2, 3, 0)], dim=1),
        ]
    )
    return x, targets


def make_loss(kind: str, entropic_scale: float = 10.0, **kwargs) -> nn.Module:
    """The loss that goes with a loss/head name (its :class:`isomax.registry.LossSpec`'s ``loss_factory``).

    ``"softmax"`` -> :class:`SoftMaxLoss`, ``"logitnorm"`` -> :class:`LogitNormLoss`
    (``entropic_scale`` unused; pass ``temperature=``), ``"isomax"`` / ``"isomaxplus"`` ->
    :class:`IsoMaxLoss`, ``"dismax"`` -> :class:`DisMaxLoss`, ``"dismax-fpr"`` -> ``DisMaxLoss(fpr=True)``.
    ``kwargs`` go to the loss (e.g. ``reduction``, ``validate_args``).
    """
    return get_loss(kind).make_loss(entropic_scale, **kwargs)


def reference_isomax_loss(logits: Tensor, targets: Tensor, entropic_scale: float = 10.0) -> Tensor:
    """The papers' formula, transcribed: probability first, logarithm second (mean reduction).

    Returns ``inf`` where the target probability underflows. Kept for comparison and tests;
    train with :class:`IsoMaxLoss`.
    """
    probabilities = torch.softmax(entropic_scale * logits, dim=1)
    return -torch.log(probabilities[torch.arange(logits.shape[0]), targets]).mean()


# ---------------------------------------------------------------------------------------------
# The built-in losses (isomax.registry): one entry per loss, everything about it in one place.
# Colours: Okabe-Ito, colour-blind safe. LogitNorm is registered last and keeps its name as label
# (the published tables order and name it so).
# ---------------------------------------------------------------------------------------------
def _softmax_loss(entropic_scale: float = 10.0, **kwargs) -> nn.Module:
    return SoftMaxLoss(**kwargs)


def _logitnorm_loss(entropic_scale: float = 10.0, **kwargs) -> nn.Module:
    return LogitNormLoss(**kwargs)


def _dismax_fpr_loss(entropic_scale: float = 10.0, **kwargs) -> nn.Module:
    return DisMaxLoss(entropic_scale, fpr=True, **kwargs)


for _spec in (
    LossSpec(
        name="softmax",
        aliases=("linear",),
        head="softmax",
        head_factory=nn.Linear,
        loss_factory=_softmax_loss,
        score="es",
        label="SoftMax",
        color="#0072B2",
        entropic_scale=False,
        roc_scores=("mps", "es"),
    ),
    LossSpec(
        name="isomax",
        head="isomax",
        head_factory=IsoMaxHead,
        loss_factory=IsoMaxLoss,
        score="es",
        label="IsoMax",
        color="#E69F00",
        sweep_score="es",
        roc_scores=("es", "mds"),
        distance="Euclidean",
    ),
    LossSpec(
        name="isomaxplus",
        aliases=("isomax+", "isomax_plus", "isomax-plus"),
        head="isomaxplus",
        head_factory=IsoMaxPlusHead,
        loss_factory=IsoMaxLoss,
        score="mds",
        label="IsoMax+",
        color="#009E73",
        sweep_score="mds",
        roc_scores=("es", "mds"),
        distance="normalised",
    ),
    LossSpec(
        name="dismax",
        head="dismax",
        head_factory=DisMaxHead,
        loss_factory=DisMaxLoss,
        score="mmles",
        label="DisMax",
        color="#CC79A7",
        sweep_score="mmles",
        roc_scores=("mmles",),
    ),
    LossSpec(
        name="dismax-fpr",  # DisMax with Fractional Probability Regularization (the step applies fpr_batch)
        aliases=("dismax+fpr", "dismax_fpr", "dismaxfpr"),
        head="dismax",
        head_factory=DisMaxHead,
        loss_factory=_dismax_fpr_loss,
        score="mmles",
        label="DisMax+FPR",
        color="#882255",
        sweep_score="mmles",
        roc_scores=("mmles",),
    ),
    LossSpec(
        name="logitnorm",  # Wei et al. 2022: a plain linear head, like SoftMax
        aliases=("logit_norm", "logit-norm"),
        head="softmax",
        head_factory=nn.Linear,
        loss_factory=_logitnorm_loss,
        score="es",
        label="logitnorm",
        entropic_scale=False,
        label_smoothing=False,
    ),
):
    register_loss(_spec)
