"""In-memory image data sets and a fast tensor-level input pipeline.

A data set is a uint8 tensor ``images`` (N, C, H, W) plus int64 ``labels`` (N,) (or None) in an
:class:`ImageData`. :func:`load_dataset` reads the in-distribution sets and :func:`load_ood` the
out-of-distribution ones from the formats users have (idx, CIFAR pickles/archives/image folders,
SVHN .mat, ODIN tar.gz archives, tiny-imagenet-200, any image folder), searching the roots given by
:func:`find_data_dir`. :class:`BatchLoader` turns an ImageData into normalised float batches with
vectorised random-crop/flip augmentation.
"""

from ._common import (
    ChecksumError,
    DatasetError,
    DatasetNotFoundError,
    ImageData,
    cache_dir,
    find_data_dir,
)
from .datasets import (
    IN_DATASETS,
    OOD_DATASETS,
    ChecksumWarning,
    canonical_name,
    load_dataset,
    load_ood,
    normalization,
)
from .formats import convert_like
from .loader import BatchLoader, random_crop_flip, train_val_split

__all__ = [
    "ImageData",
    "IN_DATASETS",
    "OOD_DATASETS",
    "find_data_dir",
    "load_dataset",
    "load_ood",
    "normalization",
    "BatchLoader",
    "train_val_split",
    "random_crop_flip",
    "convert_like",
    "canonical_name",
    "cache_dir",
    "DatasetError",
    "DatasetNotFoundError",
    "ChecksumError",
    "ChecksumWarning",
]
