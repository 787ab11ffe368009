import argparse
import csv
import json

import pytest
import torch

from conftest import write_images
from isomax.deploy import MissingThresholdError, Predictor, ThresholdMismatchError, load_threshold
from isomax.deploy import CSV_COLUMNS, calibrate_run, fit_run_threshold, read_images, run_predict


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def fitted_run(fresh_run):
    run_dir = fresh_run("isomaxplus")
    fit_run_threshold(run_dir, progress=False, log=lambda _: None, report_test=True)
    return run_dir


def test_threshold_command_fits_on_validation_and_reports_test_tpr(fresh_run):
    run_dir = fresh_run("softmax")
    lines = []
    t = fit_run_threshold(run_dir, target_tpr=0.9, progress=False, log=lines.append, report_test=True)
    assert load_threshold(run_dir) == t
    assert t.score == "es" and t.target_tpr == 0.9 and t.n == 60  # 20% of 300 training images
    assert t.extra["split"] == "validation" and 0 <= t.extra["test_tpr"] <= 1 and t.extra["test_n"] == 100
    assert any("test split" in line for line in lines)
    with pytest.raises(ValueError, match="score for loss"):
        fit_run_threshold(run_dir, "mds", progress=False, log=lambda _: None, report_test=True)


def test_predict_writes_one_row_per_file_and_lists_unreadable_ones(fitted_run, tmp_path):
    paths = write_images(tmp_path / "images")
    lines = []
    summary = run_predict(
        fitted_run, [tmp_path / "images"], tmp_path / "out" / "p.csv", batch_size=3, progress=False, log=lines.append
    )
    rows = _read(tmp_path / "out" / "p.csv")
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert len(rows) == len(paths) + 1 and summary.n_failed == 1  # + broken.png; notes.txt is not an image
    broken = [r for r in rows if r["path"].endswith("broken.png")][0]
    assert broken["class"] == "" and "cannot decode" in broken["error"]
    good = [r for r in rows if not r["error"]]
    assert {r["class"] for r in good} <= {
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    }
    t = load_threshold(fitted_run)
    for r in good:
        assert r["accepted"] == str(float(r["score"]) >= t.threshold).lower()
        assert float(r["threshold"]) == t.threshold
    # the RGB 500x300 photo is converted as `evaluate` converts OOD images, and said once
    conv = [line for line in lines if "converting" in line]
    # decoded at half size (both sides stay >= 4x the model's 28 pixels), then converted
    assert len(conv) == 1 and "300x500 RGB decoded at 150x250, then 150x250 RGB -> 28x28 grey" in conv[0]
    assert any("class names" in line for line in lines)  # not recorded in this run's config: says where from
    assert not (tmp_path / "out" / "p.csv.partial").exists()


def test_predict_matches_the_predictor_api(fitted_run, tmp_path):
    from isomax.runs import Run

    paths = [str(p) for p in write_images(tmp_path / "images")]
    run_predict(fitted_run, paths, tmp_path / "p.csv", progress=False, log=lambda _: None)
    rows = {r["path"]: r for r in _read(tmp_path / "p.csv")}
    run = Run.load(fitted_run)
    images, ok, errors, _ = read_images(paths, run.input.shape)
    assert not errors
    out = Predictor(run.model, "mds", run.threshold(), input=run.input).predict(images)
    again = Predictor.from_run(run, "mds").predict(images)
    assert torch.equal(out.score, again.score) and torch.equal(out.accepted, again.accepted)
    for k, i in enumerate(ok):
        assert float(rows[paths[i]]["score"]) == pytest.approx(float(out.score[k]), abs=1e-6)


def test_strict_fails_on_an_unreadable_file(fitted_run, tmp_path):
    write_images(tmp_path / "images")
    with pytest.raises(ValueError, match="broken.png.*--strict"):
        run_predict(
            fitted_run, [tmp_path / "images"], tmp_path / "p.csv", strict=True, progress=False, log=lambda _: None
        )
    assert not (tmp_path / "p.csv").exists()
    with pytest.raises(FileNotFoundError, match="missing.png"):
        run_predict(
            fitted_run, [tmp_path / "missing.png"], tmp_path / "p.csv", strict=True, progress=False, log=lambda _: None
        )


def test_missing_file_is_listed_without_strict(fitted_run, tmp_path):
    run_predict(fitted_run, [tmp_path / "missing.png"], tmp_path / "p.csv", progress=False, log=lambda _: None)
    (row,) = _read(tmp_path / "p.csv")
    assert row["error"] == "no such file or directory"


class _Killed(Exception):
    """Stands for Ctrl-C / SIGKILL in the middle of a run."""


def test_interrupted_predict_resumes_without_redoing_finished_batches(fitted_run, tmp_path, monkeypatch):
    write_images(tmp_path / "images", n=7)
    run_predict(
        fitted_run, [tmp_path / "images"], tmp_path / "full.csv", batch_size=2, progress=False, log=lambda _: None
    )

    calls, killing = [], True
    original = Predictor.predict

    def flaky(self, x):
        calls.append(len(x))
        if len(calls) == 3 and killing:
            raise _Killed
        return original(self, x)

    monkeypatch.setattr(Predictor, "predict", flaky)
    out = tmp_path / "p.csv"
    with pytest.raises(_Killed):
        run_predict(fitted_run, [tmp_path / "images"], out, batch_size=2, progress=False, log=lambda _: None)
    assert not out.exists()
    partial = _read(tmp_path / "p.csv.partial")
    assert len(partial) >= 4  # two finished batches are on disk
    with open(tmp_path / "p.csv.partial", "a") as fh:  # and a row cut in the middle by the kill
        fh.write(str(tmp_path / "images" / "sub" / "grey_5.png") + ",Shirt,0.3")
    calls.clear()
    killing = False
    lines = []
    summary = run_predict(fitted_run, [tmp_path / "images"], out, batch_size=2, progress=False, log=lines.append)
    assert any(line.startswith("resuming") for line in lines)
    assert summary.n_resumed == len(partial)
    assert sum(calls) <= 9 - len(partial)  # only what was not written yet
    assert _read(out) == _read(tmp_path / "full.csv")
    assert not (tmp_path / "p.csv.partial").exists()


def test_predict_without_threshold_says_how_to_fit_one(fresh_run, tmp_path):
    run_dir = fresh_run("isomax")
    write_images(tmp_path / "images", n=1)
    with pytest.raises(MissingThresholdError, match=r"isomax threshold .*isomax"):
        run_predict(run_dir, [tmp_path / "images"], tmp_path / "p.csv", progress=False, log=lambda _: None)


def test_predict_with_another_score_is_refused(fitted_run, tmp_path):
    write_images(tmp_path / "images", n=1)
    with pytest.raises(ThresholdMismatchError, match="fitted for 'mds'"):
        run_predict(
            fitted_run, [tmp_path / "images"], tmp_path / "p.csv", score="es", progress=False, log=lambda _: None
        )


def test_class_names_recorded_at_training_time_are_used(fitted_run):
    from isomax.runs import InputSpec, Run

    run = Run.load(fitted_run)  # the fixture's checkpoint records no data description: the dataset's names
    assert run.class_names[0] == "T-shirt/top" and any("not recorded" in n for n in run.notes)
    assert run.input.shape == (1, 28, 28) and run.input.num_classes == 10
    ckpt = fitted_run / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)
    names = [f"c{i}" for i in range(10)]
    torch.save(
        dict(state, data=dict(num_classes=10, channels=1, height=28, width=28, classes=names, mean=[0.5], std=[0.25])),
        ckpt,
    )
    with pytest.raises(ThresholdMismatchError, match=r"threshold.json: .*input 1x28x28 mean \[0.5\].*isomax threshold"):
        Run.load(fitted_run).threshold()  # fitted under another normalisation: refused until refitted
    fit_run_threshold(fitted_run, progress=False, log=lambda _: None)
    run = Run.load(fitted_run)
    run.threshold()
    assert run.class_names == names and run.input.mean == (0.5,) and run.input.std == (0.25,) and not run.notes
    recorded = dict(channels=1, height=2, width=2, mean=[0.5], std=[0.5], num_classes=3)
    spec, notes = InputSpec.recorded(recorded, "unknown-set")  # no names recorded, no registered set to ask
    assert spec.class_names() == ["0", "1", "2"] and notes == [
        "class names: not recorded with the run; using class indices"
    ]
    with pytest.raises(ValueError, match="no input description"):
        InputSpec.recorded({"num_classes": 3}, "unknown-set")


def test_parsers_hook_into_a_cli(fitted_run, tmp_path):
    from isomax.cli import calibrate, export, predict, threshold

    parser = argparse.ArgumentParser(prog="isomax")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (predict, threshold, calibrate, export):
        command.add_parser(sub)
    write_images(tmp_path / "images", n=2)
    args = parser.parse_args(
        ["predict", str(fitted_run), str(tmp_path / "images"), "--out", str(tmp_path / "p.csv"), "--no-progress"]
    )
    assert predict.run(args, "") == 0 and (tmp_path / "p.csv").exists()
    args = parser.parse_args(
        ["threshold", str(fitted_run), "--score", "es", "--tpr", "0.9", "--no-test", "--no-progress"]
    )
    assert threshold.run(args, "") == 0 and load_threshold(fitted_run).score == "es"
    with pytest.raises(SystemExit):
        parser.parse_args(["threshold", str(fitted_run), "--tpr", "95"])


def test_training_end_hook_gives_the_same_threshold_as_the_command(fresh_run):
    from isomax.data import normalization
    from isomax.deploy import fit_model_threshold
    from isomax.runs import Run
    from isomax.training import load_data

    run_dir = fresh_run("isomaxplus")
    run = Run.load(run_dir)
    model, config = run.model, run.config
    _, val = load_data(config, run.runtime.data_dir)
    mean, std = normalization(config.dataset)
    t = fit_model_threshold(model, config.loss, val, mean, std, "cpu")
    path = t.save(run_dir)
    assert t.score == "mds" and t.extra["split"] == "validation"
    assert fit_run_threshold(run_dir, progress=False, log=lambda _: None).threshold == t.threshold
    assert path.exists()


def test_calibrate_then_the_old_threshold_is_refused_until_refitted(fresh_run, tmp_path):
    from isomax.runs import Run

    run_dir = fresh_run("softmax")
    fit_run_threshold(run_dir, progress=False, log=lambda _: None)
    lines = []
    cal = calibrate_run(run_dir, device="cpu", progress=False, log=lines.append)
    saved = json.loads((run_dir / "calibration.json").read_text())
    assert saved["temperature"] == cal.temperature and set(saved["before"]) == {"accuracy", "ece", "nll", "brier"}
    assert cal.after["nll"] <= cal.before["nll"] + 1e-9 and cal.after["accuracy"] == cal.before["accuracy"]
    assert any("refit the threshold" in line for line in lines)
    write_images(tmp_path / "images", n=1)
    with pytest.raises(ThresholdMismatchError, match=f"isomax threshold {run_dir}"):
        run_predict(run_dir, [tmp_path / "images"], tmp_path / "p.csv", progress=False, log=lambda _: None)
    fit_run_threshold(run_dir, progress=False, log=lambda _: None)
    run = Run.load(run_dir)  # the calibrated model: the Linear head carries the temperature
    assert run.threshold().temperature == pytest.approx(cal.temperature) == run.temperature
    run_predict(run_dir, [tmp_path / "images"], tmp_path / "p.csv", progress=False, log=lambda _: None)
