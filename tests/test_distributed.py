"""Data-parallel training through torchrun on the CPU (gloo, 2 processes) against a 1-process run.

``mlp-28`` has no BatchNorm, so 2 processes with the same global batch must reproduce the
1-process weights up to float rounding (see :mod:`isomax.distributed`).
"""

import json
import os
import subprocess
import sys

import pytest
import torch

from isomax import distributed as dist
from isomax.presets import Runtime, TrainConfig
from isomax.training import train

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with gloo is not available",
)

EPOCHS, BATCH, LR, LIMIT = 2, 32, 0.05, 256


@pytest.fixture(scope="module")
def data_dir(fm_fixture_dir, no_checksums):
    return fm_fixture_dir


def _config(data_dir, model="mlp-28"):
    return TrainConfig(
        dataset="fashion-mnist",
        model=model,
        loss="isomaxplus",
        epochs=EPOCHS,
        batch_size=BATCH,
        lr=LR,
        train_limit=LIMIT,
    )


def _runtime(data_dir):
    return Runtime(data_dir=str(data_dir), device="cpu", threads=1)


def _torchrun(data_dir, out, model="mlp-28", nproc=2):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(nproc),
        "-m",
        "isomax",
        "train",
        "--preset",
        "fashion-mnist-quick",
        "--loss",
        "isomaxplus",
        "--model",
        model,
        "--epochs",
        str(EPOCHS),
        "--batch-size",
        str(BATCH),
        "--lr",
        str(LR),
        "--train-limit",
        str(LIMIT),
        "--threads",
        "1",
        "--device",
        "cpu",
        "--data-dir",
        str(data_dir),
        "--no-progress",
        "--out",
        str(out),
    ]
    env = {**os.environ, "ISOMAX_VERIFY": "0", "ISOMAX_DIST_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _checkpoint(run_dir):
    return torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)


def _assert_same_run(a, b):
    assert a["epoch"] == b["epoch"] == EPOCHS
    assert a["model"].keys() == b["model"].keys()
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, rtol=0, atol=1e-5, msg=f"{k} differs")
    for ra, rb in zip(a["history"], b["history"]):  # metrics gathered over both processes = the 1-process ones
        assert ra["train_accuracy"] == pytest.approx(rb["train_accuracy"], abs=1e-6)
        assert ra["val_accuracy"] == pytest.approx(rb["val_accuracy"], abs=1e-6)
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], abs=1e-4)
        assert ra["val_loss"] == pytest.approx(rb["val_loss"], abs=1e-4)


@pytest.fixture(scope="module")
def single_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ISOMAX_VERIFY", "0")
        train(_config(data_dir), out, runtime=_runtime(data_dir), progress=False, log=lambda s: None)
    return _checkpoint(out)


def test_two_processes_match_one_process(data_dir, tmp_path, single_run):
    out = tmp_path / "ddp"
    stdout = _torchrun(data_dir, out)
    _assert_same_run(single_run, _checkpoint(out))
    # exactly one writer: one log line per epoch, one progress line per epoch, no temporary files left
    assert [json.loads(line)["epoch"] for line in (out / "log.jsonl").read_text().splitlines()] == [1, 2]
    assert stdout.count(f"epoch 1/{EPOCHS}") == 1 and stdout.count("done:") == 1
    assert sorted(p.name for p in out.iterdir()) == [
        "calibration.json",
        "checkpoint.pt",
        "config.json",
        "log.jsonl",
        "threshold.json",
    ]
    assert TrainConfig.from_dict(json.loads((out / "config.json").read_text())) == _config(data_dir)


def test_resume_under_ddp_from_a_one_process_checkpoint(data_dir, tmp_path, single_run):
    out = tmp_path / "resumed"

    class Stop(Exception):
        pass

    def stop_after_first_epoch(line):
        if "epoch 1/" in line:
            raise Stop  # after the epoch-1 checkpoint and log line are written

    with pytest.raises(Stop):
        train(_config(data_dir), out, runtime=_runtime(data_dir), progress=False, log=stop_after_first_epoch)
    assert _checkpoint(out)["epoch"] == 1
    stdout = _torchrun(data_dir, out)
    assert "resuming" in stdout and stdout.count(f"epoch 2/{EPOCHS}") == 1
    _assert_same_run(single_run, _checkpoint(out))
    assert [json.loads(line)["epoch"] for line in (out / "log.jsonl").read_text().splitlines()] == [1, 2]


def test_batchnorm_model_under_ddp_on_cpu(tmp_path):
    # A 1-process gloo group in this process (cheap; the 2-process runs above cover the rest): BatchNorm stays
    # per-process on CPU (SyncBatchNorm is CUDA-only), the wrapper shares the parameters, helpers work on a group.
    from isomax.models import create_model

    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert dist.is_distributed() and dist.world_size() == 1 and dist.is_main_process()
        model = create_model("cnn-28", head="isomaxplus")
        ddp = dist.wrap_model(model, torch.device("cpu"))
        assert isinstance(ddp, torch.nn.parallel.DistributedDataParallel) and ddp.module is model
        assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
        ddp(torch.randn(4, 1, 28, 28)).sum().backward()
        assert all(p.grad is not None for p in model.parameters())
        dist.broadcast_buffers(model)  # float running stats and int64 num_batches_tracked
        t = torch.tensor(3.0)
        assert float(dist.all_reduce_sum(t)[0]) == 3.0
        dist.barrier()
    finally:
        torch.distributed.destroy_process_group()
    assert not dist.is_distributed()


def test_helpers_are_no_ops_in_one_process(monkeypatch):
    assert not dist.is_distributed() and dist.rank() == 0 and dist.world_size() == 1 and dist.is_main_process()
    model = torch.nn.Linear(2, 2)
    assert dist.wrap_model(model, torch.device("cpu")) is model
    t = torch.ones(3)
    assert dist.all_reduce_sum(t)[0] is t and torch.equal(t, torch.ones(3))
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert dist.init_from_env() is False
    monkeypatch.setenv("ISOMAX_DIST_BACKEND", "gloo")
    assert dist.backend_for(cuda=True) == "gloo"
    monkeypatch.setenv("ISOMAX_DIST_BACKEND", "")
    assert dist.backend_for(cuda=True) == "nccl" and dist.backend_for(cuda=False) == "gloo"
    monkeypatch.setenv("ISOMAX_DIST_BACKEND", "mpi")
    with pytest.raises(ValueError, match="ISOMAX_DIST_BACKEND"):
        dist.backend_for()


@pytest.mark.parametrize("batch, world", [(32, 2), (7, 2), (5, 4), (1, 3)])
def test_shards_cover_every_row_once(batch, world):
    x, y = torch.arange(batch * 2).view(batch, 2), torch.arange(batch)
    parts = [next(dist.shard_batches([(x, y)], r, world)) for r in range(world)]
    torch.testing.assert_close(torch.cat([p[1] for p in parts]), y)
    torch.testing.assert_close(torch.cat([p[0] for p in parts]), x)
    assert max(len(p[1]) for p in parts) - min(len(p[1]) for p in parts) <= 1
    assert next(dist.shard_batches([(x, None)], 0, world))[1] is None
