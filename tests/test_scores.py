"""OOD scores: direct formulas, stability and direction (higher = more in-distribution)."""

from __future__ import annotations

import math

import pytest
import torch

from isomax import IsoMaxPlusHead
from isomax.scores import (
    SCORES,
    compute_scores,
    energy_score,
    entropic_score,
    max_logit,
    max_probability,
    min_distance_score,
)

F64 = torch.float64


def _logits(batch: int, num_classes: int, seed: int, dtype=F64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (3 * torch.randn(batch, num_classes, generator=g, dtype=F64)).to(dtype)


def direct_entropic_f64(logits: torch.Tensor) -> torch.Tensor:
    """sum_j p_j log p_j in float64, with 0 log 0 = 0, written as a loop."""
    out = []
    for row in logits.double():
        p = torch.exp(row - row.max())
        p = p / p.sum()
        total = 0.0
        for pj in p.tolist():
            if pj > 0.0:
                total += pj * math.log(pj)
        out.append(total)
    return torch.tensor(out, dtype=F64)


_CASES = [
    pytest.param(1, 1, 0, id="1x1"),
    pytest.param(5, 3, 1, id="5x3"),
    pytest.param(64, 10, 2, id="64x10"),
    pytest.param(16, 100, 3, id="16x100"),
]


@pytest.mark.parametrize("batch, num_classes, seed", _CASES)
def test_scores_equal_direct_formulas(batch, num_classes, seed):
    z = _logits(batch, num_classes, seed)
    p = torch.exp(z) / torch.exp(z).sum(dim=1, keepdim=True)
    torch.testing.assert_close(max_probability(z), p.max(dim=1).values, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(entropic_score(z), (p * torch.log(p)).sum(dim=1), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(entropic_score(z), direct_entropic_f64(z), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(energy_score(z), torch.log(torch.exp(z).sum(dim=1)), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        energy_score(z, temperature=2.0), 2.0 * torch.log(torch.exp(z / 2.0).sum(dim=1)), rtol=1e-12, atol=1e-12
    )
    torch.testing.assert_close(max_logit(z), z.max(dim=1).values, rtol=0, atol=0)
    torch.testing.assert_close(min_distance_score(z), z.max(dim=1).values, rtol=0, atol=0)
    torch.testing.assert_close(min_distance_score(z, 4.0), z.max(dim=1).values / 4.0, rtol=1e-15, atol=0)
    for score in SCORES.values():
        assert score(z).shape == (batch,)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize(
    "row",
    [
        pytest.param([0.0, -1e4], id="two-classes"),
        pytest.param([0.0, -1e4, -1.0, -2.0], id="mixed"),
        pytest.param([5.0, -800.0, -800.0, 4.0], id="exp-underflows-float64"),
        pytest.param([3e38, -3e38, 0.0], id="difference-overflows-float32"),
    ],
)
def test_entropic_score_finite_when_probabilities_underflow(row, dtype):
    z = torch.tensor([row], dtype=dtype)
    got = entropic_score(z)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(
        got.double(),
        direct_entropic_f64(z),
        rtol=1e-5 if dtype == torch.float32 else 1e-12,
        atol=1e-6 if dtype == torch.float32 else 1e-14,
    )


@pytest.mark.parametrize("num_classes", [1, 2, 10, 1000])
def test_entropic_score_of_uniform_logits_is_minus_log_c(num_classes):
    z = torch.full((3, num_classes), -2.5, dtype=F64)
    torch.testing.assert_close(
        entropic_score(z), torch.full((3,), -math.log(num_classes), dtype=F64), rtol=1e-12, atol=1e-12
    )


def test_min_distance_score_of_isomax_plus_logits():
    torch.manual_seed(0)
    head = IsoMaxPlusHead(20, 7).double()
    with torch.no_grad():
        head.distance_scale.fill_(-2.5)  # |d_s| is what scales the logits
    features = torch.randn(9, 20, dtype=F64)
    logits = head(features)
    distances = torch.cdist(
        torch.nn.functional.normalize(features), torch.nn.functional.normalize(head.prototypes.detach())
    )
    expected = -distances.min(dim=1).values
    torch.testing.assert_close(min_distance_score(logits, head.distance_scale), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(min_distance_score(logits, 2.5), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(min_distance_score(logits), 2.5 * expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["mps", "es", "mds", "energy", "max_logit"])
def test_direction_confident_row_scores_higher_than_flat_row(name):
    z = torch.tensor([[-0.1, -5.0, -5.0, -5.0], [-2.0, -2.0, -2.0, -2.0]], dtype=F64)
    s = SCORES[name](z)
    assert s[0] > s[1]


def test_direction_isomax_plus_feature_on_prototype_scores_higher():
    torch.manual_seed(1)
    head = IsoMaxPlusHead(16, 5)
    on_prototype = head.prototypes.detach()[2:3] * 3.0
    between = head.prototypes.detach()[:5].mean(dim=0, keepdim=True)
    logits = head(torch.cat([on_prototype, between]))
    for name in ("mps", "es", "mds", "max_logit"):
        s = SCORES[name](logits)
        assert s[0] > s[1], name


def test_compute_scores():
    z = _logits(6, 4, seed=4)
    out = compute_scores(z)
    assert set(out) == set(SCORES)
    for name, value in out.items():
        torch.testing.assert_close(value, SCORES[name](z), rtol=0, atol=0)
    assert set(compute_scores(z, ["es", "mps"])) == {"es", "mps"}
    with pytest.raises(ValueError, match="score names"):
        compute_scores(z, ["es", "odin"])


def test_scores_keep_dtype_and_float32_accuracy():
    z = _logits(32, 10, seed=5, dtype=torch.float32)
    for name, score in SCORES.items():
        got = score(z)
        assert got.dtype == torch.float32, name
        torch.testing.assert_close(got.double(), score(z.double()), rtol=1e-5, atol=1e-5)
