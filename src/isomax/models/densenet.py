"""DenseNet-BC for 32x32 inputs (Huang et al., 2017), as used by the IsoMax papers.

The IsoMax papers train DenseNet-BC-100 (depth 100, growth rate 12, compression 0.5, bottleneck
layers, no dropout) on CIFAR-10/100 and SVHN; this is the DenseNet3 of the ODIN / Lee et al.
(``deep_Mahalanobis_detector``) code bases that the papers reuse:

    conv3x3(2k) -> [dense block (16 x bottleneck) -> transition] x 2 -> dense block -> BN-ReLU
    -> global average pool -> head

with ``k = 12`` and ``(100 - 4) / 6 = 16`` bottleneck layers per block. A bottleneck layer is
BN-ReLU-conv1x1(4k)-BN-ReLU-conv3x3(k), its output concatenated to its input; a transition is
BN-ReLU-conv1x1(floor(0.5 C))-avgpool2. Channels: 24 -> 216 -> 108 -> 300 -> 150 -> 342, so
``num_features = 342``. Parameters: 769,162 with a 10-class SoftMax head (765,732 backbone).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from ..registry import BASELINE_LOSS
from ._base import IsoMaxModel, global_avg_pool, init_backbone_weights, register_model

__all__ = ["DenseNet", "densenet_bc_100"]


# ---------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------


class Bottleneck(nn.Module):
    """BN-ReLU-conv1x1(4k)-BN-ReLU-conv3x3(k); returns ``cat([x, new], 1)``: C -> C + k."""

    def __init__(self, in_planes: int, growth_rate: int) -> None:
        super().__init__()
        inter_planes = 4 * growth_rate
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, inter_planes, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(inter_planes)
        self.conv2 = nn.Conv2d(inter_planes, growth_rate, kernel_size=3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.relu(self.bn1(x)))  # (B, 4k, H, W)
        out = self.conv2(F.relu(self.bn2(out)))  # (B, k, H, W)
        return torch.cat([x, out], 1)  # (B, C + k, H, W)


class Transition(nn.Module):
    """BN-ReLU-conv1x1-avgpool2: (B, C_in, H, W) -> (B, C_out, H/2, W/2)."""

    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


def dense_block(num_layers: int, in_planes: int, growth_rate: int) -> nn.Sequential:
    return nn.Sequential(*[Bottleneck(in_planes + i * growth_rate, growth_rate) for i in range(num_layers)])


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------


class DenseNet(IsoMaxModel):
    """DenseNet-BC with three dense blocks for 32x32 inputs.

    Args:
        depth: total depth; ``(depth - 4) / 6`` bottleneck layers per block.
        growth_rate: channels added by each bottleneck layer (``k``).
        compression: channel reduction of the transitions (``0.5`` for DenseNet-BC).
        num_classes: number of classes of the head.
        head: ``"softmax"``, ``"isomax"`` or ``"isomaxplus"``.
        in_channels: input channels (3 for RGB, 1 for grey).
    """

    def __init__(
        self,
        depth: int = 100,
        growth_rate: int = 12,
        compression: float = 0.5,
        num_classes: int = 10,
        head: str = BASELINE_LOSS,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise InputError(f"Expected argument `depth` to be 6n + 4, but got: {depth}")
        num_layers = (depth - 4) // 6
        planes = 2 * growth_rate
        self.conv1 = nn.Conv2d(in_channels, planes, kernel_size=3, padding=1, bias=False)
        self.block1 = dense_block(num_layers, planes, growth_rate)
        planes += num_layers * growth_rate
        self.trans1 = Transition(planes, math.floor(planes * compression))
        planes = math.floor(planes * compression)
        self.block2 = dense_block(num_layers, planes, growth_rate)
        planes += num_layers * growth_rate
        self.trans2 = Transition(planes, math.floor(planes * compression))
        planes = math.floor(planes * compression)
        self.block3 = dense_block(num_layers, planes, growth_rate)
        planes += num_layers * growth_rate
        self.bn = nn.BatchNorm2d(planes)

        self.num_features = planes
        self.num_classes = num_classes
        self.input_size = (in_channels, 32, 32)
        init_backbone_weights(self)
        self.reset_head(head, num_classes)

    def feature_list(self, x: Tensor) -> list[Tensor]:
        out0 = self.conv1(x)  # (B, 2k, 32, 32)
        out1 = self.trans1(self.block1(out0))  # (B, 108, 16, 16)
        out2 = self.trans2(self.block2(out1))  # (B, 150, 8, 8)
        out3 = F.relu(self.bn(self.block3(out2)))  # (B, 342, 8, 8)
        return [out0, out1, out2, out3]

    def forward_features(self, x: Tensor) -> Tensor:
        return global_avg_pool(self.feature_list(x)[-1])  # (B, 342)


# ---------------------------------------------------------------------------------------------
# Registered constructors
# ---------------------------------------------------------------------------------------------


@register_model
def densenet_bc_100(num_classes: int = 10, head: str = BASELINE_LOSS, in_channels: int = 3, **kwargs) -> DenseNet:
    """DenseNet-BC-100, growth 12: 0.77M parameters (769,162 with 10 classes, SoftMax head)."""
    return DenseNet(
        depth=100,
        growth_rate=12,
        compression=0.5,
        num_classes=num_classes,
        head=head,
        in_channels=in_channels,
        **kwargs,
    )
