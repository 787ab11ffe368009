"""Folder data sets (``--dataset PATH``), the streaming path, tar shards, the decoded-image cache cap.

Every fixture is a tiny folder of generated images of mixed sizes, modes and formats (tmp_path).
"""

from __future__ import annotations

import io
import json
import math
import random
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from isomax.data import convert_like
from isomax.data.errors import DatasetError
from isomax.data.folder import load_folder, scan_folder
from isomax.data.streaming import ContiguousShards, FileImages, load_rgb, random_resized_crop_params, sample_mean_std

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]


def _image(rng: random.Random, colour, w, h, mode="RGB"):
    a = np.clip(np.array(colour)[None, None] + np.array([[rng.randint(-40, 40) for _ in range(3)]]), 0, 255)
    arr = (a + np.random.RandomState(rng.randint(0, 10**6)).randint(-20, 21, (h, w, 3))).clip(0, 255).astype(np.uint8)
    im = Image.fromarray(arr)
    return im.convert(mode) if mode != "RGB" else im


def make_folder(root, n_train=12, n_test=4, classes=3, val=False, seed=0):
    """``root/train/classK/*`` (JPEG RGB, PNG grey, PNG RGBA, mixed sizes 20..90 px) and ``root/test/``."""
    rng = random.Random(seed)
    splits = [("train", n_train), ("test", n_test)] + ([("val", 3)] if val else [])
    for split, k in splits:
        for c in range(classes):
            d = root / split / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(k):
                kind = i % 3
                im = _image(rng, COLOURS[c % 3], rng.randint(20, 90), rng.randint(20, 90), ("RGB", "L", "RGBA")[kind])
                im.save(d / f"{i}.{('jpg', 'png', 'png')[kind]}")
    return root


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "photos")


# ---- listing and splits --------------------------------------------------------------------------
def test_scan_classes_split_and_record(folder):
    s = scan_folder(folder, val_fraction=0.25)
    assert s.classes == ["class0", "class1", "class2"]
    assert len(s.files["train"]) + len(s.files["val"]) == 36 and len(s.files["val"]) == 9
    assert sorted(s.labels["val"]) == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # stratified: 3 per class
    assert not set(s.files["train"]) & set(s.files["val"])
    assert len(s.files["test"]) == 12 and s.split["test"] == "test/ folder"
    again = scan_folder(folder, val_fraction=0.25)
    assert again.files == s.files and again.split["val_files_sha1"] == s.split["val_files_sha1"]


def test_val_folder_used_and_missing_test_falls_back(tmp_path):
    root = make_folder(tmp_path / "p", n_test=0, val=True)
    sets, s = load_folder(root, 32)
    assert s.split["val"] == "val/ folder" and len(sets["val"]) == 9
    assert sets["test"] is sets["val"]


BAD_FOLDERS = [
    pytest.param(lambda r: (r / "train" / "a").mkdir(parents=True), "only one class folder", "train", id="one-class"),
    pytest.param(lambda r: (r / "train").mkdir(parents=True), "no class folders", "train", id="no-class"),
    pytest.param(lambda r: None, "not a folder data set", "train", id="no-train"),
    pytest.param(
        lambda r: (make_folder(r), (r / "train" / "empty").mkdir()), "empty class folder", "empty", id="empty-class"
    ),
    pytest.param(
        lambda r: (make_folder(r), (r / "test" / "zebra").mkdir()),
        "class 'zebra' is in test/ but not in train/",
        "zebra",
        id="test-class-not-in-train",
    ),
]


@pytest.mark.parametrize("build, message, where", BAD_FOLDERS)
def test_bad_folders_one_line_naming_the_path(tmp_path, build, message, where):
    root = tmp_path / "bad"
    root.mkdir()
    build(root)
    with pytest.raises(DatasetError) as err:
        scan_folder(root)
    text = str(err.value)
    assert message in text and where in text and str(root) in text and "\n" not in text


def test_zero_byte_files_skipped_counted_and_strict_fails(folder):
    (folder / "train" / "class1" / "blank.jpg").write_bytes(b"")
    s = scan_folder(folder)
    assert len(s.skipped) == 1 and s.skipped[0][0].endswith("blank.jpg")
    assert not any(f.endswith("blank.jpg") for f in s.files["train"] + s.files["val"])
    with pytest.raises(DatasetError, match=r"blank\.jpg: empty \(zero-byte\) file .*--strict"):
        scan_folder(folder, strict=True)


def test_unreadable_file_skipped_with_warning_and_strict_raises(folder):
    bad = folder / "train" / "class0" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    sets, _ = load_folder(folder, 32, val_fraction=0)
    i = sets["train"].files.index(str(bad))
    ds = sets["train"].dataset()
    with pytest.warns(UserWarning, match="broken.jpg: cannot decode image"):
        x, y = ds[(i, 0)]
    assert x.shape == (3, 32, 32)  # the next file took its place
    with pytest.raises(DatasetError, match="broken.jpg: cannot decode image"):
        load_folder(folder, 32, val_fraction=0, strict=True)[0]["train"].dataset()[(i, 0)]


# ---- decoding and transforms -----------------------------------------------------------------------
def test_exif_orientation_applied(tmp_path):
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    im.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    p = tmp_path / "rot.jpg"
    im.save(p, exif=exif, quality=95)
    out = load_rgb(str(p))
    assert out.size == (20, 40)
    top = np.asarray(out)[:5].reshape(-1, 3).mean(0)
    assert top[2] > 200 and top[0] < 60  # the blue (left) half is on top after a clockwise turn


def test_draft_only_shrinks_jpegs_to_cover_the_target(tmp_path):
    p = tmp_path / "big.jpg"
    Image.new("RGB", (400, 300), (10, 120, 200)).save(p)
    assert load_rgb(str(p), draft=64).size == (100, 75)  # 1/4 scale: the smallest that still covers 64 x 64
    assert load_rgb(str(p), draft=150).size == (200, 150)
    assert load_rgb(str(p), draft=151).size == (400, 300)  # 150 px would not cover 151: full size
    assert load_rgb(str(p)).size == (400, 300)


def test_eval_transform_matches_convert_like(folder):
    """Evaluation geometry = convert_like (predict, out-distributions by name): resize the shorter side, center crop."""
    sets, _ = load_folder(folder, 24, val_fraction=0)
    data = sets["test"]
    ds = data.dataset(train=False)
    for i in range(0, len(data), 2):
        if not data.files[i].endswith(".png"):
            continue  # PNG: no draft, the same full-size pixels on both sides
        full = torch.from_numpy(np.asarray(Image.open(data.files[i]).convert("RGB")).copy()).permute(2, 0, 1)[None]
        ref, _ = convert_like(full, (3, 24, 24))
        got = ds[(i, 0)][0]
        assert got.shape == ref[0].shape
        assert (got.int() - ref[0].int()).abs().max() <= 2  # uint8 vs float resize rounding


def test_random_resized_crop_params_follow_torchvision():
    """Same distribution as torchvision's RandomResizedCrop.get_params (two samples of 3,000 draws on the
    same image sizes: mean area and aspect quantiles agree within ~4 standard errors)."""
    from torchvision.transforms import RandomResizedCrop

    rng = random.Random(0)
    torch.manual_seed(0)
    sizes = [(rng.randint(20, 500), rng.randint(20, 500)) for _ in range(3000)]
    ours, ref = [], []
    for h, w in sizes:
        top, left, ch, cw = random_resized_crop_params(h, w, rng)
        assert 0 <= top and top + ch <= h and 0 <= left and left + cw <= w and ch > 0 and cw > 0
        ours.append((ch * cw / (h * w), cw / ch))
        i, j, th, tw = RandomResizedCrop.get_params(torch.zeros(1, h, w), scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3))
        ref.append((th * tw / (h * w), tw / th))
    ours, ref = np.array(ours), np.array(ref)
    assert abs(ours[:, 0].mean() - ref[:, 0].mean()) < 0.025  # SE of the difference ~0.006
    for q in (0.1, 0.5, 0.9):
        assert abs(np.quantile(ours[:, 1], q) - np.quantile(ref[:, 1], q)) < 0.04
    # extreme aspect ratios fall back to the center crop clamped to the ratio range, as torchvision does
    from torchvision.transforms import RandomResizedCrop

    for h, w in ((10, 1000), (1000, 10), (300, 900)):
        ref = RandomResizedCrop.get_params(torch.zeros(1, h, w), scale=(0.99, 1.0), ratio=(3 / 4, 4 / 3))
        assert random_resized_crop_params(h, w, random.Random(0), scale=(0.99, 1.0)) == tuple(ref)


def test_augmentation_is_a_function_of_seed_epoch_index(folder):
    data = load_folder(folder, 16, val_fraction=0)[0]["train"]
    ds = data.dataset(train=True, seed=3)
    a, b, c = ds[(5, 1)][0], ds[(5, 1)][0], ds[(5, 2)][0]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_workers_do_not_change_the_batches(folder):
    base = load_folder(folder, 16, val_fraction=0)[0]["train"]
    out = []
    for workers in (0, 2):
        data = FileImages(base.files, base.labels, base.name, base.classes, 16, workers=workers)
        loader = data.loader(8, (0.5,) * 3, (0.25,) * 3, "cpu", train=True, seed=1)
        loader.set_epoch(4)
        out.append([(x.clone(), y.clone()) for x, y in loader])
    assert len(out[0]) == len(out[1]) == 36 // 8
    for (x0, y0), (x1, y1) in zip(*out):
        assert torch.equal(x0, x1) and torch.equal(y0, y1)


def test_mean_std_equal_a_direct_computation(folder):
    data = load_folder(folder, 16, val_fraction=0)[0]["train"]
    mean, std = sample_mean_std(data, n=10)
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:10].sort().values
    ds = data.dataset(train=False)
    px = np.concatenate([ds[(int(i), 0)][0].numpy().reshape(3, -1) for i in pick], axis=1).astype(np.float64) / 255
    np.testing.assert_allclose(mean, px.mean(1), atol=1e-6)
    np.testing.assert_allclose(std, px.std(1, ddof=1), atol=1e-6)


# ---- distributed sharding --------------------------------------------------------------------------
def test_rank_shares_rebuild_the_global_batches(folder):
    """2 ranks x batch B/2 = the 1-rank batch B, image for image (DistributedSampler + per-sample seeds)."""
    data = load_folder(folder, 16, val_fraction=0)[0]["train"]
    kw = dict(mean=(0.5,) * 3, std=(0.25,) * 3, device="cpu", train=True, seed=2)
    one = data.loader(12, rank=0, world=1, **kw)
    ranks = [data.loader(12, rank=r, world=2, **kw) for r in range(2)]
    for loader in (one, *ranks):
        loader.set_epoch(1)
    assert len(one) == len(ranks[0]) == len(ranks[1]) == 3
    for (x, y), (x0, y0), (x1, y1) in zip(one, *ranks):

        def key(xb, yb):
            return sorted((int(y), round(float(v.sum()), 3)) for v, y in zip(xb, yb))

        assert key(x, y) == key(torch.cat([x0, x1]), torch.cat([y0, y1]))


def test_evaluation_shares_are_disjoint_and_cover():
    for n in (0, 1, 7, 10):
        for world in (1, 2, 3):
            got = [list(ContiguousShards(n, r, world)) for r in range(world)]
            assert sum(got, []) == list(range(n))


# ---- tar shards ------------------------------------------------------------------------------------
def test_shards_round_trip(folder, tmp_path):
    pytest.importorskip("webdataset")
    from isomax.data.shards import load_shards, write_shards

    out = write_shards(folder, tmp_path / "sh", shard_size=10, val_fraction=0.25, log=lambda _: None)
    sets = load_shards(out, 16)
    s = scan_folder(folder, val_fraction=0.25)
    assert len(sets["train"]) == len(s.files["train"]) and len(sets["val"]) == 9 and len(sets["test"]) == 12
    assert len(sets["train"].urls) == math.ceil(len(s.files["train"]) / 10)
    ys = torch.cat([y for _, y in sets["test"].loader(5, (0.5,) * 3, (0.25,) * 3, "cpu")])
    assert torch.equal(ys, sets["test"].labels)  # evaluation order = the manifest's label order
    pattern = load_shards(str(out / "train-{000000..000001}.tar"), 16)["train"]
    assert len(pattern.urls) == 2 and len(pattern) == 20
    # per rank: disjoint shards, every rank the same number of batches
    loaders = [sets["train"].loader(4, (0.5,) * 3, (0.25,) * 3, "cpu", train=True, rank=r, world=2) for r in range(2)]
    n = [sum(1 for _ in loader) for loader in loaders]
    assert n[0] == n[1] == len(sets["train"]) // 4


def test_shard_without_label_is_one_line_naming_it(folder, tmp_path):
    pytest.importorskip("webdataset")
    from isomax.data.shards import load_shards, write_shards

    out = write_shards(folder, tmp_path / "sh", shard_size=100, val_fraction=0.25, log=lambda _: None)
    bad = out / "test-000000.tar"
    with tarfile.open(bad) as t:
        members = [(m, t.extractfile(m).read()) for m in t.getmembers()]
    with tarfile.open(bad, "w") as t:
        for m, data in members:
            if m.name != members[1][0].name or not m.name.endswith(".cls"):
                t.addfile(m, io.BytesIO(data))
    with pytest.raises(DatasetError, match=r"test-000000\.tar: sample '\d+' has no label"):
        list(load_shards(out, 16)["test"].loader(4, (0.5,) * 3, (0.25,) * 3, "cpu"))


# ---- the decoded-image cache -----------------------------------------------------------------------
def test_cache_cap_evicts_least_recently_used_and_clear(monkeypatch, tmp_path):
    from isomax.data import cache

    monkeypatch.setenv("ISOMAX_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("ISOMAX_CACHE_MAX_GB", str(2.5 * 3000 / 2**30))  # room for two 3,000-byte entries
    img = np.zeros((1, 3, 10, 100), dtype=np.uint8)  # 3,000 bytes
    for key in ("a", "b"):
        cache.cache_save(key, img, None, {})
    import os
    import time

    os.utime(cache.cache_dir() / "decoded" / "a.json", (time.time() - 100, time.time() - 100))
    assert cache.cache_load("b") is not None  # b used now, a long ago
    cache.cache_save("c", img, None, {})
    assert sorted(e["key"] for e in cache.cache_entries()) == ["b", "c"]
    cache.cache_save("huge", np.zeros((1, 3, 100, 100), dtype=np.uint8), None, {})  # larger than the cap: not written
    assert "huge" not in {e["key"] for e in cache.cache_entries()}
    assert cache.cache_clear()[0] == 2 and cache.cache_entries() == []
    monkeypatch.setenv("ISOMAX_CACHE_MAX_GB", "lots")
    with pytest.raises(ValueError, match="ISOMAX_CACHE_MAX_GB"):
        cache.cache_max_bytes()


# ---- end to end: the CLI ---------------------------------------------------------------------------
def _isomax(*args, env=None):
    import os

    proc = subprocess.run(
        [sys.executable, "-m", "isomax", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.slow
def test_cli_train_and_evaluate_a_folder(folder, tmp_path):
    ood = tmp_path / "ood"
    ood.mkdir()
    for i in range(6):
        Image.fromarray(np.random.RandomState(i).randint(0, 255, (30 + i, 50, 3), dtype=np.uint8)).save(
            ood / f"{i}.jpg"
        )
    run = tmp_path / "run"
    rc, out = _isomax(
        "train",
        "--dataset",
        folder,
        "--img-size",
        32,
        "--model",
        "cnn-32-small",
        "--epochs",
        1,
        "--batch-size",
        8,
        "--threads",
        1,
        "--workers",
        1,
        "--data-path",
        "stream",
        "--val-fraction",
        0.25,
        "--eval-batch-size",
        7,
        "--no-progress",
        "--out",
        run,
    )
    assert rc == 0, out
    assert "--data-path stream" in out
    data = torch.load(run / "checkpoint.pt", weights_only=True)["data"]
    assert data["classes"] == ["class0", "class1", "class2"] and data["img_size"] == 32
    assert (data["height"], data["width"], data["channels"]) == (32, 32, 3)
    assert data["data_path"] == "stream" and data["split"]["n_val"] == 9
    assert len(data["mean"]) == 3 and all(0 < s < 1 for s in data["std"])
    rc, out = _isomax("evaluate", run, "--ood", ood, "--out", tmp_path / "ev", "--no-progress")
    assert rc == 0, out
    records = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert {r["out_dataset"] for r in records} == {"ood"}
    assert all(r["in_dataset"] == "photos" for r in records)


@pytest.mark.slow
def test_cli_memory_path_auto_and_bad_flags(folder, tmp_path):
    rc, out = _isomax(
        "train",
        "--dataset",
        folder,
        "--img-size",
        32,
        "--model",
        "cnn-32-small",
        "--epochs",
        1,
        "--batch-size",
        8,
        "--threads",
        1,
        "--workers",
        0,
        "--no-progress",
        "--out",
        tmp_path / "r",
    )
    assert rc == 0, out
    assert "memory path (--data-path to force)" in out
    rc, out = _isomax("train", "--dataset", folder, "--data-path", "fast", "--out", tmp_path / "r2")
    assert rc == 2 and "data_path" in out
    rc, out = _isomax("train", "--preset", "fashion-mnist-quick", "--img-size", 64, "--out", tmp_path / "r3")
    assert rc == 2 and "--img-size 64" in out


def test_cli_cache_clear(tmp_path):
    rc, out = _isomax("cache", "clear", env={"ISOMAX_CACHE": str(tmp_path / "c")})
    assert rc == 0 and "removed 0 entries" in out


@pytest.mark.slow
@pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with gloo is not available",
)
def test_two_gloo_ranks_equal_one_rank_on_the_streaming_path(tmp_path):
    """2 CPU processes (gloo), each decoding its DistributedSampler share, end with the 1-process weights
    and the same gathered metrics (mlp-28 has no BatchNorm: equal up to float summation order)."""
    import os

    folder = make_folder(tmp_path / "photos", n_train=16, n_test=2)
    args = [
        "-m",
        "isomax",
        "train",
        "--dataset",
        str(folder),
        "--img-size",
        "28",
        "--model",
        "mlp-28",
        "--loss",
        "isomaxplus",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--lr",
        "0.05",
        "--val-fraction",
        "0.25",
        "--eval-batch-size",
        "5",
        "--workers",
        "0",
        "--data-path",
        "stream",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--no-progress",
    ]
    env = {**os.environ, "ISOMAX_DIST_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    runs = {}
    for nproc in (1, 2):
        out = tmp_path / f"run{nproc}"
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
        proc = subprocess.run(
            launcher + args + ["--out", str(out)], env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        runs[nproc] = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    a, b = runs[1], runs[2]
    assert a["epoch"] == b["epoch"] == 2
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, rtol=0, atol=1e-5, msg=f"{k} differs")
    for ra, rb in zip(a["history"], b["history"]):
        for key in ("train_accuracy", "val_accuracy"):
            assert ra[key] == pytest.approx(rb[key], abs=1e-6)
        for key in ("train_loss", "val_loss"):
            assert ra[key] == pytest.approx(rb[key], abs=1e-4)
