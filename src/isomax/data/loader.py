"""A tensor-level batch iterator (no per-sample Python work) and a train/validation split."""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch

from ..errors import InputError
from .imagedata import ImageData

__all__ = ["BatchLoader", "train_val_split", "random_crop_flip"]


def _epoch_seed(seed: int, epoch: int) -> int:
    # distinct, reproducible stream per (seed, epoch); fits in a signed 64-bit generator seed
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 + 0x5EED) % (2**63 - 1)


def random_crop_flip(
    x: torch.Tensor,
    pad: int,
    flip: bool | torch.Tensor,
    generator: torch.Generator | None = None,
    offsets: torch.Tensor | None = None,
) -> torch.Tensor:
    """Random crop (zero padding ``pad``) + horizontal flip of a whole batch with one gather.

    ``x`` (B, C, H, W), any dtype/device. ``flip``: False (never), True (random per sample, p=0.5)
    or a bool tensor (B,) forcing the flips. ``offsets`` (B, 2) forces the crop corners (row, col)
    in the padded image, each in [0, 2*pad]. Random numbers come from ``generator`` (CPU).
    Equivalent to torchvision ``RandomCrop(H, padding=pad)`` + ``RandomHorizontalFlip()``.
    """
    b, c, h, w = x.shape
    dev = x.device
    if offsets is None:
        if pad > 0:
            offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator)
        else:
            offsets = torch.zeros((b, 2), dtype=torch.int64)
    if isinstance(flip, torch.Tensor):
        flips = flip.to(torch.bool).cpu()
    elif flip:
        flips = torch.rand(b, generator=generator) < 0.5
    else:
        flips = torch.zeros(b, dtype=torch.bool)
    if pad == 0 and not bool(flips.any()):
        return x
    offsets = offsets.to(dev)
    flips = flips.to(dev)
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad)) if pad > 0 else x
    hp, wp = h + 2 * pad, w + 2 * pad
    ar_h = torch.arange(h, device=dev)
    ar_w = torch.arange(w, device=dev)
    rows = offsets[:, 0:1] + ar_h  # (B, H)
    cols = offsets[:, 1:2] + torch.where(flips[:, None], w - 1 - ar_w, ar_w)  # (B, W)
    # one gather over the flattened padded images: out[b, c, i, j] = xp[b, c, rows[b,i], cols[b,j]]
    idx = (rows[:, :, None] * wp + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return torch.gather(xp.reshape(b, c, hp * wp), 2, idx).view(b, c, h, w)


def _mean_std(
    data: ImageData, mean: Sequence[float] | None, std: Sequence[float] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel float64 (C,) mean and std: the given ones (1 value broadcasts), else the
    normalisation registered for ``data.name``."""
    c = data.images.shape[1]
    if mean is None or std is None:
        from .registry import normalization

        try:
            dmean, dstd = normalization(data.name)
        except ValueError as e:
            raise InputError(
                f"no default normalisation for {data.name!r}: pass mean= and std= "
                f"(e.g. the in-distribution's: normalization('cifar10'))"
            ) from e
        mean = dmean if mean is None else mean
        std = dstd if std is None else std
    mean_t = torch.as_tensor(mean, dtype=torch.float64).flatten()
    std_t = torch.as_tensor(std, dtype=torch.float64).flatten()
    if mean_t.numel() == 1:
        mean_t = mean_t.expand(c)
    if std_t.numel() == 1:
        std_t = std_t.expand(c)
    if mean_t.numel() != c or std_t.numel() != c:
        raise InputError(f"mean/std need 1 or {c} values; got {mean_t.numel()} and {std_t.numel()}")
    if bool((std_t <= 0).any()):
        raise InputError("std must be positive")
    return mean_t, std_t


class BatchLoader:
    """Iterate ``(x, y)`` batches from an :class:`ImageData` without per-sample Python work.

    The uint8 images (and labels) are moved to ``device`` once. Per batch: gather the indices,
    optionally random-crop with zero padding ``pad`` and flip horizontally (vectorised over the
    batch, on uint8, before normalisation, as torchvision's PIL transforms), convert to float,
    scale to [0, 1] and normalise with ``mean``/``std`` (``None``: :func:`normalization` of
    ``data.name``, which must then be an in-distribution set).

    Determinism: all randomness comes from a CPU ``torch.Generator`` seeded with (seed, epoch).
    Each ``iter()`` uses the current epoch and then advances it by one; :meth:`set_epoch` sets the
    epoch of the next iteration (call it before every epoch to resume training exactly).
    ``y`` is None for unlabelled data.

    ``shard=(rank, world)`` (distributed training): each iteration yields only this process's contiguous
    slice ``[rank*B//world, (rank+1)*B//world)`` of every global batch, gathered and augmented alone, with
    the random crops and flips the whole batch would have drawn: the slices of all processes together
    equal the one-process batches, and no process builds the global batch.
    """

    def __init__(
        self,
        data: ImageData,
        batch_size: int,
        shuffle: bool = False,
        augment: bool = False,
        pad: int = 4,
        flip: bool = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        device: str | torch.device = "cpu",
        drop_last: bool = False,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        channels_last: bool = False,
        shard: tuple[int, int] | None = None,
    ):
        if batch_size < 1:
            raise InputError("batch_size must be >= 1")
        if pad < 0:
            raise InputError("pad must be >= 0")
        self.data = data
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.augment = augment
        self.pad = int(pad)
        self.flip = flip
        self.drop_last = drop_last
        self.device = torch.device(device)
        self.dtype = dtype
        self.channels_last = channels_last
        c = data.images.shape[1]
        mean_t, std_t = _mean_std(data, mean, std)
        self.mean = tuple(float(v) for v in mean_t)
        self.std = tuple(float(v) for v in std_t)
        # x_norm = (x/255 - mean)/std = x * scale - shift
        self._scale = (1.0 / (255.0 * std_t)).to(dtype).view(1, c, 1, 1).to(self.device)
        self._shift = (mean_t / std_t).to(dtype).view(1, c, 1, 1).to(self.device)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        self.seed = int(seed)
        self.epoch = 0
        self._images = data.images.to(self.device)
        self._labels = None if data.labels is None else data.labels.to(self.device)
        if shard is not None and not (0 <= shard[0] < shard[1]):
            raise InputError(f"Expected `shard` to be (rank, world) with 0 <= rank < world, but got: {shard!r}")
        self.shard = shard
        self.sharded = shard is not None  # isomax.distributed.shard_batches passes these batches through

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the shuffle/augmentation stream of ``epoch``."""
        self.epoch = int(epoch)

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])

    def order(self, epoch: int | None = None) -> torch.Tensor:
        """The sample order of ``epoch`` (default: the next one), on CPU."""
        n = len(self.data)
        if not self.shuffle:
            return torch.arange(n)
        g = torch.Generator().manual_seed(_epoch_seed(self.seed, self.epoch if epoch is None else epoch))
        return torch.randperm(n, generator=g)

    def _normalise(self, xb: torch.Tensor) -> torch.Tensor:
        x = xb.to(self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x.mul_(self._scale).sub_(self._shift)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        epoch = self.epoch
        self.epoch += 1
        n = len(self.data)
        g = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
        perm = torch.randperm(n, generator=g) if self.shuffle else None
        # a separate stream for augmentation so that toggling augment keeps the order
        ga = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch) ^ 0xA5A5A5A5)
        if perm is not None:
            perm = perm.to(self.device)
        nb = len(self)
        for i in range(nb):
            lo, hi = i * self.batch_size, min(n, (i + 1) * self.batch_size)
            b = hi - lo
            if self.shard is not None:  # this process's rows of the global batch
                rank, world = self.shard
                first, last = rank * b // world, (rank + 1) * b // world
            else:
                first, last = 0, b
            if perm is None:
                xb = self._images[lo + first : lo + last]
                yb = None if self._labels is None else self._labels[lo + first : lo + last]
            else:
                idx = perm[lo + first : lo + last]
                xb = self._images.index_select(0, idx)
                yb = None if self._labels is None else self._labels.index_select(0, idx)
            if self.augment:
                # draw the whole batch's crops and flips (as random_crop_flip would), keep this slice's
                offsets = (
                    torch.randint(0, 2 * self.pad + 1, (b, 2), generator=ga)
                    if self.pad > 0
                    else torch.zeros((b, 2), dtype=torch.int64)
                )
                flips = (torch.rand(b, generator=ga) < 0.5) if self.flip else torch.zeros(b, dtype=torch.bool)
                xb = random_crop_flip(xb, self.pad, flips[first:last], offsets=offsets[first:last])
            yield self._normalise(xb), yb


def train_val_split(
    data: ImageData, val_fraction: float = 0.1, seed: int = 0, stratified: bool = True
) -> tuple[ImageData, ImageData]:
    """Split into (train, validation) disjoint subsets, each kept in the original order.

    The validation set has ``round(N * val_fraction)`` samples; with ``stratified`` (and labels)
    each class contributes in proportion (largest-remainder rounding), so class frequencies are
    preserved to within one sample per class. ``val_fraction=0`` keeps every sample for training
    and gives an empty validation set (same images shape, zero rows).

    Why not ``sklearn.model_selection.train_test_split(stratify=...)``: the validation split
    decides the training set, so the published results depend on these exact indices. sklearn
    draws from numpy's RandomState with its own per-class allocation and gives other indices for
    the same seed (checked on Fashion-MNIST and CIFAR-10 train, val_fraction 0.1 and 0.2, seeds
    0, 1 and 7: no split equal, the overlap of the validation sets at chance level, e.g. 622 of
    6,000), so switching would change every trained model. This implementation (torch generator,
    largest-remainder quotas, a random permutation per class in label order) is kept; a test pins
    its indices.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"val_fraction must be in [0, 1); got {val_fraction}")
    n = len(data)
    if val_fraction == 0.0:
        keep = torch.ones(n, dtype=torch.bool)
        return data.subset(keep), data.subset(~keep)
    n_val = int(round(n * val_fraction))
    if n_val < 1 or n_val >= n:
        raise InputError(
            f"val_fraction={val_fraction} of {n} samples leaves an empty split (use "
            f"val_fraction=0 for no validation set)"
        )
    g = torch.Generator().manual_seed(int(seed))
    if stratified and data.labels is not None:
        val_idx = _stratified_val_indices(data.labels.cpu(), n_val, g)
    else:
        val_idx = torch.randperm(n, generator=g)[:n_val]
    mask = torch.zeros(n, dtype=torch.bool)
    mask[val_idx] = True
    train = data.subset(~mask)
    val = data.subset(mask)
    return train, val


def _stratified_val_indices(labels: torch.Tensor, n_val: int, g: torch.Generator) -> torch.Tensor:
    """``n_val`` indices, each class's quota by largest-remainder rounding of its share, drawn by a
    random permutation within each class (classes in ascending label order)."""
    n = len(labels)
    classes, counts = torch.unique(labels, return_counts=True)
    exact = counts.double() * (n_val / n)
    quota = exact.floor().long()
    rest = n_val - int(quota.sum())
    if rest > 0:
        frac = exact - quota.double()
        # ties broken randomly but reproducibly
        order = torch.argsort(frac + 1e-9 * torch.rand(len(frac), generator=g, dtype=torch.float64), descending=True)
        quota[order[:rest]] += 1
    val_parts = []
    for cls, q in zip(classes.tolist(), quota.tolist()):
        idx = (labels == cls).nonzero().flatten()
        val_parts.append(idx[torch.randperm(len(idx), generator=g)[:q]])
    return torch.cat(val_parts)
