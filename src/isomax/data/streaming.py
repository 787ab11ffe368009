"""The streaming input path: image files decoded and augmented in ``DataLoader`` workers, so memory
depends on the batch size and the number of workers, never on the number of images.

- :class:`FileImages`: a labelled list of image files at one input size (``img_size``), the lazy
  counterpart of :class:`~isomax.data.ImageData` (``name``, ``classes``, ``labels``, ``shape``,
  ``subset``); :meth:`FileImages.loader` gives normalised ``(x, y)`` batches on the device.
- Decoding (:func:`load_rgb`): PIL with ``draft`` (JPEGs are decoded at 1/2, 1/4 or 1/8 scale when
  that still covers the target size), EXIF orientation applied (``ImageOps.exif_transpose``),
  converted to RGB; the pixel cap of :mod:`.limits` is checked from the header first.
- Recipe: training ``RandomResizedCrop(img_size)`` + horizontal flip (torchvision.transforms.v2);
  evaluation ``Resize(img_size)`` of the shorter side + ``CenterCrop(img_size)``, i.e. crop ratio
  1.0, the same geometry as :func:`isomax.data.convert_like` (used by ``predict`` and for
  out-distributions given by name). Normalisation happens on the device, on whole batches.
- Determinism: every augmentation draw is seeded from ``(seed, epoch, sample index)``, so a
  sample gets the same crop whatever the worker, the number of workers or of processes.
- Distributed: training batches come from a ``DistributedSampler`` (``set_epoch`` per epoch: every
  rank reads and decodes only its ``1/world`` share, ``batch_size / world`` images per step);
  evaluation takes contiguous, unpadded shares (:class:`ContiguousShards`), so sums all-reduced
  over ranks equal the 1-process sums.
- Bad files: a file that cannot be decoded is skipped with a one-line warning naming it (the next
  sample takes its place in the batch); with ``strict`` it is a :class:`DatasetError`.
"""

from __future__ import annotations

import math
import os
import random
import warnings
from dataclasses import dataclass, field, replace
from typing import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from ..errors import InputError
from .errors import DataLimitError, DatasetError
from .limits import current_limits

__all__ = [
    "FileImages",
    "StreamLoader",
    "ContiguousShards",
    "load_rgb",
    "default_workers",
    "sample_mean_std",
    "materialize",
]

MEAN_STD_SAMPLE = 512  # training images in the sample behind the default --mean/--std
_SEED_MIX = 0x9E3779B97F4A7C15


def default_workers() -> int:
    """``min(8, CPUs - 1)`` decoding workers (0: decode in the main process, with one CPU)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(8, n - 1))


def load_rgb(path, draft: int | None = None, name: str | None = None):
    """One image file (a path or a binary file object) as an RGB PIL image, EXIF orientation applied;
    JPEGs drafted down to at least ``draft`` x ``draft`` pixels. Raises :class:`DataLimitError` /
    :class:`DatasetError` naming the path (or ``name``)."""
    from PIL import Image, ImageOps

    limits = current_limits()
    path_ = path
    path = name or path
    try:
        with Image.open(path_) as im:  # header only
            w, h = im.size
            limits.check("image_pixels", w * h, f"{path} ({w}x{h} image)")
            if draft and im.format == "JPEG":
                im.draft("RGB", (draft, draft))
            im.load()
            if im.getexif().get(0x0112, 1) != 1:  # EXIF orientation: rotate / mirror as cameras meant
                im = ImageOps.exif_transpose(im)
            return im if im.mode == "RGB" else im.convert("RGB")
    except DataLimitError:
        raise
    except Exception as e:  # noqa: BLE001 - one line naming the file
        raise DatasetError(f"{path}: cannot decode image ({type(e).__name__}: {e})") from e


def _eval_transform(img_size: int):
    """PIL image -> uint8 (3, S, S): the shorter side resized to S (bilinear, antialiased), center crop;
    the geometry (sizes rounded, crop offsets floored) of :func:`isomax.data.convert_like`."""
    from torchvision.transforms.v2 import functional as TF

    def transform(img):
        x = TF.pil_to_tensor(img)
        h, w = x.shape[1:]
        if (h, w) == (img_size, img_size):
            return x
        s = max(img_size / h, img_size / w)
        rh, rw = max(img_size, round(h * s)), max(img_size, round(w * s))
        if (rh, rw) != (h, w):
            x = TF.resize(x, [rh, rw], antialias=True)
        top, left = (rh - img_size) // 2, (rw - img_size) // 2
        return x[:, top : top + img_size, left : left + img_size].contiguous()

    return transform


def random_resized_crop_params(h: int, w: int, rng: random.Random, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """(top, left, height, width): torchvision's ``RandomResizedCrop.get_params`` algorithm (10 tries of
    area in ``scale`` and log-uniform aspect ``ratio``, else the center crop clamped to ``ratio``),
    drawn from ``rng`` so that each sample has its own cheap, seeded stream."""
    area = h * w
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_r))
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return rng.randint(0, h - ch), rng.randint(0, w - cw), ch, cw
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def _sample_seed(seed: int, epoch: int, index: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + index * _SEED_MIX) % (2**63 - 1)


class _FileDataset(Dataset):
    """``dataset[(index, epoch)]`` -> (uint8 (3, S, S), label): decoded and transformed in the worker."""

    def __init__(
        self,
        files: Sequence[str],
        labels: Sequence[int] | None,
        img_size: int,
        train: bool,
        flip: bool,
        seed: int,
        strict: bool,
    ):
        self.files, self.labels = list(files), (None if labels is None else list(labels))
        self.img_size, self.train, self.seed, self.strict = img_size, train, seed, strict
        self.flip = flip
        self.transform = _eval_transform(img_size)
        self.draft = 2 * img_size if train else img_size  # random crops zoom in: keep twice the pixels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item):
        index, epoch = item if isinstance(item, tuple) else (item, 0)
        for k in range(len(self.files)):
            i = (index + k) % len(self.files)
            try:
                img = load_rgb(self.files[i], self.draft)
                break
            except DatasetError as e:
                if self.strict or isinstance(e, DataLimitError):
                    raise
                warnings.warn(f"skipped: {e}", stacklevel=2)
        else:
            raise DatasetError(f"{self.files[index]}: no image of this set can be decoded")
        if self.train:  # RandomResizedCrop + RandomHorizontalFlip, drawn from this sample's own stream
            from torchvision.transforms.v2 import functional as TF

            rng = random.Random(_sample_seed(self.seed, epoch, index))
            x = TF.pil_to_tensor(img)
            top, left, ch, cw = random_resized_crop_params(x.shape[1], x.shape[2], rng)
            x = TF.resized_crop(x, top, left, ch, cw, [self.img_size, self.img_size], antialias=True)
            if self.flip and rng.random() < 0.5:
                x = TF.horizontal_flip(x)
        else:
            x = self.transform(img)
        return x, (-1 if self.labels is None else self.labels[i])


class _WithEpoch(Sampler):
    """Yields ``(index, epoch)`` so that workers (persistent ones too) know the epoch of every draw."""

    def __init__(self, sampler):
        self.sampler, self.epoch = sampler, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self):
        return ((int(i), self.epoch) for i in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


class ContiguousShards(Sampler):
    """Rank ``r`` of ``world`` takes indices ``[r*N//world, (r+1)*N//world)``: disjoint, covering, no padding."""

    def __init__(self, n: int, rank: int = 0, world: int = 1):
        self.lo, self.hi = rank * n // world, (rank + 1) * n // world

    def __iter__(self):
        return iter(range(self.lo, self.hi))

    def __len__(self) -> int:
        return self.hi - self.lo


def bounded_malloc() -> None:
    """Pin glibc's mmap threshold at 1 MiB (once per process; no-op elsewhere). glibc raises the
    threshold each time a large block is freed, after which every batch-sized buffer (the float copy
    of each batch, ~3 MiB at 64 x 3 x 64 x 64) comes from the heap and the heap keeps growing:
    measured +100 MiB over 56 CPU batches, linear in the number of batches (so in the data set's
    size). With a fixed threshold the buffers are mapped and unmapped and memory stays flat."""
    global _MALLOC_PINNED
    if _MALLOC_PINNED:
        return
    _MALLOC_PINNED = True
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


_MALLOC_PINNED = False


class StreamLoader:
    """Normalised ``(x, y)`` float batches on ``device`` from a ``DataLoader`` over files.

    ``sharded`` tells :func:`isomax.distributed.shard_batches` that every batch is already this
    process's share. ``len()`` is the number of batches this process yields per epoch.
    """

    sharded = True

    def __init__(
        self,
        dataset: _FileDataset,
        batch_size: int,
        sampler: Sampler,
        mean,
        std,
        device,
        *,
        workers: int = 0,
        drop_last: bool = False,
        persistent: bool = False,
    ):
        bounded_malloc()
        self.sampler = _WithEpoch(sampler)
        self.device = torch.device(device)
        self.workers = workers
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            drop_last=drop_last,
            persistent_workers=persistent and workers > 0,
            prefetch_factor=4 if workers else None,
        )
        mean_t = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        std_t = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self._scale = (1.0 / (255.0 * std_t)).to(self.device)  # x_norm = x * scale - shift
        self._shift = (mean_t / std_t).to(self.device)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.sampler.set_epoch(self.epoch)
        self.epoch += 1
        for x, y in self.loader:
            x = x.to(self.device, non_blocking=True).float().mul_(self._scale).sub_(self._shift)
            yield x, y.to(self.device, non_blocking=True)


@dataclass
class FileImages:
    """A labelled list of image files read at ``img_size`` x ``img_size`` RGB (see the module docstring)."""

    files: list[str]
    labels: torch.Tensor | None
    name: str
    classes: list[str] | None
    img_size: int
    workers: int = 0
    strict: bool = False
    conversion: str | None = None
    source: str | None = field(default=None, compare=False)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (3, self.img_size, self.img_size)

    @property
    def num_classes(self) -> int | None:
        return len(self.classes) if self.classes is not None else None

    def subset(self, index) -> "FileImages":
        idx = torch.as_tensor(index)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().flatten()
        rows = idx.to(torch.int64).tolist()
        return replace(
            self, files=[self.files[i] for i in rows], labels=None if self.labels is None else self.labels[rows]
        )

    def dataset(self, train: bool = False, flip: bool = True, seed: int = 0) -> _FileDataset:
        return _FileDataset(
            self.files,
            None if self.labels is None else self.labels.tolist(),
            self.img_size,
            train,
            flip,
            seed,
            self.strict,
        )

    def loader(
        self,
        batch_size: int,
        mean,
        std,
        device,
        *,
        train: bool = False,
        augment: bool = True,
        flip: bool = True,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        persistent: bool = False,
    ) -> StreamLoader:
        """Training (``train=True``: shuffled by a ``DistributedSampler`` with ``seed``, augmented unless
        ``augment=False``, last partial batch dropped, ``batch_size`` is the global batch) or evaluation
        batches (in order, this rank's contiguous share). ``persistent`` keeps the workers between
        epochs (the training and validation loaders; one-pass loaders let them go)."""
        ds = self.dataset(train and augment, flip, seed)
        if train:
            if batch_size % world:
                raise InputError(
                    f"Expected `batch_size` ({batch_size}) to be divisible by the number of processes ({world})"
                )
            sampler: DistributedSampler[int] = DistributedSampler(
                ds, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True
            )
            return StreamLoader(
                ds,
                batch_size // world,
                sampler,
                mean,
                std,
                device,
                workers=self.workers,
                drop_last=True,
                persistent=persistent,
            )
        return StreamLoader(
            ds,
            batch_size,
            ContiguousShards(len(ds), rank, world),
            mean,
            std,
            device,
            workers=self.workers,
            persistent=persistent,
        )


def sample_mean_std(
    data: FileImages, n: int = MEAN_STD_SAMPLE, seed: int = 0
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (ddof=1, over all pixels) in [0, 1] units of a seeded sample of ``n``
    images at the evaluation transform; float64 sums, streamed batch by batch."""
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(data), generator=g)[: min(n, len(data))]
    sample = data.subset(pick.sort().values)
    return mean_std_of(sample.loader(64, (0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255), "cpu"), n)


def mean_std_of(batches, n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (ddof=1) in [0, 1] of the first ``n`` images of ``batches`` (raw 0..255 floats)."""
    s = torch.zeros(3, dtype=torch.float64)
    s2 = torch.zeros(3, dtype=torch.float64)
    count = seen = 0
    for x, _ in batches:
        x = x[: n - seen].double() / 255.0
        seen += len(x)
        s += x.sum((0, 2, 3))
        s2 += (x * x).sum((0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]
        if seen >= n:
            break
    mean = s / count
    var = (s2 - count * mean * mean) / max(count - 1, 1)
    std = var.clamp_min(1e-12).sqrt()
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)


def materialize(data: FileImages, batch_size: int = 256):
    """Decode every image at the evaluation transform into an in-memory :class:`~isomax.data.ImageData`
    (uint8 N x 3 x S x S), through the workers; for the in-memory path."""
    from .imagedata import ImageData

    n = len(data)
    images = torch.empty((n, 3, data.img_size, data.img_size), dtype=torch.uint8)
    ds = data.dataset(train=False)
    dl = DataLoader(ds, batch_size=batch_size, num_workers=data.workers, sampler=range(n))
    lo = 0
    for x, _ in dl:
        images[lo : lo + len(x)] = x
        lo += len(x)
    return ImageData(
        images,
        None if data.labels is None else data.labels.clone(),
        data.name,
        None if data.classes is None else list(data.classes),
        source=data.source,
    )
