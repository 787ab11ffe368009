"""The dataset registry: one spec per set, what callers record about a set, pinned splits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import isomax.data as D
import isomax.data.registry as registry
from isomax.data.specs import OdinSpec
from data_fixtures import make_tar_images


def test_every_set_has_one_spec_with_its_facts():
    assert set(D.OOD_DATASETS) == set(registry.REGISTRY)
    assert D.IN_DATASETS == ("fashion-mnist", "cifar10", "cifar100", "svhn")
    for name, spec in registry.REGISTRY.items():
        info = D.dataset_info(name)
        assert info.name == name == spec.name
        if spec.labelled:
            assert info.classes is not None and info.num_classes == len(info.classes)
            assert info.shape is not None and info.mean is not None
            assert len(info.mean) == len(info.std) == info.shape[0]
            assert spec.expected("train") and spec.how_to_get() and spec.can_download
        json.dumps(info.to_dict())  # JSON-ready for run configs
    assert D.dataset_info("cifar100").num_classes == 100
    assert D.dataset_info("CIFAR-100").classes[:3] == ("apple", "aquarium_fish", "baby")
    fm = D.dataset_info("fmnist")
    assert (fm.shape, fm.mean, fm.std) == ((1, 28, 28), (0.2860,), (0.3530,))
    assert fm.classes[0] == "T-shirt/top" and fm.in_distribution
    assert D.dataset_info("mnist").classes == tuple("0123456789") and not D.dataset_info("mnist").in_distribution
    isun = D.dataset_info("isun")
    assert isun.classes is None and isun.mean is None and not isun.labelled
    assert D.dataset_info("gaussian").shape is None


def test_normalization_comes_from_the_specs():
    for name in ("fashion-mnist", "mnist", "cifar10", "cifar100", "svhn"):
        info = D.dataset_info(name)
        assert D.normalization(name) == (info.mean, info.std)
    with pytest.raises(ValueError, match="no normalization for 'isun'"):
        D.normalization("isun")
    with pytest.raises(ValueError, match="known names"):
        D.dataset_info("imagenet-22k")


def test_aliases_and_collisions(monkeypatch):
    for alias, name in (
        ("FashionMNIST", "fashion-mnist"),
        ("fmnist", "fashion-mnist"),
        ("Imagenet_resize", "tinyimagenet-resize"),
        ("LSUN resize", "lsun-resize"),
        ("CIFAR-10", "cifar10"),
        ("tinyimagenet", "tinyimagenet-resize"),
    ):
        assert D.canonical_name(alias) == name
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))
    monkeypatch.setattr(registry, "_KEYS", dict(registry._KEYS))
    with pytest.raises(ValueError, match="already used by 'fashion-mnist'"):
        registry.register(OdinSpec(name="other", aliases=("f-mnist",)))


def test_a_new_set_is_one_spec(tmp_path, monkeypatch):
    """Adding a data set touches one place: its spec (here an ODIN-style archive)."""
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))
    monkeypatch.setattr(registry, "_KEYS", dict(registry._KEYS))
    registry.register(
        OdinSpec(
            name="places-tiny",
            aliases=("places",),
            shape=(3, 32, 32),
            archives=("Places.tar.gz",),
            folders=("Places",),
            subdirs=("places",),
        )
    )
    make_tar_images(tmp_path / "places" / "Places.tar.gz", "Places/", n=3)
    d = D.load_ood("Places", like=(1, 28, 28), data_dir=tmp_path)
    assert d.name == "places-tiny" and d.images.shape == (3, 1, 28, 28)
    (tmp_path / "empty").mkdir()
    with pytest.raises(D.DatasetNotFoundError) as ei:
        D.load_ood("places", data_dir=tmp_path / "empty")
    assert "Places.tar.gz" in str(ei.value) and str(tmp_path / "empty" / "places") in str(ei.value)


def test_known_md5_view_matches_specs():
    from isomax.data.datasets import KNOWN_MD5

    assert KNOWN_MD5[("isun", "iSUN.tar.gz")] == ("be77b0f2c26fda898afac5f99645ee70",)
    assert KNOWN_MD5[("mnist", "t10k-images-idx3-ubyte.gz")] == ("9fb629c4189551a2d022fa330f9573f3",)
    with pytest.raises(TypeError):
        KNOWN_MD5[("x", "y")] = ("0",)  # read-only: the specs are the source


def test_split_indices_are_pinned():
    """The validation split decides the training set: these indices reproduce the published runs
    (they equal those of the implementation the results were made with)."""
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate([50, 30, 20])])
    d = D.ImageData(torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1), labels, "x", None)
    ids = lambda s: s.images.flatten().tolist()  # noqa: E731
    _, va = D.train_val_split(d, 0.2, seed=0)
    assert ids(va) == [6, 7, 10, 17, 21, 29, 33, 37, 39, 44, 51, 66, 67, 68, 73, 77, 81, 85, 95, 96]
    _, va = D.train_val_split(d, 0.13, seed=3)
    assert ids(va) == [4, 15, 26, 40, 41, 43, 63, 65, 75, 79, 85, 92, 95]
    tr, va = D.train_val_split(d, 0.1, seed=1, stratified=False)
    assert ids(va) == [15, 17, 32, 35, 45, 63, 72, 79, 90, 96]
    assert sorted(ids(tr) + ids(va)) == list(range(100))
    assert np.array_equal(np.bincount(D.train_val_split(d, 0.2, seed=5)[1].labels.numpy()), [10, 6, 4])
