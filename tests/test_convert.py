"""isomax.convert swaps the final nn.Linear of torchvision and timm models (random weights, small variants)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import isomax
from isomax import IsoMaxHead, IsoMaxPlusHead, convert

tv = pytest.importorskip("torchvision.models")


def _torchvision_models():
    from torchvision.models.convnext import CNBlockConfig

    small = {
        "resnet": (lambda: tv.resnet18(weights=None, num_classes=7), "fc", 32),
        "densenet": (
            lambda: tv.DenseNet(growth_rate=4, block_config=(1, 1), num_init_features=8, num_classes=7),
            "classifier",
            32,
        ),
        "vgg": (
            lambda: tv.VGG(
                nn.Sequential(nn.Conv2d(3, 512, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
                num_classes=7,
                init_weights=False,
            ),
            "classifier.6",
            16,
        ),
        "mobilenet_v2": (lambda: tv.mobilenet_v2(weights=None, width_mult=0.25, num_classes=7), "classifier.1", 32),
        "mobilenet_v3": (lambda: tv.mobilenet_v3_small(weights=None, num_classes=7), "classifier.3", 32),
        "efficientnet": (lambda: tv.efficientnet_b0(weights=None, num_classes=7), "classifier.1", 32),
        "convnext": (
            lambda: tv.ConvNeXt([CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)], num_classes=7),
            "classifier.2",
            32,
        ),
        "vit": (
            lambda: tv.VisionTransformer(
                image_size=32, patch_size=16, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=7
            ),
            "heads.head",
            32,
        ),
        "swin": (
            lambda: tv.SwinTransformer(
                patch_size=[4, 4], embed_dim=8, depths=[1, 1], num_heads=[1, 1], window_size=[2, 2], num_classes=7
            ),
            "head",
            32,
        ),
    }
    return [pytest.param(*v, id=k) for k, v in small.items()]


def _check(model, expected_name, image_size, head_cls=IsoMaxPlusHead):
    model.eval()
    old = model.get_submodule(expected_name)
    assert isinstance(old, nn.Linear)
    in_features, out_features = old.in_features, old.out_features
    returned = convert(model, head="isomaxplus")
    assert returned is model
    new = model.get_submodule(expected_name)
    assert isinstance(new, head_cls) and (new.in_features, new.out_features) == (in_features, out_features)
    with torch.no_grad():
        logits = model(torch.randn(2, 3, image_size, image_size))
    assert logits.shape == (2, out_features) and torch.isfinite(logits).all()
    assert torch.all(logits <= 0)  # negative distances: the new head is in the forward path


@pytest.mark.parametrize("make, name, image_size", _torchvision_models())
def test_convert_torchvision_families(make, name, image_size):
    torch.manual_seed(0)
    _check(make(), name, image_size)


@pytest.mark.parametrize(
    "name, size",
    [
        ("resnet18", 32),
        ("convnext_atto", 32),
        ("mobilenetv3_small_050", 32),
        ("vit_tiny_patch16_224", 32),
        ("efficientnet_b0", 32),
    ],
)
def test_convert_timm_models_through_get_classifier(name, size):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    kwargs = {"img_size": size} if name.startswith("vit") else {}
    model = timm.create_model(name, pretrained=False, num_classes=6, **kwargs).eval()
    classifier = model.get_classifier()
    dotted = next(n for n, m in model.named_modules() if m is classifier)
    _check(model, dotted, size)
    assert isinstance(model.get_classifier(), IsoMaxPlusHead)


def test_convert_keeps_device_and_dtype_and_num_classes():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5)).to(torch.float64)
    convert(model, head="isomax", module="1", num_classes=3, temperature=2.0)
    assert isinstance(model[1], IsoMaxHead)
    assert model[1].prototypes.dtype == torch.float64 and model[1].out_features == 3
    assert float(model[1].temperature) == 2.0
    assert model(torch.randn(2, 12, dtype=torch.float64)).dtype == torch.float64


def test_convert_with_module_name():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))  # no classifier attribute
    with pytest.raises(ValueError, match=r"module='2'"):
        convert(model)
    convert(model, head="isomaxplus", module="2")
    assert isinstance(model[2], IsoMaxPlusHead)


def test_ambiguous_model_error_names_candidates():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.head = nn.Linear(4, 3)

    with pytest.raises(ValueError, match=r"several candidate classifiers 'fc', 'head'.*module='head'"):
        convert(TwoHeads())


def test_wrong_module_and_head_names():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(ValueError, match=r"`module` '1' to be an nn.Linear.*module='2'"):
        convert(model, module="1")
    with pytest.raises(ValueError, match="`module`"):
        convert(model, module="9")
    with pytest.raises(ValueError, match="loss/head name"):
        convert(model, head="arcface", module="2")
    assert isinstance(model[2], nn.Linear)  # nothing changed
    with pytest.raises(TypeError, match="`model`"):
        convert("resnet18")


def test_convert_is_exported_at_top_level():
    assert isomax.convert is convert


# ---- every head layout: distilled timm models, 1x1 conv classifiers, auxiliary heads ---------------
@pytest.mark.parametrize(
    "name, kwargs, size, heads",
    [
        ("deit_tiny_distilled_patch16_224", {"img_size": 32}, 32, ("head", "head_dist")),
        ("levit_128", {"img_size": 64}, 64, ("head.linear", "head_dist.linear")),
        ("efficientformer_l1", {}, 224, ("head", "head_dist")),  # fixed attention biases: 224 px only
    ],
)
def test_convert_distilled_timm_models_converts_both_heads(name, kwargs, size, heads):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=5, **kwargs).eval()
    assert isinstance(model.get_classifier(), tuple)
    x = torch.randn(2, 3, size, size)
    convert(model, head="isomaxplus")
    for h in heads:
        assert isinstance(model.get_submodule(h), IsoMaxPlusHead) and model.get_submodule(h).out_features == 5
    assert not any(isinstance(m, nn.Linear) and m.out_features == 5 for m in model.modules())
    with torch.no_grad():
        logits = model(x)
        # the model averages its two heads' logits: recompute them from the pre-logit features
        features = model.forward_features(x)
    assert logits.shape == (2, 5) and torch.all(logits <= 0)
    if name.startswith("deit"):
        with torch.no_grad():
            expected = (model.head(features[:, 0]) + model.head_dist(features[:, 1])) / 2
        torch.testing.assert_close(logits, expected)


def test_convert_squeezenet_pools_before_the_head():
    torch.manual_seed(0)
    model = tv.squeezenet1_1(weights=None, num_classes=6).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.features(x)  # (2, 512, H, W)
    convert(model, head="isomax")
    assert [type(m) for m in model.classifier] == [nn.Dropout, nn.AdaptiveAvgPool2d, nn.Flatten, IsoMaxHead]
    head = model.classifier[3]
    nn.init.normal_(head.prototypes)
    with torch.no_grad():
        logits = model(x)
        expected = -torch.cdist(features.mean(dim=(2, 3)).double(), head.prototypes.double())  # float64 reference
    torch.testing.assert_close(logits.double(), expected, rtol=1e-4, atol=1e-4)
    assert not any(isinstance(m, nn.ReLU) for m in model.classifier)  # no ReLU clipping the negative distances


def test_convert_conv_classifier_with_unknown_layout_is_refused_unchanged():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Sequential(nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4)))
    before = [type(m) for m in model.modules()]
    with pytest.raises(ValueError, match=r"1x1 convolution classifier '1.0'.*\(BatchNorm2d\)"):
        convert(model, module="1.0")
    with pytest.raises(ValueError, match="1x1 convolution classifier '1'.*no enclosing nn.Sequential"):
        # the model itself: nothing to rebuild
        convert(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 4, 1)), module="1")
    assert [type(m) for m in model.modules()] == before


@pytest.mark.parametrize(
    "make, aux_names",
    [
        (lambda: tv.inception_v3(weights=None, num_classes=4, aux_logits=True, init_weights=False), ["AuxLogits.fc"]),
        (
            lambda: tv.googlenet(weights=None, num_classes=4, aux_logits=True, init_weights=False),
            ["aux1.fc2", "aux2.fc2"],
        ),
    ],
    ids=["inception_v3", "googlenet"],
)
def test_convert_auxiliary_heads(make, aux_names):
    torch.manual_seed(0)
    model = convert(make(), head="isomaxplus")
    for name in ["fc"] + aux_names:
        assert isinstance(model.get_submodule(name), IsoMaxPlusHead), name
    model.train()
    out = model(torch.randn(2, 3, 299, 299) if aux_names == ["AuxLogits.fc"] else torch.randn(2, 3, 96, 96))
    logits = [out.logits] + ([out.aux_logits] if hasattr(out, "aux_logits") else [out.aux_logits2, out.aux_logits1])
    assert all(t.shape == (2, 4) and torch.all(t <= 0) for t in logits)  # every training-time output is IsoMax logits

    kept = convert(make(), head="isomaxplus", aux=False)
    assert isinstance(kept.fc, IsoMaxPlusHead)
    assert all(isinstance(kept.get_submodule(n), nn.Linear) for n in aux_names)
