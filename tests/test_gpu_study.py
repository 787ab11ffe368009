"""scripts/gpu_study.py on a generated data root: pack, unpack, and the tiny CPU run (2 of its losses).

The full tiny run (all five losses on the real CIFAR-10 pack) is the manual check written in the
script's docstring: ``TINY=1 bash scripts/gpu_study.sh``.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import gpu_study  # noqa: E402

from isomax.records import read_records  # noqa: E402

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _jpeg(rng, size, colour=None) -> bytes:
    pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    if colour is not None:  # a learnable class signal: one tinted channel
        pixels[..., colour % 3] = np.clip(pixels[..., colour % 3].astype(int) // 4 + 40 * (colour + 1) % 256, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def make_root(root: Path, per_class=(52, 10), n_ood=20) -> Path:
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "test"), per_class):
        for c, name in enumerate(CLASSES):
            d = root / "cifar10-jpg" / split / name
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"{i:04d}.jpg").write_bytes(_jpeg(rng, 32, c))
    tin = root / "tiny-imagenet-200" / "test" / "images"
    tin.mkdir(parents=True)
    for i in range(n_ood):
        (tin / f"test_{i}.JPEG").write_bytes(_jpeg(rng, 64))
    (root / "isun").mkdir()
    with tarfile.open(root / "isun" / "iSUN.tar.gz", "w:gz") as tar:
        for i in range(n_ood):
            data = _jpeg(rng, 32)
            info = tarfile.TarInfo(f"iSUN/iSUN_patches/img_{i:03d}.jpeg")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (root / "mnist-test").mkdir()
    digits = rng.integers(0, 256, (n_ood, 28, 28), dtype=np.uint8)
    (root / "mnist-test" / "t10k-images-idx3-ubyte.gz").write_bytes(gpu_study._idx_bytes(digits, 0x803))
    (root / "mnist-test" / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gpu_study._idx_bytes(rng.integers(0, 10, n_ood, dtype=np.uint8), 0x801)
    )
    return root


def test_pack_subsets_and_unpack_restores_the_files(tmp_path):
    root = make_root(tmp_path / "data", per_class=(3, 2), n_ood=12)
    info = gpu_study.pack(root, tmp_path / "p.zip", n_ood=5)
    assert info["files"] == 10 * 3 + 10 * 2 + 5 + 5 + 2
    index = gpu_study.unpack(tmp_path / "p.zip", tmp_path / "u")
    for name, size in index["files"]:
        if name.startswith("cifar10-jpg") or name.startswith("tiny-imagenet-200"):
            assert (tmp_path / "u" / name).read_bytes() == (root / name).read_bytes()  # byte for byte
        assert (tmp_path / "u" / name).stat().st_size == size
    assert len(list((tmp_path / "u" / "isun" / "iSUN" / "iSUN_patches").iterdir())) == 5
    assert gpu_study._read_idx(tmp_path / "u" / "mnist-test" / "t10k-images-idx3-ubyte.gz").shape == (5, 28, 28)
    # a damaged or unsafe pack is refused
    with zipfile.ZipFile(tmp_path / "p.zip") as z:
        blob, idx = bytearray(z.read(gpu_study.PACK_FILES)), json.loads(z.read(gpu_study.PACK_INDEX))
    blob[100] ^= 0xFF
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as z:
        z.writestr(gpu_study.PACK_FILES, bytes(blob))
        z.writestr(gpu_study.PACK_INDEX, json.dumps(idx))
    with pytest.raises(ValueError, match="damaged"):
        gpu_study.unpack(tmp_path / "bad.zip", tmp_path / "u2")
    with pytest.raises(FileNotFoundError, match="tiny-imagenet"):
        gpu_study.collect_files(_without(tmp_path, root, "tiny-imagenet-200"), 5)


def _without(tmp_path, root, name):
    import shutil

    other = tmp_path / f"without-{name}"
    shutil.copytree(root, other, ignore=lambda d, names: [name] if Path(d) == root else [])
    return other


@pytest.mark.slow
def test_tiny_run_end_to_end_on_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("ISOMAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ISOMAX_VERIFY", "0")
    import torch

    torch.set_num_threads(1)
    root = make_root(tmp_path / "data")
    gpu_study.main(["pack", "--data", str(root), "--out", str(tmp_path / "pack.zip"), "--n-ood", "20"])
    out = tmp_path / "out"
    gpu_study.main(
        [
            "run",
            "--tiny",
            "--pack",
            str(tmp_path / "pack.zip"),
            "--out",
            str(out),
            "--work",
            str(tmp_path / "work"),
            "--losses",
            "softmax",
            "dismax+fpr",
            "--device",
            "cpu",
        ]
    )
    records = json.loads((out / "results.json").read_text())
    assert [r.to_dict() for r in read_records(out / "results.json")] == records  # RunRecords, one writer
    assert {r["loss"] for r in records} == {"softmax", "dismax-fpr"}
    assert {r["out_dataset"]: r["role"] for r in records} == gpu_study.ROLES
    assert {r["score"] for r in records if r["loss"] == "dismax-fpr"} >= {"mmles", "mmls", "mmleps", "es", "mds"}
    for r in records:
        assert 0 <= r["auroc"] <= 1 and 0 <= r["fpr_at_tpr95"] <= 1 and r["n_in"] == 100 and r["n_out"] == 20
        assert {"auin", "auout", "auroc_out_positive", "fpr_at_tpr95_out_positive"} <= set(r)
    meta = json.loads((out / "study.json").read_text())
    assert meta["epochs"] == 1 and meta["tiny"] and meta["runs"]["dismax-fpr"]["history"][0]["train_loss"] > 0
    md = (out / "results.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert any(r.startswith("| dismax-fpr | mmles |") for r in rows) and "near AUROC / FPR@95" in rows[0]
    assert not any("±" in r for r in rows)  # one seed: no ±
