import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from isomax.presets import Runtime, TrainConfig, get_preset
from isomax.runs import EpochRecord, Run
from isomax.training import make_scheduler, train


@pytest.fixture(scope="module")
def data_dir(fm_fixture_dir, no_checksums):
    return fm_fixture_dir


def tiny_config(data_dir, **kw):
    base = dict(
        dataset="fashion-mnist",
        model="cnn-28",
        epochs=2,
        batch_size=32,
        lr=0.05,
        train_limit=256,
        loss="isomaxplus",
    )
    return TrainConfig(**{**base, **kw})


def tiny_runtime(data_dir, **kw):
    return Runtime(**{**dict(eval_batch_size=128, data_dir=str(data_dir), device="cpu", threads=1), **kw})


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_train_writes_run_dir_and_learns(data_dir, tmp_path):
    result = train(
        tiny_config(data_dir, epochs=3),
        tmp_path / "run",
        runtime=tiny_runtime(data_dir),
        progress=False,
        log=lambda s: None,
    )
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "checkpoint.pt", "log.jsonl"} <= files
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert result.history[-1].val_accuracy > 0.5  # the fixture classes are easy
    assert result.history[-1].distance_scale > 0
    run = Run.load(tmp_path / "run", calibrated=False)
    model, config = run.model, run.config
    assert config == tiny_config(data_dir, epochs=3) and run.epoch == 3
    # the input description is recorded at training time, not guessed from checkpoint shapes
    assert run.input.shape == (1, 28, 28) and not run.notes
    assert run.input.num_classes == 10 and len(run.input.classes) == 10 and len(run.input.mean) == 1
    assert run.input.to_dict() == result.data.to_dict()  # the checkpoint's record round-trips
    assert [r.to_dict() for r in run.history] == [r.to_dict() for r in result.history] and run.history[-1].epoch == 3
    assert run.runtime == tiny_runtime(data_dir)  # config.json records where and how it ran
    assert [EpochRecord.from_dict(json.loads(line)) for line in lines] == run.history
    assert not (tmp_path / "run" / ".lock").exists()  # the lock goes with the process
    for k, v in _weights(result.model).items():
        assert torch.equal(v, model.state_dict()[k]), k


@pytest.mark.parametrize("loss", ["softmax", "isomax", "isomaxplus"])
def test_same_seed_same_weights_and_seed_matters(data_dir, tmp_path, loss):
    cfg = tiny_config(data_dir, epochs=1, loss=loss)
    a = train(cfg, tmp_path / "a", runtime=tiny_runtime(data_dir), progress=False, log=lambda s: None).model
    b = train(cfg, tmp_path / "b", runtime=tiny_runtime(data_dir), progress=False, log=lambda s: None).model
    c = train(
        cfg.replace(seed=1), tmp_path / "c", runtime=tiny_runtime(data_dir), progress=False, log=lambda s: None
    ).model
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_resume_after_sigkill_matches_uninterrupted_run(data_dir, tmp_path):
    epochs = 4
    cmd = [
        sys.executable,
        "-m",
        "isomax",
        "train",
        "--preset",
        "fashion-mnist-quick",
        "--loss",
        "isomaxplus",
        "--epochs",
        str(epochs),
        "--batch-size",
        "32",
        "--lr",
        "0.05",
        "--train-limit",
        "512",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--data-dir",
        str(data_dir),
        "--no-progress",
    ]
    env = {**os.environ, "ISOMAX_VERIFY": "0"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd + ["--out", str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = killed / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and log.read_text().count("\n") >= 1:
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before_kill = torch.load(killed / "checkpoint.pt", weights_only=True)["epoch"]
    assert 1 <= done_before_kill < epochs

    subprocess.run(cmd + ["--out", str(killed)], env=env, check=True, capture_output=True)
    subprocess.run(cmd + ["--out", str(tmp_path / "straight")], env=env, check=True, capture_output=True)
    run_r, run_s = Run.load(killed, calibrated=False), Run.load(tmp_path / "straight", calibrated=False)
    resumed, straight = run_r.model, run_s.model
    assert run_r.epoch == run_s.epoch == epochs
    for k, v in straight.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    logged = [json.loads(line)["epoch"] for line in log.read_text().splitlines()]
    assert logged[-1] == epochs


def test_different_config_in_existing_run_dir_is_refused(data_dir, tmp_path):
    train(
        tiny_config(data_dir, epochs=1),
        tmp_path / "run",
        runtime=tiny_runtime(data_dir),
        progress=False,
        log=lambda s: None,
    )
    with pytest.raises(ValueError, match="different configuration"):
        train(
            tiny_config(data_dir, epochs=1, lr=0.2),
            tmp_path / "run",
            runtime=tiny_runtime(data_dir),
            progress=False,
            log=lambda s: None,
        )


def test_a_run_resumes_with_other_runtime_settings(data_dir, tmp_path):
    """Device, threads, data directory, evaluation batch size and workers say where and how fast a run goes,
    not what it trains (issue 18): a run interrupted after epoch 1 resumes with the same TrainConfig and another
    Runtime and ends with the weights of the uninterrupted run; config.json then records the new Runtime."""
    from isomax import runs
    from isomax.presets import RUNTIME_FIELDS

    assert set(RUNTIME_FIELDS) == {"device", "threads", "data_dir", "eval_batch_size", "workers"}
    cfg = tiny_config(data_dir, epochs=2)
    whole = train(cfg, tmp_path / "whole", runtime=tiny_runtime(data_dir), progress=False, log=lambda s: None)

    class Stop(Exception):
        pass

    def stop_after_first_epoch(line):
        if "epoch 1/" in line:
            raise Stop  # after the epoch-1 checkpoint and log line are written

    with pytest.raises(Stop):
        train(cfg, tmp_path / "run", runtime=tiny_runtime(data_dir), progress=False, log=stop_after_first_epoch)
    other = Runtime(device="auto", threads=1, eval_batch_size=64, workers=0, data_dir=str(data_dir) + os.sep)
    lines = []
    resumed = train(cfg, tmp_path / "run", runtime=other, progress=False, log=lines.append)
    assert any("resuming" in line and "from epoch 1/2" in line for line in lines)
    for k, v in _weights(whole.model).items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    run = Run.load(tmp_path / "run")
    assert run.config == cfg and run.runtime == other and runs.read_runtime(tmp_path / "run") == other
    runs.check_config(tmp_path / "run", cfg)  # a TrainConfig holds no runtime setting
    with pytest.raises(ValueError, match=r"different configuration \{'lr'"):  # what trains: refused, named
        runs.check_config(tmp_path / "run", cfg.replace(lr=0.2))
    with pytest.raises(ValueError, match=r"device: runtime setting.*pass Runtime\(device='cuda'\)"):
        TrainConfig(device="cuda")
    with pytest.raises(ValueError, match=r"threads: runtime setting"):
        cfg.replace(threads=2)


def test_schedules():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    step = make_scheduler(opt, TrainConfig(schedule="step", milestones=(2, 3), epochs=4, lr=1.0), steps_per_epoch=10)
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        step.step()
    assert lrs[0] == 1.0 and lrs[19] == 1.0 and lrs[20] == pytest.approx(0.1) and lrs[30] == pytest.approx(0.01)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    cyc = make_scheduler(opt, TrainConfig(schedule="onecycle", warmup_epochs=1, epochs=4, lr=1.0), steps_per_epoch=10)
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        cyc.step()
    assert lrs[0] == pytest.approx(0.1) and max(lrs) == pytest.approx(1.0) and lrs[-1] < 0.05
    with pytest.raises(ValueError, match="schedule"):  # TrainConfig rejects it before any scheduler is made
        make_scheduler(opt, TrainConfig(schedule="linear"), 10)


def test_preset_and_config_errors():
    with pytest.raises(ValueError, match="available presets"):
        get_preset("nope")
    with pytest.raises(ValueError, match="Unknown configuration"):
        TrainConfig().replace(learning_rate=1)
    paper = get_preset("paper").config()
    assert (paper.epochs, paper.batch_size, paper.lr, paper.milestones, paper.weight_decay, paper.nesterov) == (
        300,
        64,
        0.1,
        (150, 200, 250),
        1e-4,
        True,
    )


def test_missing_run_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        Run.load(tmp_path)


def test_outlier_exposure_run_trains_and_is_recorded_as_oe(data_dir, tmp_path):
    from isomax.evaluation import evaluate_run

    cfg = tiny_config(data_dir, epochs=3, train_limit=None, loss="softmax", outlier_data="gaussian")
    result = train(cfg, tmp_path / "oe", runtime=tiny_runtime(data_dir), progress=False, log=lambda s: None)
    plain = train(
        cfg.replace(outlier_data=None),
        tmp_path / "plain",
        runtime=tiny_runtime(data_dir),
        progress=False,
        log=lambda s: None,
    )
    # the OE term acts: on other outlier images than it saw, the OE model's predictions are closer to
    # uniform than those of the same run without OE (entropy 2.28 vs 1.92 nats; uniform: ln 10 = 2.30)
    from isomax.data import BatchLoader, load_ood, normalization

    mean, std = normalization("fashion-mnist")
    x = next(
        iter(BatchLoader(load_ood("gaussian", like=(1, 28, 28), num_samples=256, seed=1), 256, mean=mean, std=std))
    )[0]

    def entropy(model):
        with torch.no_grad():
            p = torch.softmax(model.eval()(x), 1)
        return float(-(p * p.clamp_min(1e-12).log()).sum(1).mean())

    assert entropy(result.model) > entropy(plain.model) + 0.1
    assert result.history[-1].train_loss != plain.history[-1].train_loss
    records = evaluate_run(
        tmp_path / "oe", ["uniform"], device="cpu", progress=False, log=lambda s: None, arrays_path=tmp_path / "oe.npz"
    )
    assert [(r.loss, r.method, r.score, r.outlier_data) for r in records] == [("softmax", "oe", "es", "gaussian")]
    assert not (tmp_path / "oe.npz").exists()  # no logits file that figures could take for plain SoftMax


# ---- divergence, val_fraction=0, failed starts -----------------------------------------------
def test_lr_100_stops_with_a_clear_message_and_exit_3(data_dir, tmp_path, capsys):
    from isomax.cli import main

    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--preset",
            "fashion-mnist-quick",
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--train-limit",
            "256",
            "--lr",
            "100",
            "--threads",
            "1",
            "--device",
            "cpu",
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 3 and "diverged" in err and "--lr" in err and "Traceback" not in err
    assert not (out / "checkpoint.pt").exists()  # nothing diverged was saved


def test_divergence_keeps_the_last_good_checkpoint(data_dir, tmp_path, monkeypatch):
    import isomax.training as training

    def after_epoch_1(line):  # the second epoch "explodes" (any finite loss is above a limit of 0)
        monkeypatch.setattr(training, "EXPLODED_LOSS", 0.0)

    run = tmp_path / "run"
    with pytest.raises(training.DivergenceError, match=r"learning rate.*keeps the last good epoch \(1\)"):
        train(tiny_config(data_dir, epochs=2), run, runtime=tiny_runtime(data_dir), progress=False, log=after_epoch_1)
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert len((run / "log.jsonl").read_text().splitlines()) == 1
    assert not (run / ".lock").exists()


@pytest.mark.parametrize(
    "accuracies, diverged",
    [
        pytest.param([0.10, 0.11], True, id="two-epochs-at-chance"),
        pytest.param([0.10], False, id="one-epoch-at-chance-is-not-enough"),
        pytest.param([0.10, 0.30], False, id="learning-after-a-slow-start"),
    ],
)
def test_accuracy_at_chance_for_two_epochs_stops(tmp_path, accuracies, diverged):
    from isomax.training import DivergenceError, _check_divergence

    history = [EpochRecord(i + 1, 2.0, a, 2.0, a, 0.1, 1.0) for i, a in enumerate(accuracies)]
    if diverged:
        with pytest.raises(DivergenceError, match="chance"):
            _check_divergence(history, TrainConfig(), 10, tmp_path)
    else:
        _check_divergence(history, TrainConfig(), 10, tmp_path)


def test_val_fraction_zero_trains_on_everything_and_detectors_refuse(data_dir, tmp_path):
    from isomax.evaluation import evaluate_run
    from isomax.training import load_data

    cfg = tiny_config(data_dir, epochs=1, val_fraction=0.0, train_limit=None)
    train_set, val_set = load_data(cfg, str(data_dir))
    assert len(val_set) == 0 and len(train_set) == 600  # every fixture training image
    lines = []
    result = train(
        cfg.replace(train_limit=256), tmp_path / "run", runtime=tiny_runtime(data_dir), progress=False, log=lines.append
    )
    assert math.isnan(result.history[-1].val_accuracy) and any("val_fraction=0" in line for line in lines)
    with pytest.raises(ValueError, match="validation split"):
        evaluate_run(tmp_path / "run", ["uniform"], device="cpu", methods=("odin",), progress=False, log=lambda s: None)


def test_config_without_checkpoint_does_not_block_the_corrected_command(data_dir, tmp_path):
    from isomax.runs import write_config

    run = tmp_path / "run"
    run.mkdir()
    write_config(run, tiny_config(data_dir, epochs=1, lr=0.2))  # a start that died before its first epoch
    result = train(
        tiny_config(data_dir, epochs=1), run, runtime=tiny_runtime(data_dir), progress=False, log=lambda s: None
    )
    assert result.history[-1].epoch == 1
