"""IsoMaxLoss / SoftMaxLoss against the papers' "probability first, logarithm second" formula."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck

import isomax
from isomax import IsoMaxHead, IsoMaxLoss, IsoMaxPlusHead, SoftMaxLoss, make_loss
from isomax.losses import reference_isomax_loss

F64 = torch.float64


def papers_formula(
    logits: torch.Tensor, targets: torch.Tensor, entropic_scale: float, reduction: str = "mean"
) -> torch.Tensor:
    """Written out as in the reference code: softmax first, -log of the target probability second."""
    probabilities = torch.softmax(entropic_scale * logits, dim=1)
    per_sample = -torch.log(probabilities[torch.arange(logits.shape[0]), targets])
    return {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}[reduction]


def logsumexp_formula_f64(logits: torch.Tensor, targets: torch.Tensor, entropic_scale: float) -> torch.Tensor:
    """E_s (max z - z_y) + log sum exp(E_s (z - max z)), per sample, in float64."""
    z = logits.double()
    m = z.amax(dim=1)
    z_y = z[torch.arange(z.shape[0]), targets]
    return entropic_scale * (m - z_y) + torch.log(torch.exp(entropic_scale * (z - m[:, None])).sum(dim=1))


def _logits(batch: int, num_classes: int, seed: int, dtype=F64, spread: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # Negative distances, as a distance head produces.
    return (-spread * torch.rand(batch, num_classes, generator=g, dtype=F64)).to(dtype)


def _targets(batch: int, num_classes: int, seed: int) -> torch.Tensor:
    return torch.randint(0, num_classes, (batch,), generator=torch.Generator().manual_seed(seed + 1))


_NORMAL_RANGE = [
    pytest.param(1, 1, 10.0, 1.0, 0, id="1x1-Es10"),
    pytest.param(8, 10, 10.0, 2.0, 1, id="8x10-Es10"),
    pytest.param(128, 100, 10.0, 1.5, 2, id="128x100-Es10"),
    pytest.param(32, 10, 1.0, 5.0, 3, id="32x10-Es1"),
    pytest.param(32, 10, 3.0, 3.0, 4, id="32x10-Es3"),
]


@pytest.mark.parametrize("batch, num_classes, entropic_scale, spread, seed", _NORMAL_RANGE)
def test_equals_papers_formula_float64(batch, num_classes, entropic_scale, spread, seed):
    logits, targets = _logits(batch, num_classes, seed, spread=spread), _targets(batch, num_classes, seed)
    got = IsoMaxLoss(entropic_scale)(logits, targets)
    assert got.dtype == F64
    torch.testing.assert_close(got, papers_formula(logits, targets, entropic_scale), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got, reference_isomax_loss(logits, targets, entropic_scale), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch, num_classes, entropic_scale, spread, seed", _NORMAL_RANGE)
def test_equals_papers_formula_float32(batch, num_classes, entropic_scale, spread, seed):
    logits, targets = (
        _logits(batch, num_classes, seed, dtype=torch.float32, spread=spread),
        _targets(batch, num_classes, seed),
    )
    got = IsoMaxLoss(entropic_scale)(logits, targets)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, papers_formula(logits, targets, entropic_scale), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_finite_where_the_reference_underflows(dtype):
    # Target logit 100 below the max: exp(-10 * 100) underflows even in float64.
    logits = torch.tensor(
        [[0.0, -100.0, -3.0], [-1.0, -0.5, -101.0], [-0.2, -0.1, -0.3]], dtype=dtype, requires_grad=True
    )
    targets = torch.tensor([1, 2, 0])
    reference = papers_formula(logits.detach(), targets, 10.0, "none")
    assert torch.isinf(reference[:2]).all()  # the reference fails here

    got = IsoMaxLoss(10.0, reduction="none")(logits, targets)
    assert torch.isfinite(got).all()
    expected = logsumexp_formula_f64(logits.detach(), targets, 10.0)
    torch.testing.assert_close(got.double(), expected, rtol=1e-6 if dtype == torch.float32 else 1e-12, atol=0.0)
    assert float(got[0].detach()) == pytest.approx(1000.0, rel=1e-6)

    got.sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_gradients_finite_and_match_formula():
    logits = _logits(16, 10, seed=7, spread=2.0).requires_grad_()
    targets = _targets(16, 10, seed=7)
    IsoMaxLoss()(logits, targets).backward()
    assert torch.isfinite(logits.grad).all()
    ref_logits = logits.detach().clone().requires_grad_()
    papers_formula(ref_logits, targets, 10.0).backward()
    torch.testing.assert_close(logits.grad, ref_logits.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_reductions(reduction):
    logits, targets = _logits(12, 5, seed=3, spread=2.0), _targets(12, 5, seed=3)
    got = IsoMaxLoss(10.0, reduction=reduction)(logits, targets)
    expected = papers_formula(logits, targets, 10.0, reduction)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_reductions_are_consistent():
    logits, targets = _logits(12, 5, seed=4, spread=2.0), _targets(12, 5, seed=4)
    per_sample = IsoMaxLoss(reduction="none")(logits, targets)
    torch.testing.assert_close(IsoMaxLoss(reduction="sum")(logits, targets), per_sample.sum(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(IsoMaxLoss(reduction="mean")(logits, targets), per_sample.mean(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("entropic_scale", [1.0, 10.0])
def test_gradcheck_float64(entropic_scale):
    logits = _logits(6, 4, seed=5, spread=1.0).requires_grad_()
    targets = _targets(6, 4, seed=5)
    assert gradcheck(lambda z: IsoMaxLoss(entropic_scale)(z, targets), (logits,), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("head_cls", [IsoMaxHead, IsoMaxPlusHead])
def test_gradcheck_through_head_and_loss(head_cls):
    torch.manual_seed(0)
    head = head_cls(5, 3).double()
    with torch.no_grad():
        head.prototypes.normal_()
    features = torch.randn(4, 5, dtype=F64, requires_grad=True)
    targets = torch.tensor([0, 2, 1, 2])
    assert gradcheck(lambda f: IsoMaxLoss()(head(f), targets), (features,), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_entropic_scale_multiplies_logits():
    logits, targets = _logits(10, 4, seed=6), _targets(10, 4, seed=6)
    torch.testing.assert_close(
        IsoMaxLoss(7.0)(logits, targets), nn.CrossEntropyLoss()(7.0 * logits, targets), rtol=1e-12, atol=1e-12
    )


def test_custom_g_replaces_entropic_scale():
    logits, targets = _logits(10, 4, seed=8), _targets(10, 4, seed=8)
    got = IsoMaxLoss(g=lambda z: 2.0 * z - z**2)(logits, targets)
    torch.testing.assert_close(got, nn.CrossEntropyLoss()(2.0 * logits - logits**2, targets), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_softmax_loss_equals_cross_entropy(reduction, dtype):
    g = torch.Generator().manual_seed(9)
    logits = (5 * torch.randn(20, 7, generator=g, dtype=F64)).to(dtype)
    targets = torch.randint(0, 7, (20,), generator=g)
    got = SoftMaxLoss(reduction)(logits, targets)
    torch.testing.assert_close(
        got, nn.CrossEntropyLoss(reduction=reduction)(logits, targets), rtol=1e-12 if dtype == F64 else 1e-6, atol=1e-7
    )


def test_integer_target_dtypes_accepted():
    logits = _logits(6, 4, seed=10)
    targets = _targets(6, 4, seed=10)
    expected = IsoMaxLoss()(logits, targets)
    for dtype in (torch.int32, torch.int16, torch.uint8):
        torch.testing.assert_close(IsoMaxLoss()(logits, targets.to(dtype)), expected, rtol=0, atol=0)


def test_bfloat16_logits_give_float32_loss():
    logits, targets = _logits(8, 5, seed=11, dtype=torch.bfloat16), _targets(8, 5, seed=11)
    got = IsoMaxLoss()(logits, targets)
    assert got.dtype == torch.float32 and torch.isfinite(got)
    torch.testing.assert_close(got, papers_formula(logits.float(), targets, 10.0), rtol=1e-5, atol=1e-6)


def test_make_loss():
    assert type(make_loss("softmax")) is SoftMaxLoss
    for kind in ("isomax", "isomaxplus", "isomax+"):
        loss = make_loss(kind, entropic_scale=3.0)
        assert type(loss) is IsoMaxLoss and loss.entropic_scale == 3.0
    assert make_loss("isomax").entropic_scale == 10.0
    assert make_loss("isomax", reduction="sum").reduction == "sum"
    with pytest.raises(ValueError, match="loss/head name"):
        make_loss("arcface")


def test_losses_exported_at_top_level():
    assert isomax.IsoMaxLoss is IsoMaxLoss and isomax.SoftMaxLoss is SoftMaxLoss and isomax.make_loss is make_loss
    assert IsoMaxLoss().entropic_scale == 10.0 and IsoMaxLoss().reduction == "mean"
