"""Distance heads: formulas, gradients, initialisation, invariances and numerical accuracy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.autograd import gradcheck
from torch.func import functional_call

import isomax
from isomax import DistanceHead, IsoMaxHead, IsoMaxPlusHead, make_head
from isomax.heads import euclidean_distances

F64 = torch.float64
HYPOTHESIS = settings(max_examples=50, deadline=None)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed: int, dtype=F64) -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=F64).to(dtype)


def direct_isomax(features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    return -(features[:, None] - prototypes[None]).norm(dim=2)


def direct_isomax_plus(features: torch.Tensor, prototypes: torch.Tensor, distance_scale) -> torch.Tensor:
    f = features / features.norm(dim=1, keepdim=True)
    p = prototypes / prototypes.norm(dim=1, keepdim=True)
    return -abs(distance_scale) * (f[:, None] - p[None]).norm(dim=2)


def _isomax_head(num_features: int, num_classes: int, seed: int, **kwargs) -> IsoMaxHead:
    head = IsoMaxHead(num_features, num_classes, **kwargs).double()
    with torch.no_grad():
        head.prototypes.copy_(_randn(num_classes, num_features, seed=seed))
    return head


def _isomax_plus_head(
    num_features: int, num_classes: int, seed: int, distance_scale: float = -1.7, **kwargs
) -> IsoMaxPlusHead:
    head = IsoMaxPlusHead(num_features, num_classes, **kwargs).double()
    with torch.no_grad():
        head.prototypes.copy_(_randn(num_classes, num_features, seed=seed))
        head.distance_scale.fill_(distance_scale)  # negative on purpose: |d_s| is used
    return head


# ---------------------------------------------------------------------------------------------
# Formulas
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "batch, num_features, num_classes, seed",
    [
        pytest.param(1, 1, 1, 0, id="1x1x1"),
        pytest.param(7, 5, 3, 1, id="7x5x3"),
        pytest.param(64, 342, 10, 2, id="64x342x10"),
        pytest.param(33, 16, 100, 3, id="33x16x100"),
    ],
)
def test_isomax_head_equals_direct_formula(batch, num_features, num_classes, seed):
    head = _isomax_head(num_features, num_classes, seed)
    features = _randn(batch, num_features, seed=seed + 100) * 3.0
    expected = direct_isomax(features, head.prototypes.detach())
    torch.testing.assert_close(head(features), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(head.distances(features), -expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "batch, num_features, num_classes, seed",
    [
        pytest.param(1, 2, 1, 0, id="1x2x1"),
        pytest.param(7, 5, 3, 1, id="7x5x3"),
        pytest.param(64, 342, 10, 2, id="64x342x10"),
        pytest.param(33, 16, 100, 3, id="33x16x100"),
    ],
)
def test_isomax_plus_head_equals_direct_formula(batch, num_features, num_classes, seed):
    head = _isomax_plus_head(num_features, num_classes, seed, distance_scale=-1.7)
    features = _randn(batch, num_features, seed=seed + 100) * 5.0
    expected = direct_isomax_plus(features, head.prototypes.detach(), -1.7)
    torch.testing.assert_close(head(features), expected, rtol=1e-12, atol=1e-12)
    # distances() leaves out |d_s|
    torch.testing.assert_close(head.distances(features), -expected / 1.7, rtol=1e-12, atol=1e-12)


def test_isomax_plus_matches_reference_code_float32():
    # The reference: |d_s| * F.pairwise_distance(F.normalize(f)[..., None], F.normalize(p).t()[None]).
    torch.manual_seed(0)
    head = IsoMaxPlusHead(32, 10)
    features = torch.randn(16, 32)
    ref = -head.distance_scale.abs() * torch.cdist(F.normalize(features), F.normalize(head.prototypes))
    torch.testing.assert_close(head(features), ref, rtol=1e-5, atol=1e-5)


def test_euclidean_distances_function_float32():
    f, p = _randn(20, 8, seed=1, dtype=torch.float32), _randn(6, 8, seed=2, dtype=torch.float32)
    torch.testing.assert_close(
        euclidean_distances(f, p), torch.cdist(f.double(), p.double()).float(), rtol=1e-6, atol=1e-6
    )


# ---------------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "temperature", [pytest.param(1.0, id="T1"), pytest.param(0.5, id="T0.5"), pytest.param(3.0, id="T3")]
)
@pytest.mark.parametrize("kind", ["isomax", "isomaxplus"])
def test_gradcheck_wrt_features_prototypes_and_distance_scale(kind, temperature):
    if kind == "isomax":
        head = _isomax_head(6, 4, seed=0, temperature=temperature)
    else:
        head = _isomax_plus_head(6, 4, seed=0, distance_scale=0.8, temperature=temperature)
    features = (_randn(5, 6, seed=1) * 2.0).requires_grad_()
    prototypes = head.prototypes.detach().clone().requires_grad_()
    if kind == "isomax":

        def fn(f, p):
            return functional_call(head, {"prototypes": p}, (f,))

        inputs = (features, prototypes)
    else:
        distance_scale = head.distance_scale.detach().clone().requires_grad_()

        def fn(f, p, s):
            return functional_call(head, {"prototypes": p, "distance_scale": s}, (f,))

        inputs = (features, prototypes, distance_scale)
    assert gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)
    # the function checked is the head's formula, temperature included
    if kind == "isomax":
        expected = direct_isomax(features, prototypes) / temperature
    else:
        expected = direct_isomax_plus(features, prototypes, distance_scale) / temperature
    torch.testing.assert_close(fn(*inputs), expected, rtol=1e-12, atol=1e-12)


def test_gradients_match_autograd_of_direct_formula():
    head = _isomax_plus_head(9, 5, seed=3, distance_scale=1.3)
    features = (_randn(8, 9, seed=4)).requires_grad_()
    weights = _randn(8, 5, seed=5)
    (head(features) * weights).sum().backward()
    got = (features.grad, head.prototypes.grad, head.distance_scale.grad)

    f = features.detach().clone().requires_grad_()
    p = head.prototypes.detach().clone().requires_grad_()
    s = head.distance_scale.detach().clone().requires_grad_()
    (direct_isomax_plus(f, p, s) * weights).sum().backward()
    for a, b in zip(got, (f.grad, p.grad, s.grad)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_double_backward_fails_loudly_instead_of_silently_wrong():
    head = _isomax_head(4, 3, seed=0)
    features = _randn(5, 4, seed=1).requires_grad_()
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(head(features).sum(), features, create_graph=True)


# ---------------------------------------------------------------------------------------------
# Initialisation, temperature, state_dict
# ---------------------------------------------------------------------------------------------
def test_isomax_init_zero_prototypes():
    head = IsoMaxHead(50, 7)
    assert head.prototypes.shape == (7, 50)
    assert torch.count_nonzero(head.prototypes) == 0
    assert head.distance_scale is None
    assert float(head.temperature) == 1.0


def test_isomax_plus_init_normal_prototypes_and_unit_distance_scale():
    torch.manual_seed(0)
    head = IsoMaxPlusHead(1000, 100)
    assert head.prototypes.shape == (100, 1000)
    assert abs(float(head.prototypes.detach().mean())) < 0.01
    assert abs(float(head.prototypes.detach().std()) - 1.0) < 0.01
    assert isinstance(head.distance_scale, nn.Parameter)
    assert float(head.distance_scale.detach()) == 1.0
    assert {name for name, _ in head.named_parameters()} == {"prototypes", "distance_scale"}


@pytest.mark.parametrize("kind", ["isomax", "isomaxplus"])
def test_temperature_is_a_buffer_that_divides_logits_and_loads_back(kind):
    torch.manual_seed(0)
    head = make_head(kind, 12, 5).double()
    if kind == "isomax":
        with torch.no_grad():
            head.prototypes.normal_()
    features = _randn(6, 12, seed=1)
    base = head(features)

    assert "temperature" in dict(head.named_buffers())
    assert "temperature" not in dict(head.named_parameters())
    head.temperature.fill_(2.5)
    torch.testing.assert_close(head(features), base / 2.5, rtol=1e-12, atol=1e-12)

    state = head.state_dict()
    assert float(state["temperature"]) == 2.5
    fresh = make_head(kind, 12, 5).double()
    fresh.load_state_dict(state)
    assert float(fresh.temperature) == 2.5
    torch.testing.assert_close(fresh(features), base / 2.5, rtol=1e-12, atol=1e-12)


def test_temperature_constructor_argument():
    head = _isomax_head(4, 3, seed=0, temperature=4.0)
    features = _randn(2, 4, seed=1)
    torch.testing.assert_close(
        head(features), direct_isomax(features, head.prototypes.detach()) / 4.0, rtol=1e-12, atol=1e-12
    )


def test_make_head_kinds_and_aliases():
    assert type(make_head("softmax", 4, 3)) is nn.Linear
    assert type(make_head("isomax", 4, 3)) is IsoMaxHead
    for alias in ("isomaxplus", "isomax+", "IsoMax_Plus", "isomax-plus"):
        assert type(make_head(alias, 4, 3)) is IsoMaxPlusHead
    assert make_head("isomax", 4, 3, temperature=2.0).temperature.item() == 2.0


# ---------------------------------------------------------------------------------------------
# Properties (hypothesis)
# ---------------------------------------------------------------------------------------------
@HYPOTHESIS
@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 8),
    num_features=st.integers(1, 12),
    num_classes=st.integers(1, 6),
    shift=st.floats(-10.0, 10.0),
)
def test_property_isomax_invariant_to_rotation_and_translation(seed, batch, num_features, num_classes, shift):
    g = _gen(seed)
    q, _ = torch.linalg.qr(torch.randn(num_features, num_features, generator=g, dtype=F64))
    t = shift * torch.randn(num_features, generator=g, dtype=F64)
    features = torch.randn(batch, num_features, generator=g, dtype=F64)
    prototypes = torch.randn(num_classes, num_features, generator=g, dtype=F64)
    head = IsoMaxHead(num_features, num_classes).double()
    with torch.no_grad():
        head.prototypes.copy_(prototypes)
    before = head(features)
    with torch.no_grad():
        head.prototypes.copy_(prototypes @ q.T + t)
    after = head(features @ q.T + t)
    torch.testing.assert_close(after, before, rtol=1e-9, atol=1e-9)


@HYPOTHESIS
@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 8),
    num_features=st.integers(2, 12),
    num_classes=st.integers(1, 6),
    log_factor=st.floats(-6.0, 6.0),
)
def test_property_isomax_plus_invariant_to_feature_rescaling(seed, batch, num_features, num_classes, log_factor):
    head = _isomax_plus_head(num_features, num_classes, seed=seed, distance_scale=1.0)
    features = _randn(batch, num_features, seed=seed + 1)
    factors = 10.0 ** (log_factor * torch.rand(batch, 1, generator=_gen(seed + 2), dtype=F64))  # per row
    torch.testing.assert_close(head(features * factors), head(features), rtol=1e-9, atol=1e-9)


@HYPOTHESIS
@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 8),
    num_features=st.integers(1, 20),
    num_classes=st.integers(1, 10),
    scale=st.floats(1e-3, 1e3),
    dtype=st.sampled_from([torch.float32, F64]),
)
def test_property_isomax_logits_all_equal_at_init(seed, batch, num_features, num_classes, scale, dtype):
    head = IsoMaxHead(num_features, num_classes).to(dtype)
    features = _randn(batch, num_features, seed=seed, dtype=dtype) * scale
    logits = head(features)
    assert torch.equal(logits, logits[:, :1].expand_as(logits))
    rtol = 1e-12 if dtype == F64 else 1e-5
    torch.testing.assert_close(logits[:, 0], -features.norm(dim=1), rtol=rtol, atol=0.0)


# ---------------------------------------------------------------------------------------------
# Accuracy near zero, zero vectors, mixed precision
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dtype, rtol", [pytest.param(torch.float32, 1e-3, id="float32"), pytest.param(F64, 1e-9, id="float64")]
)
@pytest.mark.parametrize("magnitude", [pytest.param(1.0, id="unit"), pytest.param(100.0, id="large")])
def test_small_distances_keep_relative_precision(dtype, rtol, magnitude):
    prototypes = (_randn(10, 64, seed=0) * magnitude).to(dtype)
    features = (prototypes.double() + 1e-6 * _randn(10, 64, seed=1)).to(dtype)
    head = IsoMaxHead(64, 10).to(dtype)
    with torch.no_grad():
        head.prototypes.copy_(prototypes)
    got = -head(features).detach().double()
    expected = torch.cdist(features.double(), prototypes.double())  # direct difference in float64
    diag = torch.arange(10)
    rel = (got[diag, diag] - expected[diag, diag]).abs() / expected[diag, diag]
    assert float(rel.max()) < rtol
    torch.testing.assert_close(got, expected, rtol=rtol, atol=0.0)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_distance_to_itself_is_exactly_zero_with_zero_gradient(dtype):
    prototypes = _randn(4, 16, seed=0, dtype=dtype) * 10
    head = IsoMaxHead(16, 4).to(dtype)
    with torch.no_grad():
        head.prototypes.copy_(prototypes)
    features = prototypes.clone().requires_grad_()
    logits = head(features)
    assert torch.all(logits.diagonal() == 0)
    logits.diagonal().sum().backward()
    assert torch.isfinite(features.grad).all() and torch.isfinite(head.prototypes.grad).all()
    assert torch.count_nonzero(features.grad) == 0
    assert torch.count_nonzero(head.prototypes.grad) == 0


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_isomax_plus_zero_feature_vector(dtype):
    torch.manual_seed(0)
    head = IsoMaxPlusHead(8, 5).to(dtype)
    features = torch.zeros(3, 8, dtype=dtype)
    features[1] = torch.randn(8, dtype=dtype)
    features.requires_grad_()
    logits = head(features)
    ref = -torch.cdist(F.normalize(features.detach()), F.normalize(head.prototypes.detach()))
    torch.testing.assert_close(logits.detach(), ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(logits[0].detach(), torch.full((5,), -1.0, dtype=dtype), rtol=1e-6, atol=1e-6)
    logits.sum().backward()
    assert torch.isfinite(features.grad).all()
    assert torch.isfinite(head.prototypes.grad).all() and torch.isfinite(head.distance_scale.grad).all()


@pytest.mark.parametrize("kind", ["isomax", "isomaxplus"])
@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16])
def test_autocast_bfloat16_gives_float32_logits(kind, input_dtype):
    torch.manual_seed(0)
    head = make_head(kind, 16, 4)
    if kind == "isomax":
        with torch.no_grad():
            head.prototypes.normal_()
    features = torch.randn(8, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(features.to(input_dtype))
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, head(features.to(input_dtype).float()), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# DistanceHead: other distances, custom callables, h
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, reference",
    [
        pytest.param("euclidean", lambda f, p: torch.cdist(f, p), id="euclidean"),
        pytest.param("squared_euclidean", lambda f, p: torch.cdist(f, p) ** 2, id="squared_euclidean"),
        pytest.param("manhattan", lambda f, p: (f[:, None] - p[None]).abs().sum(2), id="manhattan"),
        pytest.param("cosine", lambda f, p: 1 - F.cosine_similarity(f[:, None], p[None], dim=2), id="cosine"),
    ],
)
def test_distance_head_named_distances(name, reference):
    head = DistanceHead(6, 4, name, init="normal").double()
    features = _randn(5, 6, seed=1)
    torch.testing.assert_close(head(features), -reference(features, head.prototypes.detach()), rtol=1e-10, atol=1e-10)


def test_distance_head_custom_distance_and_h():
    def chebyshev(f, p):
        return (f[:, None] - p[None]).abs().amax(2)

    head = DistanceHead(6, 4, chebyshev, h=torch.log1p, init="normal", distance_scale=True, temperature=2.0).double()
    with torch.no_grad():
        head.distance_scale.fill_(-3.0)
    features = _randn(5, 6, seed=1)
    expected = -torch.log1p(3.0 * chebyshev(features, head.prototypes.detach())) / 2.0
    torch.testing.assert_close(head(features), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        head.distances(features), chebyshev(features, head.prototypes.detach()), rtol=1e-12, atol=1e-12
    )


def test_distance_head_euclidean_with_h():
    head = DistanceHead(6, 4, "euclidean", h=torch.square, init="normal").double()
    features = _randn(5, 6, seed=1)
    expected = -(torch.cdist(features, head.prototypes.detach()) ** 2)
    torch.testing.assert_close(head(features), expected, rtol=1e-10, atol=1e-10)


def test_distance_head_normalize_option():
    head = DistanceHead(6, 4, "euclidean", normalize=True, init="normal").double()
    features = _randn(5, 6, seed=1) * 4
    torch.testing.assert_close(
        head(features), direct_isomax_plus(features, head.prototypes.detach(), 1.0), rtol=1e-12, atol=1e-12
    )


def test_distance_head_unknown_distance_name():
    with pytest.raises(ValueError, match="distance"):
        DistanceHead(4, 3, "mahalanobis")
    with pytest.raises(ValueError, match="distance"):
        DistanceHead(4, 3, 42)


def test_heads_exported_at_top_level():
    assert isomax.IsoMaxHead is IsoMaxHead and isomax.IsoMaxPlusHead is IsoMaxPlusHead
    assert isomax.DistanceHead is DistanceHead and isomax.make_head is make_head
    assert set(isomax.DISTANCES) >= {"euclidean", "squared_euclidean", "cosine", "manhattan"}


def test_gradcheck_temperature_and_negative_distance_scale():
    """Temperature can be calibrated by gradient (as a tensor requiring grad); d_s < 0 uses |d_s|."""
    torch.manual_seed(3)
    head = isomax.IsoMaxPlusHead(6, 4).double()
    x = torch.randn(3, 6, dtype=torch.double, requires_grad=True)
    params = (
        head.prototypes.detach().clone().requires_grad_(),
        torch.tensor([-1.3], dtype=torch.double, requires_grad=True),
        torch.tensor(1.7, dtype=torch.double, requires_grad=True),
    )

    def fn(x, p, s, t):
        return torch.func.functional_call(head, {"prototypes": p, "distance_scale": s, "temperature": t}, (x,))

    assert torch.autograd.gradcheck(fn, (x, *params))
