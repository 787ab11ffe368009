import json

import numpy as np
import pytest
import torch

from isomax.deploy import (
    MissingThresholdError,
    Threshold,
    ThresholdMismatchError,
    ThresholdModule,
    default_score,
    fit_threshold,
    load_threshold,
)
from isomax.metrics import roc_sweep


@pytest.mark.parametrize(
    "n, target, seed",
    [
        pytest.param(1000, 0.95, 0, id="n1000-tpr95"),
        pytest.param(37, 0.95, 1, id="n37-tpr95"),
        pytest.param(500, 0.8, 2, id="n500-tpr80"),
        pytest.param(10, 1.0, 3, id="n10-tpr100"),
    ],
)
def test_threshold_keeps_the_tpr_that_the_tnr_at_tpr95_metric_picks(n, target, seed):
    rng = np.random.default_rng(seed)
    s_in, s_out = rng.normal(size=n), rng.normal(-1, size=50)
    t = fit_threshold(s_in, target, score="mds")
    tp, _ = roc_sweep(s_in, s_out)
    kept = tp / n
    i = int(np.argmin(np.abs(kept - target)))  # the rule of isomax.metrics.ood_metrics
    # the metric's operating point keeps exactly the in-distribution samples the threshold accepts
    assert int((s_in >= t.threshold).sum()) == tp[i]
    assert t.val_tpr == pytest.approx(np.mean(s_in >= t.threshold))
    assert abs(t.val_tpr - target) <= 0.5 / n + 1e-12
    assert t.n == n and t.target_tpr == target and t.score == "mds"


def test_higher_scores_are_accepted():
    t = fit_threshold(torch.arange(100.0), 0.9)
    accepted = t.accept(torch.tensor([-1.0, 9.0, 10.0, 99.0]))
    assert accepted.tolist() == [False, False, True, True]
    assert t.threshold == 10.0 and t.val_tpr == 0.9


def test_ties_accept_more_than_the_target_and_say_so():
    t = fit_threshold(np.zeros(50), 0.95)
    assert t.val_tpr == 1.0


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.1, float("nan")])
def test_target_tpr_outside_0_1_is_refused(bad):
    with pytest.raises(ValueError, match="target_tpr"):
        fit_threshold([1.0, 2.0], bad)


def test_non_finite_scores_are_refused():
    with pytest.raises(ValueError, match="finite"):
        fit_threshold([1.0, float("nan")], 0.95)


def test_json_round_trip(tmp_path):
    t = fit_threshold(np.linspace(0, 1, 101), 0.95, score="es", temperature=1.5, extra={"split": "validation"})
    path = t.save(tmp_path)
    assert path.name == "threshold.json"
    assert json.loads(path.read_text())["score"] == "es"
    assert load_threshold(tmp_path) == t


def test_state_dict_round_trip():
    t = fit_threshold(
        np.linspace(0, 1, 101),
        0.95,
        score="mds",
        temperature=1.0,
        fingerprint="ab" * 32,
        loss="isomaxplus",
        input=dict(channels=1, height=28, width=28, mean=[0.5], std=[0.25]),
    )
    src = torch.nn.Sequential(ThresholdModule(t))
    dst = torch.nn.Sequential(ThresholdModule())
    dst.load_state_dict(src.state_dict())
    back = dst[0].to_threshold()
    assert (back.score, back.threshold, back.target_tpr, back.val_tpr, back.n) == (
        t.score,
        t.threshold,
        t.target_tpr,
        t.val_tpr,
        t.n,
    )
    assert (back.fingerprint, back.loss, back.input, back.temperature) == (t.fingerprint, t.loss, t.input, 1.0)
    assert dst[0](torch.tensor([t.threshold, t.threshold - 0.01])).tolist() == [True, False]


def test_missing_threshold_says_how_to_fit_one(tmp_path):
    with pytest.raises(MissingThresholdError, match="isomax threshold"):
        load_threshold(tmp_path)


def test_threshold_of_another_score_or_temperature_is_refused():
    t = Threshold(score="mds", threshold=-0.5, temperature=1.0)
    with pytest.raises(ThresholdMismatchError, match="fitted for 'mds'"):
        t.check_score("es")
    with pytest.raises(ThresholdMismatchError, match="temperature"):
        t.check_score("mds", temperature=2.0)
    assert t.check_score("mds", temperature=1.0) is t


@pytest.mark.parametrize(
    "loss, score", [("isomaxplus", "mds"), ("isomax+", "mds"), ("isomax", "es"), ("softmax", "es")]
)
def test_default_score_per_loss(loss, score):
    assert default_score(loss) == score
