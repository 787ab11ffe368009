"""`isomax train` calibrates by default (issue 19: the probabilities of IsoMax runs were flat until the user
found `isomax calibrate`), then fits the threshold on the calibrated scores; `--no-calibrate` keeps the old way."""

import json

import pytest
import torch

from conftest import write_images
from isomax.deploy import load_threshold
from isomax.deploy import run_predict
from isomax.runs import Run


def _config(data_dir, loss):
    from isomax.presets import TrainConfig

    return TrainConfig(
        dataset="fashion-mnist",
        model="cnn-28",
        loss=loss,
        epochs=2,
        batch_size=32,
        lr=0.05,
        train_limit=256,
        val_fraction=0.2,
    )


def _runtime(data_dir):
    from isomax.presets import Runtime

    return Runtime(eval_batch_size=128, data_dir=str(data_dir), device="cpu", threads=1)


@pytest.mark.parametrize("loss", ["isomaxplus", "softmax"])
def test_train_calibrates_then_fits_the_threshold_on_calibrated_scores(deploy_data_dir, tmp_path, loss):
    from isomax.deploy import negative_log_likelihood
    from isomax.evaluation import predict_logits
    from isomax.deploy import fit_deployment
    from isomax.training import load_data, train

    lines = []
    result = train(
        _config(deploy_data_dir, loss),
        tmp_path / "run",
        runtime=_runtime(deploy_data_dir),
        progress=False,
        log=lines.append,
    )
    assert not (tmp_path / "run" / "calibration.json").exists()  # training only; deploy fits (issue 18)
    fit_deployment(result, log=lines.append)
    run_dir = tmp_path / "run"
    cal = json.loads((run_dir / "calibration.json").read_text())
    t = load_threshold(run_dir)
    assert cal["split"] == "validation" and cal["loss"] == loss and cal["fingerprint"] == t.fingerprint
    assert t.temperature == pytest.approx(cal["temperature"], rel=1e-6)  # an IsoMax head stores it in float32
    assert cal["after"]["nll"] <= cal["before"]["nll"] + 1e-9
    assert any("calibrated: temperature" in line for line in lines)
    # the returned model is the checkpoint's; the run deploys as is (no mismatch) with the calibrated model
    checkpoint_model = Run.load(run_dir, calibrated=False).model
    for k, v in result.model.state_dict().items():
        assert torch.equal(v, checkpoint_model.state_dict()[k]), k
    run = Run.load(run_dir)
    run.threshold()  # fitted on the calibrated model: no mismatch
    model, config = run.model, run.config
    _, val = load_data(config, run.runtime.data_dir)
    logits = predict_logits(model, val, run.input.mean, run.input.std, torch.device("cpu"), 128, False)
    plain = predict_logits(checkpoint_model, val, run.input.mean, run.input.std, torch.device("cpu"), 128, False)
    # independent check: the stored temperature minimises the validation NLL (a 1% change either way is worse)
    t0 = cal["temperature"]
    nll = negative_log_likelihood(logits, val.labels)
    scale = t0 / (1.0 if loss == "softmax" else float(checkpoint_model.head.temperature))
    assert nll == pytest.approx(negative_log_likelihood(plain / scale, val.labels), abs=1e-5)
    for f in (0.99, 1.01):
        assert nll <= negative_log_likelihood(plain / (scale * f), val.labels) + 1e-9
    write_images(tmp_path / "images", n=2)
    assert (
        run_predict(run_dir, [tmp_path / "images"], tmp_path / "p.csv", progress=False, log=lambda _: None).n_predicted
        == 3
    )


def test_no_calibrate_keeps_the_old_behaviour(deploy_data_dir, tmp_path):
    from isomax.cli import _build_parser
    from isomax.deploy import fit_deployment
    from isomax.training import train

    result = train(
        _config(deploy_data_dir, "isomaxplus"),
        tmp_path / "run",
        runtime=_runtime(deploy_data_dir),
        progress=False,
        log=lambda _: None,
    )
    fit_deployment(result, calibrate=False, log=lambda _: None)
    assert not (tmp_path / "run" / "calibration.json").exists()
    assert load_threshold(tmp_path / "run").temperature == 1.0
    assert _build_parser().parse_args(["train", "--out", str(tmp_path / "x"), "--no-calibrate"]).no_calibrate
    assert not _build_parser().parse_args(["train", "--out", str(tmp_path / "x")]).no_calibrate


def test_fit_deployment_fits_once_and_finishes_a_run_killed_between_the_two_files(deploy_data_dir, tmp_path):
    from isomax.deploy import fit_deployment
    from isomax.training import train

    config = _config(deploy_data_dir, "isomaxplus")
    fit_deployment(
        train(config, tmp_path / "run", runtime=_runtime(deploy_data_dir), progress=False, log=lambda _: None),
        log=lambda _: None,
    )
    run_dir = tmp_path / "run"
    files = {n: (run_dir / n).read_bytes() for n in ("calibration.json", "threshold.json")}
    # rerunning `isomax train` on a finished run: training resumes with nothing to do, nothing is refitted
    lines = []
    fit_deployment(
        train(config, run_dir, runtime=_runtime(deploy_data_dir), progress=False, log=lines.append), log=lines.append
    )
    assert lines == [] and {n: (run_dir / n).read_bytes() for n in files} == files
    # killed after calibration.json, before threshold.json: the rerun fits the threshold with the stored temperature
    (run_dir / "threshold.json").unlink()
    fit_deployment(
        train(config, run_dir, runtime=_runtime(deploy_data_dir), progress=False, log=lines.append), log=lines.append
    )
    assert (run_dir / "calibration.json").read_bytes() == files["calibration.json"]
    assert not any("calibrated" in line for line in lines) and any("threshold:" in line for line in lines)
    before, after = json.loads(files["threshold.json"]), json.loads((run_dir / "threshold.json").read_text())
    assert after["threshold"] == pytest.approx(before["threshold"], rel=1e-6)
    assert after["temperature"] == before["temperature"] and after["fingerprint"] == before["fingerprint"]
