"""Dataset specs: one small object per data set that knows everything about it.

A spec holds the set's names, classes, image shape and normalisation, the folders it is searched
in, its published checksums, and how to find, load, describe, download and get it. The kinds:

- :class:`IdxSpec`: MNIST-style idx files (Fashion-MNIST, MNIST);
- :class:`CifarSpec`: CIFAR python batches, their archive, or an image-folder copy;
- :class:`SvhnSpec`: SVHN's ``{train,test}_32x32.mat``;
- :class:`OdinSpec`: the ODIN paper's out-distribution archives (iSUN, LSUN, TinyImageNet
  resized), and :class:`TinyImageNetResizeSpec`, which can also make its set from
  ``tiny-imagenet-200``;
- :class:`FolderSpec`: a folder of images of any sizes, kept at a fixed size (Textures/DTD,
  Places365);
- :class:`NoiseSpec`: synthetic noise made from a seed.

The instances are registered in :mod:`.registry`; adding a data set is adding one spec there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from ..errors import InputError
from .archives import iter_members
from .checksums import verify_md5
from .errors import DatasetError, DatasetNotFoundError
from .formats import (
    cifar_batch_to_arrays,
    parse_idx,
    read_cifar_pickle,
    read_file_bytes,
    read_svhn_mat,
)
from .imagedata import ImageData
from .images import list_image_files, read_file
from .imagesets import (
    images_from_archive,
    images_from_folder,
    images_from_folder_as,
    is_split_image_folder,
    load_split_image_folder,
)
from .noise import synthetic
from .paths import cache_dir, candidate_dirs, first_file, search_roots

__all__ = [
    "DatasetSpec",
    "IdxSpec",
    "CifarSpec",
    "SvhnSpec",
    "OdinSpec",
    "TinyImageNetResizeSpec",
    "FolderSpec",
    "NoiseSpec",
    "DatasetInfo",
    "ODIN_URL",
]

ODIN_URL = "https://github.com/facebookresearch/odin"

Checksums = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class DatasetInfo:
    """What a caller records about a data set (e.g. in a run's config): from :func:`dataset_info`.

    ``shape`` is (C, H, W) as stored (None for noise, whose shape follows ``like``); ``mean`` and
    ``std`` are per channel in [0, 1] pixel units (None for sets without a normalisation:
    out-distributions are normalised with the in-distribution's statistics)."""

    name: str
    classes: tuple[str, ...] | None
    shape: tuple[int, int, int] | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    splits: tuple[str, ...]
    labelled: bool
    in_distribution: bool

    @property
    def num_classes(self) -> int | None:
        return None if self.classes is None else len(self.classes)

    def to_dict(self) -> dict:
        """JSON-ready: tuples as lists."""
        return {
            "name": self.name,
            "classes": None if self.classes is None else list(self.classes),
            "num_classes": self.num_classes,
            "shape": None if self.shape is None else list(self.shape),
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
            "splits": list(self.splits),
            "labelled": self.labelled,
            "in_distribution": self.in_distribution,
        }


@dataclass(frozen=True, eq=False)
class DatasetSpec:
    """Everything about one data set. Subclasses implement :meth:`find` (and, if files can be
    fetched, :meth:`download`) and describe their files in :meth:`expected` / :meth:`how_to_get`.

    ``aliases``: other accepted names (compared without case, '-', '_' or spaces);
    ``in_distribution``: listed in ``IN_DATASETS`` (a training set of the benchmarks);
    ``splits``: the splits :meth:`find` accepts (labelled sets: train and test; out-distribution
    sets: test only); ``subdirs``: folders searched under each data root, before the root itself;
    ``md5``: file name -> accepted md5s (published values)."""

    name: str
    aliases: tuple[str, ...] = ()
    classes: tuple[str, ...] | None = None
    shape: tuple[int, int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    in_distribution: bool = False
    splits: tuple[str, ...] = ("test",)
    subdirs: tuple[str, ...] = ()
    md5: Checksums = field(default_factory=dict)

    # ---- description --------------------------------------------------------------------
    @property
    def labelled(self) -> bool:
        """Has labels and a training split: :func:`load_dataset` accepts it."""
        return "train" in self.splits

    def info(self) -> DatasetInfo:
        return DatasetInfo(
            self.name, self.classes, self.shape, self.mean, self.std, self.splits, self.labelled, self.in_distribution
        )

    def expected(self, split: str) -> list[str]:
        """The file layouts that would be found, for the not-found message."""
        return []

    def how_to_get(self) -> str:
        return ""

    def searched(self, roots: Sequence[Path]) -> list[Path]:
        """The folders :meth:`find` looks in, for the not-found message."""
        return candidate_dirs(roots, self.subdirs)

    # ---- loading ------------------------------------------------------------------------
    def find(self, split: str, roots: Sequence[Path], verify: bool) -> ImageData | None:
        """Load ``split`` from the first place in ``roots`` that has it; None if none has."""
        raise NotImplementedError

    @property
    def can_download(self) -> bool:
        return type(self).download is not DatasetSpec.download

    def download(self, split: str, root: Path) -> None:
        """Fetch the files of ``split`` into ``root`` (where :meth:`find` finds them)."""
        raise NotImplementedError(f"{self.name}: no download")

    def load(self, split: str, data_dir=None, download: bool = False, verify: bool = True) -> ImageData:
        """Search the data roots for ``split``; with ``download``, fetch it if missing; else a
        :class:`DatasetNotFoundError` that lists what was expected, where, and how to get it."""
        if split not in self.splits:
            raise InputError(f"split must be {' or '.join(map(repr, self.splits))} for {self.name!r}, not {split!r}")
        roots = search_roots(data_dir)
        data = self.find(split, [r for r in roots if r.is_dir()], verify)
        note = ""
        if data is None and download:
            if not self.can_download:
                note = "(torchvision has no download for this set; download=True cannot help.)"
            else:
                try:
                    root = cache_dir()
                    root.mkdir(parents=True, exist_ok=True)
                    self.download(split, root)
                except Exception as e:  # noqa: BLE001 - network errors of all kinds
                    note = f"download=True failed: {type(e).__name__}: {e}"
                else:
                    data = self.find(split, [r for r in roots if r.is_dir()], verify)
        if data is None:
            raise DatasetNotFoundError(
                self.name,
                self.expected(split),
                self.searched(roots),
                self.how_to_get(),
                split=split if self.labelled else None,
                note=note,
            )
        return data

    def load_ood(
        self,
        data_dir=None,
        download: bool = False,
        verify: bool = True,
        like: tuple[int, int, int] | None = None,
        num_samples: int = 10000,
        seed: int = 0,
    ) -> ImageData:
        """The set as an out-distribution: its test split (``like`` etc. matter for noise only;
        the caller converts to ``like``)."""
        return self.load("test", data_dir, download, verify)


# ----------------------------------------------------------------------------------------------
# idx: Fashion-MNIST, MNIST
# ----------------------------------------------------------------------------------------------
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True, eq=False)
class IdxSpec(DatasetSpec):
    """Four idx files (gzipped or not) in one folder; ``torchvision_class`` downloads them."""

    splits: tuple[str, ...] = ("train", "test")
    how: str = ""
    torchvision_class: str = ""

    def expected(self, split: str) -> list[str]:
        a, b = _IDX_FILES[split]
        return [
            f"{a}.gz + {b}.gz (or un-gzipped) in one of the folders {', '.join(self.subdirs)} or the data root itself"
        ]

    def how_to_get(self) -> str:
        return self.how

    def find(self, split, roots, verify):
        img_base, lab_base = _IDX_FILES[split]
        for d in candidate_dirs(roots, self.subdirs):
            img = first_file([d], (img_base + ".gz", img_base))
            lab = first_file([d], (lab_base + ".gz", lab_base))
            if img is None or lab is None:
                continue
            arrays = []
            for p in (img, lab):
                raw, content = read_file_bytes(p)
                if verify:
                    verify_md5(self.name, self.md5, p, raw, content)
                arrays.append(parse_idx(content, p))
            x, y = arrays
            assert self.classes is not None, "labelled sets are registered with their class names"
            if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
                raise DatasetError(f"{img}: images {x.shape} and labels {y.shape} ({lab}) do not match")
            return ImageData(
                torch.from_numpy(np.ascontiguousarray(x[:, None])),
                torch.from_numpy(y.astype(np.int64)),
                self.name,
                list(self.classes),
                source=str(d),
            )
        return None

    def download(self, split, root):
        import torchvision.datasets as tvd

        getattr(tvd, self.torchvision_class)(str(root), train=split == "train", download=True)


# ----------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CifarSpec(DatasetSpec):
    """The python batches (extracted ``folder``/ or the ``archive`` read in place) or an
    image-folder copy ``<root>/<image_folders[i]>/{train,test}/<class>/*`` (e.g. a JPEG export,
    whose ``.jpg`` files' tree sha256 is checked against ``image_folder_sha256``)."""

    splits: tuple[str, ...] = ("train", "test")
    folder: str = ""
    archive: str = ""
    members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # split -> batch files
    meta: str = ""
    meta_key: str = ""
    label_key: str = ""
    image_folders: tuple[str, ...] = ()
    image_folder_sha256: tuple[str, ...] = ()
    url: str = ""
    torchvision_class: str = ""

    def expected(self, split):
        return [
            f"{self.folder}/{{{','.join(self.members[split])}}}",
            self.archive,
            f"{self.image_folders[0]}/{split}/<class>/*.jpg",
        ]

    def how_to_get(self):
        return (
            f"load_dataset('{self.name}', download=True) (torchvision, needs internet) or "
            f"download {self.url} and put it (or its extracted {self.folder}/ folder) in a data "
            f"root; an image-folder copy <root>/{self.image_folders[0]}/{{train,test}}/<class>/"
            f"*.jpg also works"
        )

    def searched(self, roots):
        return candidate_dirs(roots, self.subdirs) + [r / j for r in roots for j in self.image_folders]

    def _class_names(self, data: bytes | None, where: str) -> list[str] | None:
        names = None
        if data is not None:
            try:
                names = [
                    c.decode("latin1") if isinstance(c, bytes) else str(c)
                    for c in read_cifar_pickle(data, where)[self.meta_key]
                ]
            except (KeyError, DatasetError):
                names = None
        if names is None and self.classes is not None:
            names = list(self.classes)
        return names

    def _from_batches(
        self, split: str, batches: Mapping[str, tuple[np.ndarray, np.ndarray]], classes: list[str] | None, source: str
    ) -> ImageData:
        xs = [batches[m][0] for m in self.members[split]]
        ys = [batches[m][1] for m in self.members[split]]
        return ImageData(
            torch.from_numpy(np.concatenate(xs)),
            torch.from_numpy(np.concatenate(ys)),
            self.name,
            classes,
            source=source,
        )

    def _batch(self, data: bytes, where: str, member: str, verify: bool):
        if verify:
            verify_md5(self.name, self.md5, Path(where), data, key=member)
        return cifar_batch_to_arrays(read_cifar_pickle(data, where), self.label_key, where)

    def _find_extracted(self, split, dirs, verify):
        for d in dirs:
            folder = d / self.folder
            if all((folder / m).is_file() for m in self.members[split]):
                batches = {
                    m: self._batch(read_file(folder / m), str(folder / m), m, verify) for m in self.members[split]
                }
                meta = folder / self.meta
                classes = self._class_names(read_file(meta) if meta.is_file() else None, str(meta))
                return self._from_batches(split, batches, classes, str(folder))
        return None

    def _find_archive(self, split, dirs, verify):
        for d in dirs:
            arc = d / self.archive
            if not arc.is_file():
                continue
            if verify:
                verify_md5(self.name, self.md5, arc)  # streamed: the archive is never read whole
            wanted = set(self.members[split])
            batches, meta = {}, None
            # one member at a time: each batch is parsed to arrays before the next is read
            for mname, data in iter_members(arc, lambda n: n.rsplit("/", 1)[-1] in wanted | {self.meta}):
                base = mname.rsplit("/", 1)[-1]
                where = f"{arc}:{self.folder}/{base}"
                if base == self.meta:
                    meta = self._class_names(data, where)
                else:
                    batches[base] = self._batch(data, where, base, verify)
                del data
            missing = [m for m in self.members[split] if m not in batches]
            if missing:
                raise DatasetError(f"{arc}: archive lacks member {self.folder}/{missing[0]}")
            classes = meta if meta is not None else self._class_names(None, "")
            return self._from_batches(split, batches, classes, str(arc))
        return None

    def _find_image_folder(self, split, roots, verify):
        for r in roots:
            for sub in self.image_folders:
                d = r / sub
                if is_split_image_folder(d, split):
                    return load_split_image_folder(
                        self.name, d, split, self.classes, self.image_folder_sha256 if verify else None
                    )
        return None

    def find(self, split, roots, verify):
        dirs = candidate_dirs(roots, self.subdirs)
        return (
            self._find_extracted(split, dirs, verify)
            or self._find_archive(split, dirs, verify)
            or self._find_image_folder(split, roots, verify)
        )

    def download(self, split, root):
        import torchvision.datasets as tvd

        getattr(tvd, self.torchvision_class)(str(root), train=split == "train", download=True)


# ----------------------------------------------------------------------------------------------
# SVHN
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SvhnSpec(DatasetSpec):
    """``{split}_32x32.mat`` in ``svhn/`` (or ``SVHN/``, or a root); label 10 means digit 0."""

    splits: tuple[str, ...] = ("train", "test")

    def expected(self, split):
        return [f"{split}_32x32.mat (in svhn/ or the root)"]

    def how_to_get(self):
        return (
            "load_dataset('svhn', download=True) (torchvision, needs internet) or "
            "http://ufldl.stanford.edu/housenumbers/ (train_32x32.mat, test_32x32.mat) into "
            "<root>/svhn/"
        )

    def find(self, split, roots, verify):
        p = first_file(candidate_dirs(roots, self.subdirs), (f"{split}_32x32.mat",))
        if p is None:
            return None
        if verify:
            verify_md5(self.name, self.md5, p)
        x, y = read_svhn_mat(p)
        assert self.classes is not None, "labelled sets are registered with their class names"
        return ImageData(torch.from_numpy(x), torch.from_numpy(y), self.name, list(self.classes), source=str(p))

    def download(self, split, root):
        import torchvision.datasets as tvd

        tvd.SVHN(str(root / "svhn"), split=split, download=True)


# ----------------------------------------------------------------------------------------------
# ODIN's out-distribution sets
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class OdinSpec(DatasetSpec):
    """One of ODIN's archives (read in place) or its extracted folder; unlabelled, test only.
    Archives are preferred over folders in every searched directory."""

    archives: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()

    def expected(self, split):
        return [*self.archives, *(f"{f}/ (extracted folder)" for f in self.folders)]

    def how_to_get(self):
        return (
            f"download {', '.join(self.archives)} from {ODIN_URL} (links in its README) into a "
            f"data root or its {self.subdirs[0]}/ folder"
        )

    def find(self, split, roots, verify):
        dirs = candidate_dirs(roots, self.subdirs)
        for d in dirs:
            for a in self.archives:
                if (d / a).is_file():
                    x, src = images_from_archive(self.name, d / a, self.md5 if verify else None)
                    return ImageData(torch.from_numpy(x), None, self.name, None, source=src)
        for d in dirs:
            for f in self.folders:
                if (d / f).is_dir() and list_image_files(d / f):
                    x, src, rec = images_from_folder(self.name, d / f)
                    return ImageData(torch.from_numpy(x), None, self.name, None, conversion=rec, source=src)
        return None


@dataclass(frozen=True, eq=False)
class TinyImageNetResizeSpec(OdinSpec):
    """ODIN's ``Imagenet_resize``, or else made from the original ``tiny-imagenet-200/test``
    (10,000 64x64 JPEGs downscaled to ``pool_like``, checked against ``pool_sha256``)."""

    pool_dirs: tuple[str, ...] = ()
    pool_like: tuple[int, int, int] = (3, 32, 32)
    pool_sha256: tuple[str, ...] = ()
    pool_url: str = ""

    def expected(self, split):
        return super().expected(split) + [
            f"{self.pool_dirs[0]}/test/images/*.JPEG (downscaled to {self.pool_like[1]}x{self.pool_like[2]})"
        ]

    def how_to_get(self):
        return (
            super().how_to_get() + f"; or the original tiny-imagenet-200.zip ({self.pool_url}) extracted in a data root"
        )

    def searched(self, roots):
        return super().searched(roots) + candidate_dirs(roots, self.pool_dirs, bare=False)

    def find(self, split, roots, verify):
        data = super().find(split, roots, verify)
        if data is not None:
            return data
        for d in candidate_dirs(roots, self.pool_dirs, bare=False):
            test = d / "test"
            if (test / "images").is_dir():
                x, src, rec = images_from_folder(
                    "tiny-imagenet-200-test", test, self.pool_sha256 if verify else None, post_like=self.pool_like
                )
                return ImageData(torch.from_numpy(x), None, self.name, None, conversion=rec, source=src)
        return None


# ----------------------------------------------------------------------------------------------
# folders of images of any size: Textures (DTD), Places365
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FolderSpec(DatasetSpec):
    """A folder of images (class sub-folders or flat, recursive), decoded a chunk at a time and
    kept at ``shape`` (same aspect ratio: antialiased resize; other: shorter side fits, then center
    crop, as OpenOOD's Resize + CenterCrop). Searched as ``<root>/<subdir>/<folder>`` for each of
    ``subdirs`` x ``folders`` (``""``: the sub-folder itself); never the bare data root.
    Unlabelled, test only."""

    folders: tuple[str, ...] = ("",)
    how: str = ""

    def _dirs(self, roots):
        return [d / f if f else d for d in candidate_dirs(roots, self.subdirs, bare=False) for f in self.folders]

    def expected(self, split):
        return [f"{self.subdirs[0]}/{f + '/' if f else ''}**/*.jpg (any image files, any sizes)" for f in self.folders]

    def how_to_get(self):
        return self.how

    def searched(self, roots):
        return self._dirs(roots)

    def find(self, split, roots, verify):
        assert self.shape is not None, "folder sets are registered with the shape they are kept at"
        for d in self._dirs(roots):
            if d.is_dir() and list_image_files(d):
                x, src, rec = images_from_folder_as(self.name, d, self.shape)
                return ImageData(torch.from_numpy(x), None, self.name, None, conversion=rec, source=src)
        return None


# ----------------------------------------------------------------------------------------------
# synthetic noise
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class NoiseSpec(DatasetSpec):
    """Noise images made from a seed, in the shape of the in-distribution (``like``)."""

    splits: tuple[str, ...] = ()

    def load(self, split, data_dir=None, download=False, verify=True):
        raise InputError(
            f"{self.name!r} is synthetic noise: use load_ood({self.name!r}, like=..., num_samples=..., seed=...)"
        )

    def load_ood(self, data_dir=None, download=False, verify=True, like=None, num_samples=10000, seed=0):
        return synthetic(self.name, like, num_samples, seed)
