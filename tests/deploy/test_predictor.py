import pytest
import torch

from isomax.deploy import Predictor, Threshold, ThresholdMismatchError, apply_temperature, fit_threshold
from isomax.detectors import NotFittedError, ScoreDetector
from isomax.scores import SCORES


@pytest.fixture(scope="module")
def model_and_data(runs):
    from isomax.data import normalization
    from isomax.runs import Run
    from isomax.training import load_data

    run = Run.load(runs["isomaxplus"])
    model, config = run.model, run.config
    _, val = load_data(config, run.runtime.data_dir)
    return model, val, normalization("fashion-mnist")


@pytest.mark.parametrize("score", list(SCORES))
def test_fit_keeps_the_target_fraction_of_validation_inputs(model_and_data, score):
    model, val, (mean, std) = model_and_data
    pred = Predictor(model, score, mean=mean, std=std).fit(val)
    assert pred.threshold_.score == score and pred.threshold_.n == len(val)
    assert abs(pred.threshold_.val_tpr - 0.95) <= 1 / len(val)
    out = pred.predict_data(val)
    assert out.accepted.double().mean().item() == pytest.approx(pred.threshold_.val_tpr)
    assert torch.equal(out.accepted, out.score >= torch.tensor(pred.threshold_.threshold, dtype=torch.float32))


def test_predict_outputs_and_uint8_equals_normalised_input(model_and_data):
    model, val, (mean, std) = model_and_data
    pred = Predictor(model, "mds", mean=mean, std=std).fit(val)
    images = val.images[:16]
    out = pred.predict(images)
    assert out.label.shape == out.probability.shape == out.score.shape == out.accepted.shape == (16,)
    assert out.accepted.dtype == torch.bool and out.label.dtype == torch.int64
    torch.testing.assert_close(out.probability, torch.softmax(out.logits, 1).amax(1))
    from isomax.data import BatchLoader

    x, _ = next(iter(BatchLoader(val.subset(slice(0, 16)), 16, mean=mean, std=std)))
    same = pred.predict(x)
    torch.testing.assert_close(same.score, out.score)
    assert torch.equal(same.accepted, out.accepted)


def test_detector_instance_has_the_same_scores_and_direction_as_the_name(model_and_data):
    model, val, (mean, std) = model_and_data
    by_name = Predictor(model, "es", mean=mean, std=std).fit(val)
    by_detector = Predictor(model, ScoreDetector("es", model), mean=mean, std=std).fit(val)
    assert by_detector.threshold_.threshold == by_name.threshold_.threshold
    a, b = by_name.predict(val.images[:32]), by_detector.predict(val.images[:32])
    assert torch.equal(a.accepted, b.accepted)


class _NegatedDistance:
    """A stand-in fitted detector: higher = more in-distribution, as every isomax detector."""

    name = "toy"

    def __init__(self, model):
        self.model = model

    def is_fitted(self):
        return True

    def predict(self, x):
        return SCORES["max_logit"](self.model(x))


def test_any_fitted_detector_with_predict(model_and_data):
    model, val, (mean, std) = model_and_data
    pred = Predictor(model, _NegatedDistance(model), mean=mean, std=std).fit(val)
    assert pred.threshold_.score == "toy"
    # the top-scored validation inputs are accepted, the lowest rejected
    out = pred.predict_data(val)
    assert out.accepted[out.score.argmax()] and not out.accepted[out.score.argmin()]


def test_threshold_of_another_score_is_refused(model_and_data):
    model, *_ = model_and_data
    with pytest.raises(ThresholdMismatchError, match="fitted for 'es'"):
        Predictor(model, "mds", Threshold(score="es", threshold=-1.0))


def test_threshold_under_another_temperature_is_refused(runs):
    from isomax.runs import Run

    model = Run.load(runs["isomaxplus"]).model
    t = fit_threshold(torch.linspace(-1, 0, 50), score="mds", temperature=1.0)
    pred = Predictor(model, "mds", t)
    apply_temperature(model, 2.0)
    with pytest.raises(ThresholdMismatchError, match="temperature"):
        pred.predict(torch.zeros(1, 1, 28, 28))


def test_unfitted_and_bad_arguments(model_and_data):
    model, *_ = model_and_data
    with pytest.raises(NotFittedError, match="fit"):
        Predictor(model, "mds").predict(torch.zeros(1, 1, 28, 28))
    with pytest.raises(ValueError, match="score"):
        Predictor(model, "entropy")
    with pytest.raises(ValueError, match="mean"):
        Predictor(model, "mds", 0.0).predict(torch.zeros(1, 1, 28, 28, dtype=torch.uint8))
    assert Predictor(model, "mds", -0.5).predict(torch.zeros(2, 1, 28, 28)).accepted.shape == (2,)
