"""OOD metrics against scikit-learn and against a plain-loop transcription of Lee et al.'s sweep."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from isomax.metrics import METRIC_NAMES, ood_metrics

TOL = 1e-12
# tied scores are exercised on purpose below; the TieWarning itself is tested in section (d)
pytestmark = pytest.mark.filterwarnings("ignore::isomax.metrics.TieWarning")


# ---------------------------------------------------------------------------------------------
# Independent reference: a loop transcription of calculate_log.py (Lee et al. 2018), see METHOD.md
# ---------------------------------------------------------------------------------------------
def _loop_trapezoid(y: list[float], x: list[float]) -> float:
    area = 0.0
    for i in range(1, len(x)):
        area += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2.0
    return area


def loop_metrics(scores_in, scores_out) -> dict[str, float]:
    known = sorted(float(s) for s in scores_in)
    novel = sorted(float(s) for s in scores_out)
    num_k, num_n = len(known), len(novel)
    tp, fp = [num_k], [num_n]
    k = n = 0
    for _ in range(num_k + num_n):
        if k == num_k:  # only out-distribution samples left
            n += 1
            tp.append(tp[-1])
            fp.append(fp[-1] - 1)
        elif n == num_n:  # only in-distribution samples left
            k += 1
            tp.append(tp[-1] - 1)
            fp.append(fp[-1])
        elif novel[n] < known[k]:  # remove the out-distribution sample
            n += 1
            tp.append(tp[-1])
            fp.append(fp[-1] - 1)
        else:  # remove the in-distribution sample (also on ties)
            k += 1
            tp.append(tp[-1] - 1)
            fp.append(fp[-1])

    # TNR at TPR 95: first index minimising |tpr - 0.95|
    best, i95 = math.inf, 0
    for i in range(len(tp)):
        gap = abs(tp[i] / num_k - 0.95)
        if gap < best:
            best, i95 = gap, i
    tnr95 = 1.0 - fp[i95] / num_n
    fpr95 = fp[i95] / num_n

    tpr = [1.0] + [t / num_k for t in tp] + [0.0]
    fpr = [1.0] + [f / num_n for f in fp] + [0.0]
    auroc = -_loop_trapezoid([1.0 - f for f in fpr], tpr)

    dtacc = 0.0
    for t, f in zip(tp, fp):
        dtacc = max(dtacc, 0.5 * (t / num_k + 1.0 - f / num_n))

    # AUIN: precision tp/(tp+fp) against TPR
    xs, ys = [1.0], [0.5]
    for t, f in zip(tp, fp):
        if t + f > 0:
            xs.append(t / num_k)
            ys.append(t / (t + f))
    xs.append(0.0)
    ys.append(0.0)
    auin = -_loop_trapezoid(ys, xs)

    # AUOUT: out-distribution positive, precision against 1 - fpr
    xs, ys = [0.0], [0.0]
    for t, f in zip(tp, fp):
        denom = (num_k - t) + (num_n - f)
        if denom > 0:
            xs.append(1.0 - f / num_n)
            ys.append((num_n - f) / denom)
    xs.append(1.0)
    ys.append(0.5)
    auout = _loop_trapezoid(ys, xs)

    return {"tnr_at_tpr95": tnr95, "auroc": auroc, "dtacc": dtacc, "auin": auin, "auout": auout, "fpr_at_tpr95": fpr95}


def _assert_metrics_close(got: dict, want: dict, tol: float = TOL) -> None:
    for key in METRIC_NAMES:
        assert abs(got[key] - want[key]) <= tol, f"{key}: {got[key]!r} != {want[key]!r}"


def test_loop_reference_on_hand_computed_example():
    # in = [0.9, 0.8, 0.7], out = [0.1, 0.75]: 5 of 6 (in, out) pairs ordered correctly
    ref = loop_metrics([0.9, 0.8, 0.7], [0.1, 0.75])
    assert ref["auroc"] == pytest.approx(5 / 6, abs=1e-15)
    assert ref["dtacc"] == pytest.approx(0.5 * (2 / 3 + 1.0), abs=1e-15)


# ---------------------------------------------------------------------------------------------
# (a) AUROC == sklearn on tie-free data
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "n_in, n_out, seed",
    [
        pytest.param(1, 1, 0, id="1x1"),
        pytest.param(2, 3, 1, id="2x3"),
        pytest.param(10, 7, 2, id="10x7"),
        pytest.param(100, 100, 3, id="100x100"),
        pytest.param(1000, 250, 4, id="1000x250"),
        pytest.param(37, 2000, 5, id="37x2000"),
    ],
)
def test_auroc_matches_sklearn_without_ties(n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    s_in = rng.normal(0.5, 1.0, n_in)
    s_out = rng.normal(0.0, 1.0, n_out)
    assert np.unique(np.concatenate([s_in, s_out])).size == n_in + n_out  # tie-free
    labels = np.concatenate([np.ones(n_in), np.zeros(n_out)])
    expected = roc_auc_score(labels, np.concatenate([s_in, s_out]))
    assert ood_metrics(s_in, s_out)["auroc"] == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# (b) every metric == the loop transcription, with and without ties
# ---------------------------------------------------------------------------------------------
def _case(kind: str, n_in: int, n_out: int, seed: int):
    rng = np.random.default_rng(seed)
    if kind == "continuous":
        return rng.normal(0.7, 1.0, n_in), rng.normal(0.0, 1.0, n_out)
    if kind == "rounded":
        return np.round(rng.normal(0.7, 1.0, n_in), 1), np.round(rng.normal(0.0, 1.0, n_out), 1)
    if kind == "integer":
        return rng.integers(0, 5, n_in).astype(float), rng.integers(-1, 4, n_out).astype(float)
    if kind == "all_equal":
        return np.full(n_in, 0.25), np.full(n_out, 0.25)
    if kind == "perfect":
        return rng.uniform(2, 3, n_in), rng.uniform(0, 1, n_out)
    if kind == "reversed":
        return rng.uniform(0, 1, n_in), rng.uniform(2, 3, n_out)
    raise AssertionError(kind)


_SWEEP_CASES = [
    pytest.param("continuous", 200, 200, 0, id="continuous-200x200"),
    pytest.param("continuous", 333, 71, 1, id="continuous-333x71"),
    pytest.param("continuous", 1, 1, 2, id="continuous-1x1"),
    pytest.param("continuous", 1, 50, 3, id="continuous-1x50"),
    pytest.param("continuous", 50, 1, 4, id="continuous-50x1"),
    pytest.param("rounded", 500, 300, 5, id="rounded-500x300"),
    pytest.param("rounded", 20, 1000, 6, id="rounded-20x1000"),
    pytest.param("integer", 100, 60, 7, id="integer-100x60"),
    pytest.param("integer", 1, 1, 8, id="integer-1x1"),
    pytest.param("integer", 3, 2, 9, id="integer-3x2"),
    pytest.param("all_equal", 40, 17, 10, id="all-equal-40x17"),
    pytest.param("all_equal", 1, 1, 11, id="all-equal-1x1"),
    pytest.param("perfect", 30, 20, 12, id="perfect-30x20"),
    pytest.param("reversed", 30, 20, 13, id="reversed-30x20"),
]


@pytest.mark.parametrize("kind, n_in, n_out, seed", _SWEEP_CASES)
def test_all_metrics_match_loop_transcription(kind, n_in, n_out, seed):
    s_in, s_out = _case(kind, n_in, n_out, seed)
    _assert_metrics_close(ood_metrics(s_in, s_out), loop_metrics(s_in, s_out))


def test_ties_are_broken_in_distribution_first():
    # All scores equal: the in-distribution samples are removed first, so TPR drops to 0 while
    # every out sample is still accepted: AUROC 0 (not 0.5), as in calculate_log.py.
    m = ood_metrics([1.0, 1.0], [1.0, 1.0, 1.0])
    assert m["auroc"] == pytest.approx(0.0, abs=TOL)
    assert m["tnr_at_tpr95"] == pytest.approx(0.0, abs=TOL)
    _assert_metrics_close(m, loop_metrics([1.0, 1.0], [1.0, 1.0, 1.0]))


@settings(max_examples=50, deadline=None)
@given(
    s_in=st.lists(st.integers(-6, 6), min_size=1, max_size=25),
    s_out=st.lists(st.integers(-6, 6), min_size=1, max_size=25),
)
def test_property_matches_loop_transcription_on_integer_scores(s_in, s_out):
    _assert_metrics_close(ood_metrics(s_in, s_out), loop_metrics(s_in, s_out))


# ---------------------------------------------------------------------------------------------
# (c) input types
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda a: a, id="numpy-float64"),
        pytest.param(lambda a: a.astype(np.float32), id="numpy-float32"),
        pytest.param(lambda a: torch.from_numpy(a), id="torch-float64"),
        pytest.param(lambda a: torch.from_numpy(a).float(), id="torch-float32"),
        pytest.param(lambda a: torch.from_numpy(a).float().requires_grad_(), id="torch-requires-grad"),
        pytest.param(lambda a: a.tolist(), id="list"),
        pytest.param(lambda a: tuple(a.tolist()), id="tuple"),
    ],
)
def test_accepts_numpy_torch_and_sequences(convert):
    rng = np.random.default_rng(0)
    # Values exactly representable in float32, so every conversion sees the same numbers.
    s_in = rng.integers(0, 1000, 64).astype(np.float64) / 8
    s_out = rng.integers(-500, 500, 48).astype(np.float64) / 8
    expected = loop_metrics(s_in, s_out)
    _assert_metrics_close(ood_metrics(convert(s_in), convert(s_out)), expected)


# ---------------------------------------------------------------------------------------------
# (d) invariance under strictly increasing transforms
# ---------------------------------------------------------------------------------------------
_TRANSFORMS = {
    "affine_3x_plus_1": lambda x: 3.0 * x + 1.0,  # exact in float64 for small integers
    "cube": lambda x: x**3,  # exact in float64 for small integers
    "exp": np.exp,  # deterministic: equal inputs stay equal, distinct integers stay ordered
    "shift_scale_half": lambda x: 0.5 * x - 7.0,
}


@settings(max_examples=50, deadline=None)
@given(
    s_in=st.lists(st.integers(-20, 20), min_size=1, max_size=30),
    s_out=st.lists(st.integers(-20, 20), min_size=1, max_size=30),
    name=st.sampled_from(sorted(_TRANSFORMS)),
)
def test_property_invariant_under_increasing_transform(s_in, s_out, name):
    transform = _TRANSFORMS[name]
    a_in, a_out = np.asarray(s_in, dtype=np.float64), np.asarray(s_out, dtype=np.float64)
    before = ood_metrics(a_in, a_out)
    after = ood_metrics(transform(a_in), transform(a_out))
    for key in METRIC_NAMES:
        assert after[key] == before[key], key


def test_decreasing_transform_is_not_invariant():
    # Guard for the property above: the metrics do depend on the order.
    s_in, s_out = np.array([3.0, 4.0, 5.0]), np.array([0.0, 1.0])
    assert ood_metrics(s_in, s_out)["auroc"] != ood_metrics(-s_in, -s_out)["auroc"]


# ---------------------------------------------------------------------------------------------
# (e) sanity and conventions
# ---------------------------------------------------------------------------------------------
def test_perfect_separation():
    # 20 in samples so that TPR = 19/20 = 0.95 is reached exactly (with 4, the first index
    # closest to 0.95 is TPR 1 with every out sample accepted, as in calculate_log.py).
    m = ood_metrics(np.arange(20.0) + 100.0, np.arange(10.0))
    assert m["auroc"] == pytest.approx(1.0, abs=TOL)
    assert m["tnr_at_tpr95"] == pytest.approx(1.0, abs=TOL)
    assert m["fpr_at_tpr95"] == pytest.approx(0.0, abs=TOL)
    assert m["dtacc"] == pytest.approx(1.0, abs=TOL)


def test_reversed_separation():
    m = ood_metrics([0.0, 1.0], [2.0, 3.0, 4.0])
    assert m["auroc"] == pytest.approx(0.0, abs=TOL)
    assert m["tnr_at_tpr95"] == pytest.approx(0.0, abs=TOL)


def test_keys_and_ranges():
    rng = np.random.default_rng(3)
    m = ood_metrics(rng.normal(1, 1, 300), rng.normal(0, 1, 200))
    assert set(m) == set(METRIC_NAMES)
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in m.values())
    assert m["tnr_at_tpr95"] + m["fpr_at_tpr95"] == pytest.approx(1.0, abs=TOL)


def test_out_positive_convention():
    rng = np.random.default_rng(4)
    s_in, s_out = rng.normal(1, 1, 400), rng.normal(0, 1, 300)
    m = ood_metrics(s_in, s_out, out_positive=True)
    assert set(METRIC_NAMES) < set(m)
    for key in ("auroc_out_positive", "fpr_at_tpr95_out_positive", "aupr_in_out_positive", "aupr_out_out_positive"):
        assert key in m and 0.0 <= m[key] <= 1.0
    assert m["auroc_out_positive"] == pytest.approx(m["auroc"], abs=1e-12)
    # out positive with outlier score -s: AUROC is sklearn's with out labelled 1
    labels = np.concatenate([np.zeros(s_in.size), np.ones(s_out.size)])
    assert m["auroc_out_positive"] == pytest.approx(roc_auc_score(labels, -np.concatenate([s_in, s_out])), abs=1e-12)
    # The same sweep with the roles swapped: out samples are the positives, outlier score -s.
    ref = loop_metrics(-s_out, -s_in)
    assert m["fpr_at_tpr95_out_positive"] == pytest.approx(ref["fpr_at_tpr95"], abs=TOL)
    assert m["aupr_out_out_positive"] == pytest.approx(ref["auin"], abs=TOL)
    assert m["aupr_in_out_positive"] == pytest.approx(ref["auout"], abs=TOL)
    # default call does not add them
    assert set(ood_metrics(s_in, s_out)) == set(METRIC_NAMES)


# ---------------------------------------------------------------------------------------------
# (d) ties: the papers' rule is kept; the midpoint rule (sklearn's) is reported when they differ
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_auroc_midpoint_matches_sklearn_with_ties(seed):
    from isomax.metrics import auroc_midpoint

    rng = np.random.default_rng(seed)
    s_in, s_out = rng.integers(0, 5, 60).astype(float), rng.integers(0, 4, 40).astype(float)
    labels = np.concatenate([np.ones(s_in.size), np.zeros(s_out.size)])
    assert auroc_midpoint(s_in, s_out) == pytest.approx(roc_auc_score(labels, np.concatenate([s_in, s_out])), abs=1e-12)


def test_heavy_ties_warn_and_report_both_rules():
    from isomax.metrics import TieWarning

    with pytest.warns(TieWarning, match="auroc_midpoint"):
        m = ood_metrics([1.0, 1.0, 1.0], [1.0, 1.0])
    assert m["auroc"] == 0.0 and m["auroc_midpoint"] == pytest.approx(0.5)  # papers' rule unchanged
    # saturated scores: half the in-distribution ties with every out-distribution sample
    s_in, s_out = np.r_[np.ones(50), np.linspace(0.2, 0.9, 50)], np.ones(50)
    with pytest.warns(TieWarning):
        m = ood_metrics(s_in, s_out)
    assert m["auroc_midpoint"] - m["auroc"] > 0.01


def test_few_ties_add_no_key_and_no_warning():
    import warnings

    rng = np.random.default_rng(5)
    s_in, s_out = np.round(rng.normal(1, 1, 500), 3), np.round(rng.normal(0, 1, 500), 3)  # a handful of ties
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = ood_metrics(s_in, s_out)
    assert set(m) == set(METRIC_NAMES)
