"""Image-folder data sets given by path: ``ROOT/train/<class>/``, optional ``ROOT/val/<class>/`` and
``ROOT/test/<class>/``.

Class names are the sub-folder names of ``train/`` (C-locale sorted, label = position); images may
have any size, mode and format PIL reads, in nested folders. Listing is cheap (one ``scandir`` pass,
no decoding). Zero-byte files are skipped and counted; files that cannot be decoded are found when
they are read (:mod:`.streaming`) and skipped there with a warning naming them. ``strict=True``
turns every skipped file into an error.

Without ``val/`` the validation split is carved from ``train/`` (stratified, split seed 0, the
same largest-remainder quotas as :func:`isomax.data.train_val_split`) and described in the run's
``data["split"]`` (fraction, seed, counts and a sha1 of the validation file list). Without
``test/`` the validation split stands in as the test split (said in the log).

Errors are one line naming the path: no ``train/``, fewer than two classes, an empty class folder,
a class in ``val/`` or ``test/`` that ``train/`` lacks.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .errors import DatasetError
from .images import IMAGE_EXTENSIONS, natural_key

if TYPE_CHECKING:
    from .streaming import FileImages

__all__ = ["FolderSplits", "is_folder_dataset", "scan_folder", "folder_images"]

SPLITS = ("train", "val", "test")


def is_folder_dataset(name: str | os.PathLike) -> bool:
    """True when ``name`` is an existing directory with a ``train/`` sub-folder (a folder data set)."""
    p = Path(name).expanduser()
    return p.is_dir() and (p / "train").is_dir()


@dataclass
class FolderSplits:
    """The files of a folder data set: per split, (file paths, labels); and what was skipped."""

    root: Path
    classes: list[str]
    files: dict[str, list[str]]
    labels: dict[str, list[int]]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    split: dict = field(default_factory=dict)  # how val (and test) were obtained, for the run record

    @property
    def name(self) -> str:
        return self.root.name


def _list_class(folder: Path, skipped: list[tuple[str, str]]) -> list[str]:
    """Image files under ``folder`` (recursive, hidden names skipped), natural order; zero-byte ones skipped."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if f.startswith(".") or not f.lower().endswith(IMAGE_EXTENSIONS):
                continue
            path = os.path.join(dirpath, f)
            try:
                size = os.stat(path).st_size
            except OSError as e:
                skipped.append((path, f"cannot stat ({e.strerror})"))
                continue
            if size == 0:
                skipped.append((path, "empty (zero-byte) file"))
                continue
            out.append(path)
    out.sort(key=lambda p: natural_key(os.path.relpath(p, folder)))
    return out


def _class_dirs(split_dir: Path) -> list[str]:
    return sorted((e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith(".")), key=os.fsencode)


def scan_folder(root: str | os.PathLike, val_fraction: float = 0.1, strict: bool = False) -> FolderSplits:
    """List a folder data set (see the module docstring); raises :class:`DatasetError` naming the path."""
    root = Path(root).expanduser()
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise DatasetError(f"{root}: not a folder data set: expected {train_dir}/<class>/ sub-folders of images")
    classes = _class_dirs(train_dir)
    if len(classes) < 2:
        what = f"only one class folder ({classes[0]!r})" if classes else "no class folders"
        raise DatasetError(f"{train_dir}: {what}; a classifier needs at least 2 classes (train/<class>/ sub-folders)")
    skipped: list[tuple[str, str]] = []
    files: dict[str, list[str]] = {}
    labels: dict[str, list[int]] = {}
    for split in SPLITS:
        d = root / split
        if not d.is_dir():
            continue
        names = classes if split == "train" else _class_dirs(d)
        extra = [c for c in names if c not in classes]
        if extra:
            raise DatasetError(
                f"{d / extra[0]}: class {extra[0]!r} is in {split}/ but not in train/ "
                f"(train classes: {', '.join(classes[:10])}{' ...' if len(classes) > 10 else ''})"
            )
        fs, ls = [], []
        for c in names:
            got = _list_class(d / c, skipped)
            if not got and split == "train":
                raise DatasetError(
                    f"{d / c}: empty class folder (no readable image files: {', '.join(IMAGE_EXTENSIONS[:4])} ...)"
                )
            fs += got
            ls += [classes.index(c)] * len(got)
        if fs:
            files[split], labels[split] = fs, ls
    if strict and skipped:
        path, why = skipped[0]
        raise DatasetError(f"{path}: {why} ({len(skipped)} file(s) unusable in {root}; --strict refuses them)")
    out = FolderSplits(root, classes, files, labels, skipped)
    if "val" in files:
        out.split = dict(val="val/ folder")
    elif val_fraction > 0:
        _carve_val(out, val_fraction)
    else:
        out.split = dict(val="none (val_fraction=0)")
    out.split["test"] = "test/ folder" if "test" in files else ("the validation split" if "val" in files else "none")
    return out


def _carve_val(s: FolderSplits, val_fraction: float, seed: int = 0) -> None:
    """Move a stratified ``val_fraction`` of train to val (deterministic: split seed 0)."""
    from .loader import _stratified_val_indices

    y = torch.tensor(s.labels["train"], dtype=torch.int64)
    n_val = int(round(len(y) * val_fraction))
    if n_val < 1 or n_val >= len(y):
        raise DatasetError(
            f"{s.root / 'train'}: val_fraction={val_fraction} of {len(y)} images leaves an empty split "
            "(add a val/ folder or use --val-fraction 0)"
        )
    idx = _stratified_val_indices(y, n_val, torch.Generator().manual_seed(seed))
    mask = torch.zeros(len(y), dtype=torch.bool)
    mask[idx] = True
    files, labels = s.files["train"], s.labels["train"]
    s.files["val"] = [f for f, m in zip(files, mask.tolist()) if m]
    s.labels["val"] = [y for y, m in zip(labels, mask.tolist()) if m]
    s.files["train"] = [f for f, m in zip(files, mask.tolist()) if not m]
    s.labels["train"] = [y for y, m in zip(labels, mask.tolist()) if not m]
    h = hashlib.sha1(usedforsecurity=False)
    for f in s.files["val"]:
        h.update(os.path.relpath(f, s.root).encode() + b"\n")
    s.split = dict(
        val=f"stratified {val_fraction:g} of train/ (split seed {seed})",
        val_fraction=val_fraction,
        seed=seed,
        n_train=len(s.files["train"]),
        n_val=len(s.files["val"]),
        val_files_sha1=h.hexdigest(),
    )


DEFAULT_IMG_SIZE = 224  # --img-size of folder data sets when not given


def load_folder(
    root: str | os.PathLike,
    img_size: int | None = None,
    *,
    val_fraction: float = 0.1,
    workers: int = 0,
    strict: bool = False,
) -> tuple[dict, FolderSplits]:
    """``({"train": FileImages, "val": ..., "test": ...}, FolderSplits)`` of a folder data set; a missing
    val is an empty set, a missing test is the validation split (or empty)."""
    from .streaming import FileImages

    s = scan_folder(root, val_fraction, strict)
    size = int(img_size or DEFAULT_IMG_SIZE)
    sets = {}
    for split in SPLITS:
        files = s.files.get(split, [])
        sets[split] = FileImages(
            list(files),
            torch.tensor(s.labels.get(split, []), dtype=torch.int64),
            s.name,
            list(s.classes),
            size,
            workers=workers,
            strict=strict,
            source=str(s.root / split),
        )
    if not len(sets["test"]):
        sets["test"] = sets["val"]
    return sets, s


def folder_images(path: str | os.PathLike, img_size: int, workers: int = 0, strict: bool = False) -> FileImages:
    """Every image file under ``path`` (recursive, unlabelled) at ``img_size``: an out-distribution of a folder run."""
    from .streaming import FileImages

    root = Path(path).expanduser()
    skipped: list[tuple[str, str]] = []
    files = _list_class(root, skipped)
    if strict and skipped:
        raise DatasetError(f"{skipped[0][0]}: {skipped[0][1]} (--strict)")
    if not files:
        raise DatasetError(f"{root}: no image files (zero-byte ones skipped: {len(skipped)})")
    return FileImages(
        files,
        None,
        root.name,
        None,
        int(img_size),
        workers=workers,
        strict=strict,
        source=str(root),
        conversion=f"read at {img_size}x{img_size} RGB (resize shorter side + center crop)",
    )
