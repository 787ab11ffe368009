"""Every public entry point rejects bad input with an error that names the offending argument."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from isomax import (
    DistanceHead,
    IsoMaxHead,
    IsoMaxLoss,
    IsoMaxLossSecondPart,
    IsoMaxPlusHead,
    SoftMaxLoss,
    make_head,
    ood_metrics,
)
from isomax.scores import SCORES, energy_score, entropic_score, max_probability, min_distance_score

NAN, INF = float("nan"), float("inf")


def _feats(*shape, dtype=torch.float32, fill=None, at=(0, 0)):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(dtype)
    if fill is not None:
        x[at] = fill
    return x


def _logits(*shape, fill=None):
    return _feats(*shape, fill=fill)


def _head(x):
    return IsoMaxHead(4, 3)(x)


def _plus_head(x):
    return IsoMaxPlusHead(4, 3)(x)


def _loss(logits, targets):
    return IsoMaxLoss()(logits, targets)


T3 = torch.tensor([0, 1, 2])

BAD_INPUTS = [
    # ---- heads: features -----------------------------------------------------------------
    pytest.param(lambda: _head(_feats(4)), ValueError, "features", id="head-features-1d"),
    pytest.param(lambda: _head(_feats(2, 3, 4)), ValueError, "features", id="head-features-3d"),
    pytest.param(lambda: _head(_feats(2, 5)), ValueError, "features", id="head-features-wrong-count"),
    pytest.param(lambda: _plus_head(_feats(2, 3)), ValueError, "features", id="plushead-features-wrong-count"),
    pytest.param(lambda: _head(torch.ones(2, 4, dtype=torch.int64)), ValueError, "features", id="head-features-int"),
    pytest.param(lambda: _head(torch.ones(2, 4, dtype=torch.bool)), ValueError, "features", id="head-features-bool"),
    pytest.param(lambda: _head(_feats(2, 4, fill=NAN)), ValueError, "features", id="head-features-nan"),
    pytest.param(lambda: _head(_feats(2, 4, fill=INF)), ValueError, "features", id="head-features-inf"),
    pytest.param(lambda: _plus_head(_feats(2, 4, fill=-INF)), ValueError, "features", id="plushead-features-neg-inf"),
    pytest.param(
        lambda: _plus_head(_feats(2, 4, fill=NAN, dtype=torch.float64)),
        ValueError,
        "features",
        id="plushead-features-nan-f64",
    ),
    pytest.param(lambda: _head([[0.0, 1.0, 2.0, 3.0]]), TypeError, "features", id="head-features-list"),
    pytest.param(lambda: _head(np.zeros((2, 4), dtype=np.float32)), TypeError, "features", id="head-features-numpy"),
    # ---- loss: logits --------------------------------------------------------------------
    pytest.param(lambda: _loss(_logits(3, 4, 2), T3), ValueError, "logits", id="loss-logits-3d"),
    pytest.param(lambda: _loss(_logits(3), T3), ValueError, "logits", id="loss-logits-1d"),
    pytest.param(lambda: _loss(torch.zeros(3, 4, dtype=torch.int64), T3), ValueError, "logits", id="loss-logits-int"),
    pytest.param(lambda: _loss(_logits(3, 4, fill=NAN), T3), ValueError, "logits", id="loss-logits-nan"),
    pytest.param(lambda: _loss(_logits(3, 4, fill=INF), T3), ValueError, "logits", id="loss-logits-inf"),
    pytest.param(lambda: _loss([[0.0, 1.0]], T3), TypeError, "logits", id="loss-logits-list"),
    # ---- loss: targets -------------------------------------------------------------------
    pytest.param(lambda: _loss(_logits(3, 4), T3.float()), ValueError, "targets", id="loss-targets-float"),
    pytest.param(lambda: _loss(_logits(3, 4), T3 == 1), ValueError, "targets", id="loss-targets-bool"),
    pytest.param(
        lambda: _loss(_logits(3, 4), torch.tensor([0, -1, 2])), ValueError, "targets", id="loss-targets-negative"
    ),
    pytest.param(
        lambda: _loss(_logits(3, 4), torch.tensor([0, 4, 2])), ValueError, "targets", id="loss-targets-equal-C"
    ),
    pytest.param(
        lambda: _loss(_logits(3, 4), torch.tensor([0, 1, 99])), ValueError, "targets", id="loss-targets-above-C"
    ),
    pytest.param(
        lambda: _loss(_logits(3, 4), torch.tensor([0, 1])), ValueError, "targets", id="loss-targets-too-short"
    ),
    pytest.param(
        lambda: _loss(_logits(3, 4), torch.tensor([0, 1, 2, 3])), ValueError, "targets", id="loss-targets-too-long"
    ),
    pytest.param(lambda: _loss(_logits(3, 4), T3[:, None]), ValueError, "targets", id="loss-targets-2d"),
    pytest.param(lambda: _loss(_logits(3, 4), [0, 1, 2]), TypeError, "targets", id="loss-targets-list"),
    pytest.param(
        lambda: SoftMaxLoss()(_logits(3, 4), torch.tensor([0, 1, 7])),
        ValueError,
        "targets",
        id="softmaxloss-targets-above-C",
    ),
    pytest.param(
        lambda: IsoMaxLossSecondPart()(_logits(3, 4), torch.tensor([-3, 1, 2]), debug=True),
        ValueError,
        "targets",
        id="compat-loss-targets-negative",
    ),
    # ---- scores --------------------------------------------------------------------------
    pytest.param(lambda: entropic_score(_logits(2, 3, fill=NAN)), ValueError, "logits", id="es-logits-nan"),
    pytest.param(lambda: max_probability(_logits(2, 3, fill=INF)), ValueError, "logits", id="mps-logits-inf"),
    pytest.param(lambda: min_distance_score(_logits(2, 3, fill=-INF)), ValueError, "logits", id="mds-logits-neg-inf"),
    pytest.param(lambda: energy_score(_logits(2, 3, 4)), ValueError, "logits", id="energy-logits-3d"),
    pytest.param(lambda: SCORES["max_logit"](_logits(3)), ValueError, "logits", id="maxlogit-logits-1d"),
    pytest.param(
        lambda: entropic_score(torch.zeros(2, 3, dtype=torch.int32)), ValueError, "logits", id="es-logits-int"
    ),
    pytest.param(lambda: entropic_score(torch.zeros(2, 0)), ValueError, "logits", id="es-logits-no-classes"),
    pytest.param(lambda: max_probability([[0.0, 1.0]]), TypeError, "logits", id="mps-logits-list"),
    pytest.param(
        lambda: min_distance_score(_logits(2, 3), 0.0), ValueError, "distance_scale", id="mds-distance-scale-zero"
    ),
    pytest.param(
        lambda: energy_score(_logits(2, 3), temperature=0.0), ValueError, "temperature", id="energy-temperature-zero"
    ),
    # ---- ood_metrics ---------------------------------------------------------------------
    pytest.param(lambda: ood_metrics([], [0.1, 0.2]), ValueError, "scores_in", id="metrics-scores-in-empty"),
    pytest.param(lambda: ood_metrics([0.1], np.array([])), ValueError, "scores_out", id="metrics-scores-out-empty"),
    pytest.param(
        lambda: ood_metrics(torch.empty(0), [0.1]), ValueError, "scores_in", id="metrics-scores-in-empty-tensor"
    ),
    pytest.param(lambda: ood_metrics(np.zeros((3, 2)), [0.1]), ValueError, "scores_in", id="metrics-scores-in-2d"),
    pytest.param(lambda: ood_metrics([0.1], torch.zeros(2, 2)), ValueError, "scores_out", id="metrics-scores-out-2d"),
    pytest.param(lambda: ood_metrics(0.5, [0.1]), ValueError, "scores_in", id="metrics-scores-in-scalar"),
    pytest.param(lambda: ood_metrics([0.1, NAN], [0.2]), ValueError, "scores_in", id="metrics-scores-in-nan"),
    pytest.param(
        lambda: ood_metrics([0.1], np.array([0.2, NAN])), ValueError, "scores_out", id="metrics-scores-out-nan"
    ),
    pytest.param(
        lambda: ood_metrics([0.1], torch.tensor([INF])), ValueError, "scores_out", id="metrics-scores-out-inf"
    ),
    pytest.param(lambda: ood_metrics(["a", "b"], [0.1]), ValueError, "scores_in", id="metrics-scores-in-strings"),
    pytest.param(
        lambda: ood_metrics([0.1], [0.2], out_positive=True) and ood_metrics([0.1], [NAN], out_positive=True),
        ValueError,
        "scores_out",
        id="metrics-out-positive-nan",
    ),
    # ---- constructors --------------------------------------------------------------------
    pytest.param(lambda: IsoMaxHead(4, 0), ValueError, "num_classes", id="head-num-classes-zero"),
    pytest.param(lambda: IsoMaxPlusHead(4, -2), ValueError, "num_classes", id="plushead-num-classes-negative"),
    pytest.param(lambda: IsoMaxHead(0, 3), ValueError, "num_features", id="head-num-features-zero"),
    pytest.param(lambda: IsoMaxHead(4.0, 3), ValueError, "num_features", id="head-num-features-float"),
    pytest.param(lambda: IsoMaxHead(4, True), ValueError, "num_classes", id="head-num-classes-bool"),
    pytest.param(lambda: IsoMaxHead(4, 3, temperature=0.0), ValueError, "temperature", id="head-temperature-zero"),
    pytest.param(
        lambda: IsoMaxPlusHead(4, 3, temperature=-1.0), ValueError, "temperature", id="plushead-temperature-negative"
    ),
    pytest.param(lambda: DistanceHead(4, 3, "hamming"), ValueError, "distance", id="distancehead-unknown-distance"),
    pytest.param(lambda: DistanceHead(4, 3, init="uniform"), ValueError, "init", id="distancehead-unknown-init"),
    pytest.param(
        lambda: IsoMaxLoss(entropic_scale=-1), ValueError, "entropic_scale", id="loss-entropic-scale-negative"
    ),
    pytest.param(lambda: IsoMaxLoss(entropic_scale=0), ValueError, "entropic_scale", id="loss-entropic-scale-zero"),
    pytest.param(lambda: IsoMaxLoss(entropic_scale="10"), ValueError, "entropic_scale", id="loss-entropic-scale-str"),
    pytest.param(lambda: IsoMaxLoss(reduction="foo"), ValueError, "reduction", id="loss-reduction-foo"),
    pytest.param(lambda: SoftMaxLoss(reduction="avg"), ValueError, "reduction", id="softmaxloss-reduction-avg"),
    pytest.param(
        lambda: IsoMaxLossSecondPart(entropic_scale=-1.0),
        ValueError,
        "entropic_scale",
        id="compat-entropic-scale-negative",
    ),
    pytest.param(lambda: make_head("arcface", 4, 3), ValueError, "kind", id="make-head-unknown-kind"),
]


@pytest.mark.parametrize("call, error, argument", BAD_INPUTS)
def test_bad_input_raises_and_names_argument(call, error, argument):
    with pytest.raises(error, match=f"`{argument}`"):
        call()


# =============================================================================================
# Files, flags and run directories (issue 13): checkpoints, the CLI, locks, ties, collisions
# =============================================================================================
import io  # noqa: E402
import os  # noqa: E402
import pickle  # noqa: E402
from pathlib import Path  # noqa: E402

from isomax import runs  # noqa: E402
from isomax.cli import main  # noqa: E402
from isomax.metrics import TieWarning  # noqa: E402
from isomax.presets import TrainConfig  # noqa: E402


class _Payload:
    """Unpickling this writes a file: the proof that a loader executed code."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (Path.write_text, (Path(self.target), "pwned"))


def _state(model=None, **extra):
    import torch.nn as nn

    model = model or nn.Linear(2, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 1.0)
    return dict(
        model=model.state_dict(), optimizer=opt.state_dict(), scheduler=sched.state_dict(), epoch=1, history=[], **extra
    )


def _write_checkpoint(path: Path, kind: str, tmp: Path) -> Path:
    if kind == "pickle-payload":
        path.write_bytes(pickle.dumps({"model": _Payload(tmp / "pwned.txt")}))
    elif kind == "torch-payload":
        buf = io.BytesIO()
        torch.save({"model": {}, "x": _Payload(tmp / "pwned.txt")}, buf)
        path.write_bytes(buf.getvalue())
    elif kind == "truncated":
        buf = io.BytesIO()
        torch.save(_state(), buf)
        path.write_bytes(buf.getvalue()[:200])
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "bare-tensor":
        torch.save(torch.zeros(3), path)
    elif kind == "no-model-key":
        state = _state()
        del state["model"]
        torch.save(state, path)
    return path


CHECKPOINTS = [
    pytest.param("pickle-payload", "not a checkpoint written by isomax", id="ckpt-pickle-payload-not-executed"),
    pytest.param("torch-payload", "not a checkpoint written by isomax", id="ckpt-torch-save-payload-not-executed"),
    pytest.param("truncated", "not a checkpoint written by isomax", id="ckpt-truncated"),
    pytest.param("random", "not a checkpoint written by isomax", id="ckpt-random-bytes"),
    pytest.param("empty", "not a checkpoint written by isomax", id="ckpt-empty"),
    pytest.param("bare-tensor", "missing", id="ckpt-bare-tensor"),
    pytest.param("no-model-key", "'model'", id="ckpt-no-model-key"),
]


@pytest.mark.parametrize("kind, message", CHECKPOINTS)
def test_bad_checkpoint_is_refused_without_running_code(tmp_path, kind, message):
    path = _write_checkpoint(tmp_path / "checkpoint.pt", kind, tmp_path)
    with pytest.raises(runs.CheckpointError, match=message) as info:
        runs.load_checkpoint(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "pwned.txt").exists()


def test_checkpoint_of_the_wrong_kind_is_a_clear_error(tmp_path):
    from isomax.models import create_model

    run = tmp_path / "run"
    run.mkdir()
    config = TrainConfig(model="mlp-28", loss="isomaxplus")
    runs.write_config(run, config)
    softmax = create_model("mlp-28", num_classes=10, head="softmax", in_channels=1)
    runs.save_checkpoint(run / runs.CHECKPOINT, _state(softmax, data=dict(num_classes=10, channels=1)))
    with pytest.raises(runs.CheckpointError, match="does not match its configuration"):
        runs.Run.load(run)


def test_checkpoints_round_trip_with_weights_only(tmp_path):
    state = _state(config=TrainConfig().to_dict(), data=dict(num_classes=3, channels=1, mean=[0.5], std=[0.2]))
    runs.save_checkpoint(tmp_path / "c.pt", state)
    loaded = runs.load_checkpoint(tmp_path / "c.pt")
    assert loaded["data"]["mean"] == [0.5] and torch.equal(loaded["model"]["weight"], state["model"]["weight"])


# ---- the CLI: one line naming the flag or path, exit 2, nothing written --------------------------
def _loop(tmp: Path) -> Path:
    os.symlink(tmp / "loop-b", tmp / "loop-a")
    os.symlink(tmp / "loop-a", tmp / "loop-b")
    return tmp / "loop-a"


TRAIN_ANY_DEVICE = ["train", "--epochs", "1", "--train-limit", "64", "--no-progress"]
TRAIN = TRAIN_ANY_DEVICE + ["--device", "cpu"]
BAD_CLI = [
    pytest.param(TRAIN + ["--threads", "-3", "--out", "{tmp}/x"], "--threads", id="cli-threads-negative"),
    pytest.param(TRAIN + ["--threads", "0", "--out", "{tmp}/x"], "--threads", id="cli-threads-zero"),
    pytest.param(TRAIN_ANY_DEVICE + ["--device", "bogus", "--out", "{tmp}/x"], "--device bogus", id="cli-device-bogus"),
    pytest.param(
        TRAIN_ANY_DEVICE + ["--device", "tpu", "--out", "{tmp}/x"], "--device tpu", id="cli-device-unsupported"
    ),
    pytest.param(TRAIN + ["--seed", str(2**70), "--out", "{tmp}/x"], "--seed", id="cli-seed-too-large"),
    pytest.param(TRAIN + ["--seed", "-1", "--out", "{tmp}/x"], "--seed", id="cli-seed-negative"),
    pytest.param(
        TRAIN + ["--data-dir", "{tmp}/nonexistent", "--out", "{tmp}/x"], "--data-dir", id="cli-data-dir-missing"
    ),
    pytest.param(TRAIN + ["--val-fraction", "1", "--out", "{tmp}/x"], "val_fraction", id="cli-val-fraction-one"),
    pytest.param(TRAIN + ["--model", "nope", "--out", "{tmp}/x"], "`model`", id="cli-model-unknown"),
    pytest.param(TRAIN + ["--out", "{tmp}/afile"], "--out", id="cli-out-is-a-file"),
    pytest.param(TRAIN + ["--out", "{tmp}/afile/sub"], "not a directory", id="cli-out-under-a-file"),
    pytest.param(TRAIN + ["--out", "{loop}/x"], "symbolic link", id="cli-out-symlink-loop"),
    pytest.param(["evaluate", "{tmp}/nope", "--out", "{tmp}/x"], "not a run directory", id="cli-evaluate-missing-run"),
    pytest.param(["evaluate", "{tmp}", "--out", "{tmp}/afile"], "--out", id="cli-evaluate-out-is-a-file"),
    pytest.param(
        ["evaluate", "{tmp}/nope", "--device", "cuda:99", "--out", "{tmp}/x"], "--device", id="cli-evaluate-device"
    ),
    pytest.param(
        ["evaluate", "{tmp}/nope", "--data-dir", "{tmp}/none", "--out", "{tmp}/x"],
        "--data-dir",
        id="cli-evaluate-data-dir",
    ),
    pytest.param(
        ["bench", "--preset", "fashion-mnist-quick", "--seeds", "0", "--out", "{tmp}/x"],
        "--seeds",
        id="cli-bench-seeds-zero",
    ),
    pytest.param(
        ["bench", "--preset", "fashion-mnist-quick", "--detector-samples", "1", "--out", "{tmp}/x"],
        "--detector-samples",
        id="cli-bench-detector-samples",
    ),
    pytest.param(["report", "{tmp}", "--out", "{tmp}/afile"], "--out", id="cli-report-out-is-a-file"),
    pytest.param(
        ["evaluate", "{tmp}", "--ood", "{tmp}", "{tmp}/", "--out", "{tmp}/x"], "list it once", id="cli-ood-twice"
    ),
    pytest.param(["evaluate", "{tmp}", "{tmp}/.", "--out", "{tmp}/x"], "list it once", id="cli-run-twice"),
    # issue 19
    pytest.param(
        ["evaluate", "{tmp}", "--methods", "mahalanobis", "--detector-train", "-5", "--out", "{tmp}/x"],
        "--detector-train",
        id="cli-detector-train-negative",
    ),
    pytest.param(
        ["predict", "{run}", "{tmp}/afile", "--out", "{run}/checkpoint.pt"],
        "file of the run directory",
        id="cli-predict-out-is-the-checkpoint",
    ),
    pytest.param(
        ["predict", "{run}", "{tmp}/afile", "--out", "{run}/threshold.json"],
        "file of the run directory",
        id="cli-predict-out-is-the-threshold",
    ),
    pytest.param(
        ["predict", "{run}", "{tmp}/afile", "--out", "{tmp}/afile"],
        "one of the inputs",
        id="cli-predict-out-is-an-input",
    ),
    pytest.param(
        ["predict", "{run}", "{tmp}/afile", "--out", "{tmp}"], "is a directory", id="cli-predict-out-is-a-dir"
    ),
    pytest.param(
        ["export", "{run}", "--out", "{run}/config.json"],
        "file of the run directory",
        id="cli-export-out-is-the-config",
    ),
]


@pytest.mark.parametrize("argv, message", BAD_CLI)
def test_cli_bad_input_is_one_line_exit_2_before_any_work(tmp_path, capsys, argv, message):
    (tmp_path / "afile").write_text("")
    loop = _loop(tmp_path)
    run = tmp_path / "run"  # what a run directory looks like from outside (its files' contents are not read)
    run.mkdir()
    for name in ("config.json", "checkpoint.pt", "threshold.json"):
        (run / name).write_text("precious")
    argv = [a.format(tmp=tmp_path, loop=loop, run=run) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.count("\n") == 1, err
    assert not (tmp_path / "x").exists()  # a failed start leaves nothing behind
    assert all((run / n).read_text() == "precious" for n in ("config.json", "checkpoint.pt", "threshold.json"))


def test_cli_unwritable_out_is_refused_first(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # also meaningful when the tests run as root
    assert main(TRAIN + ["--out", str(tmp_path / "x")]) == 2
    assert "no permission" in capsys.readouterr().err


def test_cli_unexpected_exceptions_keep_their_traceback(tmp_path, monkeypatch):
    import isomax.training

    def boom(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(isomax.training, "train", boom)
    with pytest.raises(ZeroDivisionError):
        main(TRAIN + ["--out", str(tmp_path / "x")])


# ---- run directory lock -------------------------------------------------------------------------
def test_second_process_in_a_run_dir_is_refused(tmp_path):
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / runs.LOCK).write_text(f"{holder.pid} {__import__('socket').gethostname()}\n")
        with pytest.raises(runs.RunLockedError, match=f"process {holder.pid}"):
            runs.RunLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    with runs.RunLock(tmp_path) as lock:  # the holder is gone: its lock is stale and taken over
        assert (tmp_path / runs.LOCK).read_text().split()[0] == str(os.getpid())
        with pytest.raises(runs.RunLockedError, match="in use"):
            runs.RunLock(tmp_path).acquire()
    assert lock.held is False and not (tmp_path / runs.LOCK).exists()


def test_cli_reports_a_locked_run_dir(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with runs.RunLock(out):
        assert main(TRAIN + ["--out", str(out)]) == 2
    assert "is in use" in capsys.readouterr().err


# ---- collisions -----------------------------------------------------------------------------
def test_same_named_inputs_are_told_apart_and_duplicates_refused(tmp_path):
    a, b = tmp_path / "a" / "imgs", tmp_path / "b" / "imgs"
    a.mkdir(parents=True), b.mkdir(parents=True)
    keys, notes = runs.unique_keys([a, b, "mnist"], ["imgs", "imgs", "mnist"])
    assert keys == ["a/imgs", "b/imgs", "mnist"] and len(notes) == 1
    with pytest.raises(ValueError, match="same input"):
        runs.unique_keys([a, str(a) + "/"], ["imgs", "imgs"])


def test_outputs_are_written_atomically(tmp_path, monkeypatch):
    runs.savez_atomic(tmp_path / "x.npz", a=np.arange(3))
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        runs.savez_atomic(tmp_path / "x.npz", a=np.arange(5))
    with np.load(tmp_path / "x.npz") as z:  # the old file is intact, no temporary left
        assert z["a"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]


# ---- ties -----------------------------------------------------------------------------------
def test_all_equal_scores_warn_and_report_the_midpoint_auroc():
    with pytest.warns(TieWarning):
        m = ood_metrics(np.ones(10), np.ones(10))
    assert m["auroc"] == 0.0 and m["auroc_midpoint"] == 0.5


# =============================================================================================
# Deployment (issue 19): thresholds, calibration, Predictor, loss / head / convert edges, small samples
# =============================================================================================
from isomax.deploy import Predictor, Threshold, apply_temperature, fit_threshold  # noqa: E402
from isomax.metrics import SmallSampleWarning  # noqa: E402


def _cnn():
    from isomax.models import create_model

    return create_model("cnn-28", num_classes=10, head="isomaxplus", in_channels=1)


BAD_DEPLOY_INPUTS = [
    pytest.param(lambda: Threshold(score="mds", threshold=NAN), ValueError, "threshold", id="threshold-nan"),
    pytest.param(lambda: Threshold(score="mds", threshold=INF), ValueError, "threshold", id="threshold-inf"),
    pytest.param(lambda: Threshold(score="mds", threshold=-INF), ValueError, "threshold", id="threshold-neg-inf"),
    pytest.param(lambda: Threshold(score="mds", threshold=True), ValueError, "threshold", id="threshold-bool"),
    pytest.param(lambda: Threshold(score="mds", threshold="0.5"), ValueError, "threshold", id="threshold-string"),
    pytest.param(lambda: Threshold(score="mds", threshold=None), ValueError, "threshold", id="threshold-none"),
    pytest.param(
        lambda: Threshold(score="mds", threshold=0.1, temperature="x"),
        ValueError,
        "temperature",
        id="threshold-temperature-string",
    ),
    pytest.param(
        lambda: Threshold(score="mds", threshold=0.1, temperature=0.0),
        ValueError,
        "temperature",
        id="threshold-temperature-zero",
    ),
    pytest.param(lambda: Threshold(score=["mds"], threshold=0.1), ValueError, "score", id="threshold-score-list"),
    pytest.param(lambda: Threshold(score="mds", threshold=0.1, n=-1), ValueError, "n", id="threshold-n-negative"),
    pytest.param(
        lambda: Threshold(score="mds", threshold=0.1, input={"channels": 1}),
        ValueError,
        "input",
        id="threshold-input-incomplete",
    ),
    pytest.param(
        lambda: fit_threshold(np.linspace(0, 1, 200)).save(Path("never-written.json")),
        ValueError,
        "temperature",
        id="threshold-save-without-temperature",
    ),
    pytest.param(lambda: Predictor(_cnn(), "mds", NAN), ValueError, "threshold", id="predictor-threshold-nan"),
    pytest.param(lambda: Predictor(_cnn(), "mds", -INF), ValueError, "threshold", id="predictor-threshold-neg-inf"),
    pytest.param(lambda: Predictor(_cnn(), "mds", True), TypeError, "threshold", id="predictor-threshold-bool"),
    pytest.param(lambda: apply_temperature(_cnn(), 1e300), ValueError, "temperature", id="apply-temperature-1e300"),
    pytest.param(lambda: apply_temperature(_cnn(), True), ValueError, "temperature", id="apply-temperature-bool"),
]


@pytest.mark.parametrize("call, error, argument", BAD_DEPLOY_INPUTS)
def test_bad_deploy_input_raises_and_names_argument(call, error, argument):
    with pytest.raises(error, match=f"`{argument}`"):
        call()


BAD_BATCHES = [
    pytest.param(lambda: torch.zeros(0, 1, 28, 28, dtype=torch.uint8), {}, "empty batch", id="predictor-empty-uint8"),
    pytest.param(lambda: torch.zeros(2, 1, 28, 28, dtype=torch.float16), {}, "float16", id="predictor-float16"),
    pytest.param(
        lambda: torch.zeros(2, 1, 28, 28),
        dict(mean=(0.5,) * 3, std=(0.2,) * 3),
        "`mean`",
        id="predictor-three-means-one-channel",
    ),
    pytest.param(lambda: torch.zeros(2, 28, 28), {}, "(B, C, H, W)", id="predictor-3d"),
]


@pytest.mark.parametrize("batch, kwargs, message", BAD_BATCHES)
def test_predictor_bad_batch_is_one_line(batch, kwargs, message):
    pred = Predictor(_cnn(), "mds", -0.5, **{"mean": (0.5,), "std": (0.2,), **kwargs})
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        pred.predict(batch())
    assert "\n" not in str(info.value)


def test_head_temperature_changed_in_place_is_caught():
    head = IsoMaxPlusHead(4, 3)
    head.temperature.fill_(-1)  # bypasses the checked `head.temperature = value`
    with pytest.raises(ValueError, match="temperature.*-1.0.*in place"):
        head(_feats(2, 4))
    head.temperature.fill_(NAN)
    with pytest.raises(ValueError, match="temperature"):
        head(_feats(2, 4))


@pytest.mark.parametrize(
    "logits, targets",
    [
        pytest.param(lambda: torch.zeros(0, 3, requires_grad=True), torch.zeros(0, dtype=torch.long), id="empty-batch"),
        pytest.param(lambda: torch.randn(4, 3, requires_grad=True), torch.full((4,), -100), id="all-ignored"),
    ],
)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_loss_on_no_counted_target_is_zero_with_zero_gradient(logits, targets, reduction):
    import torch.nn.functional as F

    z = logits()
    loss = IsoMaxLoss(reduction=reduction)(z, targets)
    assert loss.item() == 0.0
    loss.backward()
    assert z.grad is not None and torch.equal(z.grad, torch.zeros_like(z))
    # where F.cross_entropy is defined it is the same ("sum": 0); its "mean" is 0/0 = NaN here
    ref = F.cross_entropy(10 * z.detach(), targets, reduction=reduction)
    assert (ref.item() == 0.0) if reduction == "sum" else math.isnan(ref.item())


def test_loss_with_some_ignored_targets_is_cross_entropy_exactly():
    import torch.nn.functional as F

    z, t = _logits(5, 4), torch.tensor([0, -100, 3, -100, 1])
    assert torch.equal(IsoMaxLoss()(z, t), F.cross_entropy(10 * z, t))


def test_loss_on_all_ignored_compiles_without_graph_break():
    loss = torch.compile(IsoMaxLoss(), fullgraph=True)
    assert loss(_logits(4, 3), torch.full((4,), -100)).item() == 0.0
    assert loss(_logits(4, 3), torch.tensor([0, 1, -100, 2])).item() == pytest.approx(
        IsoMaxLoss()(_logits(4, 3), torch.tensor([0, 1, -100, 2])).item(), rel=1e-6
    )


def test_convert_replaces_a_classifier_shared_under_two_names():
    import torch.nn as nn

    from isomax import convert

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(3, 4)
            self.fc = nn.Linear(4, 5)
            self.aux = self.fc  # the same layer under a second name
            self.blocks = nn.Sequential(nn.ReLU(), self.fc)

    net = convert(Net())
    assert isinstance(net.fc, IsoMaxPlusHead) and net.aux is net.fc and net.blocks[1] is net.fc
    assert not any(isinstance(m, nn.Linear) and m.out_features == 5 for m in net.modules())


def test_statistics_on_too_few_samples_warn():
    with pytest.warns(SmallSampleWarning, match="only 50 in-distribution and 1 out-distribution"):
        ood_metrics(np.linspace(0, 1, 50), [0.3])  # a one-image --ood folder
    with pytest.warns(SmallSampleWarning, match="threshold on only 1 validation"):
        fit_threshold([0.5], 0.95, score="mds")


def test_detectors_fitted_on_too_few_samples_warn():
    from isomax.data import ImageData
    from isomax.detectors import fit_detectors

    few = ImageData(
        torch.randint(0, 255, (3, 1, 28, 28), dtype=torch.uint8),
        torch.tensor([0, 1, 2]),
        "few",
        [str(i) for i in range(10)],
    )
    with pytest.warns(SmallSampleWarning, match="fitting 'mahalanobis' on only 3 train samples"):
        try:
            fit_detectors(_cnn(), ["mahalanobis"], train=few, val=few, mean=(0.5,), std=(0.2,), device="cpu")
        except (ValueError, RuntimeError):  # three samples may not even fit: the warning came first
            pass


def test_nan_prototypes_are_blamed_on_the_prototypes_not_the_features():
    head = IsoMaxPlusHead(4, 3)
    with torch.no_grad():
        head.prototypes[1, 2] = NAN
    with pytest.raises(ValueError, match="`prototypes`.*NaN"):
        head(_feats(2, 4))
