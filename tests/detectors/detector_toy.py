"""A toy problem for the detector tests: 3 Gaussian classes in 16-d, seen as 1x4x4 "images"."""

from __future__ import annotations

import torch
from torch import Tensor, nn

NUM_CLASSES, DIM = 3, 16


class ToyNet(nn.Module):
    """Two linear 'stages' (returned as 1x1 maps by ``feature_list``) and a linear head."""

    def __init__(self, centers: Tensor) -> None:
        super().__init__()
        self.num_classes = NUM_CLASSES
        self.stage1 = nn.Linear(DIM, DIM)
        self.stage2 = nn.Linear(DIM, DIM)
        self.head = nn.Linear(DIM, NUM_CLASSES)
        with torch.no_grad():  # near-identity stages keep the class structure; the head points at the centres
            self.stage1.weight.copy_(torch.eye(DIM) + 0.05 * torch.randn(DIM, DIM))
            self.stage2.weight.copy_(torch.eye(DIM) + 0.05 * torch.randn(DIM, DIM))
            self.stage1.bias.zero_()
            self.stage2.bias.zero_()
            self.head.weight.copy_(centers)
            self.head.bias.zero_()

    def feature_list(self, x: Tensor) -> list[Tensor]:
        h1 = self.stage1(x.flatten(1))
        h2 = self.stage2(h1)
        return [h1[:, :, None, None], h2[:, :, None, None]]  # (B, 16, 1, 1) each

    def forward_head(self, features: Tensor) -> Tensor:
        return self.head(features)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.feature_list(x)[-1].flatten(1))


def make_toy(seed: int = 0, n_per_class: int = 60):
    """(model, (x_train, y_train), (x_val, y_val), (x_test, y_test), x_out); inputs (N, 1, 4, 4)."""
    g = torch.Generator().manual_seed(seed)
    centers = 3.0 * torch.randn(NUM_CLASSES, DIM, generator=g)
    torch.manual_seed(seed)
    model = ToyNet(centers).eval()

    def sample(n):
        y = torch.arange(n) % NUM_CLASSES
        x = centers[y] + 0.5 * torch.randn(n, DIM, generator=g)
        return x.view(n, 1, 4, 4), y

    # out-distribution: small noise around the origin, far from every class cluster (low-confidence logits)
    x_out = (0.3 * torch.randn(n_per_class * NUM_CLASSES, DIM, generator=g)).view(-1, 1, 4, 4)
    n = n_per_class * NUM_CLASSES
    return model, sample(n), sample(n), sample(n), x_out


class ReluNet(nn.Module):
    """A small torchvision-like ReLU classifier: ``body`` -> non-negative features ``(B, 32)`` -> ``fc``."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(DIM, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
        self.fc = nn.Linear(32, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.body(x))


def make_relu_toy(seed: int = 0, n_per_class: int = 100):
    """A trained :class:`ReluNet` on 3 Gaussian classes: (model, (x_train, y_train), (x_test, y_test), x_out).

    Out-distribution: small noise around the origin, where a ReLU network's activations and logits are small.
    """
    g = torch.Generator().manual_seed(seed)
    centers = 3.0 * torch.randn(NUM_CLASSES, DIM, generator=g)

    def sample(n):
        y = torch.arange(n) % NUM_CLASSES
        return (centers[y] + 0.7 * torch.randn(n, DIM, generator=g)).view(n, 1, 4, 4), y

    n = n_per_class * NUM_CLASSES
    train, test = sample(n), sample(n)
    torch.manual_seed(seed)
    model = ReluNet()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(30):
        loss = nn.functional.cross_entropy(model(train[0]), train[1])
        opt.zero_grad()
        loss.backward()
        opt.step()
    x_out = (0.3 * torch.randn(n, DIM, generator=g)).view(n, 1, 4, 4)
    return model.eval(), train, test, x_out
