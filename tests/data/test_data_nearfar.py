"""Textures (DTD layout) and Places365 (a folder of images), and the near/far roles of the out-distributions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import isomax.data as D
from isomax.data import roles
from isomax.data.imagesets import images_from_folder, images_from_folder_as
from data_fixtures import write_image


def _dtd(root, sizes=((40, 40), (48, 64), (64, 48), (100, 100), (33, 50))):
    """dtd/images/<class>/<class>_<i>.jpg, images of several sizes, each a flat colour."""
    colours = []
    for i, (h, w) in enumerate(sizes):
        cls = ("banded", "zigzagged")[i % 2]
        colour = (30 + 40 * i, 200 - 30 * i, 90)
        write_image(root / "dtd" / "images" / cls / f"{cls}_{i:04d}.jpg", np.full((h, w, 3), colour, np.uint8))
        colours.append(colour)
    (root / "dtd" / "labels").mkdir()
    (root / "dtd" / "labels" / "labels_joint_anno.txt").write_text("banded/banded_0000.jpg banded\n")
    return colours


def test_textures_dtd_layout(tmp_path):
    colours = _dtd(tmp_path)
    d = D.load_ood("textures", data_dir=tmp_path)
    assert d.images.shape == (5, 3, 32, 32) and d.labels is None and d.name == "textures"
    assert "source shapes -> 32x32 RGB" in d.conversion
    # natural path order: banded 0, 2, 4 then zigzagged 1, 3; flat colours survive resize and crop (JPEG: +-3)
    order = [0, 2, 4, 1, 3]
    means = d.images.float().mean((2, 3))
    assert torch.allclose(means, torch.tensor([colours[i] for i in order], dtype=torch.float32), atol=4)
    g = D.load_ood("dtd", like=(1, 28, 28), data_dir=tmp_path)  # alias; converted to the in-distribution
    assert g.images.shape == (5, 1, 28, 28)


def test_folder_as_equals_whole_folder_conversion_and_a_direct_reference(tmp_path):
    """Chunked decoding gives the pixels of the one-shot path, and those of a float64 reference."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    for i, (h, w) in enumerate([(64, 64), (64, 96), (80, 60), (64, 64), (32, 32), (70, 70)]):
        write_image(folder / f"{i}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    a, _, rec = images_from_folder_as("t", folder, (3, 32, 32), chunk=2)
    b, _, _ = images_from_folder("t2", folder, stack_like=(3, 32, 32))
    assert np.array_equal(a, b)
    assert rec.startswith("4 source shapes")  # 64x64 (twice), 64x96, 80x60, 70x70
    # 64x96 -> cover 32x48, crop the centre 32 columns: torch's antialiased bilinear in float64
    x = torch.from_numpy(np.asarray(Image.open(folder / "1.png"), dtype=np.float64)).permute(2, 0, 1)[None]
    ref = F.interpolate(x, size=(32, 48), mode="bilinear", align_corners=False, antialias=True)[..., 8:40]
    assert (ref.round().clamp(0, 255)[0] - torch.from_numpy(a[1]).double()).abs().max() <= 1


def test_places365_flat_val_256_and_class_folders(tmp_path):
    for i in range(3):
        write_image(
            tmp_path / "a" / "places365" / "val_256" / f"Places365_val_{i + 1:08d}.jpg",
            np.full((64, 64, 3), 50 * i, np.uint8),
        )
    d = D.load_ood("places365", data_dir=tmp_path / "a")
    assert d.images.shape == (3, 3, 32, 32) and d.source.endswith("val_256")
    assert "64x64 RGB -> 32x32 RGB" in d.conversion
    for cls in ("airfield", "bakery"):  # OpenOOD's images_classic/places365/<class>/*.jpg
        write_image(tmp_path / "b" / "places365" / cls / "x.png", np.zeros((32, 32, 3), np.uint8))
    d = D.load_ood("places365", data_dir=tmp_path / "b")
    assert d.images.shape == (2, 3, 32, 32) and d.conversion is None
    (tmp_path / "c").mkdir()
    with pytest.raises(D.DatasetNotFoundError, match="val_256"):
        D.load_ood("places365", data_dir=tmp_path / "c")
    (tmp_path / "d" / "places365").mkdir(parents=True)  # an empty folder is not the set
    with pytest.raises(D.DatasetNotFoundError):
        D.load_ood("places365", data_dir=tmp_path / "d")


def test_the_bare_data_root_is_never_taken_for_a_folder_set(tmp_path):
    write_image(tmp_path / "stray.jpg", np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(D.DatasetNotFoundError):
        D.load_ood("textures", data_dir=tmp_path)


def test_roles_follow_openood_and_are_read_live(monkeypatch):
    assert [
        roles.ood_role("cifar10", o)
        for o in ("cifar100", "tinyimagenet", "mnist", "svhn", "dtd", "places365", "isun", "gaussian", "uniform")
    ] == ["near", "near", "far", "far", "far", "far", "far", "noise", "noise"]
    assert roles.ood_role("CIFAR-100", "cifar10") == "near"
    assert roles.ood_role("fashion-mnist", "mnist") == "near" and roles.ood_role("fmnist", "isun") == "far"
    assert roles.ood_role("svhn", "cifar10") is None and roles.ood_role("cifar10", "/my/folder") is None
    monkeypatch.setattr(roles, "ROLES", {k: dict(v) for k, v in roles.ROLES.items()})
    roles.set_role("svhn", "CIFAR-10", "near")
    assert roles.ood_role("svhn", "cifar10") == "near" and roles.roles_for("svhn")["cifar10"] == "near"
    roles.ROLES["cifar10"]["isun"] = "near"  # edits of the table count at once
    assert roles.ood_role("cifar10", "isun") == "near"
    with pytest.raises(ValueError, match="role must be one of"):
        roles.set_role("cifar10", "svhn", "medium")


def test_records_accept_exactly_the_roles_of_the_table():
    from isomax.records import _ROLES

    assert _ROLES == roles.ROLE_ORDER
    assert {r for table in roles.ROLES.values() for r in table.values()} <= set(roles.ROLE_ORDER)
