"""`isomax bench` with typed records and a fixed evaluation subset (eval_limit), on tiny fixture data."""

import json

import numpy as np
import pytest

from fixture_data import make_fashion_mnist
from isomax.bench import run_bench
from isomax.presets import TrainConfig, get_preset
from isomax.records import read_records
from isomax.sampling import seeded_indices, seeded_subset

TINY = dict(epochs=1, train_limit=96, batch_size=32, threads=1, device="cpu", eval_limit=40)


@pytest.fixture(autouse=True)
def _no_checksums(monkeypatch):
    monkeypatch.setenv("ISOMAX_VERIFY", "0")  # fixtures do not match the published checksums


def test_bench_records_method_epochs_and_the_evaluation_subset(tmp_path):
    data = make_fashion_mnist(tmp_path / "data")
    out = tmp_path / "bench"
    records = run_bench(
        "fashion-mnist-minute",
        [0],
        out,
        losses=("softmax", "isomax+"),
        ood=("mnist", "gaussian"),
        overrides=dict(TINY, data_dir=str(data)),
        progress=False,
        log=lambda s: None,
    )
    assert {(r.loss, r.method, r.epochs, r.eval_limit) for r in records} == {
        ("softmax", "standard", 1, 40),
        ("isomaxplus", "standard", 1, 40),
    }
    assert read_records(out / "results.json") == records
    with np.load(out / "outputs" / "isomaxplus-seed0.npz") as z:
        assert z["logits/mnist"].shape[0] == 40 and z["logits/gaussian"].shape[0] == 40  # the fixed subsets
        assert z["logits/in"].shape[0] == 200  # the whole in-distribution test split
    md = (out / "results.md").read_text()
    assert "fixed subset of at most 40 images" in md and "| cnn-28 | fashion-mnist |" in md
    # rerun: nothing left to do, records unchanged
    again = run_bench(
        "fashion-mnist-minute",
        [0],
        out,
        losses=("softmax", "isomaxplus"),
        ood=("mnist", "gaussian"),
        overrides=dict(TINY, data_dir=str(data)),
        progress=False,
        log=lambda s: None,
    )
    assert again == records
    assert json.loads((out / "bench.json").read_text())["losses"] == ["softmax", "isomaxplus"]


def test_seeded_subsets_are_fixed_sorted_and_bounded():
    a, b = seeded_indices(1000, 50, seed=0), seeded_indices(1000, 50, seed=0)
    assert a.tolist() == b.tolist() == sorted(set(a.tolist())) and len(a) == 50
    assert seeded_indices(1000, 50, seed=1).tolist() != a.tolist()
    assert seeded_indices(10, 50).tolist() == list(range(10)) and seeded_indices(10, None).tolist() == list(range(10))
    data = list(range(30))
    assert seeded_subset(data, None) is data and seeded_subset(data, 30) is data
    with pytest.raises(ValueError, match="k"):
        seeded_indices(10, -1)


def test_minute_preset_and_eval_limit_validation():
    config = get_preset("fashion-mnist-minute").config()
    assert (config.model, config.augment, config.eval_limit) == (
        get_preset("fashion-mnist-minute").overrides["model"],
        False,
        2000,
    )
    assert TrainConfig.from_dict(config.to_dict()) == config
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="eval_limit"):
            TrainConfig(eval_limit=bad)
    assert TrainConfig().eval_limit is None  # the other presets evaluate on everything, as published
    for name in ("fashion-mnist-quick", "fashion-mnist", "cifar10-cpu", "paper"):
        assert get_preset(name).config().eval_limit is None
