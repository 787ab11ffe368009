"""ResNets for 32x32 inputs (He et al., 2016), as used by the IsoMax papers.

Two CIFAR variants, both built from the same :class:`BasicBlock`:

- ``resnet34``: the ResNet-34 of Lee et al.'s ``deep_Mahalanobis_detector`` (reused by the IsoMax
  papers): 3x3 stem conv with 64 channels and no max-pool, BasicBlock stages ``[3, 4, 6, 3]``
  with 64/128/256/512 channels, projection shortcuts (option B: 1x1 conv + BN),
  ``num_features = 512``. 21.28M parameters with a 10-class SoftMax head.
- ``resnet110``: the CIFAR ResNet-110 of He et al. (Sec. 4.2) as in akamaster's
  ``pytorch_resnet_cifar10``: 3x3 stem conv with 16 channels, three stages of 18 BasicBlocks
  with 16/32/64 channels, parameter-free identity shortcuts (option A: subsample by 2 and pad
  the new channels with zeros), Kaiming-normal (fan-in) init, ``num_features = 64``.
  1.73M parameters (1,727,962) with a 10-class SoftMax head.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from ..registry import BASELINE_LOSS
from ._base import IsoMaxModel, global_avg_pool, init_backbone_weights, register_model

__all__ = ["CifarResNet", "resnet34", "resnet110"]

Shortcut = Literal["A", "B"]


# ---------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------


class PadShortcut(nn.Module):
    """Option-A shortcut: ``x[:, :, ::2, ::2]`` zero-padded from C to ``out_planes`` channels."""

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.pad_before = (out_planes - in_planes) // 2
        self.pad_after = out_planes - in_planes - self.pad_before

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]  # (B, C, H/s, W/s)
        return F.pad(x, (0, 0, 0, 0, self.pad_before, self.pad_after))  # (B, C_out, H/s, W/s)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus shortcut, then ReLU: (B, C_in, H, W) -> (B, C_out, H/s, W/s)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: Shortcut = "B") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                self.shortcut = PadShortcut(in_planes, planes, stride)
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes),
                )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------


class CifarResNet(IsoMaxModel):
    """ResNet with a 3x3 stem (no max-pool) and BasicBlock stages, for 32x32 inputs.

    Args:
        num_blocks: blocks per stage; the first stage has stride 1, the others stride 2.
        widths: channels per stage; the stem has ``widths[0]`` channels.
        shortcut: ``"A"`` (zero-padded identity) or ``"B"`` (1x1 conv + BN projection).
        init_mode: Kaiming ``"fan_in"`` or ``"fan_out"`` for the convs.
        num_classes: number of classes of the head.
        head: ``"softmax"``, ``"isomax"`` or ``"isomaxplus"``.
        in_channels: input channels (3 for RGB, 1 for grey).
    """

    def __init__(
        self,
        num_blocks: tuple[int, ...],
        widths: tuple[int, ...],
        shortcut: Shortcut = "B",
        init_mode: Literal["fan_in", "fan_out"] = "fan_out",
        num_classes: int = 10,
        head: str = BASELINE_LOSS,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if shortcut not in ("A", "B"):
            raise InputError(f"Expected argument `shortcut` to be 'A' or 'B', but got: {shortcut!r}")
        if len(num_blocks) != len(widths):
            raise InputError("Expected `num_blocks` and `widths` to have the same length")
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages = []
        in_planes = widths[0]
        for i, (n, planes) in enumerate(zip(num_blocks, widths)):
            strides = [1 if i == 0 else 2] + [1] * (n - 1)
            blocks = []
            for stride in strides:
                blocks.append(BasicBlock(in_planes, planes, stride, shortcut))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)

        self.num_features = widths[-1]
        self.num_classes = num_classes
        self.input_size = (in_channels, 32, 32)
        init_backbone_weights(self, mode=init_mode)
        self.reset_head(head, num_classes)

    def feature_list(self, x: Tensor) -> list[Tensor]:
        out = F.relu(self.bn1(self.conv1(x)))  # (B, widths[0], 32, 32)
        maps = [out]
        for stage in self.stages:
            out = stage(out)  # (B, width, H, W), H halved from the second stage on
            maps.append(out)
        return maps

    def forward_features(self, x: Tensor) -> Tensor:
        return global_avg_pool(self.feature_list(x)[-1])  # (B, widths[-1])


# ---------------------------------------------------------------------------------------------
# Registered constructors
# ---------------------------------------------------------------------------------------------


@register_model
def resnet34(num_classes: int = 10, head: str = BASELINE_LOSS, in_channels: int = 3, **kwargs) -> CifarResNet:
    """CIFAR ResNet-34 of Lee et al. (2018): 21.28M parameters (21,282,122 with 10 classes)."""
    return CifarResNet(
        (3, 4, 6, 3),
        (64, 128, 256, 512),
        shortcut="B",
        init_mode="fan_out",
        num_classes=num_classes,
        head=head,
        in_channels=in_channels,
        **kwargs,
    )


@register_model
def resnet110(num_classes: int = 10, head: str = BASELINE_LOSS, in_channels: int = 3, **kwargs) -> CifarResNet:
    """CIFAR ResNet-110, option-A shortcuts: 1.73M parameters (1,727,962 with 10 classes)."""
    return CifarResNet(
        (18, 18, 18),
        (16, 32, 64),
        shortcut="A",
        init_mode="fan_in",
        num_classes=num_classes,
        head=head,
        in_channels=in_channels,
        **kwargs,
    )
