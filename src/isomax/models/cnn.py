"""Small, fast VGG-style CNNs sized for CPU training (not from the papers).

The papers' DenseNet/ResNet protocol needs a GPU; these networks make the benchmarks that run on
a 2-core CPU possible. All are stacks of conv3x3-BN-ReLU layers and 2x2 max-pools, described by
a ``plan`` (an int is a conv with that many output channels, ``"M"`` a max-pool), ending in a
global average pool:

- ``cnn-28`` (Fashion-MNIST, 28x28 grey): ``32, M, 64, M, 128, M, 128`` -> 128 features,
  241,898 parameters with a 10-class SoftMax head. On 2 CPU threads a training step at batch 128
  takes about 45 ms, an epoch of 54,000 images about 20 s; SGD-Nesterov, one-cycle lr 0.1,
  flips only, reaches 92.4% Fashion-MNIST test accuracy in 5 epochs (one seed).
- ``cnn-32`` (CIFAR-10, 32x32 RGB): VGG/airbench-like, ``64, M, 64, 128, M, 128, 256, M, 256``
  -> 256 features, 1,148,874 parameters. About 0.66 s per training step at batch 256 on 2 CPU
  threads, about 130 s per 50,000-image epoch: 6-7 epochs in 15 minutes.
- ``cnn-32-half`` (CIFAR-10): ``48, M, 48, 96, M, 96, 192, M, 192`` -> 192 features, 0.65M
  parameters, 0.52-0.61x the step time of ``cnn-32`` (~0.35-0.40 s at batch 256, 60-75 s per
  epoch of 45,000 images with validation): 13 epochs in the ``cifar10-cpu-15min`` preset.
- ``cnn-32-small`` (CIFAR-10): ``32, M, 64, M, 128, M, 256`` -> 256 features, 0.39M parameters,
  0.21-0.25x the step time of ``cnn-32`` (~0.14-0.17 s at batch 256, 25-30 s per epoch): 9 epochs
  in the ~4.5-minute ``cifar10-cpu`` preset. For a fixed CPU budget a cheaper network trained for
  more epochs usually beats a wider one trained for fewer (the full-resolution early layers
  dominate the cost). The ratios are the fastest and the median of 13 interleaved rounds per
  network on 2 threads, on a machine that was busy with other work.

All are stored channels-last by default (``channels_last=True``): about 1.5x faster for these
small convolutions on CPU (oneDNN); inputs are converted in :meth:`SmallCNN.forward_features`.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..registry import BASELINE_LOSS
from ._base import IsoMaxModel, global_avg_pool, init_backbone_weights, register_model

__all__ = ["SmallCNN", "cnn_28", "cnn_32", "cnn_32_half", "cnn_32_small"]

PlanItem = Union[int, str]


# ---------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------


class ConvBNReLU(nn.Sequential):
    """conv3x3 (same padding, no bias) -> BN -> ReLU: (B, C_in, H, W) -> (B, C_out, H, W)."""

    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__(
            nn.Conv2d(in_planes, out_planes, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_planes),
            nn.ReLU(inplace=True),
        )


def make_stages(plan: Sequence[PlanItem], in_channels: int) -> tuple[nn.ModuleList, int]:
    """Build the stages of a plan; a new stage starts at each ``"M"`` (max-pool).

    Returns the stages and the number of output channels.
    """
    stages: list[list[nn.Module]] = [[]]
    planes = in_channels
    for item in plan:
        if item == "M":
            stages.append([nn.MaxPool2d(2)])
        elif isinstance(item, int) and not isinstance(item, bool) and item > 0:
            stages[-1].append(ConvBNReLU(planes, item))
            planes = item
        else:
            raise InputError(f"Expected plan items to be positive ints or 'M', but got: {item!r}")
    if not plan or plan[-1] == "M":
        raise InputError(f"Expected `plan` to end with a convolution, but got: {list(plan)}")
    return nn.ModuleList(nn.Sequential(*layers) for layers in stages if layers), planes


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------


class SmallCNN(IsoMaxModel):
    """Plain conv3x3-BN-ReLU / max-pool stack, then global average pool and the head.

    Args:
        plan: layers in order; an int ``c`` is ConvBNReLU to ``c`` channels, ``"M"`` a 2x2
            max-pool (which starts a new stage for :meth:`feature_list`).
        input_hw: the ``(H, W)`` the model is designed for (only recorded in ``input_size``;
            any size that survives the pools works).
        channels_last: store weights channels-last and convert inputs (faster on CPU).
        num_classes: number of classes of the head.
        head: ``"softmax"``, ``"isomax"`` or ``"isomaxplus"``.
        in_channels: input channels (1 for grey, 3 for RGB).
    """

    def __init__(
        self,
        plan: Sequence[PlanItem],
        input_hw: tuple[int, int] = (32, 32),
        channels_last: bool = True,
        num_classes: int = 10,
        head: str = BASELINE_LOSS,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.stages, planes = make_stages(plan, in_channels)
        self.channels_last = channels_last

        self.num_features = planes
        self.num_classes = num_classes
        self.input_size = (in_channels, *input_hw)
        init_backbone_weights(self)
        self.reset_head(head, num_classes)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def feature_list(self, x: Tensor) -> list[Tensor]:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        maps = []
        for stage in self.stages:
            x = stage(x)  # (B, C_i, H_i, W_i)
            maps.append(x)
        return maps

    def forward_features(self, x: Tensor) -> Tensor:
        return global_avg_pool(self.feature_list(x)[-1])  # (B, num_features)


# ---------------------------------------------------------------------------------------------
# Registered constructors
# ---------------------------------------------------------------------------------------------

CNN_28_PLAN: tuple[PlanItem, ...] = (32, "M", 64, "M", 128, "M", 128)
CNN_32_PLAN: tuple[PlanItem, ...] = (64, "M", 64, 128, "M", 128, 256, "M", 256)
CNN_32_HALF_PLAN: tuple[PlanItem, ...] = (48, "M", 48, 96, "M", 96, 192, "M", 192)
CNN_32_SMALL_PLAN: tuple[PlanItem, ...] = (32, "M", 64, "M", 128, "M", 256)


@register_model
def cnn_28(num_classes: int = 10, head: str = BASELINE_LOSS, in_channels: int = 1, **kwargs) -> SmallCNN:
    """Small CNN for 28x28 grey images (Fashion-MNIST): 241,898 parameters with 10 classes."""
    kwargs.setdefault("plan", CNN_28_PLAN)
    return SmallCNN(input_hw=(28, 28), num_classes=num_classes, head=head, in_channels=in_channels, **kwargs)


@register_model
def cnn_32(num_classes: int = 10, head: str = BASELINE_LOSS, in_channels: int = 3, **kwargs) -> SmallCNN:
    """Small CNN for 32x32 RGB images (CIFAR-10): 1,148,874 parameters with 10 classes."""
    kwargs.setdefault("plan", CNN_32_PLAN)
    return SmallCNN(input_hw=(32, 32), num_classes=num_classes, head=head, in_channels=in_channels, **kwargs)


@register_model
def cnn_32_half(num_classes: int = 10, head: str = BASELINE_LOSS, in_channels: int = 3, **kwargs) -> SmallCNN:
    """``cnn-32`` at about half the cost (48/96/192 channels) for 32x32 RGB images: 0.65M parameters."""
    kwargs.setdefault("plan", CNN_32_HALF_PLAN)
    return SmallCNN(input_hw=(32, 32), num_classes=num_classes, head=head, in_channels=in_channels, **kwargs)


@register_model
def cnn_32_small(num_classes: int = 10, head: str = BASELINE_LOSS, in_channels: int = 3, **kwargs) -> SmallCNN:
    """Four convolutions (32/64/128/256) for 32x32 RGB images, the cheapest CIFAR-10 CNN: 0.39M parameters."""
    kwargs.setdefault("plan", CNN_32_SMALL_PLAN)
    return SmallCNN(input_hw=(32, 32), num_classes=num_classes, head=head, in_channels=in_channels, **kwargs)
