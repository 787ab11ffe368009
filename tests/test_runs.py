"""The run directory as one object (issue 18): Run.load, InputSpec, EpochRecord, the run's file names."""

import json
import math

import pytest
import torch

from isomax.errors import InputError
from isomax.presets import Runtime, TrainConfig
from isomax.runs import (
    CALIBRATION,
    CHECKPOINT,
    CONFIG,
    RUN_FILES,
    THRESHOLD,
    CheckpointError,
    EpochRecord,
    InputSpec,
    Run,
    model_fingerprint,
    save_checkpoint,
    write_config,
)


@pytest.fixture(scope="module")
def data_dir(fm_fixture_dir, no_checksums):
    return fm_fixture_dir


def _run_dir(root, data_dir, data=None, loss="isomaxplus", seed=0):
    """A run directory as `isomax train` writes it (``data``: the checkpoint's input record; None: an old run)."""
    from isomax.models import create_model

    torch.manual_seed(seed)
    config = TrainConfig(dataset="fashion-mnist", model="cnn-28", loss=loss)
    model = create_model("cnn-28", num_classes=10, head=loss, in_channels=1)
    root.mkdir(parents=True)
    write_config(root, config, Runtime(data_dir=str(data_dir), device="cpu"))
    history = [dict(epoch=1, train_loss=1.5, train_accuracy=0.4, val_loss=1.2, val_accuracy=0.5, lr=0.1, seconds=3.0)]
    state = dict(model=model.state_dict(), epoch=1, history=history)
    if data is not None:
        state["data"] = data
    save_checkpoint(root / CHECKPOINT, state)
    return root, model


RECORDED = dict(
    dataset="fashion-mnist",
    channels=1,
    height=28,
    width=28,
    num_classes=10,
    classes=[f"c{i}" for i in range(10)],
    mean=[0.5],
    std=[0.25],
    data_path="memory",
    data_path_reason="a registered set",
)


# ---- InputSpec ------------------------------------------------------------------------------------------------------
def test_input_spec_round_trips_the_checkpoint_record_with_extra_keys():
    spec = InputSpec.from_dict(RECORDED)
    assert spec.shape == (1, 28, 28) and spec.mean == (0.5,) and spec.classes[3] == "c3"
    assert spec.to_dict() == RECORDED and list(spec.to_dict()) == list(RECORDED)  # same JSON, same key order
    assert json.loads(json.dumps(spec.to_dict())) == RECORDED
    assert spec.description() == dict(channels=1, height=28, width=28, mean=[0.5], std=[0.25])
    assert spec.class_names() == [f"c{i}" for i in range(10)]


def test_input_spec_of_a_data_set_is_what_training_recorded(data_dir):
    from isomax.data import load_dataset

    train = load_dataset("fashion-mnist", "train", data_dir=data_dir)
    spec = InputSpec.from_data(train, [0.2860], [0.3530])
    # the checkpoint's `data` record, key for key and in the order training has always written it
    assert spec.to_dict() == dict(
        dataset="fashion-mnist",
        channels=1,
        height=28,
        width=28,
        num_classes=10,
        classes=list(train.classes),
        mean=[0.2860],
        std=[0.3530],
    )
    assert list(spec.to_dict()) == ["dataset", "channels", "height", "width", "num_classes", "classes", "mean", "std"]
    assert spec.shape == train.shape and spec.num_classes == 10 and spec.classes == tuple(train.classes)


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(channels=0), "channels"),
        (dict(height=True), "height"),
        (dict(width="28"), "width"),
        (dict(mean=[0.1, 0.2]), "mean"),
        (dict(std=[0.0]), "std"),
        (dict(std=[float("nan")]), "std"),
        (dict(mean="0.5"), "mean"),
        (dict(classes=[1, 2]), "classes"),
        (dict(num_classes=-1), "num_classes"),
    ],
)
def test_input_spec_refuses_bad_values_with_one_line(change, match):
    with pytest.raises(InputError, match=match):
        InputSpec.from_dict({**RECORDED, **change})


def test_input_spec_missing_keys_are_named():
    with pytest.raises(InputError, match=r"\['mean', 'std'\]"):
        InputSpec.from_dict(dict(channels=1, height=28, width=28))


def test_the_one_fallback_for_runs_recorded_without_an_input_description():
    spec, notes = InputSpec.recorded(dict(num_classes=10, channels=1), "fashion-mnist")
    assert spec.shape == (1, 28, 28) and spec.mean == pytest.approx((0.286,), abs=1e-3)
    assert spec.classes[0] == "T-shirt/top" and spec.dataset == "fashion-mnist"
    assert notes == [
        "input size and normalisation: not recorded with the run; using fashion-mnist's",
        "class names: not recorded with the run; using fashion-mnist's",
    ]
    recorded, notes = InputSpec.recorded(RECORDED, "fashion-mnist")
    assert recorded == InputSpec.from_dict(RECORDED) and notes == []


# ---- EpochRecord ----------------------------------------------------------------------------------------------------
def test_epoch_record_round_trips_log_lines():
    line = dict(epoch=2, train_loss=0.5, train_accuracy=0.8, val_loss=float("nan"), val_accuracy=float("nan"), lr=0.01)
    line.update(seconds=1.5, distance_scale=3.25)
    r = EpochRecord.from_dict(line)
    assert r.epoch == 2 and r.distance_scale == 3.25 and not r.has_validation
    out = r.to_dict()
    assert list(out) == list(line) and all(
        out[k] == v or (math.isnan(v) and math.isnan(out[k])) for k, v in line.items()
    )
    assert "distance_scale" not in EpochRecord.from_dict({**line, "distance_scale": None}).to_dict()
    assert EpochRecord.from_dict({**line, "later": 1}).to_dict()["later"] == 1  # a newer version's key survives


@pytest.mark.parametrize("change", [dict(epoch=0), dict(epoch=1.0), dict(lr="0.1"), dict(train_loss=None)])
def test_epoch_record_refuses_bad_values(change):
    line = dict(epoch=1, train_loss=0.5, train_accuracy=0.8, val_loss=0.4, val_accuracy=0.9, lr=0.01, seconds=1.0)
    with pytest.raises(InputError):
        EpochRecord.from_dict({**line, **change})
    with pytest.raises(InputError, match="seconds"):
        EpochRecord.from_dict({k: v for k, v in line.items() if k != "seconds"})


# ---- Run ------------------------------------------------------------------------------------------------------------
def test_run_files_are_named_once():
    from isomax.deploy._files import RUN_FILES as deploy_files
    from isomax.deploy.calibration import CALIBRATION_FILE
    from isomax.deploy.threshold import THRESHOLD_FILE

    assert {CHECKPOINT, CONFIG, THRESHOLD, CALIBRATION, "log.jsonl", ".lock", "results.json"} == set(RUN_FILES)
    assert deploy_files is RUN_FILES and THRESHOLD_FILE == THRESHOLD and CALIBRATION_FILE == CALIBRATION


def test_run_load_reads_everything_the_commands_need(tmp_path, data_dir):
    run_dir, model = _run_dir(tmp_path / "run", data_dir, RECORDED)
    run = Run.load(run_dir)
    assert run.config.model == "cnn-28" and run.epoch == 1 and not run.model.training
    assert run.input == InputSpec.from_dict(RECORDED) and run.input.to_dict() == RECORDED and run.notes == []
    assert run.history == [EpochRecord(1, 1.5, 0.4, 1.2, 0.5, 0.1, 3.0)]
    assert run.fingerprint == model_fingerprint(model) and run.calibration is None and run.temperature == 1.0
    assert run.class_names == RECORDED["classes"] and run.path(THRESHOLD) == run_dir / THRESHOLD
    for k, v in model.state_dict().items():
        assert torch.equal(v, run.model.state_dict()[k]), k


def test_a_config_json_of_the_old_format_loads_and_splits_into_config_and_runtime(tmp_path, data_dir):
    """config.json written before Runtime existed: the TrainConfig fields and the runtime ones, flat, in one
    dict (the format isomax still writes: runs.config_record). Both read back, and the file is a --config file."""
    from isomax.config_file import read_config_file
    from isomax.presets import split_settings
    from isomax.runs import config_record, read_config, read_runtime

    old = {  # as isomax 42f659e wrote it: one flat dict, the runtime fields among the others
        **TrainConfig(model="cnn-28", epochs=3).to_dict(),
        "device": "cpu",
        "eval_batch_size": 250,
        "data_dir": str(data_dir),
        "threads": 1,
        "workers": None,
    }
    run = _run_dir(tmp_path / "old", data_dir, RECORDED)[0]
    (run / CONFIG).write_text(json.dumps(old, indent=2))
    assert read_config(run) == TrainConfig(model="cnn-28", epochs=3)
    runtime = Runtime(device="cpu", eval_batch_size=250, data_dir=str(data_dir), threads=1)
    assert read_runtime(run) == runtime and Run.load(run).runtime == runtime
    assert Run.load(run).test_data().name == "fashion-mnist"  # found where config.json says the data is
    assert config_record(read_config(run), runtime) == old  # what isomax writes now: the same keys and values
    file = read_config_file(run / CONFIG)  # a valid --config file: both halves
    assert split_settings(file) == (TrainConfig(model="cnn-28", epochs=3).to_dict(), runtime.to_dict())
    # a config.json without the runtime keys (a TrainConfig written by hand): the default Runtime
    (run / CONFIG).write_text(json.dumps(TrainConfig().to_dict()))
    assert read_runtime(run) == Runtime() and read_config(run) == TrainConfig()
    (run / CONFIG).write_text(json.dumps({**old, "eval_batch_size": 0}))
    with pytest.raises(InputError, match=r"config.json: Expected `eval_batch_size` to be an int >= 1"):
        read_runtime(run)


def test_run_logits_use_the_recorded_normalisation(tmp_path, data_dir):
    from isomax.inference import predict_logits

    run = Run.load(_run_dir(tmp_path / "run", data_dir, RECORDED)[0])
    test = run.test_data()
    expected = predict_logits(run.model, test, [0.5], [0.25], torch.device("cpu"), 64, False, None, False)
    torch.testing.assert_close(run.logits(test, batch_size=64, amp=False), expected, rtol=0, atol=0)
    torch.testing.assert_close(run.logits("test", batch_size=64, amp=False), expected, rtol=0, atol=0)
    train, val = run.train_val_data()
    assert len(train) + len(val) == 600 and len(run.val_data()) == len(val) and len(test) == 200
    with pytest.raises(InputError, match="split"):
        run.data("holdout")


def test_an_old_run_without_the_input_record_loads_with_a_note(tmp_path, data_dir):
    run = Run.load(_run_dir(tmp_path / "old", data_dir, data=None)[0])
    assert run.input.shape == (1, 28, 28) and run.input.num_classes == 10
    assert run.class_names[0] == "T-shirt/top" and any("not recorded" in n for n in run.notes)
    from isomax.data import normalization

    assert run.input.mean == pytest.approx(normalization("fashion-mnist")[0])


def test_run_load_applies_the_calibration_of_these_weights_only(tmp_path, data_dir):
    from isomax.runs import Calibration

    run_dir, model = _run_dir(tmp_path / "run", data_dir, RECORDED, loss="softmax")
    Calibration(2.0, 60, {}, {}, fingerprint=model_fingerprint(model), loss="softmax").save(run_dir)
    run = Run.load(run_dir)
    assert run.calibration.temperature == 2.0 and run.temperature == 2.0
    assert run.fingerprint == model_fingerprint(model)  # the weights before the fold
    assert Run.load(run_dir, calibrated=False).temperature == 1.0
    Calibration(2.0, 60, {}, {}, fingerprint="0" * 64, loss="softmax").save(run_dir)
    with pytest.raises(InputError, match=f"{run_dir / CALIBRATION}.*another one.*isomax calibrate"):
        Run.load(run_dir)
    assert Run.load(run_dir, calibrated=False).calibration is None


def test_run_threshold_is_strict(tmp_path, data_dir):
    from isomax.deploy import MissingThresholdError, ThresholdMismatchError, fit_threshold

    run_dir, model = _run_dir(tmp_path / "run", data_dir, RECORDED)
    run = Run.load(run_dir)
    with pytest.raises(MissingThresholdError, match="isomax threshold"):
        run.threshold()
    t = fit_threshold(
        torch.linspace(0, 1, 200),
        score="mds",
        temperature=1.0,
        fingerprint=run.fingerprint,
        loss="isomaxplus",
        input=run.input.description(),
    )
    t.save(run_dir)
    assert run.threshold().threshold == t.threshold and run.threshold("mds").score == "mds"
    with pytest.raises(ThresholdMismatchError, match=f"{run_dir / THRESHOLD}: .*'es'.*isomax threshold {run_dir}"):
        run.threshold("es")


def test_bad_input_record_in_a_checkpoint_is_a_checkpoint_error(tmp_path, data_dir):
    run_dir, _ = _run_dir(tmp_path / "run", data_dir, {**RECORDED, "std": [-1.0]})
    with pytest.raises(CheckpointError, match=f"{run_dir / CHECKPOINT}.*std"):
        Run.load(run_dir)
    run_dir, _ = _run_dir(tmp_path / "run2", data_dir, RECORDED)
    state = torch.load(run_dir / CHECKPOINT, weights_only=True)
    save_checkpoint(run_dir / CHECKPOINT, dict(state, history=[{"epoch": "one"}]))
    with pytest.raises(CheckpointError, match="epoch"):
        Run.load(run_dir)


# ---- seeded subsets -------------------------------------------------------------------------------------------------
def test_the_training_subset_is_the_hand_written_draw_it_replaced(data_dir):
    from isomax.inputs import load_data
    from isomax.sampling import seeded_indices

    for n, k in ((600, 256), (600, 600), (600, 1000), (10, 3)):
        g = torch.Generator().manual_seed(0)
        assert torch.equal(seeded_indices(n, k, 0, sort=False), torch.randperm(n, generator=g)[:k])
        assert torch.equal(seeded_indices(n, k, 0), torch.randperm(n, generator=g.manual_seed(0))[:k].sort().values)
    config = TrainConfig(dataset="fashion-mnist", train_limit=100, val_fraction=0.2)
    train = load_data(config, data_dir)[0]
    full = load_data(config.replace(train_limit=None), data_dir)[0]
    g = torch.Generator().manual_seed(0)
    assert torch.equal(train.labels, full.labels[torch.randperm(len(full), generator=g)[:100]])


def test_evaluate_summary_and_threshold_all_use_the_recorded_normalisation(tmp_path, data_dir):
    from isomax.data import normalization
    from isomax.deploy.summary import deploy_summary
    from isomax.deploy.threshold import fit_run_threshold
    from isomax.evaluation import evaluate_run
    from isomax.inference import predict_logits
    from isomax.scores import SCORES

    run_dir, _ = _run_dir(tmp_path / "run", data_dir, {**RECORDED, "mean": [0.9], "std": [0.1]}, seed=3)
    run = Run.load(run_dir)
    test = run.test_data()
    recorded = run.logits(test, amp=False)
    mean, std = normalization("fashion-mnist")
    other = predict_logits(run.model, test, mean, std, torch.device("cpu"), 100, False, None, False)
    assert not torch.allclose(recorded, other)  # the two normalisations give other logits: the check can fail
    accuracy = float((recorded.argmax(1) == test.labels).float().mean())
    records = evaluate_run(run_dir, ["uniform"], device="cpu", progress=False, log=lambda _: None)
    assert records and all(r.accuracy == pytest.approx(accuracy) for r in records)
    assert deploy_summary(run_dir, device="cpu")["accuracy"] == pytest.approx(accuracy)
    t = fit_run_threshold(run_dir, device="cpu", progress=False, save=False, log=lambda _: None)
    val = run.val_data()
    expected = SCORES["mds"](run.logits(val, amp=False)).sort().values
    assert t.input == run.input.description() and t.threshold in expected.tolist()


def test_read_log_skips_a_cut_line_and_refuses_a_huge_file(tmp_path, monkeypatch):
    from isomax.runs import files, read_log

    assert read_log(tmp_path) == []  # no log yet
    rec = EpochRecord(1, 0.5, 0.8, float("nan"), float("nan"), 0.1, 2.0)
    files.write_log(tmp_path, [rec.to_dict(), rec.to_dict() | {"epoch": 2}])
    with open(tmp_path / "log.jsonl", "a") as fh:
        fh.write('{"epoch": 3, "train_lo')  # a kill in the middle of a line
    got = read_log(tmp_path)
    assert [r.epoch for r in got] == [1, 2] and json.dumps(got[0].to_dict()) == json.dumps(rec.to_dict())
    monkeypatch.setattr(files, "MAX_LOG_BYTES", 16)
    with pytest.raises(InputError, match="larger than"):
        read_log(tmp_path)
