"""The detector API: one fit signature, the registry, hooks on any nn.Module, errors, and ODIN/Mahalanobis numbers."""

import pytest
import torch
from torch import nn

from detector_toy import make_relu_toy, make_toy
from isomax.detectors import DETECTORS, ODIN, Detector, Mahalanobis, NotFittedError, create_detector, fit_detectors
from isomax.detectors.hooks import Tap, find_classifier, read_activations
from isomax.evaluation import DETECTOR_METHODS
from isomax.metrics import ood_metrics
from isomax.models import create_model

#: small settings so that every registered detector fits in well under a second on the toy problems
FAST = {"odin": dict(temperatures=(1, 1000), noises=(0, 0.01)), "mahalanobis": dict(noises=(0, 0.01)), "knn": dict(k=5)}


@pytest.fixture(scope="module")
def relu_toy():
    return make_relu_toy(seed=0)


@pytest.fixture(scope="module")
def toy():
    return make_toy(seed=0)


# --- ODIN and Mahalanobis numbers are those of the published results ------------------------------------------------
# Expected values computed by the code before the detector refactoring (commit 74ff376), same inputs.


def test_odin_and_mahalanobis_reproduce_the_previous_implementation(toy):
    model, (x_tr, y_tr), (x_val, y_val), (x, _), x_out = toy
    odin = ODIN(temperatures=(1, 10, 1000), noises=(0, 0.001, 0.01), std=(0.5,)).fit(model, val=[(x_val, y_val)])
    assert odin.params() == {"temperature": 10.0, "noise": 0.0}
    torch.testing.assert_close(
        odin(x[:4]),
        torch.tensor([0.9998561143875122, 0.9999955892562866, 0.9994322657585144, 0.9998281002044678]),
        rtol=1e-5,
        atol=1e-6,
    )
    torch.testing.assert_close(
        ODIN(model, temperature=1000, noise=0.01, std=(0.5,))(x_out[:4]),
        torch.tensor([0.3341989815235138, 0.334124892950058, 0.3348487913608551, 0.335210382938385]),
        rtol=1e-5,
        atol=1e-6,
    )
    maha = Mahalanobis(noises=(0, 0.001, 0.01), std=(0.5,)).fit(model, train=[(x_tr, y_tr)], val=[(x_val, y_val)])
    assert maha.params() == {"noise": 0.01, "layers": 2, "ensemble": True}
    expected_in = torch.tensor([-0.024007750675082207, 0.11309511959552765, 0.02695353701710701, 0.05286349356174469])
    torch.testing.assert_close(maha(x[:4]), expected_in, rtol=1e-4, atol=1e-4)
    expected_out = torch.tensor([-4.589597225189209, -4.70993709564209])
    torch.testing.assert_close(maha(x_out[:2]), expected_out, rtol=1e-4, atol=1e-4)


def test_mahalanobis_hooks_on_named_layers_equal_feature_list():
    torch.manual_seed(0)
    model = create_model("cnn-28", num_classes=10, head="softmax").eval()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 1, 28, 28, generator=g), torch.arange(40) % 10
    default = Mahalanobis(noise=0.0014).fit(model, train=[(x, y)])  # model.feature_list
    stages = ["stages.0", "stages.1", "stages.2", "stages.3"]  # forward hooks on the modules feature_list returns
    hooked = Mahalanobis(noise=0.0014, layers=stages).fit(model, train=[(x, y)])
    torch.testing.assert_close(hooked.layer_scores(x[:8]), default.layer_scores(x[:8]), rtol=0, atol=0)


# --- hooks ---------------------------------------------------------------------------------------------------------


def test_find_classifier_on_common_layouts(relu_toy):
    assert find_classifier(relu_toy[0])[0] == "fc"
    assert find_classifier(create_model("cnn-28", head="isomaxplus"))[0] == "head"
    seq = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Sequential(nn.Dropout(), nn.Linear(8, 3)))
    assert find_classifier(seq)[0] == "3.1"  # no known name: the last nn.Linear


def test_tap_reads_the_classifier_input_and_named_outputs():
    model = create_model("cnn-28", head="softmax").eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        logits, (penultimate, stage) = read_activations(model, x, [Tap(model), Tap(model, "stages.1")])
        torch.testing.assert_close(penultimate, model.forward_features(x))
        torch.testing.assert_close(logits, model(x))
        assert stage.shape == (3, 64, 14, 14)
        # running the rest of the model from an unchanged activation gives the same output
        torch.testing.assert_close(Tap(model, "stages.1").forward_from(model, x, stage), logits)
    with pytest.raises(ValueError, match="submodule of SmallCNN"):
        Tap(model, "layer9")


# --- every registered detector ------------------------------------------------------------------------------------


def test_registry_is_what_evaluate_and_bench_accept():
    assert tuple(DETECTOR_METHODS) == tuple(DETECTORS)
    try:  # read live: a detector registered later is accepted too (no copy frozen at import)
        DETECTORS["later"] = DETECTORS["knn"]
        assert "later" in DETECTOR_METHODS
    finally:
        del DETECTORS["later"]
    assert "later" not in DETECTOR_METHODS
    assert {"odin", "mahalanobis", "knn", "vim", "react", "ash", "gen", "scale", "dice"} <= set(DETECTORS)
    assert all(issubclass(cls, Detector) and cls.name == name for name, cls in DETECTORS.items())
    import isomax.detectors as pkg

    assert not {"fgsm", "odin_score", "class_statistics", "iter_batches", "collect"} & set(pkg.__all__)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_each_detector_scores_in_distribution_higher(relu_toy, name):
    model, (x_tr, y_tr), (x, y), x_out = relu_toy
    det = create_detector(name, **FAST.get(name, {}))
    det.fit(model, train=[(x_tr, y_tr)], val=[(x[:60], y[:60])])
    s_in, s_out = det(x[60:]), det(x_out)
    assert s_in.shape == (len(x) - 60,) and s_in.dtype == torch.float32 and torch.isfinite(s_in).all()
    assert ood_metrics(s_in, s_out)["auroc"] > 0.95, det.params()  # higher = more in-distribution
    assert isinstance(det.params(), dict)


def test_fit_detectors_fits_every_registered_name_with_shared_options(relu_toy):
    model, (x_tr, y_tr), (x, y), x_out = relu_toy
    fitted = fit_detectors(
        model, list(DETECTORS), train=[(x_tr, y_tr)], val=[(x, y)], max_samples=40, max_train=90, batch_size=64, seed=1
    )
    assert list(fitted) == list(DETECTORS)
    assert fitted["odin"].max_samples == 40 and fitted["mahalanobis"].max_train == 90 and fitted["knn"].max_train == 90
    assert fitted["knn"].detector_.knn.n_samples_fit_ == 90  # fitted on at most max_train training samples
    for name, det in fitted.items():
        assert det.predict_data([(x_out[:7], None)]).shape == (7,), name


@pytest.mark.parametrize("name", ["knn", "react", "ash", "scale", "gen"])
def test_posthoc_detectors_on_an_isomax_model_with_a_distance_head(name):
    torch.manual_seed(0)
    model = create_model("cnn-28", num_classes=10, head="isomaxplus").eval()
    x, y = torch.randn(24, 1, 28, 28), torch.arange(24) % 10
    det = create_detector(name, **({"k": 3} if name == "knn" else {})).fit(model, train=[(x, y)])
    assert det(x[:5]).shape == (5,)


@pytest.mark.parametrize("name", ["knn", "react", "ash", "scale"])
def test_posthoc_detectors_on_a_named_layer(name):
    torch.manual_seed(0)
    model = create_model("cnn-28", num_classes=10, head="softmax").eval()
    x, y = torch.randn(24, 1, 28, 28), torch.arange(24) % 10
    det = create_detector(name, layer="stages.2", **({"k": 3} if name == "knn" else {})).fit(model, train=[(x, y)])
    s = det(x[:5])
    assert s.shape == (5,) and torch.isfinite(s).all()


# --- errors --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["vim", "dice"])
def test_linear_head_methods_refuse_distance_heads(name):
    model = create_model("cnn-28", num_classes=10, head="isomax").eval()
    with pytest.raises(ValueError, match="linear classifier.*IsoMaxHead"):
        create_detector(name).fit(model, train=[(torch.randn(8, 1, 28, 28), torch.arange(8))])


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_unfitted_detectors_say_to_call_fit(relu_toy, name):
    model, _, (x, _), _ = relu_toy
    with pytest.raises(NotFittedError, match="fit"):
        create_detector(name)(x)  # no model, nothing fitted


@pytest.mark.parametrize("name", [n for n in sorted(DETECTORS) if DETECTORS[n].requires])
def test_missing_data_is_named(relu_toy, name):
    model = relu_toy[0]
    needed = DETECTORS[name].requires
    with pytest.raises(ValueError, match=f"Expected `{needed[0]}=` \\(labelled in-distribution"):
        create_detector(name).fit(model)
    with pytest.raises(ValueError, match="labelled in-distribution"):
        fit_detectors(model, [name])


def test_data_is_passed_by_keyword_only(relu_toy):
    model, train, _, _ = relu_toy
    with pytest.raises(TypeError):
        ODIN().fit(model, [train])  # the old positional form (validation data for ODIN, training for Mahalanobis)


def test_unknown_names_list_what_exists():
    with pytest.raises(ValueError, match="knn"):
        create_detector("nope")
    with pytest.raises(ValueError, match="knn"):
        fit_detectors(nn.Linear(2, 2), ["nope"])


@pytest.mark.parametrize("name", ["odin", "mahalanobis", "knn", "ash", "gen", "mps"])
def test_wrong_input_shape_is_a_clear_error(name):
    torch.manual_seed(0)
    model = create_model("cnn-28", num_classes=10, head="softmax").eval()
    x, y = torch.randn(24, 1, 28, 28), torch.arange(24) % 10
    options = {"odin": dict(temperature=1000, noise=0.0014), "mahalanobis": dict(noise=0.0), "knn": dict(k=3)}
    det = create_detector(name, model, **options.get(name, {}))
    if name in DETECTORS:
        det.fit(model, train=[(x, y)])  # ODIN with both hyperparameters fixed needs no data
    with pytest.raises(ValueError, match=r"Expected `x` .*\(B, 1, 28, 28\)"):
        det(torch.randn(2, 3, 28, 28))
    with pytest.raises(ValueError, match="float batch"):
        det(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
