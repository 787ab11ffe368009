"""Smoke and contract tests of every registered backbone (timm style).

Every model x head: output shape, finite values, backward reaches every parameter, pooled features
match the last map of ``feature_list``. Plus the registry, parameter counts and head swapping.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from isomax.models import IsoMaxModel, create_model, list_models, register_model
from isomax.models import _base
from isomax.models.resnet import PadShortcut

HEADS = ["softmax", "isomax", "isomaxplus"]
EXPECTED_MODELS = {"cnn-28", "cnn-32", "densenet-bc-100", "resnet34", "resnet110"}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _head_parameters(model: IsoMaxModel) -> list[nn.Parameter]:
    return list(model.head.parameters())


def _backbone_parameters(model: IsoMaxModel) -> list[nn.Parameter]:
    head_ids = {id(p) for p in model.head.parameters()}
    return [p for p in model.parameters() if id(p) not in head_ids]


def test_registry_lists_the_papers_models_and_the_small_cnns():
    assert EXPECTED_MODELS <= set(list_models())
    assert list_models() == sorted(list_models())


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("name", list_models())
def test_forward_backward_and_features(name: str, head: str):
    model = create_model(name, num_classes=7, head=head)
    assert isinstance(model, IsoMaxModel)
    assert model.head_kind == head and model.num_classes == 7
    x = torch.randn(2, *model.input_size)  # (2, C, H, W), C/H/W of the model's design

    # Training mode: logits, finite, and a backward pass that reaches every parameter.
    logits = model(x)
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()
    F.cross_entropy(10.0 * logits, torch.tensor([0, 3])).backward()
    for p in model.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert any(p.grad.abs().sum() > 0 for p in _head_parameters(model))  # prototypes / weights learn
    if head != "isomax":
        # (Zero IsoMax prototypes make all logits equal at step 0, so the backbone gradient is 0.)
        assert sum(p.grad.abs().sum() for p in _backbone_parameters(model)) > 0

    # Eval mode: pooled features are the spatial mean of the last map of `feature_list`.
    model.eval()
    with torch.no_grad():
        features = model.forward_features(x)
        maps = model.feature_list(x)
        assert features.shape == (2, model.num_features)
        assert all(m.ndim == 4 and m.shape[0] == 2 for m in maps)
        assert len(maps) >= 3
        assert maps[-1].shape[1] == model.num_features
        torch.testing.assert_close(maps[-1].mean(dim=(2, 3)), features, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.forward_head(features), model(x), rtol=1e-5, atol=1e-5)
        assert model.forward_head(features, pre_logits=True) is features


@pytest.mark.parametrize(
    "name, low, high, num_features",
    [
        pytest.param("densenet-bc-100", 0.70e6, 0.85e6, 342, id="densenet-bc-100"),
        pytest.param("resnet110", 1.60e6, 1.80e6, 64, id="resnet110"),
        pytest.param("resnet34", 21.0e6, 21.5e6, 512, id="resnet34"),
    ],
)
def test_parameter_counts_match_the_papers(name: str, low: float, high: float, num_features: int):
    model = create_model(name, num_classes=10)
    n = sum(p.numel() for p in model.parameters())
    assert low <= n <= high
    assert model.num_features == num_features


def test_densenet_bc_100_exact_parameter_count():
    # Same as the DenseNet3 of the ODIN / Lee et al. code with 10 classes.
    assert sum(p.numel() for p in create_model("densenet-bc-100").parameters()) == 769_162


def test_unknown_model_name_lists_the_available_names():
    with pytest.raises(ValueError, match="not-a-model") as info:
        create_model("not-a-model")
    for name in list_models():
        assert name in str(info.value)


def test_unknown_head_kind_raises():
    with pytest.raises(ValueError, match="head"):
        create_model("cnn-28", head="arcface")
    model = create_model("cnn-28")
    with pytest.raises(ValueError, match="head"):
        model.reset_head("arcface")
    assert model.head_kind == "softmax"


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_num_classes_raises(bad):
    with pytest.raises(ValueError, match="num_classes"):
        create_model("cnn-28", num_classes=bad)


def test_isomax_prototypes_keep_their_own_initialisation():
    # The backbone's Kaiming init must not touch the head: IsoMax prototypes start at zero.
    model = create_model("resnet110", head="isomax")
    for p in model.head.parameters():
        if p.ndim == 2:
            assert torch.count_nonzero(p) == 0


def test_reset_head_swaps_kind_and_classes_and_follows_dtype():
    model = create_model("cnn-28", num_classes=10, head="softmax").double()
    model.reset_head("isomaxplus", num_classes=4)
    assert model.head_kind == "isomaxplus" and model.num_classes == 4
    assert all(p.dtype == torch.float64 for p in model.head.parameters())
    assert model(torch.randn(2, 1, 28, 28, dtype=torch.float64)).shape == (2, 4)
    model.reset_head("isomax")  # keeps 4 classes
    assert model.num_classes == 4 and model(torch.randn(2, 1, 28, 28, dtype=torch.float64)).shape == (2, 4)
    model.reset_classifier(3)  # timm-style alias keeps the kind
    assert model.head_kind == "isomax" and model.num_classes == 3


@pytest.mark.parametrize(
    "name, in_channels, hw",
    [
        pytest.param("cnn-28", 3, 28, id="cnn-28-rgb"),
        pytest.param("cnn-32", 1, 32, id="cnn-32-grey"),
        pytest.param("resnet110", 1, 32, id="resnet110-grey"),
        pytest.param("densenet-bc-100", 1, 32, id="densenet-grey"),
    ],
)
def test_in_channels(name: str, in_channels: int, hw: int):
    model = create_model(name, in_channels=in_channels).eval()
    assert model.input_size[0] == in_channels
    with torch.no_grad():
        assert model(torch.randn(2, in_channels, hw, hw)).shape == (2, 10)


def test_default_in_channels():
    assert create_model("cnn-28").input_size == (1, 28, 28)
    assert create_model("cnn-32").input_size == (3, 32, 32)


def test_state_dict_round_trip_of_a_channels_last_model():
    a = create_model("cnn-28", head="isomaxplus").eval()
    b = create_model("cnn-28", head="isomaxplus").eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))


def test_option_a_shortcut_subsamples_and_zero_pads():
    x = torch.randn(2, 16, 8, 8)
    out = PadShortcut(16, 32, stride=2)(x)
    assert out.shape == (2, 32, 4, 4)
    torch.testing.assert_close(out[:, 8:24], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, :8]) == 0 and torch.count_nonzero(out[:, 24:]) == 0


def test_register_model_derives_the_name_and_refuses_duplicates(monkeypatch):
    monkeypatch.setattr(_base, "_MODEL_ENTRYPOINTS", dict(_base._MODEL_ENTRYPOINTS))

    @register_model
    def tiny_test_net(num_classes=10, head="softmax", in_channels=1, **kwargs):
        from isomax.models import SmallCNN

        return SmallCNN((4,), input_hw=(8, 8), num_classes=num_classes, head=head, in_channels=in_channels)

    assert "tiny-test-net" in list_models()
    assert create_model("tiny-test-net", num_classes=3)(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    with pytest.raises(ValueError, match="already registered"):
        register_model(name="tiny-test-net")(tiny_test_net)
    register_model(name="Tiny")(tiny_test_net)
    assert "Tiny" in list_models()


def test_bad_plan_raises():
    from isomax.models import SmallCNN

    with pytest.raises(ValueError, match="plan"):
        SmallCNN((8, "M"))
    with pytest.raises(ValueError, match="plan"):
        SmallCNN((8, "X", 8))
