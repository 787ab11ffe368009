"""Detectors on toy problems: exact formulas, score direction, FGSM, not-fitted errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detector_toy import make_toy
from isomax.detectors import ODIN, Mahalanobis, NotFittedError, ScoreDetector, create_detector
from isomax.detectors.adversarial import fgsm
from isomax.detectors.base import extract_features
from isomax.detectors.mahalanobis import class_statistics, mahalanobis_score
from isomax.detectors.odin import odin_perturb
from isomax.metrics import ood_metrics
from isomax.models import create_model
from isomax.scores import SCORES, max_probability


@pytest.fixture(scope="module")
def toy():
    return make_toy(seed=0)


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return create_model("cnn-28", num_classes=10, head="softmax").eval()


# --- FGSM ----------------------------------------------------------------------------------------------------------


def test_fgsm_raises_the_loss(cnn):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 1, 28, 28, generator=g), torch.randint(0, 10, (16,), generator=g)
    x_adv = fgsm(cnn, x, y, eps=0.01)
    with torch.no_grad():
        before, after = F.cross_entropy(cnn(x), y), F.cross_entropy(cnn(x_adv), y)
    assert float(after) > float(before)
    assert torch.allclose((x_adv - x).abs(), torch.full_like(x, 0.01), atol=1e-6)  # sign step, normalised units


def test_fgsm_step_is_in_pixel_units_and_clipped(cnn):
    mean, std = (0.5,), (0.25,)
    x = (torch.rand(4, 1, 28, 28) - 0.5) / 0.25
    x_adv = fgsm(cnn, x, torch.zeros(4, dtype=torch.long), eps=0.02, mean=mean, std=std)
    step = (x_adv - x).abs()
    assert float(step.max()) <= 0.02 / 0.25 + 1e-5  # eps / std in normalised units
    pixels = x_adv * 0.25 + 0.5
    assert float(pixels.min()) >= -1e-6 and float(pixels.max()) <= 1 + 1e-6


# --- ODIN ----------------------------------------------------------------------------------------------------------


def test_odin_with_unit_temperature_and_no_noise_is_max_probability(cnn):
    x = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        expected = max_probability(cnn(x))
    torch.testing.assert_close(ODIN(cnn, temperature=1, noise=0)(x), expected)


def test_odin_preprocessing_raises_the_max_softmax(toy):
    model, _, _, (x, _), _ = toy
    plain = ODIN(model, temperature=10, noise=0)(x)
    moved = ODIN(model, temperature=10, noise=0.01)(x)
    assert float((moved >= plain).float().mean()) > 0.95
    # std-scaled step: the input moves by noise / std exactly where the gradient is non-zero
    delta = (odin_perturb(model, x, 10.0, 0.01, std=(0.5,)) - x).abs()
    assert torch.allclose(delta[delta > 0], torch.tensor(0.02), atol=1e-5)


def test_odin_fit_chooses_from_the_grid_on_validation_vs_fgsm(toy):
    model, _, (x_val, y_val), (x, _), x_out = toy
    odin = ODIN(temperatures=(1, 1000), noises=(0, 0.01)).fit(model, val=[(x_val, y_val)])
    assert odin.params()["temperature"] in (1.0, 1000.0) and odin.params()["noise"] in (0.0, 0.01)
    assert len(odin.grid_) == 4 and set(odin.selection_) >= {"tnr_at_tpr95", "auroc"}
    assert ood_metrics(odin(x), odin(x_out))["auroc"] > 0.9  # in-distribution scores higher


def test_odin_fit_features_chooses_temperature(toy):
    model, _, (x_val, y_val), _, _ = toy
    with torch.no_grad():
        logits = torch.cat([model(x_val), model(fgsm(model, x_val, y_val, 0.5))])
    labels = torch.cat([torch.ones(len(x_val)), torch.zeros(len(x_val))])
    odin = ODIN().fit_features(logits, labels)
    assert odin.params()["noise"] == 0.0 and odin.params()["temperature"] in (1.0, 10.0, 100.0, 1000.0)
    torch.testing.assert_close(
        odin.predict_features(logits[:5]), torch.softmax(logits[:5] / odin.temperature_, 1).amax(1)
    )


# --- Mahalanobis ---------------------------------------------------------------------------------------------------


def test_layer_score_matches_numpy_on_gaussian_features():
    rng = np.random.default_rng(0)
    k, c, n = 4, 6, 400
    means_true = rng.normal(0, 3, (k, c))
    labels = np.arange(n) % k
    a = rng.normal(size=(c, c))
    feats = means_true[labels] + rng.normal(size=(n, c)) @ a  # correlated Gaussian classes
    test = rng.normal(0, 4, (50, c))

    mu = np.stack([feats[labels == j].mean(0) for j in range(k)])
    centred = feats - mu[labels]
    cov = centred.T @ centred / n
    prec = np.linalg.pinv(cov)
    diff = test[:, None, :] - mu[None]
    expected = -np.einsum("bkc,cd,bkd->bk", diff, prec, diff).min(1)

    means, precision = class_statistics(torch.tensor(feats), torch.tensor(labels))
    from sklearn.covariance import EmpiricalCovariance

    np.testing.assert_allclose(precision.numpy(), EmpiricalCovariance().fit(centred).precision_, rtol=1e-6, atol=1e-8)
    got = mahalanobis_score(torch.tensor(test, dtype=torch.float32), means, precision).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_mahalanobis_ensemble_fits_and_scores_in_higher(toy):
    model, (x_tr, y_tr), (x_val, y_val), (x, _), x_out = toy
    det = Mahalanobis(noises=(0, 0.001, 0.01)).fit(model, train=[(x_tr, y_tr)], val=[(x_val, y_val)])
    assert det.params()["ensemble"] is True and det.params()["layers"] == 2
    assert det.params()["noise"] in (0.0, 0.001, 0.01)
    s_in, s_out = det(x), det(x_out)
    assert s_in.shape == (len(x),) and torch.isfinite(s_in).all()
    assert ood_metrics(s_in, s_out)["auroc"] > 0.95
    # the linear form used by predict equals the sklearn pipeline's decision function
    layer = det.layer_scores(x[:10]).numpy()
    np.testing.assert_allclose(det(x[:10]).numpy(), det.regression_.decision_function(layer), rtol=1e-4, atol=1e-4)


def test_mahalanobis_preprocessing_decreases_the_distance(toy):
    model, (x_tr, y_tr), _, (x, _), _ = toy
    det = Mahalanobis(model, noise=0.0).fit(model, train=[(x_tr, y_tr)])
    before, after = det.layer_scores(x, 0.0), det.layer_scores(x, 0.01)
    assert float((after >= before).float().mean()) > 0.95  # higher score = smaller distance


def test_shared_extraction_pass(toy):
    model, (x_tr, y_tr), _, (x, _), _ = toy
    train_feats = extract_features(model, [(x_tr, y_tr)])
    test_feats = extract_features(model, [(x, None)])
    assert len(train_feats["layers"]) == 2 and train_feats["labels"].shape == (len(x_tr),)
    maha = Mahalanobis(model).fit_features(train_feats)
    torch.testing.assert_close(maha.predict_features(test_feats), maha(x))
    direct = Mahalanobis().fit(model, train=[(x_tr, y_tr)])
    torch.testing.assert_close(direct(x), maha(x))
    mps = ScoreDetector("mps", model)
    torch.testing.assert_close(mps.predict_features(test_feats), mps(x))


# --- API -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [lambda m: ODIN(m), lambda m: Mahalanobis(m), lambda m: ScoreDetector("mps")],
    ids=["odin", "mahalanobis", "score-without-model"],
)
def test_not_fitted_errors_say_to_call_fit(toy, make):
    model, _, _, (x, _), _ = toy
    det = make(model)
    with pytest.raises(NotFittedError, match="fit"):
        det(x)
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, RuntimeError)


def test_predict_features_refuses_preprocessing(toy):
    model, _, _, (x, _), _ = toy
    with pytest.raises(ValueError, match="predict\\(x\\)"):
        ODIN(model, temperature=1000, noise=0.0014).predict_features(model(x))


@pytest.mark.parametrize("name", sorted(SCORES))
def test_score_detectors_need_no_fit_and_match_isomax_scores(toy, name):
    model, _, _, (x, _), x_out = toy
    det = create_detector(name, model)
    with torch.no_grad():
        torch.testing.assert_close(det(x), SCORES[name](model(x)))
    if name in ("mps", "es"):
        assert ood_metrics(det(x), det(x_out))["auroc"] > 0.9  # same direction: higher = in
