"""WebDataset-style tar shards: for data sets whose files outgrow one machine's disk or file count.

Layout written by ``isomax shard FOLDER OUT`` (:func:`write_shards`): ``OUT/train-000000.tar``, ...,
``OUT/val-*.tar``, ``OUT/test-*.tar`` and ``OUT/dataset.json`` (class names, per split its shard
names, image count and labels in shard order, and how the validation split was made). Every sample
is ``<key>.<ext>`` (the original image bytes) + ``<key>.cls`` (the label, an ASCII integer); the
training split is shuffled (seed 0) before it is cut into shards of ``--shard-size`` images.

``--dataset OUT`` or ``--dataset 'OUT/train-{000000..000099}.tar'`` (brace pattern; ``dataset.json``
is looked up next to the shards) reads them through the ``webdataset`` package (the optional extra
``isomax[shards]``). Training: each epoch the shard list is shuffled (seed, epoch), every rank takes
the shards ``rank::world`` (``webdataset.split_by_node``), every worker a share of those
(``split_by_worker``), samples are shuffled in a 1,000-sample buffer, and every rank yields exactly
``N // batch_size`` batches of ``batch_size / world`` (its shards repeat if they run short), so the
ranks stay in step. Evaluation reads the shards in order in one worker (logits stay in label order).
Unlike the folder path, the result depends on the number of processes and workers (which samples
meet in a batch).

A sample without its ``.cls`` label or without an image is a :class:`DatasetError` naming the shard
and the key.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import random
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from ..errors import InputError
from .errors import DatasetError
from .images import IMAGE_EXTENSIONS

__all__ = ["write_shards", "is_shard_dataset", "load_shards", "ShardImages", "MANIFEST"]

MANIFEST = "dataset.json"
_BRACE = re.compile(r"\{(\d+)\.\.(\d+)\}")


def _expand(pattern: str) -> list[str]:
    """``a-{000..002}.tar`` -> three names (one brace range; zero padding kept)."""
    m = _BRACE.search(pattern)
    if not m:
        return [pattern]
    lo, hi = m.group(1), m.group(2)
    return [pattern[: m.start()] + str(i).zfill(len(lo)) + pattern[m.end() :] for i in range(int(lo), int(hi) + 1)]


def is_shard_dataset(name: str | os.PathLike) -> bool:
    """A directory holding ``dataset.json``, or a ``.tar`` path / brace pattern next to one."""
    p = Path(str(name)).expanduser()
    if p.is_dir():
        return (p / MANIFEST).is_file()
    return str(name).endswith(".tar") and (p.parent / MANIFEST).is_file()


# ---- writing -----------------------------------------------------------------------------------
def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def write_shards(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    *,
    shard_size: int = 1000,
    val_fraction: float = 0.1,
    strict: bool = False,
    log=print,
) -> Path:
    """Write the splits of a folder data set (:mod:`.folder`) as tar shards + ``dataset.json`` into ``out``."""
    from .folder import scan_folder

    if shard_size < 1:
        raise InputError(f"Expected --shard-size to be >= 1, but got: {shard_size}")
    s = scan_folder(folder, val_fraction, strict)
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = dict(
        classes=s.classes, source=str(s.root), split=s.split, skipped=len(s.skipped), splits={}
    )
    for split, files in s.files.items():
        order = list(range(len(files)))
        if split == "train":
            random.Random(0).shuffle(order)
        names, labels = [], []
        for k in range(0, len(order), shard_size):
            name = f"{split}-{k // shard_size:06d}.tar"
            tmp = out / f".{name}.{os.getpid()}"
            with tarfile.open(tmp, "w") as tar:
                for i in order[k : k + shard_size]:
                    ext = Path(files[i]).suffix.lower().lstrip(".")
                    key = f"{i:09d}"
                    _add(tar, f"{key}.{ext}", Path(files[i]).read_bytes())
                    _add(tar, f"{key}.cls", str(s.labels[split][i]).encode())
                    labels.append(s.labels[split][i])
            os.replace(tmp, out / name)
            names.append(name)
        counts = [min(shard_size, len(order) - k) for k in range(0, len(order), shard_size)]
        manifest["splits"][split] = dict(shards=names, count=len(labels), counts=counts, labels=labels)
        log(f"{split}: {len(labels)} images in {len(names)} shard(s) {names[0]} .. {names[-1]}")
    (out / MANIFEST).write_text(json.dumps(manifest))
    return out


# ---- reading -----------------------------------------------------------------------------------
def _decode_sample(sample: dict, img_size: int, train: bool, flip: bool, rng: random.Random, transform):
    from .streaming import load_rgb, random_resized_crop_params

    where = f"{sample.get('__url__', '?')}: sample {sample.get('__key__', '?')!r}"
    if "cls" not in sample:
        raise DatasetError(f"{where} has no label (.cls member); rewrite the shards with `isomax shard`")
    ext = next((k for k in sample if "." + k in IMAGE_EXTENSIONS), None)
    if ext is None:
        raise DatasetError(f"{where} has no image member ({', '.join(IMAGE_EXTENSIONS[:4])} ...)")
    try:
        y = int(sample["cls"])
    except ValueError:
        raise DatasetError(f"{where}: label {sample['cls'][:20]!r} is not an integer") from None
    img = load_rgb(io.BytesIO(sample[ext]), 2 * img_size if train else img_size, name=where)
    if not train:
        return transform(img), y
    from torchvision.transforms.v2 import functional as TF

    x = TF.pil_to_tensor(img)
    top, left, ch, cw = random_resized_crop_params(x.shape[1], x.shape[2], rng)
    x = TF.resized_crop(x, top, left, ch, cw, [img_size, img_size], antialias=True)
    if flip and rng.random() < 0.5:
        x = TF.horizontal_flip(x)
    return x, y


class _ShardStream(torch.utils.data.IterableDataset):
    """Batches of ``batch_size`` (x uint8, y) from ``urls`` (this rank's split taken by webdataset)."""

    def __init__(self, urls, img_size, train, flip, seed, batch_size, rank, world):
        self.urls, self.img_size, self.train, self.flip = urls, img_size, train, flip
        self.seed, self.batch_size, self.rank, self.world = seed, batch_size, rank, world

    def _samples(self):
        import webdataset as wds

        def by_node(urls):  # this rank's shards (torch.distributed's rank, or the one given)
            return list(urls)[self.rank :: self.world]

        ds = wds.WebDataset(
            self.urls, shardshuffle=False, nodesplitter=by_node, workersplitter=wds.split_by_worker, empty_check=False
        )
        if not self.train:
            yield from ds
            return
        ds = ds.shuffle(1000, rng=random.Random(self.seed))
        while True:  # training: this worker's shards again and again; the loader takes as many batches as it needs
            n = 0
            for sample in ds:
                n += 1
                yield sample
            if n == 0:
                return  # no shard for this worker (more workers than shards): the others supply the batches

    def __iter__(self):
        from .streaming import _eval_transform

        info = torch.utils.data.get_worker_info()
        wid = info.id if info is not None else 0
        rng = random.Random(self.seed * 7919 + self.rank * 104729 + wid)
        transform = _eval_transform(self.img_size)
        xs, ys = [], []
        for sample in self._samples():
            x, y = _decode_sample(sample, self.img_size, self.train, self.flip, rng, transform)
            xs.append(x)
            ys.append(y)
            if len(xs) == self.batch_size:
                yield torch.stack(xs), torch.tensor(ys, dtype=torch.int64)
                xs, ys = [], []
        if xs and not self.train:
            yield torch.stack(xs), torch.tensor(ys, dtype=torch.int64)


class _ShardLoader:
    """Normalised batches on the device; ``steps`` batches per epoch when training (see the module docstring)."""

    sharded = True

    def __init__(self, data: "ShardImages", batch_size, mean, std, device, train, augment, flip, seed, rank, world):
        from .streaming import bounded_malloc

        bounded_malloc()
        self.data, self.batch_size, self.train, self.augment, self.flip = data, batch_size, train, augment, flip
        self.seed, self.rank, self.world, self.epoch = seed, rank, world, 0
        self.device = torch.device(device)
        mean_t = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        std_t = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self._scale, self._shift = (1.0 / (255.0 * std_t)).to(self.device), (mean_t / std_t).to(self.device)
        if train:
            if batch_size % world:
                raise InputError(
                    f"Expected `batch_size` ({batch_size}) to be divisible by the number of processes ({world})"
                )
            if len(data.urls) < world:
                raise DatasetError(
                    f"{data.urls[0]}: {len(data.urls)} training shard(s) for {world} processes; "
                    "write more, smaller shards (isomax shard --shard-size)"
                )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if self.train:
            return len(self.data) // self.batch_size
        return -(-len(self.data) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = self.epoch
        self.epoch += 1
        urls = list(self.data.urls)
        if self.train:
            random.Random(self.seed * 1_000_003 + epoch).shuffle(urls)
            workers = max(1, min(self.data.workers, len(urls) // self.world))
            ds = _ShardStream(
                urls,
                self.data.img_size,
                self.augment,
                self.flip,
                self.seed * 1009 + epoch,
                self.batch_size // self.world,
                self.rank,
                self.world,
            )
        else:  # in order, one worker: logits in label order; ranks take contiguous shard ranges
            workers = min(1, self.data.workers)
            lo, hi = self.rank * len(urls) // self.world, (self.rank + 1) * len(urls) // self.world
            ds = _ShardStream(urls[lo:hi], self.data.img_size, False, False, 0, self.batch_size, 0, 1)
            if lo == hi:
                return
        dl = torch.utils.data.DataLoader(
            ds, batch_size=None, num_workers=workers, pin_memory=self.device.type == "cuda"
        )
        it = iter(dl)
        batches = itertools.islice(it, len(self)) if self.train else it
        for x, y in batches:
            x = x.to(self.device, non_blocking=True).float().mul_(self._scale).sub_(self._shift)
            yield x, y.to(self.device, non_blocking=True)


@dataclass
class ShardImages:
    """One split of a shard data set; the lazy counterpart of ImageData (labels from ``dataset.json``)."""

    urls: list[str]
    labels: torch.Tensor
    name: str
    classes: list[str]
    img_size: int
    workers: int = 0
    conversion: str | None = None
    source: str | None = field(default=None, compare=False)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (3, self.img_size, self.img_size)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, index) -> "ShardImages":
        raise InputError(
            f"{self.source}: a subset of a shard data set (--train-limit, --eval-limit) is not supported; "
            "write smaller shards from a smaller folder"
        )

    def loader(
        self,
        batch_size,
        mean,
        std,
        device,
        *,
        train=False,
        augment=True,
        flip=True,
        seed=0,
        rank=0,
        world=1,
        persistent=False,
    ):
        # `persistent` is ignored: workers are started per epoch (the shard order changes)
        return _ShardLoader(self, batch_size, mean, std, device, train, augment, flip, seed, rank, world)


def load_shards(name: str | os.PathLike, img_size: int, workers: int = 0) -> dict:
    """``{"train", "val", "test"}`` -> ShardImages (empty where absent; a missing test is the validation split)."""
    p = Path(str(name)).expanduser()
    root = p if p.is_dir() else p.parent
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        classes, splits = list(manifest["classes"]), manifest["splits"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{root / MANIFEST}: not a shard manifest written by `isomax shard` ({e})") from e
    train_urls = None if p.is_dir() else [str(root / Path(u).name) for u in _expand(p.name)]
    sets = {}
    for split in ("train", "val", "test"):
        info = splits.get(split) or dict(shards=[], labels=[])
        urls = [str(root / u) for u in info["shards"]]
        labels = list(info["labels"])
        if split == "train" and train_urls is not None:  # a pattern: those shards only (labels in their order)
            per = {u: n for u, n in zip(urls, _shard_counts(info))}
            missing = [u for u in train_urls if u not in per]
            if missing:
                raise DatasetError(f"{missing[0]}: not a training shard listed in {root / MANIFEST}")
            starts = dict(zip(urls, itertools.accumulate([0] + _shard_counts(info)[:-1])))
            labels = [y for u in train_urls for y in labels[starts[u] : starts[u] + per[u]]]
            urls = train_urls
        for u in urls:
            if not Path(u).is_file():
                raise DatasetError(f"{u}: shard listed in {root / MANIFEST} is missing")
        sets[split] = ShardImages(
            urls,
            torch.tensor(labels, dtype=torch.int64),
            root.name,
            classes,
            int(img_size),
            workers=workers,
            source=str(root),
        )
    if not len(sets["test"]):
        sets["test"] = sets["val"]
    return sets


def _shard_counts(info: dict) -> list[int]:
    return [int(c) for c in info["counts"]]


def sample_mean_std_shards(data: ShardImages, n: int = 512):
    """Per-channel mean and std (ddof=1) of the first ``n`` training images in shard order (evaluation transform)."""
    from .streaming import mean_std_of

    return mean_std_of(data.loader(64, (0.0, 0.0, 0.0), (1 / 255,) * 3, "cpu"), n)
