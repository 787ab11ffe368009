"""The README's fine-tuning example, end to end at small size: train timm:resnet18 from a local
.safetensors file, then predict and export (no downloads: the test writes the weights itself).

The data is a tiny folder of photos of mixed sizes (``train/<class>/``, ``test/<class>/``), read with
``--dataset PATH --img-size 64`` as in the README.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

timm = pytest.importorskip("timm")
pytest.importorskip("safetensors")
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _photos(root, n_train=12, n_test=3):
    """``root/cifar10/{train,test}/<class>/*.png`` of sizes 40..80 px: class k has a bright band at 3k/32
    of the height."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        for k, name in enumerate(CLASSES):
            folder = root / "cifar10" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                h, w = (int(v) for v in rng.integers(40, 81, 2))
                image = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
                image[3 * k * h // 32 : (3 * k + 3) * h // 32] = 230
                Image.fromarray(image).save(folder / f"{i:04d}.png")
    return root


@pytest.mark.slow
def test_train_pretrained_timm_then_predict_and_export(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from isomax.cli import main

    monkeypatch.setenv("ISOMAX_VERIFY", "0")  # generated images, not the published set
    data = _photos(tmp_path / "data")
    torch.manual_seed(0)
    source = timm.create_model("resnet18", pretrained=False)  # stands for the user's downloaded weights
    save_file(source.state_dict(), str(tmp_path / "resnet18.safetensors"))
    run = tmp_path / "run"
    train = [
        "train",
        "--dataset",
        str(data / "cifar10"),
        "--img-size",
        "64",
        "--model",
        "timm:resnet18",
        "--pretrained",
        str(tmp_path / "resnet18.safetensors"),
        "--optimizer",
        "adamw",
        "--lr",
        "1e-3",
        "--head-lr",
        "1e-2",
        "--lr-schedule",
        "cosine",
        "--label-smoothing",
        "0.1",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--val-fraction",
        "0.25",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(run),
    ]
    assert main(train) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "timm:resnet18" and config["optimizer"] == "adamw" and config["label_smoothing"] == 0.1
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["data"]["mean"] == [0.485, 0.456, 0.406]  # the timm model's pretrained normalisation
    assert not torch.equal(state["model"]["net.conv1.weight"], source.state_dict()["conv1.weight"])  # fine-tuned
    fitted = json.loads((run / "threshold.json").read_text())["threshold"]
    # `isomax threshold` refits on the same validation split with the recorded (timm) normalisation: same value
    assert main(["threshold", str(run), "--no-progress"]) == 0
    assert json.loads((run / "threshold.json").read_text())["threshold"] == pytest.approx(fitted, rel=1e-6)

    assert (
        main(
            [
                "predict",
                str(run),
                str(data / "cifar10" / "test" / "cat"),
                "--out",
                str(tmp_path / "p.csv"),
                "--no-progress",
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert len(rows) == 3 and all(r["class"] in CLASSES and r["error"] == "" for r in rows)

    assert main(["export", str(run), "--out", str(tmp_path / "model.onnx")]) == 0
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    images = np.random.default_rng(1).integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
    logits = session.run(None, {session.get_inputs()[0].name: images})[0]
    from isomax.runs import Run

    loaded = Run.load(run)  # `isomax train` calibrated it: the graph holds the temperature
    model = loaded.model
    mean = torch.tensor(loaded.input.mean).view(1, 3, 1, 1)
    std = torch.tensor(loaded.input.std).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model((torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - mean) / std)
    np.testing.assert_allclose(logits, expected.numpy(), rtol=1e-3, atol=1e-3)

    # resuming needs the checkpoint, not the weights file; a new run checks the --pretrained path before anything
    (tmp_path / "resnet18.safetensors").unlink()
    assert main(train) == 0
    assert main(train[:-1] + [str(tmp_path / "other")]) == 2 and not (tmp_path / "other").exists()
