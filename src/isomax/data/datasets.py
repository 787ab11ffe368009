"""The two entry points: :func:`load_dataset` (labelled sets) and :func:`load_ood` (out-of-distribution
sets by name, or any image folder / archive by path). What each set is and how it is found lives in
its spec (:mod:`.registry`, :mod:`.specs`)."""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType

from ..errors import InputError
from .errors import ChecksumWarning
from .imagedata import ImageData
from .images import convert_like
from .imagesets import join_records, load_path
from .paths import check_data_dir
from .registry import REGISTRY, canonical_name, get_spec, in_datasets, normalization, ood_datasets
from .specs import ODIN_URL, CifarSpec, TinyImageNetResizeSpec

__all__ = [
    "IN_DATASETS",
    "OOD_DATASETS",
    "KNOWN_MD5",
    "KNOWN_TREE_SHA256",
    "ChecksumWarning",
    "canonical_name",
    "load_dataset",
    "load_ood",
    "normalization",
    "ODIN_URL",
]

#: the in-distribution (training) sets of the benchmarks
IN_DATASETS: tuple[str, ...] = in_datasets()
#: every set :func:`load_ood` accepts by name
OOD_DATASETS: tuple[str, ...] = ood_datasets()

#: (dataset, file name) -> accepted md5s: a read-only view of the specs' ``md5`` tables (kept for
#: callers of the former module constant; the specs are the source).
KNOWN_MD5 = MappingProxyType({(s.name, f): tuple(v) for s in REGISTRY.values() for f, v in s.md5.items()})
#: folder copy -> accepted tree sha256s: a read-only view of the specs' tables.
KNOWN_TREE_SHA256 = MappingProxyType(
    {
        **{
            f"{s.name}-jpg": s.image_folder_sha256
            for s in REGISTRY.values()
            if isinstance(s, CifarSpec) and s.image_folder_sha256
        },
        **{
            "tiny-imagenet-200/test": s.pool_sha256
            for s in REGISTRY.values()
            if isinstance(s, TinyImageNetResizeSpec) and s.pool_sha256
        },
    }
)


def _verify_default(verify: bool | None) -> bool:
    """Checksums are verified unless asked not to (argument, or ``ISOMAX_VERIFY=0`` for test fixtures)."""
    if verify is not None:
        return bool(verify)
    return os.environ.get("ISOMAX_VERIFY", "1").strip().lower() not in ("0", "false", "no", "off")


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    verify: bool | None = None,
) -> ImageData:
    """Load a labelled set (``IN_DATASETS``, plus ``"mnist"``) as uint8 (N, C, H, W).

    Searches :func:`find_data_dir`'s roots for the original formats (idx, CIFAR pickles or archive,
    CIFAR image folders, SVHN .mat). An explicit ``data_dir`` must exist
    (:class:`DataDirNotFoundError`), except with ``download=True``, which falls back to
    torchvision's download into ``~/.cache/isomax``. ``verify`` checks published checksums
    (default: on, unless the environment sets ``ISOMAX_VERIFY=0``). Class names, shape and
    normalisation of the set: :func:`dataset_info`.
    """
    verify = _verify_default(verify)
    spec = get_spec(name)
    if not spec.labelled:
        labelled = [s.name for s in REGISTRY.values() if s.labelled]
        raise InputError(
            f"{name!r} is not an in-distribution data set; known: {', '.join(labelled)} (use load_ood for {name!r})"
        )
    if split not in ("train", "test"):
        raise InputError(f"split must be 'train' or 'test', not {split!r}")
    if not download:
        check_data_dir(data_dir)
    return spec.load(split, data_dir, download=download, verify=verify)


def load_ood(
    name_or_path: str | os.PathLike,
    like: tuple[int, int, int] | None = None,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    num_samples: int = 10000,
    seed: int = 0,
    verify: bool | None = None,
) -> ImageData:
    """Load an out-of-distribution set by name (``OOD_DATASETS``) or from a path (image folder,
    class-folder or flat, recursive; or a tar or zip archive of images).

    ``like=(C, H, W)`` converts the images to the in-distribution's channels and size (grey<->RGB,
    antialiased resize, center crop if aspect ratios differ); the conversion is recorded in
    ``.conversion``. Named in-distribution sets give their test split. ``"gaussian"`` and
    ``"uniform"`` make ``num_samples`` images deterministically from ``seed``; ``num_samples``
    does not subsample real sets (use :meth:`ImageData.subset`). ``verify`` and ``data_dir`` as in
    :func:`load_dataset`. Archives and image files are read under the size caps of
    :mod:`isomax.data.limits`.
    """
    verify = _verify_default(verify)
    if like is not None:
        if len(like) != 3 or like[0] not in (1, 3) or min(like) < 1:
            raise InputError(f"like must be (C, H, W) with C in (1, 3); got {tuple(like)}")
        like = (int(like[0]), int(like[1]), int(like[2]))
    try:
        spec = get_spec(str(name_or_path))
    except ValueError:
        spec = None
    if spec is None:
        p = Path(name_or_path).expanduser()
        if not p.exists():
            raise InputError(
                f"{str(name_or_path)!r} is neither a known out-of-distribution set "
                f"({', '.join(OOD_DATASETS)}) nor an existing path"
            )
        data = load_path(p, like)
    else:
        if not download:
            check_data_dir(data_dir)
        data = spec.load_ood(data_dir, download=download, verify=verify, like=like, num_samples=num_samples, seed=seed)
    x, rec = convert_like(data.images, like)
    data.images, data.conversion = x, join_records(data.conversion, rec)
    return data
