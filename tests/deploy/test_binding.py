"""A threshold and a calibration belong to one model: fingerprint, loss, input, temperature, strict files
(the probes of issue 19, "silently wrong" and "tracebacks" on threshold.json / calibration.json / Predictor)."""

import json
import shutil

import numpy as np
import pytest
import torch

from isomax.deploy import Predictor, Threshold, ThresholdMismatchError, fit_threshold, load_threshold
from isomax.deploy._files import model_fingerprint
from isomax.deploy import calibrate_run, fit_run_threshold
from isomax.runs import Run


def _quiet(_):
    pass


@pytest.fixture
def fitted(fresh_run):
    run_dir = fresh_run("isomaxplus")
    fit_run_threshold(run_dir, progress=False, log=_quiet)
    return run_dir


def _edit(run_dir, **changes):
    path = run_dir / "threshold.json"
    d = json.loads(path.read_text())
    d.update(changes)
    path.write_text(json.dumps(d))


def test_threshold_records_the_model_it_belongs_to(fitted):
    t = load_threshold(fitted)
    run = Run.load(fitted)
    assert t.fingerprint == model_fingerprint(run.model) == run.fingerprint and len(t.fingerprint) == 64
    assert t.input == run.input.description()
    assert t.loss == "isomaxplus" and t.temperature == 1.0
    assert t.input == {
        "channels": 1,
        "height": 28,
        "width": 28,
        "mean": [pytest.approx(0.2860, abs=1e-3)],
        "std": [pytest.approx(0.3530, abs=1e-3)],
    }


def test_fingerprint_is_of_the_weights_and_survives_save_and_load(tmp_path):
    from isomax.models import create_model

    m = create_model("cnn-28", num_classes=10, head="isomaxplus", in_channels=1)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    torch.save(state, tmp_path / "s.pt")
    assert model_fingerprint(m) == model_fingerprint(torch.load(tmp_path / "s.pt", weights_only=True))
    with torch.no_grad():
        next(m.parameters()).view(-1)[0] += 1e-6
    assert model_fingerprint(m) != model_fingerprint(state)


def test_threshold_copied_from_another_run_is_refused(fresh_run):
    # issue 19: a SoftMax run's threshold.json copied into an IsoMax run was used (0 of 600 accepted)
    softmax, isomax = fresh_run("softmax"), fresh_run("isomax")
    fit_run_threshold(softmax, progress=False, log=_quiet)
    shutil.copy(softmax / "threshold.json", isomax / "threshold.json")
    with pytest.raises(
        ThresholdMismatchError, match=rf"{isomax}/threshold.json: .*another model.*isomax threshold {isomax}"
    ):
        Run.load(isomax).threshold()


def test_threshold_of_the_same_weights_under_another_loss_is_refused(fitted):
    _edit(fitted, loss="softmax")
    with pytest.raises(ThresholdMismatchError, match="loss 'isomaxplus'.*'softmax'.*isomax threshold"):
        Run.load(fitted).threshold()


@pytest.mark.parametrize(
    "changes, match",
    [
        pytest.param({"temperature": None}, "temperature", id="temperature-null"),
        pytest.param({"fingerprint": None}, "does not record the model", id="no-fingerprint"),
        pytest.param(
            {"input": {"channels": 3, "height": 28, "width": 28, "mean": [0.5] * 3, "std": [0.5] * 3}},
            "input",
            id="other-input",
        ),
    ],
)
def test_threshold_missing_or_wrong_binding_is_refused(fitted, changes, match):
    _edit(fitted, **changes)
    with pytest.raises(ThresholdMismatchError, match=match):
        Run.load(fitted).threshold()


BAD_THRESHOLD_FILES = [
    pytest.param('{"score": "mds", "threshold": NaN, "temperature": 1.0}', "finite", id="threshold-nan"),
    pytest.param('{"score": "mds", "threshold": -Infinity, "temperature": 1.0}', "finite", id="threshold-neg-inf"),
    pytest.param('{"score": "mds", "threshold": Infinity, "temperature": 1.0}', "finite", id="threshold-inf"),
    pytest.param('{"score": "mds", "threshold": true, "temperature": 1.0}', "number.*bool", id="threshold-bool"),
    pytest.param('{"score": "mds", "threshold": "0.5", "temperature": 1.0}', "number.*str", id="threshold-string"),
    pytest.param('{"score": "mds", "threshold": null, "temperature": 1.0}', "number.*NoneType", id="threshold-null"),
    pytest.param('{"score": "mds", "threshold": 0.1, "temperature": "x"}', "temperature", id="temperature-string"),
    pytest.param(
        '{"score": "mds", "threshold": 0.1, "temperature": -1}', "temperature.*positive", id="temperature-negative"
    ),
    pytest.param('{"score": ["mds"], "threshold": 0.1, "temperature": 1.0}', "score", id="score-list"),
    pytest.param('{"score": "entropy", "threshold": 0.1, "temperature": 1.0}', "score.*one of", id="score-unknown"),
    pytest.param('{"score": "mds", "threshold": 0.1, "n": 2.5}', "`n`", id="n-float"),
    pytest.param('{"score": "mds", "threshold": 0.1, "target_tpr": 2}', "target_tpr", id="target-tpr-2"),
    pytest.param('["mds", 0.1]', "JSON object", id="list"),
    pytest.param('{"score": "mds"', "not valid JSON", id="truncated"),
    pytest.param("[" * 200_000 + "]" * 200_000, "nested too deeply|larger than", id="nested-200k"),
    pytest.param('{"score": "mds", "threshold": 0.1, "extra": ' + "[" * 20 + "]" * 20 + "}", "nested", id="nested-20"),
    pytest.param(
        '{"score": "mds", "threshold": 0.1, "extra": {"x": "' + "a" * 2_000_000 + '"}}',
        "larger than",
        id="two-megabytes",
    ),
    pytest.param(b"\xff\xfe\x00garbage", "not valid JSON", id="not-utf8"),
]


@pytest.mark.parametrize("text, match", BAD_THRESHOLD_FILES)
def test_bad_threshold_file_is_one_line_naming_the_file(fitted, text, match):
    path = fitted / "threshold.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValueError, match=match) as info:
        load_threshold(fitted)
    msg = str(info.value)
    assert msg.startswith(str(path)) and "\n" not in msg and f"isomax threshold {fitted}" in msg


BAD_CALIBRATION_FILES = [
    pytest.param('{"n_val": 3}', "temperature", id="no-temperature"),
    pytest.param("[1.5]", "JSON object", id="list"),
    pytest.param('{"temperature": 1e300}', "temperature", id="temperature-1e300"),
    pytest.param('{"temperature": NaN}', "finite", id="temperature-nan"),
    pytest.param('{"temperature": true}', "number", id="temperature-bool"),
    pytest.param('{"temperature": 0}', "positive", id="temperature-zero"),
    pytest.param('{"temperature": 1.5}', "does not record its model", id="no-fingerprint"),
    pytest.param('{"temperature": 1.5, "fingerprint": "00"}', "another one", id="other-model"),
    pytest.param("{" * 100_000, "nested too deeply|not valid JSON", id="nested"),
]


@pytest.mark.parametrize("text, match", BAD_CALIBRATION_FILES)
def test_bad_calibration_file_is_one_line_naming_the_file(fitted, text, match):
    path = fitted / "calibration.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        Run.load(fitted)
    msg = str(info.value)
    assert msg.startswith(str(path)) and "\n" not in msg and f"isomax calibrate {fitted}" in msg


def test_calibration_records_its_model_and_is_applied(fresh_run):
    run_dir = fresh_run("softmax")
    cal = calibrate_run(run_dir, device="cpu", progress=False, log=_quiet)
    run = Run.load(run_dir)
    model = run.model
    assert cal.fingerprint == run.fingerprint and cal.loss == "softmax" and run.calibration == cal
    assert model.head.folded_temperature == cal.temperature
    assert model_fingerprint(model) == cal.fingerprint  # the weights' identity before the fold


def test_saving_a_threshold_without_its_temperature_is_refused(tmp_path):
    t = fit_threshold(np.linspace(0, 1, 200), 0.95, score="mds")
    with pytest.raises(ValueError, match="temperature"):
        t.save(tmp_path)
    with pytest.raises(ThresholdMismatchError, match="temperature"):
        t.check_score("mds", temperature=1.0)  # a record without its temperature never skips the check


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), True, np.float64("nan")])
def test_threshold_value_must_be_finite_number(bad):
    with pytest.raises((ValueError, TypeError)):
        Threshold(score="mds", threshold=bad)


@pytest.fixture(scope="module")
def model(runs):
    return Run.load(runs["isomaxplus"]).model


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), True, "0.5"])
def test_predictor_threshold_must_be_a_finite_number(model, bad):
    with pytest.raises((ValueError, TypeError), match="threshold"):
        Predictor(model, "mds", bad)


def test_predictor_refuses_a_threshold_of_another_model(model, runs):
    other = Run.load(runs["isomax"]).model
    t = fit_threshold(np.linspace(-1, 0, 200), score="mds", temperature=1.0, fingerprint=model_fingerprint(other))
    with pytest.raises(ThresholdMismatchError, match="another model"):
        Predictor(model, "mds", t)
    t = fit_threshold(np.linspace(-1, 0, 200), score="mds", temperature=1.0, fingerprint=model_fingerprint(model))
    assert Predictor(model, "mds", t).threshold_ is t


def test_predictor_fit_records_the_fingerprint(model, runs):
    from isomax.data import normalization

    val = Run.load(runs["isomaxplus"]).val_data()
    mean, std = normalization("fashion-mnist")
    with pytest.warns(UserWarning, match="only 60 validation scores"):
        p = Predictor(model, "mds", mean=mean, std=std).fit(val)
    assert p.threshold_.fingerprint == model_fingerprint(model)
    assert p.threshold_.input == dict(channels=1, height=28, width=28, mean=[mean[0]], std=[std[0]])
    assert Predictor(model, "mds", p.threshold_, mean=mean, std=std).threshold_ is p.threshold_
    with pytest.raises(ThresholdMismatchError, match="input"):  # the same threshold under another normalisation
        Predictor(model, "mds", p.threshold_, mean=(0.5,), std=(0.5,))


BAD_BATCHES = [
    pytest.param(lambda: torch.zeros(0, 1, 28, 28, dtype=torch.uint8), "empty batch", id="empty-uint8"),
    pytest.param(lambda: torch.zeros(2, 1, 28, 28, dtype=torch.float16), "dtype torch.float16", id="float16"),
    pytest.param(lambda: torch.zeros(2, 1, 28, 28, dtype=torch.int32), "dtype torch.int32", id="int32"),
    pytest.param(lambda: torch.zeros(1, 28, 28, dtype=torch.uint8), "shape", id="3d"),
    pytest.param(lambda: np.zeros((1, 1, 28, 28), dtype=np.uint8), "torch.Tensor", id="numpy"),
]


@pytest.mark.parametrize("make, match", BAD_BATCHES)
def test_predictor_bad_batches_are_one_line_errors(model, make, match):
    p = Predictor(model, "mds", -0.5, mean=(0.5,), std=(0.25,))
    with pytest.raises((ValueError, TypeError), match=match) as info:
        p.predict(make())
    assert "\n" not in str(info.value)


def test_predictor_mean_of_three_channels_on_a_grey_batch(model):
    p = Predictor(model, "mds", -0.5, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    with pytest.raises(ValueError, match="3 channel.*`mean`.*1 channel"):
        p.predict(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
