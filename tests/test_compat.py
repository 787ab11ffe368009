"""Migration aliases with the class names and signatures of the papers' reference code."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import isomax
from isomax import (
    IsoMaxHead,
    IsoMaxLoss,
    IsoMaxLossFirstPart,
    IsoMaxLossSecondPart,
    IsoMaxPlusHead,
    IsoMaxPlusLossFirstPart,
    IsoMaxPlusLossSecondPart,
)

F64 = torch.float64


def papers_formula(logits, targets, entropic_scale):
    probabilities = torch.softmax(entropic_scale * logits, dim=1)
    return -torch.log(probabilities[torch.arange(logits.shape[0]), targets]).mean()


@pytest.mark.parametrize(
    "first_cls, head_cls",
    [
        pytest.param(IsoMaxLossFirstPart, IsoMaxHead, id="isomax"),
        pytest.param(IsoMaxPlusLossFirstPart, IsoMaxPlusHead, id="isomaxplus"),
    ],
)
def test_first_part_reference_signature(first_cls, head_cls):
    positional = first_cls(8, 5, 2.0)  # (num_features, num_classes, temperature)
    keywords = first_cls(num_features=8, num_classes=5, temperature=2.0)
    default = first_cls(8, 5)
    for head in (positional, keywords):
        assert isinstance(head, head_cls)
        assert (head.num_features, head.num_classes, float(head.temperature)) == (8, 5, 2.0)
    assert float(default.temperature) == 1.0
    assert default.prototypes.shape == (5, 8)


def test_isomax_first_part_forward():
    torch.manual_seed(0)
    head = IsoMaxLossFirstPart(6, 4, temperature=2.0).double()
    with torch.no_grad():
        head.prototypes.normal_()
    features = torch.randn(3, 6, dtype=F64)
    expected = -(features[:, None] - head.prototypes.detach()[None]).norm(dim=2) / 2.0
    torch.testing.assert_close(head(features), expected, rtol=1e-12, atol=1e-12)


def test_isomax_plus_first_part_forward_matches_reference_code():
    torch.manual_seed(0)
    head = IsoMaxPlusLossFirstPart(6, 4, temperature=2.0).double()
    features = torch.randn(3, 6, dtype=F64)
    # Reference: |d_s| * F.pairwise_distance(F.normalize(f).unsqueeze(2), F.normalize(p).t().unsqueeze(0)) / T,
    # pairwise_distance reducing over the feature dimension (dim 1) and adding eps=1e-6 to the
    # difference (hence the tolerance); written out because newer PyTorch reduces over the last dim.
    diff = F.normalize(features).unsqueeze(2) - F.normalize(head.prototypes.detach()).t().unsqueeze(0) + 1e-6
    ref = -head.distance_scale.detach().abs() * diff.norm(dim=1) / 2.0
    torch.testing.assert_close(head(features), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("second_cls", [IsoMaxLossSecondPart, IsoMaxPlusLossSecondPart])
def test_second_part_reference_signature_and_forward(second_cls):
    g = torch.Generator().manual_seed(1)
    logits = -torch.rand(8, 5, generator=g, dtype=F64) * 2
    targets = torch.randint(0, 5, (8,), generator=g)
    for criterion, scale in ((second_cls(), 10.0), (second_cls(3.0), 3.0), (second_cls(entropic_scale=3.0), 3.0)):
        assert isinstance(criterion, IsoMaxLoss) and criterion.entropic_scale == scale
        torch.testing.assert_close(
            criterion(logits, targets), papers_formula(logits, targets, scale), rtol=1e-12, atol=1e-12
        )


def test_second_part_accepts_head_as_first_argument():
    # Some reference versions take the classifier as the first argument: IsoMaxPlusLossSecondPart(model.classifier).
    head = IsoMaxPlusLossFirstPart(6, 4)
    criterion = IsoMaxPlusLossSecondPart(head)
    assert criterion.entropic_scale == 10.0


@pytest.mark.parametrize("second_cls", [IsoMaxLossSecondPart, IsoMaxPlusLossSecondPart])
def test_second_part_debug_returns_three_tuple(second_cls):
    logits = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.25, -4.0]], requires_grad=True)
    targets = torch.tensor([2, 0])
    out = second_cls()(logits, targets, debug=True)
    assert isinstance(out, tuple) and len(out) == 3
    loss, intra, inter = out
    torch.testing.assert_close(loss, second_cls()(logits, targets))
    torch.testing.assert_close(intra, torch.tensor([-3.0, -0.5]))
    torch.testing.assert_close(inter, torch.tensor([-1.0, -2.0, -0.25, -4.0]))
    loss.backward()  # the loss keeps its graph
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_first_and_second_part_train_together():
    torch.manual_seed(0)
    head, criterion = IsoMaxPlusLossFirstPart(10, 3), IsoMaxPlusLossSecondPart()
    features, targets = torch.randn(12, 10), torch.randint(0, 3, (12,))
    optimizer = torch.optim.SGD(head.parameters(), lr=0.1)
    first = criterion(head(features), targets).item()
    for _ in range(20):
        optimizer.zero_grad()
        criterion(head(features), targets).backward()
        optimizer.step()
    assert criterion(head(features), targets).item() < first


def test_compat_names_exported():
    for name in ("IsoMaxLossFirstPart", "IsoMaxLossSecondPart", "IsoMaxPlusLossFirstPart", "IsoMaxPlusLossSecondPart"):
        assert name in isomax.__all__ and hasattr(isomax, name)


def test_reference_checkpoint_loads_strictly():
    """A state_dict saved by the papers' IsoMaxPlusLossFirstPart (no temperature buffer) loads with strict=True."""
    import torch

    from isomax import IsoMaxPlusLossFirstPart

    reference_state = {"prototypes": torch.randn(10, 16), "distance_scale": torch.tensor([2.5])}
    head = IsoMaxPlusLossFirstPart(16, 10)
    head.load_state_dict(reference_state, strict=True)
    assert torch.equal(head.prototypes, reference_state["prototypes"])
    assert head.distance_scale.shape == (1,) and float(head.distance_scale.detach()) == 2.5
    assert float(head.temperature) == 1.0
