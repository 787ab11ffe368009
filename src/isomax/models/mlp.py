"""A small BatchNorm-free multilayer perceptron (not from the papers).

``mlp-28`` (28x28 grey images): flatten -> Linear-ReLU x 3 (hidden sizes ``(256, 128, 128)``) ->
128 features -> head; 251,658 parameters with a 10-class SoftMax head. It exists because it
has no BatchNorm: its training step depends only on the global batch, so a run on N
data-parallel CPU processes (where BatchNorm statistics are per process; ``SyncBatchNorm`` is
CUDA-only) matches a 1-process run to float rounding. The distributed
tests use it (see :mod:`isomax.distributed`).

The first layer is stored as a ``Conv2d`` whose kernel covers the whole image (mathematically a
``Linear`` on the flattened image, computed as one), so the state dict records the input
channels like the convolutional models do (``isomax.runs.Run.load`` reads them from the
first 4-D weight). Each hidden layer's output is one ``(B, C, 1, 1)`` map of :meth:`feature_list`.
"""

from __future__ import annotations

from typing import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from ..registry import BASELINE_LOSS
from ._base import IsoMaxModel, register_model

__all__ = ["MLP", "mlp_28"]


class MLP(IsoMaxModel):
    """Flatten, then Linear-ReLU layers of sizes ``hidden``, then the head.

    Args:
        hidden: hidden sizes, at least one; the last is ``num_features``.
        input_hw: the ``(H, W)`` of the inputs (fixed: the first layer sees every pixel).
        num_classes: number of classes of the head.
        head: ``"softmax"``, ``"isomax"`` or ``"isomaxplus"``.
        in_channels: input channels (1 for grey, 3 for RGB).
    """

    def __init__(
        self,
        hidden: Sequence[int] = (256, 128, 128),
        input_hw: tuple[int, int] = (28, 28),
        num_classes: int = 10,
        head: str = BASELINE_LOSS,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        hidden = tuple(hidden)
        if not hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
            raise InputError(f"Expected `hidden` to be a non-empty sequence of positive ints, but got: {hidden!r}")
        # same default initialisation as nn.Linear(in_channels * H * W, hidden[0]) (same fan-in)
        self.stem = nn.Conv2d(in_channels, hidden[0], kernel_size=(input_hw[0], input_hw[1]))
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(hidden[:-1], hidden[1:]))
        self.num_features = hidden[-1]
        self.num_classes = num_classes
        self.input_size = (in_channels, *input_hw)
        self.reset_head(head, num_classes)

    def feature_list(self, x: Tensor) -> list[Tensor]:
        if tuple(x.shape[1:]) != self.input_size:
            raise InputError(
                f"Expected inputs of shape (B, {', '.join(map(str, self.input_size))}), but got: {tuple(x.shape)}"
            )
        h = F.relu(F.linear(x.reshape(x.shape[0], -1), self.stem.weight.flatten(1), self.stem.bias))  # (B, hidden[0])
        maps = [h[:, :, None, None]]
        for layer in self.layers:
            h = F.relu(layer(h))
            maps.append(h[:, :, None, None])  # (B, C_i, 1, 1)
        return maps

    def forward_features(self, x: Tensor) -> Tensor:
        return self.feature_list(x)[-1].flatten(1)  # (B, num_features)


@register_model
def mlp_28(num_classes: int = 10, head: str = BASELINE_LOSS, in_channels: int = 1, **kwargs) -> MLP:
    """BatchNorm-free MLP for 28x28 grey images: 251,658 parameters with 10 classes (exact under DDP on CPU)."""
    return MLP(input_hw=(28, 28), num_classes=num_classes, head=head, in_channels=in_channels, **kwargs)
