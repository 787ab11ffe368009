"""BatchLoader, random_crop_flip and train_val_split."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import isomax.data as D


def make_data(n=50, c=3, h=8, w=8, labels=True, name="x"):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)
    return D.ImageData(images, torch.arange(n) if labels else None, name, None)


def test_shapes_len_and_drop_last():
    d = make_data(50)
    bl = D.BatchLoader(d, 16, mean=(0.5,), std=(0.5,))
    batches = list(bl)
    assert len(bl) == 4 == len(batches)
    assert [len(x) for x, _ in batches] == [16, 16, 16, 2]
    x, y = batches[0]
    assert x.dtype == torch.float32 and x.shape == (16, 3, 8, 8) and y.dtype == torch.int64
    assert torch.equal(torch.cat([y for _, y in batches]), torch.arange(50))
    bl = D.BatchLoader(d, 16, drop_last=True, mean=(0.5,), std=(0.5,))
    assert len(bl) == 3 == len(list(bl))
    u = D.BatchLoader(make_data(10, labels=False), 4, mean=(0,), std=(1,))
    assert all(y is None for _, y in u)


def test_normalisation_values():
    d = make_data(6)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.125)
    x, _ = next(iter(D.BatchLoader(d, 6, mean=mean, std=std)))
    ref = (d.images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(x, ref, rtol=1e-5, atol=1e-5)
    # default: the in-distribution's statistics; unknown name: explicit mean/std required
    fm = D.ImageData(torch.full((2, 1, 4, 4), 255, dtype=torch.uint8), None, "fashion-mnist", None)
    x, _ = next(iter(D.BatchLoader(fm, 2)))
    torch.testing.assert_close(x, torch.full_like(x, (1 - 0.2860) / 0.3530))
    with pytest.raises(ValueError, match="mean"):
        D.BatchLoader(make_data(4, name="isun"), 2)


def test_shuffle_covers_all_once_and_is_deterministic():
    d = make_data(53)
    a = D.BatchLoader(d, 8, shuffle=True, seed=7, mean=(0,), std=(1,))
    b = D.BatchLoader(d, 8, shuffle=True, seed=7, mean=(0,), std=(1,))
    ya = torch.cat([y for _, y in a])
    assert sorted(ya.tolist()) == list(range(53))
    assert not torch.equal(ya, torch.arange(53))
    assert torch.equal(ya, torch.cat([y for _, y in b]))
    # images travel with their labels
    for x, y in D.BatchLoader(d, 8, shuffle=True, seed=7, mean=(0,), std=(1 / 255,)):
        torch.testing.assert_close(x, d.images[y].float())
    c = D.BatchLoader(d, 8, shuffle=True, seed=8, mean=(0,), std=(1,))
    assert not torch.equal(ya, torch.cat([y for _, y in c]))


def test_set_epoch_reproducible():
    d = make_data(40)
    bl = D.BatchLoader(d, 40, shuffle=True, augment=True, seed=1, mean=(0,), std=(1,))
    e0 = next(iter(bl))  # epoch 0, advances to 1
    e1 = next(iter(bl))  # epoch 1
    assert not torch.equal(e0[1], e1[1])
    bl.set_epoch(1)
    r1 = next(iter(bl))
    assert torch.equal(r1[1], e1[1]) and torch.equal(r1[0], e1[0])  # order and augmentation
    fresh = D.BatchLoader(d, 40, shuffle=True, augment=True, seed=1, mean=(0,), std=(1,))
    fresh.set_epoch(0)
    assert torch.equal(next(iter(fresh))[0], e0[0])
    assert torch.equal(bl.order(1), e1[1])
    st = bl.state_dict()
    other = D.BatchLoader(d, 40, shuffle=True, seed=99, mean=(0,), std=(1,))
    other.load_state_dict(st)
    assert other.epoch == bl.epoch and other.seed == 1


def test_generator_seeds_loader():
    d = make_data(30)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = D.BatchLoader(d, 30, shuffle=True, generator=g1, mean=(0,), std=(1,))
    b = D.BatchLoader(d, 30, shuffle=True, generator=g2, mean=(0,), std=(1,))
    assert torch.equal(next(iter(a))[1], next(iter(b))[1])


def test_flip_forced_with_pad0_equals_flipped_input():
    x = make_data(5).images
    out = D.random_crop_flip(x, 0, torch.ones(5, dtype=torch.bool))
    assert torch.equal(out, x.flip(-1))
    assert torch.equal(D.random_crop_flip(x, 0, False), x)


def test_crop_matches_reference():
    x = make_data(6, h=7, w=9).images
    pad = 3
    offsets = torch.tensor([[0, 0], [6, 6], [3, 3], [1, 5], [6, 0], [2, 4]])
    flips = torch.tensor([False, True, False, True, True, False])
    out = D.random_crop_flip(x, pad, flips, offsets=offsets)
    xp = F.pad(x, (pad,) * 4)
    for i in range(6):
        r, c = offsets[i].tolist()
        ref = xp[i, :, r : r + 7, c : c + 9]
        if flips[i]:
            ref = ref.flip(-1)
        assert torch.equal(out[i], ref)
    assert torch.equal(out[2], x[2])  # centre crop without flip = identity


def test_loader_augment_outputs_are_crops_or_flips():
    d = make_data(64, c=1, h=6, w=6)
    pad = 2
    bl = D.BatchLoader(d, 64, augment=True, pad=pad, seed=3, mean=(0,), std=(1 / 255,))
    x, y = next(iter(bl))
    x = x.round().to(torch.uint8)
    xp = F.pad(d.images, (pad,) * 4)
    seen_flip = seen_shift = False
    for i in range(64):
        src = xp[y[i]]
        cands = [
            (r, c, f)
            for r in range(2 * pad + 1)
            for c in range(2 * pad + 1)
            for f in (0, 1)
            if torch.equal(x[i], src[:, r : r + 6, c : c + 6].flip(-1) if f else src[:, r : r + 6, c : c + 6])
        ]
        assert cands, f"sample {i} is not a padded crop (+flip) of its source"
        seen_flip |= any(f for _, _, f in cands) and not any(not f for _, _, f in cands)
        seen_shift |= all((r, c) != (pad, pad) for r, c, _ in cands)
    assert seen_flip and seen_shift
    # pad=0, flip=False: augmentation is the identity
    x0, _ = next(iter(D.BatchLoader(d, 64, augment=True, pad=0, flip=False, mean=(0,), std=(1 / 255,))))
    assert torch.equal(x0.round().to(torch.uint8), d.images)


def test_train_val_split_stratified():
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate([50, 30, 20])])
    d = D.ImageData(torch.zeros(100, 1, 2, 2, dtype=torch.uint8), labels, "x", ["a", "b", "c"])
    d.images[:, 0, 0, 0] = torch.arange(100, dtype=torch.uint8)
    tr, va = D.train_val_split(d, 0.2, seed=0)
    assert len(tr) == 80 and len(va) == 20
    ids_tr = set(tr.images[:, 0, 0, 0].tolist())
    ids_va = set(va.images[:, 0, 0, 0].tolist())
    assert ids_tr.isdisjoint(ids_va) and len(ids_tr | ids_va) == 100
    assert torch.bincount(va.labels).tolist() == [10, 6, 4]
    assert tr.classes == ["a", "b", "c"]
    tr2, va2 = D.train_val_split(d, 0.2, seed=0)
    assert torch.equal(va.images, va2.images)
    _, va3 = D.train_val_split(d, 0.2, seed=1)
    assert not torch.equal(va.images, va3.images)


def test_train_val_split_unstratified_and_errors():
    d = make_data(33, labels=False)
    tr, va = D.train_val_split(d, 0.1, stratified=True)  # no labels: plain random split
    assert len(va) == 3 and len(tr) == 30
    with pytest.raises(ValueError):
        D.train_val_split(d, 1.0)
    with pytest.raises(ValueError):
        D.train_val_split(d, -0.1)
    with pytest.raises(ValueError, match="val_fraction=0"):
        D.train_val_split(d, 0.01)  # rounds to an empty validation set


def test_train_val_split_zero_keeps_everything():
    labels = torch.arange(30) % 3
    d = D.ImageData(torch.arange(30, dtype=torch.uint8).view(30, 1, 1, 1), labels, "x", ["a", "b", "c"])
    for stratified in (True, False):
        tr, va = D.train_val_split(d, 0.0, seed=5, stratified=stratified)
        assert torch.equal(tr.images, d.images) and torch.equal(tr.labels, d.labels)
        assert len(va) == 0 and va.images.shape == (0, 1, 1, 1) and va.labels.shape == (0,)
        assert tr.classes == va.classes == ["a", "b", "c"]


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("pad, flip", [(2, True), (0, True), (2, False)])
def test_shards_together_equal_the_global_batches(world, pad, flip):
    """Distributed in-memory path: each process gathers and augments only its rows, with the crops and
    flips the whole batch draws; the slices of all processes are the one-process batches, row for row."""
    d = make_data(50)
    kw = dict(shuffle=True, augment=True, pad=pad, flip=flip, mean=(0.5,), std=(0.5,), seed=3)
    whole = list(D.BatchLoader(d, 16, **kw))
    parts = [list(D.BatchLoader(d, 16, shard=(r, world), **kw)) for r in range(world)]
    assert all(len(p) == len(whole) for p in parts)
    for i, (x, y) in enumerate(whole):
        assert max(len(p[i][0]) for p in parts) < len(x)  # no process holds the global batch
        torch.testing.assert_close(torch.cat([p[i][0] for p in parts]), x, rtol=0, atol=0)
        assert torch.equal(torch.cat([p[i][1] for p in parts]), y)
    with pytest.raises(ValueError, match="shard"):
        D.BatchLoader(d, 16, mean=(0.5,), std=(0.5,), shard=(2, 2))
