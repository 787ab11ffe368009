"""Heads, loss and scores with the PyTorch toolchain: torch.compile, torch.export, ONNX, factory kwargs.

Also the precision the sync-free distance computation guarantees, the value-check policy, and the
nn.Linear / nn.CrossEntropyLoss habits of the heads and the loss.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import isomax
from isomax import DISTANCES, DistanceHead, IsoMaxHead, IsoMaxLoss, IsoMaxPlusHead, SoftMaxLoss, scores
from isomax._validation import value_checks_enabled
from isomax.heads import canonical_head_name, head_kind, make_head
from isomax.losses import LogitNormLoss, make_loss

F64 = torch.float64


def _heads():
    return [
        pytest.param(lambda: IsoMaxHead(16, 5), id="isomax"),
        pytest.param(lambda: IsoMaxPlusHead(16, 5), id="isomaxplus"),
        pytest.param(lambda: isomax.DisMaxHead(16, 5), id="dismax"),
        *[pytest.param(lambda d=d: DistanceHead(16, 5, d, init="normal"), id=f"distance-{d}") for d in DISTANCES],
    ]


def _explain(fn, *args):
    torch._dynamo.reset()
    result = torch._dynamo.explain(fn)(*args)
    return result.graph_break_count, [str(b.reason) for b in result.break_reasons]


# ---------------------------------------------------------------------------------------------
# torch.compile(fullgraph=True): no graph break
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", _heads())
def test_head_forward_has_no_graph_break(make):
    head = make()
    assert _explain(head, torch.randn(8, 16)) == (0, [])


@pytest.mark.parametrize("make", _heads())
def test_head_and_loss_forward_backward_compile_fullgraph_equal_eager(make):
    torch.manual_seed(0)
    head, loss = make(), IsoMaxLoss()
    features, targets = torch.randn(8, 16), torch.randint(0, 5, (8,))

    def step(f, y):
        return loss(head(f), y)

    assert _explain(step, features, targets) == (0, [])
    # fullgraph=True raises on any graph break; aot_eager traces the backward (hand-written one
    # included) through AOTAutograd, as inductor does, without the C++ compile time.
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    grads = []
    for fn in (step, compiled):
        head.zero_grad(set_to_none=True)
        f = features.clone().requires_grad_()
        value = fn(f, targets)
        value.backward()
        grads.append((value.detach(), f.grad, [p.grad for p in head.parameters()]))
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(scores.SCORES))
def test_every_score_has_no_graph_break(name):
    assert _explain(scores.SCORES[name], torch.randn(8, 5)) == (0, [])
    assert _explain(scores.compute_scores, torch.randn(8, 5)) == (0, [])


def test_min_distance_score_with_head_scale_has_no_graph_break():
    head = IsoMaxPlusHead(16, 5)
    assert _explain(lambda f: scores.min_distance_score(head(f), head.distance_scale), torch.randn(8, 16)) == (0, [])


@pytest.mark.slow
def test_inductor_compile_head_loss_and_scores_equal_eager():
    torch.manual_seed(0)
    head, loss = IsoMaxPlusHead(16, 5), IsoMaxLoss()
    features, targets = torch.randn(8, 16), torch.randint(0, 5, (8,))

    def step(f, y):
        logits = head(f)
        return loss(logits, y), scores.min_distance_score(logits), scores.entropic_score(logits)

    torch._dynamo.reset()
    compiled = torch.compile(step, fullgraph=True)  # inductor, C++ through the system compiler
    results = []
    for fn in (step, compiled):
        head.zero_grad(set_to_none=True)
        f = features.clone().requires_grad_()
        out = fn(f, targets)
        out[0].backward()
        results.append((tuple(o.detach() for o in out), f.grad, head.prototypes.grad, head.distance_scale.grad))
    torch.testing.assert_close(results[1], results[0], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# torch.export and ONNX (dynamo exporter, checked with onnxruntime)
# ---------------------------------------------------------------------------------------------
class _WithScores(nn.Module):
    """A small model ending in a head; returns the logits and every score."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(12, 16), nn.ReLU())
        self.head = head

    def forward(self, x):
        logits = self.head(self.body(x))
        return (logits,) + tuple(fn(logits) for fn in scores.SCORES.values())


@pytest.mark.parametrize("make", _heads() + [pytest.param(lambda: nn.Linear(16, 5), id="linear")])
def test_torch_export_with_dynamic_batch(make):
    torch.manual_seed(0)
    model = _WithScores(make()).eval()
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (torch.randn(4, 12),), dynamic_shapes=({0: batch},))
    for n in (1, 7):  # other batch sizes than the traced one
        x = torch.randn(n, 12)
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-6, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: IsoMaxHead(16, 5), id="isomax"),
        pytest.param(lambda: IsoMaxPlusHead(16, 5), id="isomaxplus"),
        pytest.param(lambda: isomax.DisMaxHead(16, 5), id="dismax"),
    ],
)
def test_onnx_dynamo_export_matches_eager_in_onnxruntime(make):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    model = _WithScores(make()).eval()
    with torch.no_grad():  # prototypes away from zero so that the IsoMax logits differ
        model.head.prototypes.normal_()
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model, (torch.randn(4, 12),), dynamo=True, dynamic_shapes=({0: batch},), verbose=False
        )
    session = ort.InferenceSession(program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = torch.randn(9, 12)
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    expected = model(x)
    assert len(got) == len(expected) == 1 + len(scores.SCORES)
    for name, g, e in zip(["logits", *scores.SCORES], got, expected):
        torch.testing.assert_close(torch.from_numpy(g), e.detach(), rtol=0.0, atol=1e-5, msg=name)


# ---------------------------------------------------------------------------------------------
# Precision without a host sync (against float64 cdist)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dtype, rtol", [pytest.param(torch.float32, 1e-5, id="float32"), pytest.param(F64, 1e-12, id="float64")]
)
@pytest.mark.parametrize("offset", [0.0, 1e-6, 1e-3])
def test_smallest_distance_has_full_relative_precision(dtype, rtol, offset):
    g = torch.Generator().manual_seed(0)
    prototypes = 30 * torch.randn(20, 64, generator=g)
    # rows 0-9: at (or near) prototype i; rows 10-19: between prototypes i and i+1
    near = prototypes[:10] + offset * torch.randn(10, 64, generator=g)
    between = 0.5 * (prototypes[:10] + prototypes[1:11]) + offset * torch.randn(10, 64, generator=g)
    features = torch.cat([near, between]).to(dtype)
    head = IsoMaxHead(64, 20, dtype=dtype)
    with torch.no_grad():
        head.prototypes.copy_(prototypes)
    got = -head(features).detach().double()
    expected = torch.cdist(features.double(), head.prototypes.detach().double())  # float64 reference
    smallest = expected.argmin(1, keepdim=True)
    g_small, e_small = got.gather(1, smallest), expected.gather(1, smallest)
    if offset == 0.0:
        assert torch.all(g_small[:10] == 0)  # a feature equal to a prototype: distance exactly 0
    torch.testing.assert_close(g_small, e_small, rtol=rtol, atol=0.0)
    # all other pairs: absolute error within eps-scaled |f| + |p|
    bound = (
        10 * torch.finfo(dtype).eps * (features.double().norm(dim=1, keepdim=True) + prototypes.double().norm(dim=1))
    )
    assert torch.all((got - expected).abs() <= bound)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_isomax_plus_tiny_features_normalise_as_f_normalize(dtype):
    torch.manual_seed(0)
    head = IsoMaxPlusHead(8, 5, dtype=dtype)
    direction = torch.randn(4, 8, dtype=dtype)
    direction = direction / direction.norm(dim=1, keepdim=True)
    features = direction * torch.tensor([[1e-13], [5e-13], [1e-12], [1e-11]], dtype=dtype)
    features = features.requires_grad_()
    logits = head(features)
    ref_f = F.normalize(features.double(), dim=1)
    expected = -torch.cdist(ref_f, F.normalize(head.prototypes.double(), dim=1))
    torch.testing.assert_close(logits.double(), expected, rtol=1e-5, atol=1e-6)
    # gradients as autograd of the direct formula
    features2 = features.detach().double().requires_grad_()
    ref = -torch.cdist(F.normalize(features2, dim=1), F.normalize(head.prototypes.detach().double(), dim=1))
    ref.sum().backward()
    logits.sum().backward()
    torch.testing.assert_close(features.grad.double() * 1e-12, features2.grad * 1e-12, rtol=1e-4, atol=1e-6)


def test_empty_batch_works_for_every_head():
    for head in (IsoMaxHead(8, 3), IsoMaxPlusHead(8, 3), DistanceHead(8, 3, "cosine")):
        x = torch.empty(0, 8, requires_grad=True)
        out = head(x)
        assert out.shape == (0, 3)
        out.sum().backward()
        assert x.grad.shape == (0, 8)


def test_single_class_head():
    head = IsoMaxHead(4, 1)
    with torch.no_grad():
        head.prototypes.fill_(1.0)
    x = torch.zeros(3, 4)
    torch.testing.assert_close(head(x), torch.full((3, 1), -2.0))


# ---------------------------------------------------------------------------------------------
# Value-check policy: clear errors in eager CPU, nothing while compiling
# ---------------------------------------------------------------------------------------------
def test_value_checks_run_in_eager_cpu_only():
    assert value_checks_enabled(torch.zeros(1))
    assert not value_checks_enabled(torch.zeros(1, device="meta"))  # stands for an accelerator

    seen = []

    def probe(x):
        seen.append(value_checks_enabled(x))
        return x + 1

    torch._dynamo.reset()
    torch.compile(probe, backend="eager", fullgraph=True)(torch.zeros(2))
    assert seen == [False]


def test_nan_features_raise_in_eager_but_not_while_compiled():
    head = IsoMaxPlusHead(4, 3)
    bad = torch.randn(2, 4)
    bad[0, 1] = float("nan")
    with pytest.raises(ValueError, match="`features`.*NaN"):
        head(bad)
    torch._dynamo.reset()
    out = torch.compile(head, backend="eager", fullgraph=True)(bad)
    assert torch.isnan(out[0]).all() and torch.isfinite(out[1]).all()
    assert torch.isnan(IsoMaxPlusHead(4, 3, validate_args=False)(bad)[0]).all()


def test_overflowing_distances_get_a_clear_error():
    head = IsoMaxHead(4, 3)
    with pytest.raises(ValueError, match="`features`.*overflow"):
        head(torch.full((2, 4), 1e30))
    head64 = IsoMaxHead(4, 3, dtype=F64)
    assert torch.isfinite(head64(torch.full((2, 4), 1e30, dtype=F64))).all()


def test_bad_labels_raise_in_eager_and_ignore_index_is_allowed():
    logits = torch.randn(3, 4)
    with pytest.raises(ValueError, match=r"`targets`.*\[0, 3\].*ignore_index=-100.*\[0, 4\]"):
        IsoMaxLoss()(logits, torch.tensor([0, -100, 4]))
    IsoMaxLoss()(logits, torch.tensor([0, -100, 3]))
    IsoMaxLoss(ignore_index=7)(logits, torch.tensor([0, 7, 3]))
    with pytest.raises(ValueError, match="`targets`"):
        IsoMaxLoss()(logits, torch.tensor([0, 7, 3]))


def test_custom_distance_with_wrong_shape_is_rejected():
    head = DistanceHead(4, 3, lambda f, p: torch.cdist(f, p).t())
    with pytest.raises(ValueError, match=r"`distance`.*\(2, 3\).*\(3, 2\)"):
        head(torch.randn(2, 4))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
def test_temperature_checked_at_construction_assignment_and_load(bad):
    with pytest.raises(ValueError, match="`temperature`"):
        IsoMaxPlusHead(4, 3, temperature=bad)
    head = IsoMaxPlusHead(4, 3)
    with pytest.raises(ValueError, match="`temperature`"):
        head.temperature = bad
    with pytest.raises(ValueError, match="`temperature`"):
        head.temperature = torch.tensor(bad)
    state = head.state_dict()
    state["temperature"] = torch.tensor(bad)
    with pytest.raises(ValueError, match="`temperature`"):
        head.load_state_dict(state)
    assert float(head.temperature) == 1.0


def test_temperature_assignment_keeps_a_buffer():
    head = IsoMaxPlusHead(4, 3, dtype=F64)
    x = torch.randn(2, 4, dtype=F64)
    before = head(x)
    head.temperature = 2.0
    assert "temperature" in dict(head.named_buffers()) and head.temperature.dtype == F64
    torch.testing.assert_close(head(x), before / 2)


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), True])
def test_entropic_scale_must_be_positive_finite(bad):
    with pytest.raises(ValueError, match="`entropic_scale`"):
        IsoMaxLoss(entropic_scale=bad)


# ---------------------------------------------------------------------------------------------
# nn.Linear habits
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [IsoMaxHead, IsoMaxPlusHead, isomax.DisMaxHead])
def test_factory_kwargs_and_linear_names(cls):
    head = cls(6, 4, device="cpu", dtype=F64)
    assert head.prototypes.dtype == F64 and head.temperature.dtype == F64
    assert all(t.dtype == F64 for t in head.state_dict().values())
    assert (head.in_features, head.out_features) == (6, 4) == (head.num_features, head.num_classes)
    assert head(torch.randn(2, 6, dtype=F64)).dtype == F64
    assert head.prototypes.device.type == "cpu"
    meta = cls(6, 4, device="meta")
    assert meta.prototypes.is_meta
    assert "in_features=6, out_features=4" in repr(head)
    with pytest.raises(ValueError, match="`dtype`"):
        cls(6, 4, dtype=torch.int64)


def test_make_head_passes_factory_kwargs():
    for kind in ("softmax", "isomax", "isomaxplus", "logitnorm", "dismax", "dismax-fpr"):
        head = make_head(kind, 6, 4, dtype=F64)
        assert next(head.parameters()).dtype == F64


def test_reset_parameters_restores_initial_state():
    torch.manual_seed(0)
    head = IsoMaxPlusHead(6, 4)
    with torch.no_grad():
        head.prototypes.zero_()
        head.distance_scale.fill_(3.0)
    head.temperature = 2.0
    head.reset_parameters()
    assert float(head.distance_scale.detach()) == 1.0 and head.prototypes.abs().sum() > 0
    assert float(head.temperature) == 2.0
    plain = IsoMaxHead(6, 4)
    with torch.no_grad():
        plain.prototypes.fill_(1.0)
    plain.reset_parameters()
    assert plain.prototypes.abs().sum() == 0


def test_state_dict_keys_unchanged():
    assert list(IsoMaxPlusHead(6, 4).state_dict()) == ["prototypes", "distance_scale", "temperature"]
    assert list(IsoMaxHead(6, 4).state_dict()) == ["prototypes", "temperature"]


# ---------------------------------------------------------------------------------------------
# CrossEntropyLoss habits: same as F.cross_entropy(entropic_scale * logits, ...)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("ignore_index", [-100, 2])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_isomax_loss_equals_cross_entropy_of_scaled_logits(reduction, weighted, ignore_index, label_smoothing):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(16, 5, generator=g, dtype=F64).requires_grad_()
    targets = torch.randint(0, 5, (16,), generator=g)
    targets[:3] = ignore_index if ignore_index < 0 else targets[:3]
    weight = torch.rand(5, generator=g, dtype=F64) + 0.5 if weighted else None
    kwargs = dict(weight=weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)
    got = IsoMaxLoss(7.0, **kwargs)(logits, targets)
    expected = F.cross_entropy(7.0 * logits, targets, **kwargs)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    (g1,) = torch.autograd.grad(got.sum(), logits)
    (g2,) = torch.autograd.grad(expected.sum(), logits)
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(SoftMaxLoss(**kwargs)(logits, targets), nn.CrossEntropyLoss(**kwargs)(logits, targets))


def test_loss_weight_is_a_buffer_and_checked():
    loss = IsoMaxLoss(weight=torch.ones(3))
    assert "weight" in loss.state_dict()
    with pytest.raises(ValueError, match="`weight`"):
        loss(torch.randn(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="`label_smoothing`"):
        IsoMaxLoss(label_smoothing=1.5)
    assert "weight" not in IsoMaxLoss().state_dict()


# ---------------------------------------------------------------------------------------------
# LogitNorm and the head kind of each loss name
# ---------------------------------------------------------------------------------------------
def test_logitnorm_loss_matches_paper_formula():
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(8, 5, generator=g, dtype=F64), torch.randint(0, 5, (8,), generator=g)
    loss = make_loss("logitnorm")
    assert isinstance(loss, LogitNormLoss) and loss.temperature == 0.04
    # Wei et al. 2022, Eq. 7 (with pytorch-ood's 1e-7 added to the norm)
    expected = F.cross_entropy(logits / (0.04 * (logits.norm(dim=1, keepdim=True) + 1e-7)), targets)
    torch.testing.assert_close(loss(logits, targets), expected)
    torch.testing.assert_close(
        make_loss("logit-norm", temperature=0.5, reduction="sum")(logits, targets),
        F.cross_entropy(logits / (0.5 * (logits.norm(dim=1, keepdim=True) + 1e-7)), targets, reduction="sum"),
    )
    with pytest.raises(ValueError, match="`targets`"):
        loss(logits, torch.full((8,), 5))


def test_head_kind_of_each_loss_name():
    assert canonical_head_name("logitnorm") == "logitnorm"
    assert {n: head_kind(n) for n in ("softmax", "logitnorm", "isomax", "isomax+", "linear")} == {
        "softmax": "softmax",
        "logitnorm": "softmax",
        "isomax": "isomax",
        "isomax+": "isomaxplus",
        "linear": "softmax",
    }
    assert type(make_head("logitnorm", 4, 3)) is nn.Linear
    with pytest.raises(ValueError, match="loss/head name"):
        head_kind("arcface")
    assert isomax.head_kind is head_kind


def test_models_use_the_head_names_of_heads_module():
    from isomax.models import _base

    assert _base.HEAD_KINDS is isomax.heads.HEADS
    assert _base._canonical_head_kind("logitnorm") == "softmax"
    with pytest.raises(ValueError, match="`head`"):
        _base._canonical_head_kind("arcface")
