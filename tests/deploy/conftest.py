"""Tiny run directories for the deploy tests: an untrained cnn-28 per loss on generated Fashion-MNIST files
(no training, no network; Run.load only needs config.json and checkpoint.pt)."""

import json

import numpy as np
import pytest
import torch

from fixture_data import make_fashion_mnist


@pytest.fixture(scope="session")
def deploy_data_dir(tmp_path_factory):
    return make_fashion_mnist(tmp_path_factory.mktemp("deploy-data"), n_train=300, n_test=100)


@pytest.fixture(scope="session", autouse=True)
def _no_checksums():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ISOMAX_VERIFY", "0")  # fixture files are not the published ones
        yield


def make_run(root, loss, data_dir, seed=0):
    from isomax.models import create_model
    from isomax.presets import Runtime, TrainConfig
    from isomax.runs import config_record

    torch.manual_seed(seed)
    config = TrainConfig(
        dataset="fashion-mnist",
        model="cnn-28",
        loss=loss,
        val_fraction=0.2,
    )
    runtime = Runtime(data_dir=str(data_dir), device="cpu", eval_batch_size=64)
    model = create_model("cnn-28", num_classes=10, head=loss, in_channels=1)
    if loss == "isomax":  # zero prototypes make every logit equal (every score a tie): spread them as training would
        torch.nn.init.normal_(model.head.prototypes)
    run_dir = root / loss
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config_record(config, runtime)))
    torch.save(dict(model=model.state_dict(), epoch=1, history=[]), run_dir / "checkpoint.pt")
    return run_dir


@pytest.fixture(scope="session")
def runs(tmp_path_factory, deploy_data_dir):
    root = tmp_path_factory.mktemp("runs")
    return {loss: make_run(root, loss, deploy_data_dir) for loss in ("softmax", "isomax", "isomaxplus")}


@pytest.fixture
def fresh_run(tmp_path, deploy_data_dir):
    """A run directory of its own (tests that write threshold.json / calibration.json)."""

    def make(loss="isomaxplus"):
        return make_run(tmp_path, loss, deploy_data_dir)

    return make


def write_images(folder, n=5, seed=0):
    """n grey 28x28 PNGs, one RGB 500x300 JPEG, a corrupt .png and a non-image file, in nested folders."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "sub" / "deeper").mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / ("sub" if i % 2 else "") / f"grey_{i}.png"
        Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8), mode="L").save(p)
        paths.append(p)
    p = folder / "sub" / "deeper" / "photo.jpg"
    Image.fromarray(rng.integers(0, 255, (300, 500, 3), dtype=np.uint8), mode="RGB").save(p)
    paths.append(p)
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    (folder / "notes.txt").write_text("not an image")
    return paths
