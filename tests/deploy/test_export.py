"""The exported graph, run with onnxruntime alone, decides as `isomax predict` does."""

import csv
import json

import numpy as np
import pytest

from conftest import write_images
from isomax.deploy import fit_run_threshold, read_images, run_predict
from isomax.deploy.export import export_onnx

ort = pytest.importorskip("onnxruntime")


@pytest.mark.parametrize(
    "loss, exporter",
    [
        # the IsoMax+ head is not torch.export-able yet (legacy today); dynamo once it is
        pytest.param("isomaxplus", ("legacy", "dynamo"), id="isomaxplus-auto"),
        pytest.param("softmax", ("dynamo",), id="softmax-auto-dynamo"),
        pytest.param("isomax", ("legacy",), id="isomax-forced-legacy"),
    ],
)
def test_onnx_graph_matches_predict(fresh_run, tmp_path, loss, exporter):
    run_dir = fresh_run(loss)
    fit_run_threshold(run_dir, progress=False, log=lambda _: None)
    lines = []
    forced = "legacy" if loss == "isomax" else "auto"
    meta = export_onnx(run_dir, tmp_path / "model.onnx", exporter=forced, log=lines.append)
    assert meta["exporter"].split()[1] in exporter
    assert any(meta["exporter"] in line for line in lines)

    paths = [str(p) for p in write_images(tmp_path / "images", n=9, seed=1)]
    run_predict(run_dir, paths, tmp_path / "p.csv", progress=False, log=lambda _: None)
    with open(tmp_path / "p.csv", newline="") as fh:
        rows = {r["path"]: r for r in csv.DictReader(fh)}

    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    props = session.get_modelmeta().custom_metadata_map
    names = json.loads(props["class_names"])
    c, h, w = json.loads(props["input_size"])
    assert (c, h, w) == (1, 28, 28) and props["input_layout"] == "NHWC uint8" and len(names) == 10
    assert props["score"] == ("mds" if loss == "isomaxplus" else "es")
    assert float(props["threshold"]) == pytest.approx(float(next(iter(rows.values()))["threshold"]))
    assert {"mean", "std", "target_tpr", "isomax_version"} <= set(props)

    images, ok, errors, _ = read_images(paths, (c, h, w))  # the conversion `predict` applies
    assert not errors
    nhwc = images.permute(0, 2, 3, 1).numpy()
    logits, label, probability, score, accepted = session.run(None, {"images": nhwc})
    assert label.dtype == np.int64 and accepted.dtype == np.bool_ and logits.shape == (len(ok), 10)
    for k, i in enumerate(ok):
        row = rows[paths[i]]
        assert names[label[k]] == row["class"]
        assert accepted[k] == (row["accepted"] == "true")
        assert score[k] == pytest.approx(float(row["score"]), abs=1e-5)
        assert probability[k] == pytest.approx(float(row["probability"]), abs=1e-5)
    # the batch dimension is dynamic
    assert session.run(["score"], {"images": nhwc[:1]})[0].shape == (1,)


def test_export_needs_a_threshold(fresh_run, tmp_path):
    from isomax.deploy import MissingThresholdError

    with pytest.raises(MissingThresholdError, match="isomax threshold"):
        export_onnx(fresh_run("isomax"), tmp_path / "m.onnx", log=lambda _: None)


@pytest.mark.parametrize("loss, temperature", [("isomaxplus", 0.01), ("isomax", 0.1), ("softmax", 0.5)])
def test_calibrated_onnx_scores_match_predict_to_float32_precision(fresh_run, tmp_path, loss, temperature):
    # issue 19: a calibrated graph's scores differed from predict by 9.8e-5 where the README said 1e-5.
    # Both compute in float32: the guarantee is relative, |onnx - predict| <= 1e-5 * max(1, |score|)
    # (a temperature of 0.01 makes IsoMax+ scores about -135: 3e-5 apart in absolute terms, 2e-7 relative).
    from isomax.deploy.calibration import Calibration
    from isomax.runs import Run

    run_dir = fresh_run(loss)
    Calibration(temperature, 60, {}, {}, fingerprint=Run.load(run_dir).fingerprint, loss=loss).save(run_dir)
    fit_run_threshold(run_dir, progress=False, log=lambda _: None)
    export_onnx(run_dir, tmp_path / "m.onnx", log=lambda _: None)
    paths = [str(p) for p in write_images(tmp_path / "images", n=9, seed=1)]
    run_predict(run_dir, paths, tmp_path / "p.csv", progress=False, log=lambda _: None)
    with open(tmp_path / "p.csv", newline="") as fh:
        rows = {r["path"]: r for r in csv.DictReader(fh)}
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert float(session.get_modelmeta().custom_metadata_map["temperature"]) == pytest.approx(temperature, rel=1e-6)
    images, ok, _, _ = read_images(paths, (1, 28, 28))
    _, _, probability, score, accepted = session.run(None, {"images": images.permute(0, 2, 3, 1).numpy()})
    for k, i in enumerate(ok):
        want = float(rows[paths[i]]["score"])
        assert abs(score[k] - want) <= 1e-5 * max(1.0, abs(want))
        assert probability[k] == pytest.approx(float(rows[paths[i]]["probability"]), abs=1e-5)
        assert accepted[k] == (rows[paths[i]]["accepted"] == "true")
