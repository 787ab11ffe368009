import numpy as np
import pytest
import torch
import torch.nn.functional as F

from isomax.deploy import (
    apply_temperature,
    aurc,
    brier_score,
    calibration_metrics,
    expected_calibration_error,
    fit_temperature,
    head_temperature,
    negative_log_likelihood,
    reliability_bins,
    risk_coverage,
    selective_metrics,
)
from isomax.heads import IsoMaxHead, IsoMaxPlusHead
from isomax.scores import SCORES


def _ece_reference(logits, labels, n_bins=15):
    """Guo et al. 2017's loop: equal-width (lo, hi] bins of the confidence."""
    p = torch.softmax(logits.double(), 1).numpy()
    conf, pred = p.max(1), p.argmax(1)
    acc = pred == labels.numpy()
    edges = np.linspace(0, 1, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs(acc[m].mean() - conf[m].mean())
    return ece


@pytest.mark.parametrize("seed, scale", [pytest.param(0, 1.0, id="mild"), pytest.param(1, 5.0, id="overconfident")])
def test_metrics_match_reference_formulas(seed, scale):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(500, 7, generator=g) * scale
    labels = torch.randint(0, 7, (500,), generator=g)
    assert expected_calibration_error(logits, labels) == pytest.approx(_ece_reference(logits, labels), abs=1e-12)
    assert negative_log_likelihood(logits, labels) == pytest.approx(float(F.cross_entropy(logits.double(), labels)))
    p = torch.softmax(logits.double(), 1)
    brier = float(((p - F.one_hot(labels, 7)) ** 2).sum(1).mean())
    assert brier_score(logits, labels) == pytest.approx(brier)
    bins = reliability_bins(logits, labels)
    assert bins["count"].sum() == 500 and len(bins["edges"]) == 16
    assert set(calibration_metrics(logits, labels)) == {"accuracy", "ece", "nll", "brier"}


def test_fit_temperature_recovers_the_temperature_of_overconfident_logits():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(20000, 10, generator=g) * 2
    labels = torch.multinomial(torch.softmax(base, 1), 1, generator=g).squeeze(1)  # calibrated at T = 1
    t = fit_temperature(base * 3, labels)  # logits 3x too sharp
    assert t == pytest.approx(3.0, rel=0.05)
    before = calibration_metrics(base * 3, labels)
    after = calibration_metrics(base * 3 / t, labels)
    assert after["nll"] < before["nll"] and after["ece"] < before["ece"]
    assert after["accuracy"] == before["accuracy"]  # a temperature never changes the predicted class


@pytest.mark.parametrize(
    "make_head",
    [
        pytest.param(lambda: IsoMaxPlusHead(8, 5), id="isomaxplus"),
        pytest.param(lambda: IsoMaxHead(8, 5), id="isomax"),
        pytest.param(lambda: torch.nn.Linear(8, 5), id="linear"),
    ],
)
def test_apply_temperature_divides_the_logits(make_head):
    torch.manual_seed(0)
    model = torch.nn.Module()
    model.head = make_head()
    if isinstance(model.head, IsoMaxHead):
        torch.nn.init.normal_(model.head.prototypes)
    f = torch.randn(64, 8)
    before = model.head(f).detach()
    apply_temperature(model, 2.0)
    assert head_temperature(model) == 2.0
    torch.testing.assert_close(model.head(f).detach(), before / 2.0, rtol=1e-5, atol=1e-6)
    apply_temperature(model, 4.0)  # absolute, not relative
    torch.testing.assert_close(model.head(f).detach(), before / 4.0, rtol=1e-5, atol=1e-6)
    # MDS / max_logit ranking does not change with the temperature; ES and MPS values do
    after = model.head(f).detach()
    assert torch.equal(SCORES["max_logit"](after).argsort(), SCORES["max_logit"](before).argsort())
    assert not torch.allclose(SCORES["es"](after), SCORES["es"](before))


def test_apply_temperature_refuses_non_positive():
    model = torch.nn.Module()
    model.head = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(model, 0.0)


def _risk_reference(scores, correct):
    """Accept the k highest scores; among the ties at the k-th score, the expected share of errors."""
    n = len(scores)
    risks = []
    order = sorted(range(n), key=lambda i: -scores[i])
    for k in range(1, n + 1):
        v = scores[order[k - 1]]
        above = [i for i in range(n) if scores[i] > v]
        tied = [i for i in range(n) if scores[i] == v]
        err_tied = sum(not correct[i] for i in tied) / len(tied)
        errors = sum(not correct[i] for i in above) + (k - len(above)) * err_tied
        risks.append(errors / k)
    return np.arange(1, n + 1) / n, np.array(risks)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_risk_coverage_matches_a_brute_force_loop(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 5, 60).astype(float)  # many ties
    correct = rng.random(60) > 0.3
    cov, risk = risk_coverage(scores, correct)
    ref_cov, ref_risk = _risk_reference(list(scores), list(correct))
    np.testing.assert_allclose(cov, ref_cov)
    np.testing.assert_allclose(risk, ref_risk)
    assert aurc(scores, correct) == pytest.approx(ref_risk.mean())


def test_aurc_of_perfect_constant_and_inverted_rankings():
    correct = np.array([True] * 8 + [False] * 2)
    perfect = correct.astype(float)
    assert risk_coverage(perfect, correct)[1][-1] == pytest.approx(0.2)
    assert aurc(np.zeros(10), correct) == pytest.approx(0.2)  # constant score: the whole set's risk
    assert aurc(perfect, correct) < aurc(np.zeros(10), correct) < aurc(-perfect, correct)


def test_selective_metrics_per_score():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 4, generator=g) * 3
    labels = torch.randint(0, 4, (300,), generator=g)
    out = selective_metrics(logits, labels)
    assert set(out) == set(SCORES)
    for rec in out.values():
        assert rec["aurc"] >= rec["aurc_optimal"] - 1e-12
        assert rec["e_aurc"] == pytest.approx(rec["aurc"] - rec["aurc_optimal"])
        assert 0 <= rec["risk_at_coverage_0.95"] <= 1
    only = selective_metrics(logits, labels, {"mine": -SCORES["mps"](logits)})
    assert only["mine"]["aurc"] > out["mps"]["aurc"]  # the inverted score ranks errors first


def test_figures(tmp_path):
    from isomax.plots import reliability_diagram, risk_coverage_figure

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(400, 5, generator=g) * 4
    labels = torch.randint(0, 5, (400,), generator=g)
    t = fit_temperature(logits, labels)
    path = reliability_diagram(
        reliability_bins(logits, labels),
        tmp_path / "rel.png",
        title="test",
        bins_after=reliability_bins(logits / t, labels),
        ece=expected_calibration_error(logits, labels),
        ece_after=expected_calibration_error(logits / t, labels),
    )
    assert path.stat().st_size > 1000
    correct = (logits.argmax(1) == labels).numpy()
    curves = []
    for score in ("mps", "es"):
        values = SCORES[score](logits)
        cov, risk = risk_coverage(values, correct)
        curves.append(dict(loss="softmax", score=score, coverage=cov, risk=risk, aurc=aurc(values, correct)))
    assert risk_coverage_figure(curves, tmp_path / "rc.png", title="test").stat().st_size > 1000


def test_deploy_summary_of_a_run(runs):
    from isomax.deploy.summary import deploy_summary

    s = deploy_summary(runs["isomax"], device="cpu")
    assert set(s["scores"]) == {"mps", "es", "mds", "energy", "max_logit"}
    for rec in s["scores"].values():
        assert rec["val_tpr"] >= 0.95 - 1 / s["n_val"] and 0 <= rec["test_tpr"] <= 1  # more only with ties
        assert rec["aurc"] >= rec["aurc_optimal"] - 1e-12
    cal = s["calibration"]
    assert cal["temperature"] > 0 and cal["after"]["nll"] <= cal["before"]["nll"] + 1e-9
    assert cal["after"]["accuracy"] == cal["before"]["accuracy"] == s["accuracy"]
    # the calibrated scores: MDS and max_logit are only divided by T, so they accept the same test inputs
    assert set(s["calibrated_scores"]) == set(s["scores"])
    for name in ("mds", "max_logit"):
        assert s["calibrated_scores"][name]["test_tpr"] == s["scores"][name]["test_tpr"]
        assert s["calibrated_scores"][name]["aurc"] == pytest.approx(s["scores"][name]["aurc"], abs=1e-12)
