"""Typed run records (isomax.records): JSON round trip, legacy Outlier Exposure records, validation."""

import json
from pathlib import Path

import pytest

from isomax.records import METRICS, RunRecord, as_records, read_records, write_records

RESULTS = sorted((Path(__file__).resolve().parents[1] / "docs" / "results").glob("*/results.json"))


def base(**changes):
    d = dict(
        in_dataset="fashion-mnist",
        out_dataset="mnist",
        model="cnn-28",
        loss="softmax",
        score="es",
        seed=0,
        accuracy=0.9,
        tnr_at_tpr95=0.5,
        auroc=0.9,
        dtacc=0.8,
        auin=0.9,
        auout=0.85,
        fpr_at_tpr95=0.5,
    )
    d.update(changes)
    return d


def test_round_trip_keeps_every_field(tmp_path):
    r = RunRecord.from_dict(
        base(conversion="grey", params={"temperature": 10}, epochs=3, eval_limit=2000, n_in=200, n_out=20)
        | dict(auroc_out_positive=0.8, fpr_at_tpr95_out_positive=0.4, aupr_in_out_positive=0.7)
    )
    assert r.method == "standard" and r.params == {"temperature": 10} and r.eval_limit == 2000
    assert (r.n_in, r.n_out, r.auroc_out_positive, r.aupr_out_out_positive) == (200, 20, 0.8, None)
    assert RunRecord.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    write_records([r, base(seed=1)], tmp_path / "results.json")
    back = read_records(tmp_path / "results.json")
    assert back[0] == r and back[1].seed == 1 and back[1].epochs is None
    assert "epochs" not in back[1].to_dict() and set(METRICS) <= set(back[1].to_dict())


def test_legacy_oe_score_reads_as_method_oe():
    r = RunRecord.from_dict(base(score="oe", outlier_data="tinyimagenet-resize"))
    assert (r.loss, r.method, r.score, r.outlier_data) == ("softmax", "oe", "es", "tinyimagenet-resize")
    assert r.to_dict()["score"] == "es" and r.to_dict()["method"] == "oe"
    assert r.run_key == ("fashion-mnist", "cnn-28", "softmax", "oe", 0)
    assert r.key != RunRecord.from_dict(base()).key  # the OE model is another run than plain SoftMax


def test_bad_records_are_refused(tmp_path):
    with pytest.raises(ValueError, match="Unknown record field"):
        RunRecord.from_dict(base(colour="red"))
    with pytest.raises(ValueError, match="Expected record fields"):
        RunRecord.from_dict({"loss": "softmax"})
    with pytest.raises(ValueError, match="method"):
        RunRecord.from_dict(base(method="mixup"))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="list of records"):
        read_records(tmp_path / "bad.json")


@pytest.mark.parametrize("path", RESULTS, ids=[p.parent.name for p in RESULTS])
def test_published_results_read_and_round_trip(path):
    raw = json.loads(path.read_text())
    records = read_records(path)
    assert len(records) == len(raw)
    for d, r in zip(raw, records):
        assert r.score != "oe" and (r.method == "oe") == (d["score"] == "oe")
        back = r.to_dict()
        assert {k: v for k, v in back.items() if k not in ("method", "score")} == {
            k: v for k, v in d.items() if k not in ("method", "score")
        }
        assert d.get("method", r.method) == r.method  # files written since the field exists carry it
    assert as_records(records) == records


def test_role_is_recorded_or_derived_and_checked():
    assert RunRecord.from_dict(base()).ood_role == "near"  # Fashion-MNIST vs MNIST, derived from isomax.data.roles
    assert RunRecord.from_dict(base(out_dataset="uniform")).get("role") == "noise"
    r = RunRecord.from_dict(base(role="far"))  # a recorded role wins and survives the round trip
    assert (
        r.ood_role == "far"
        and RunRecord.from_dict(r.to_dict()) == r
        and "role" not in RunRecord.from_dict(base()).to_dict()
    )
    with pytest.raises(ValueError, match="role"):
        RunRecord.from_dict(base(role="medium"))
