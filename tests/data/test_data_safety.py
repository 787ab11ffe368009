"""Size caps (archive bombs, image bombs), symlink loops, missing data_dir, cache safety."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import isomax.data as D
from isomax.data import limits as L
from isomax.data.archives import iter_members
from data_fixtures import image_bytes, make_mnist_like, make_tar_images, write_image

MiB = 2**20


@pytest.fixture(autouse=True)
def _no_overrides():
    L.reset_limits()
    yield
    L.reset_limits()


def add_member(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    tf.addfile(ti, io.BytesIO(data))


def jpeg(seed: int = 0, size: int = 32) -> bytes:
    rng = np.random.default_rng(seed)
    return image_bytes(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "JPEG")


def warm_up_decoders() -> None:
    from isomax.data.images import decode_images

    decode_images([("warm-up.jpg", jpeg()), ("warm-up.png", image_bytes(np.zeros((4, 4), np.uint8)))])


# ---- archives --------------------------------------------------------------------------------
def test_member_over_cap_is_refused_before_it_is_read(tmp_path, monkeypatch):
    # a small .tar.gz whose second member holds 32 MiB of zeros (compresses to ~32 KiB)
    arc = tmp_path / "isun" / "iSUN.tar.gz"
    arc.parent.mkdir()
    with tarfile.open(arc, "w:gz") as tf:
        add_member(tf, "iSUN/iSUN_patches/a.jpeg", jpeg())
        add_member(tf, "iSUN/iSUN_patches/bomb.jpeg", bytes(32 * MiB))
    assert arc.stat().st_size < MiB
    monkeypatch.setenv("ISOMAX_MAX_MEMBER_BYTES", "1M")
    warm_up_decoders()  # their first import allocates ~150 MB, which tracemalloc would count
    tracemalloc.start()
    try:
        with pytest.raises(D.DataLimitError) as ei:
            D.load_ood("isun", data_dir=tmp_path, verify=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    e = ei.value
    msg = str(e)
    assert str(arc) in msg and "bomb.jpeg" in msg  # names the archive and the member
    assert "member_bytes=1,048,576" in msg and "33,554,432" in msg  # the cap and the size
    assert "ISOMAX_MAX_MEMBER_BYTES" in msg
    assert e.limit == "member_bytes" and e.cap == MiB and e.actual == 32 * MiB
    assert isinstance(e, D.DatasetError) and isinstance(e, ValueError)
    assert peak < 8 * MiB  # the 32 MiB member was never read


def test_total_cap_and_one_member_at_a_time(tmp_path, monkeypatch):
    # six members of 2 MiB, each under the member cap; the total cap stops the sixth
    arc = tmp_path / "six.tar.gz"
    with tarfile.open(arc, "w:gz") as tf:
        for i in range(6):
            add_member(tf, f"x/{i}.png", bytes(2 * MiB))
    monkeypatch.setenv("ISOMAX_MAX_MEMBER_BYTES", "4M")
    monkeypatch.setenv("ISOMAX_MAX_ARCHIVE_BYTES", "11M")
    seen, held = [], []
    warm_up_decoders()
    tracemalloc.start()
    try:
        with pytest.raises(D.DataLimitError) as ei:
            for name, data in iter_members(arc, lambda n: True):
                seen.append(name)
                held.append(tracemalloc.get_traced_memory()[0])  # while holding this member
                del data
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == [f"x/{i}.png" for i in range(5)]
    assert ei.value.limit == "archive_bytes" and "x/5.png" in str(ei.value)
    assert str(arc) in str(ei.value) and ei.value.actual == 12 * MiB
    # one 2 MiB member in memory at a time, not the 10 MiB read in all; the peak is the transient
    # buffers of one read (tarfile + gzip copies), not a growing sum
    assert max(held) < 3 * MiB and peak < 9 * MiB
    # through load_ood each member is decoded as it comes: the first bad one stops the reading
    with pytest.raises(D.DatasetError, match=r"six\.tar\.gz: member x/0\.png: cannot decode"):
        D.load_ood(arc)


def test_set_limits_overrides_environment(tmp_path, monkeypatch):
    arc = make_tar_images(tmp_path / "a.tar.gz", "imgs/", n=3, ext="png")
    monkeypatch.setenv("ISOMAX_MAX_MEMBER_BYTES", "10")
    with pytest.raises(D.DataLimitError, match="member_bytes=10 "):
        D.load_ood(arc)
    D.set_limits(member_bytes=None)  # no cap for this process
    assert D.current_limits().member_bytes is None
    assert len(D.load_ood(arc)) == 3
    L.reset_limits()
    assert D.current_limits().member_bytes == 10
    with pytest.raises(ValueError, match="unknown cap"):
        D.set_limits(member_size=3)
    with pytest.raises(ValueError, match="non-negative"):
        D.set_limits(archive_bytes=-1)
    monkeypatch.setenv("ISOMAX_MAX_ARCHIVE_BYTES", "lots")
    with pytest.raises(ValueError, match="ISOMAX_MAX_ARCHIVE_BYTES"):
        D.current_limits()


def test_defaults_are_documented_values():
    lim = L.DEFAULT_LIMITS
    assert (lim.member_bytes, lim.archive_bytes, lim.image_pixels) == (256 * MiB, 2**30, 89_478_485)
    assert L._parse_size("X", "512M") == 512 * MiB and L._parse_size("X", "2GiB") == 2**31
    assert L._parse_size("X", "none") is None and L._parse_size("X", "1234") == 1234


def test_zip_archive_read_like_tar(tmp_path, monkeypatch):
    tar = make_tar_images(tmp_path / "imgs.tar.gz", "imgs/", n=4, ext="jpg")
    z = tmp_path / "imgs.zip"
    with tarfile.open(tar) as tf, zipfile.ZipFile(z, "w") as zf:
        for m in tf:
            if m.isfile():
                zf.writestr(m.name, tf.extractfile(m).read())
        zf.writestr("imgs/notes.txt", "not an image")
    a, b = D.load_ood(tar), D.load_ood(z)
    assert a.images.shape == (4, 3, 32, 32) and torch.equal(a.images, b.images)
    monkeypatch.setenv("ISOMAX_MAX_MEMBER_BYTES", "100")
    monkeypatch.setenv("ISOMAX_CACHE", str(tmp_path / "fresh-cache"))  # the caps apply when reading
    with pytest.raises(D.DataLimitError, match=r"imgs\.zip: member imgs/0\.jpg"):
        D.load_ood(z)


def test_corrupt_zip_names_archive(tmp_path):
    z = tmp_path / "bad.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a.png", image_bytes(np.zeros((8, 8), np.uint8)))
    data = bytearray(z.read_bytes())
    data[40:60] = b"\0" * 20  # damage the member's data
    z.write_bytes(bytes(data))
    with pytest.raises(D.DatasetError, match="bad.zip"):
        D.load_ood(z)


def test_gzip_bomb_in_idx_file(tmp_path, monkeypatch):
    folder = tmp_path / "fashion-mnist"
    make_mnist_like(folder, splits=("test",))
    # 64 MiB of zeros gzipped to ~64 KiB in place of the images
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(64 * MiB)))
    monkeypatch.setenv("ISOMAX_MAX_MEMBER_BYTES", "8M")
    with pytest.raises(D.DataLimitError, match=r"t10k-images-idx3-ubyte\.gz \(uncompressed\)"):
        D.load_dataset("fashion-mnist", "test", data_dir=tmp_path, verify=False)


# ---- image files -----------------------------------------------------------------------------
def test_image_pixel_cap(tmp_path, monkeypatch):
    write_image(tmp_path / "imgs" / "small.png", np.zeros((8, 8, 3), np.uint8))
    write_image(tmp_path / "imgs" / "big.jpg", np.zeros((100, 120, 3), np.uint8))
    write_image(tmp_path / "imgs2" / "big.png", np.zeros((100, 120), np.uint8))
    monkeypatch.setenv("ISOMAX_MAX_IMAGE_PIXELS", "5000")
    for folder, name in (("imgs", "big.jpg"), ("imgs2", "big.png")):  # torchvision and PIL paths
        with pytest.raises(D.DataLimitError) as ei:
            D.load_ood(tmp_path / folder, like=(3, 8, 8))
        msg = str(ei.value)
        assert name in msg and "120x100 image" in msg and "12,000 pixels" in msg
        assert "image_pixels=5,000" in msg and "ISOMAX_MAX_IMAGE_PIXELS" in msg


def test_pil_decompression_bomb_is_a_clear_error(tmp_path, monkeypatch):
    from PIL import Image

    write_image(tmp_path / "imgs" / "a.png", np.zeros((64, 64), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL refuses above 2x this
    D.set_limits(image_pixels=None)  # only PIL's own check is left
    with pytest.raises(D.DatasetError, match=r"a\.png: refused by PIL .*decompression bomb"):
        D.load_ood(tmp_path / "imgs")


def test_image_file_size_cap_and_devices(tmp_path, monkeypatch):
    write_image(tmp_path / "imgs" / "a.png", np.zeros((32, 32, 3), np.uint8))
    big = tmp_path / "imgs" / "b.png"
    big.write_bytes(bytes(3 * MiB))
    monkeypatch.setenv("ISOMAX_MAX_MEMBER_BYTES", "1M")
    with pytest.raises(D.DataLimitError, match=r"b\.png: more than 1,048,576 bytes"):
        D.load_ood(tmp_path / "imgs")
    if Path("/dev/zero").exists():  # an endless "image" (a device) is not a regular file: never read
        from isomax.data.images import list_image_files, read_file

        big.unlink()
        os.symlink("/dev/zero", big)
        skipped = {}
        assert list_image_files(tmp_path / "imgs", skipped) == [tmp_path / "imgs" / "a.png"]
        assert skipped == {"not a regular file": 1}
        with pytest.raises(D.DatasetError, match="not a regular file"):
            read_file(big)


# ---- paths -----------------------------------------------------------------------------------
def test_symlink_loop_is_a_clear_error(tmp_path):
    write_image(tmp_path / "ood" / "a" / "0.png", np.zeros((8, 8), np.uint8))
    os.symlink(tmp_path / "ood", tmp_path / "ood" / "a" / "loop")
    with pytest.raises(D.DatasetError, match="symbolic link loop") as ei:
        D.load_ood(tmp_path / "ood")
    assert str(tmp_path / "ood" / "a" / "loop") in str(ei.value)
    # a symlink to a sibling folder is fine
    os.unlink(tmp_path / "ood" / "a" / "loop")
    write_image(tmp_path / "other" / "1.png", np.full((8, 8), 9, np.uint8))
    os.symlink(tmp_path / "other", tmp_path / "ood" / "b")
    assert len(D.load_ood(tmp_path / "ood")) == 2


def test_missing_data_dir_is_an_error(tmp_path, monkeypatch):
    make_mnist_like(tmp_path / "elsewhere" / "fashion-mnist")
    monkeypatch.setenv("ISOMAX_DATA", str(tmp_path / "elsewhere"))  # would be found here
    missing = tmp_path / "nonexistent"
    for call in (
        lambda: D.load_dataset("fashion-mnist", data_dir=missing, verify=False),
        lambda: D.load_ood("mnist", data_dir=missing),
        lambda: D.load_ood("gaussian", data_dir=missing),
        lambda: D.find_data_dir(missing),
    ):
        with pytest.raises(D.DataDirNotFoundError) as ei:
            call()
        assert isinstance(ei.value, FileNotFoundError)
        assert str(missing) in str(ei.value) and "does not exist" in str(ei.value)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(D.DataDirNotFoundError, match="is not a directory"):
        D.load_dataset("fashion-mnist", data_dir=a_file)
    assert len(D.load_dataset("fashion-mnist", verify=False)) == 20  # no data_dir: $ISOMAX_DATA


# ---- decoded-image cache ---------------------------------------------------------------------
def test_cache_never_unpickles(tmp_path):
    arc = make_tar_images(tmp_path / "isun" / "iSUN.tar.gz", "iSUN/iSUN_patches/", n=3)
    ref = D.load_ood("isun", data_dir=tmp_path, verify=False)
    cache = tmp_path / "_cache" / "decoded"
    (npy,) = cache.glob("isun-*.images.npy")
    # replace the cached pixels by a pickled object array: must be ignored, not loaded
    np.save(npy, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    again = D.load_ood("isun", data_dir=tmp_path, verify=False)
    assert torch.equal(again.images, ref.images)
    assert np.load(npy).dtype == np.uint8  # rebuilt
    assert arc.is_file()
