import json
import os
import shutil
import subprocess
import sys

import pytest

from fixture_data import make_fashion_mnist, make_image_folder
from isomax.evaluation import RECORD_KEYS


def run_cli(*args, check=True, cwd=None):
    env = {**os.environ, "ISOMAX_VERIFY": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "isomax", *map(str, args)], env=env, capture_output=True, text=True, cwd=cwd
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["bench"]])
def test_help(command):
    out = run_cli(*command, "--help").stdout
    assert "usage: isomax" in out
    if command == ["bench"]:
        for preset in ("paper", "fashion-mnist-quick", "fashion-mnist", "cifar10-cpu"):
            assert preset in out


def test_bench_then_evaluate_end_to_end(tmp_path):
    data = make_fashion_mnist(tmp_path / "data")
    folder = make_image_folder(tmp_path / "my-ood", n=30)
    out = tmp_path / "bench"
    bench = ["bench", "--preset", "fashion-mnist-quick", "--seeds", "2", "--losses", "softmax", "isomaxplus"]
    bench += ["--epochs", "1", "--train-limit", "128", "--batch-size", "32", "--threads", "1", "--device", "cpu"]
    bench += ["--ood", "mnist", "gaussian", folder, "--data-dir", data, "--out", out, "--no-progress"]
    run_cli(*bench)
    records = json.loads((out / "results.json").read_text())
    # 2 seeds x (softmax: 4 scores + isomaxplus: 5 scores) x 3 out-distributions
    assert len(records) == 2 * (4 + 5) * 3
    for r in records:
        assert set(RECORD_KEYS) <= set(r)
        assert 0.0 <= r["auroc"] <= 1.0 and 0.0 <= r["accuracy"] <= 1.0
    assert {r["out_dataset"] for r in records} == {"mnist", "gaussian", "my-ood"}
    runs = {(loss, s) for loss in ("softmax", "isomaxplus") for s in (0, 1)}
    assert {(r["loss"], r["seed"]) for r in records} == runs
    # the out-distribution's near/far/noise role (isomax.data.roles) is recorded; a user's folder has none
    assert {(r["out_dataset"], r.get("role")) for r in records} == {
        ("mnist", "near"),
        ("gaussian", "noise"),
        ("my-ood", None),
    }
    md = (out / "results.md").read_text()
    assert "IsoMax+<sub>MDS</sub>" in md and "±" in md
    assert "## Near-OOD / far-OOD" in md and "fashion-mnist near: mnist" in md
    assert (out / "outputs" / "isomaxplus-seed0.npz").exists()
    # the run directories are accepted by `isomax evaluate`, with the same record format
    ev = tmp_path / "eval"
    run_cli(
        "evaluate",
        out / "runs" / "isomaxplus-seed1",
        "--ood",
        "uniform",
        "--data-dir",
        data,
        "--out",
        ev,
        "--device",
        "cpu",
        "--no-progress",
    )
    ev_records = json.loads((ev / "results.json").read_text())
    assert {r["score"] for r in ev_records} == {"mps", "es", "mds", "energy", "max_logit"}
    assert all(set(RECORD_KEYS) <= set(r) and r["out_dataset"] == "uniform" for r in ev_records)
    # two runs named alike under different parents and two --ood folders named alike are never merged
    twin = tmp_path / "copy" / "isomaxplus-seed1"
    shutil.copytree(out / "runs" / "isomaxplus-seed1", twin)
    imgs_a, imgs_b = (
        make_image_folder(tmp_path / "a" / "imgs", n=10, seed=1),
        make_image_folder(tmp_path / "b" / "imgs", n=10, seed=2),
    )
    ev2 = tmp_path / "eval2"
    proc = run_cli(
        "evaluate",
        out / "runs" / "isomaxplus-seed1",
        twin,
        "--ood",
        imgs_a,
        imgs_b,
        "--data-dir",
        data,
        "--out",
        ev2,
        "--device",
        "cpu",
        "--no-progress",
    )
    assert "told apart" in proc.stdout and "test accuracy" in proc.stdout
    recs = json.loads((ev2 / "results.json").read_text())
    assert {r["out_dataset"] for r in recs} == {"a/imgs", "b/imgs"}
    assert {r["run"] for r in recs} == {"runs/isomaxplus-seed1", "copy/isomaxplus-seed1"}
    assert sorted(p.name for p in (ev2 / "outputs").iterdir()) == [
        "copy__isomaxplus-seed1.npz",
        "runs__isomaxplus-seed1.npz",
    ]
    # the same input twice is refused before any inference
    proc = run_cli(
        "evaluate",
        twin,
        "--ood",
        imgs_a,
        str(imgs_a) + "/",
        "--data-dir",
        data,
        "--out",
        tmp_path / "ev3",
        "--device",
        "cpu",
        "--no-progress",
        check=False,
    )
    assert proc.returncode == 2 and "list it once" in proc.stderr
    # rerunning the bench skips finished runs
    again = run_cli(*bench)
    assert again.stdout.count("skipping") == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--preset", "nope", "--out", "x"], "available presets"),
        (["train", "--loss", "hinge", "--out", "x"], "loss/head name"),
        (["evaluate", "does-not-exist", "--out", "x"], "not a run directory"),
    ],
    ids=["unknown-preset", "unknown-loss", "missing-run"],
)
def test_errors_are_clear(tmp_path, args, message):
    proc = run_cli(*args, check=False, cwd=tmp_path)
    assert proc.returncode == 2
    assert not (tmp_path / "x").exists()  # nothing written before the arguments are checked
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
