"""In-memory image data sets and a fast tensor-level input pipeline.

A data set is a uint8 tensor ``images`` (N, C, H, W) plus int64 ``labels`` (N,) (or None) in an
:class:`ImageData`. :func:`load_dataset` reads the in-distribution sets and :func:`load_ood` the
out-of-distribution ones from the formats users have (idx, CIFAR pickles/archives/image folders,
SVHN .mat, ODIN tar.gz archives, tiny-imagenet-200, any image folder, tar or zip archive), searching
the roots given by :func:`find_data_dir`. :func:`dataset_info` tells what to record about a set
(class names, input shape, mean/std); :func:`ood_role` whether an out-distribution is near-, far-OOD
or noise for an in-distribution (:mod:`.roles`). :class:`BatchLoader` turns an ImageData into normalised float
batches with vectorised random-crop/flip augmentation.

Safety: archives are read member by member and every file, archive and image under size caps
(:mod:`.limits`: ``set_limits(...)`` or ``ISOMAX_MAX_MEMBER_BYTES`` / ``ISOMAX_MAX_ARCHIVE_BYTES`` /
``ISOMAX_MAX_IMAGE_PIXELS``); CIFAR pickles are unpickled with an allow-list, the decoded-image cache
is plain ``.npy`` + JSON (never pickle); an explicit ``data_dir`` that does not exist is an error.

Modules, one idea each: :mod:`.registry` (the data sets, one spec each) and :mod:`.specs` (the
kinds of spec); :mod:`.datasets` (the two load functions); :mod:`.formats` (idx, CIFAR pickles,
SVHN .mat), :mod:`.images` (image files: list, decode, stack, convert), :mod:`.archives` (tar/zip
member by member), :mod:`.imagesets` (image folders and archives as data sets), :mod:`.cache`
(decoded-image cache), :mod:`.noise` (synthetic sets), :mod:`.limits` (size caps),
:mod:`.checksums`, :mod:`.paths` (data roots), :mod:`.errors`, :mod:`.imagedata`, :mod:`.loader`
(BatchLoader, train/validation split).
"""

from .datasets import (
    IN_DATASETS,
    OOD_DATASETS,
    canonical_name,
    load_dataset,
    load_ood,
)
from .errors import (
    ChecksumError,
    ChecksumWarning,
    DataDirNotFoundError,
    DataLimitError,
    DatasetError,
    DatasetNotFoundError,
)
from .imagedata import ImageData
from .images import convert_like
from .limits import Limits, current_limits, set_limits
from .loader import BatchLoader, random_crop_flip, train_val_split
from .paths import cache_dir, find_data_dir
from .registry import dataset_info, get_spec, normalization
from .roles import ood_role, set_role
from .specs import DatasetInfo, DatasetSpec

__all__ = [
    "ImageData",
    "IN_DATASETS",
    "OOD_DATASETS",
    "find_data_dir",
    "load_dataset",
    "load_ood",
    "normalization",
    "dataset_info",
    "DatasetInfo",
    "DatasetSpec",
    "get_spec",
    "BatchLoader",
    "train_val_split",
    "random_crop_flip",
    "convert_like",
    "canonical_name",
    "ood_role",
    "set_role",
    "cache_dir",
    "Limits",
    "current_limits",
    "set_limits",
    "DatasetError",
    "DatasetNotFoundError",
    "DataDirNotFoundError",
    "DataLimitError",
    "ChecksumError",
    "ChecksumWarning",
]
