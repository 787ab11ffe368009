"""What a run's configuration reads: its training/validation split and its test split, for registered
data sets and for folder / shard data sets given by path.

Below :mod:`isomax.training`, :mod:`isomax.evaluation` and :mod:`isomax.deploy`, which all read a
run's data through it (so none of them imports another for it).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import torch

from .errors import InputError
from .presets import TrainConfig
from .sampling import seeded_indices

__all__ = ["load_data", "load_test", "MEMORY_PATH_BYTES"]

_SPLIT_SEED = 0  # the validation split is the same for every run of a dataset


def load_data(
    config: TrainConfig, data_dir: str | os.PathLike | None = None, workers: int | None = None
) -> tuple[Any, Any]:
    """(train, val) ImageData for the configuration's in-distribution (the test split is never used here).

    With ``val_fraction=0`` every training image is used for training (as the papers did on
    CIFAR) and ``val`` is empty. ``data_dir`` and ``workers`` are the :class:`~isomax.presets.Runtime`'s
    (where registered sets are; decoding workers of folder sets, default ``min(8, CPUs - 1)``).
    """
    from .data import load_dataset, train_val_split

    if _is_folder(config):
        sets = _folder_sets(config, workers)[0]
        return _limit(config, sets["train"]), sets["val"]
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise FileNotFoundError(f"Expected `data_dir` to be an existing directory, but got: {str(data_dir)!r}")
    full = load_dataset(config.dataset, "train", data_dir=data_dir)
    if config.val_fraction == 0:
        train_set, val_set = full, full.subset(torch.zeros(0, dtype=torch.int64))
    else:
        train_set, val_set = train_val_split(full, config.val_fraction, seed=_SPLIT_SEED)
    return _limit(config, train_set), val_set


def _limit(config: TrainConfig, train_set: Any) -> Any:
    if config.train_limit is not None:  # in the order drawn (as always: the order the training batches follow)
        train_set = train_set.subset(seeded_indices(len(train_set), config.train_limit, _SPLIT_SEED, sort=False))
    return train_set


# ---- folder data sets (isomax.data.folder, isomax.data.streaming) ------------------------------
MEMORY_PATH_BYTES = 1 << 30  # --data-path auto: in memory while the decoded training set fits in 1 GiB


def _is_folder(config: TrainConfig) -> bool:
    """A data set given by path: an image folder (isomax.data.folder) or tar shards (isomax.data.shards)."""
    from .data.folder import is_folder_dataset
    from .data.shards import is_shard_dataset

    return is_folder_dataset(config.dataset) or is_shard_dataset(config.dataset)


def _folder_sets(config: TrainConfig, workers: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """({"train", "val", "test"}: FileImages or ShardImages, what to record about the source) of a folder run."""
    from .data.streaming import default_workers

    workers = default_workers() if workers is None else workers
    return _load_folder_cached(str(config.dataset), config.img_size, config.val_fraction, workers, config.strict)


@functools.lru_cache(maxsize=4)  # one listing per process (training and its final threshold, evaluate)
def _load_folder_cached(
    root: str, img_size: int | None, val_fraction: float, workers: int, strict: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    from .data.folder import DEFAULT_IMG_SIZE, load_folder
    from .data.shards import MANIFEST, is_shard_dataset, load_shards

    if is_shard_dataset(root):
        sets = load_shards(root, img_size or DEFAULT_IMG_SIZE, workers)
        return sets, dict(source=str(root), split=f"as written in {MANIFEST}", skipped=0)
    sets, s = load_folder(root, img_size, val_fraction=val_fraction, workers=workers, strict=strict)
    return sets, dict(source=str(s.root), split=s.split, skipped=len(s.skipped))


def load_test(config: TrainConfig, data_dir: str | os.PathLike | None = None, workers: int | None = None) -> Any:
    """The in-distribution test split of a run: the registered set's, or a folder's ``test/`` (else its
    validation split). ``data_dir``, ``workers``: as :func:`load_data`."""
    from .data import load_dataset

    if _is_folder(config):
        return _folder_sets(config, workers)[0]["test"]
    if config.img_size is not None:
        _check_registered_size(config)
    return load_dataset(config.dataset, "test", data_dir=data_dir)


def _check_registered_size(config: TrainConfig) -> None:
    from .data import dataset_info

    if not _is_folder(config) and config.img_size is not None:
        shape = dataset_info(config.dataset).shape
        if shape is not None and (shape[1], shape[2]) != (config.img_size, config.img_size):
            raise InputError(
                f"--img-size {config.img_size}: {config.dataset} images are {shape[1]}x{shape[2]}; "
                "--img-size applies to folder data sets (--dataset PATH)"
            )
