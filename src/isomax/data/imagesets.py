"""Image sets stored as image files: an archive of images, a folder of images, a
``{train,test}/<class>/`` folder, or any user path; decoded once and kept in the decoded-image
cache (:mod:`.cache`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from .archives import read_archive_images
from .cache import cache_load, cache_save, fingerprint, scan_tree, tree_fingerprint
from .checksums import check_tree, tree_sha256, verify_md5
from .errors import DatasetError
from .imagedata import ImageData
from .images import (
    IMAGE_EXTENSIONS,
    convert_like,
    decode_images,
    list_image_files,
    read_files,
    stack_images,
)

__all__ = [
    "images_from_archive",
    "images_from_folder",
    "images_from_folder_as",
    "is_split_image_folder",
    "load_split_image_folder",
    "load_path",
    "join_records",
]


def join_records(*recs: str | None) -> str | None:
    """Conversion records joined with "; " (None if there are none)."""
    r = [x for x in recs if x]
    return "; ".join(r) if r else None


def images_from_archive(
    name: str, arc: Path, known_md5: Mapping[str, Sequence[str]] | None = None
) -> tuple[np.ndarray, str]:
    """All images of a tar/zip archive (natural member order), decoded and cached by the archive's
    (size, mtime). ``known_md5``: checksums to verify the archive against (None: no check; done
    even on a cache hit, as only small archives have a known md5). Returns (images, source)."""
    key = f"{name}-{fingerprint([arc], arc.parent, extra=name)}"
    if known_md5 is not None:
        verify_md5(name, known_md5, arc)
    cached = cache_load(key)
    if cached is not None:
        return cached[0], str(arc)
    st = arc.stat()
    pairs = read_archive_images(arc)
    if not pairs:
        raise DatasetError(f"{arc}: archive holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    stacked, _ = stack_images([a for _, a in pairs], None, f"{name} ({arc})")
    del pairs
    images = stacked.numpy()
    cache_save(key, images, None, {"source": str(arc), "size": st.st_size})
    return images, str(arc)


def images_from_folder(
    name: str,
    folder: Path,
    known_tree_sha256: Sequence[str] | None = None,
    post_like: tuple[int, int, int] | None = None,
    stack_like: tuple[int, int, int] | None = None,
) -> tuple[np.ndarray, str, str | None]:
    """All images under ``folder`` (natural order), decoded, optionally converted to ``post_like``,
    cached by a (path, size, mtime) fingerprint. With ``known_tree_sha256`` the sha256 of every
    file under the folder is compared with it when the cache is built (a warning if it differs).
    Returns (images, source, conversion record)."""
    scan = scan_tree(folder, images_only=known_tree_sha256 is None)
    if not any(r.lower().endswith(IMAGE_EXTENSIONS) for r, _, _ in scan):
        raise DatasetError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) found")
    key = f"{name}-{tree_fingerprint(folder, scan, extra=f'{name}|{post_like}|{stack_like}')}"
    cached = cache_load(key)
    if cached is not None:
        return cached[0], str(folder), cached[2].get("conversion")
    if known_tree_sha256:
        h = hashlib.sha256()
        for rel, _, _ in scan:  # C-locale order, every file, as the published hash was made
            h.update((folder / rel).read_bytes())
        check_tree(tuple(known_tree_sha256), folder, h.hexdigest())
    files = list_image_files(folder)
    blobs = read_files(files)
    arrays = decode_images([(str(p), b) for p, b in zip(files, blobs)])
    del blobs
    stacked, rec = stack_images(arrays, stack_like, f"{name} ({folder})")
    del arrays
    converted, rec2 = convert_like(stacked, post_like)
    del stacked
    images = converted.numpy()
    rec = join_records(rec, rec2)
    cache_save(key, images, None, {"source": str(folder), "conversion": rec})
    return images, str(folder), rec


def images_from_folder_as(
    name: str, folder: Path, like: tuple[int, int, int], chunk: int = 64
) -> tuple[np.ndarray, str, str | None]:
    """All images under ``folder`` (natural order, recursive) converted to ``like`` = (C, H, W) as
    they are decoded, ``chunk`` files at a time: memory holds one chunk at its full size plus the
    converted set (for sets of large images of many sizes, e.g. Textures, Places365). Cached by a
    (path, size, mtime) fingerprint. Returns (images, source, conversion record)."""
    like = (int(like[0]), int(like[1]), int(like[2]))
    scan = scan_tree(folder)
    if not scan:
        raise DatasetError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) found")
    key = f"{name}-{tree_fingerprint(folder, scan, extra=f'{name}|as|{like}')}"
    cached = cache_load(key)
    if cached is not None:
        return cached[0], str(folder), cached[2].get("conversion")
    files = list_image_files(folder)
    out = np.empty((len(files),) + like, dtype=np.uint8)
    shapes: set[tuple[int, ...]] = set()
    for i in range(0, len(files), chunk):
        part = files[i : i + chunk]
        arrays = decode_images([(str(p), b) for p, b in zip(part, read_files(part))])
        out[i : i + len(part)] = stack_images(arrays, like, f"{name} ({folder})")[0].numpy()
        shapes.update(a.shape for a in arrays)
        del arrays
    shapes.discard(like)
    if len(shapes) == 1:
        rec = convert_like(torch.zeros((1,) + next(iter(shapes)), dtype=torch.uint8), like)[1]
    elif shapes:
        rec = (
            f"{len(shapes)} source shapes -> {like[1]}x{like[2]} {'grey' if like[0] == 1 else 'RGB'} "
            "(same aspect ratio: bilinear resize with antialiasing; other: shorter side fits, then center crop)"
        )
    else:
        rec = None
    cache_save(key, out, None, {"source": str(folder), "conversion": rec})
    return out, str(folder), rec


def is_split_image_folder(d: Path, split: str) -> bool:
    """``d/split`` exists and has at least one sub-folder (a class)."""
    s = d / split
    return s.is_dir() and any(c.is_dir() for c in s.iterdir())


def load_split_image_folder(
    name: str, root: Path, split: str, canonical: Sequence[str] | None, known_tree_sha256: Sequence[str] | None
) -> ImageData:
    """``root/{train,test}/<class>/*``: decode both splits once, cache them, return ``split``.

    Classes are the sorted folder names, or ``canonical`` (in its order) when they are exactly its
    names. With ``known_tree_sha256`` the ``.jpg`` files' tree hash is checked (a warning if it
    differs)."""
    scan = [t for t in scan_tree(root) if t[0].split("/", 1)[0] in ("train", "test")]
    fp = tree_fingerprint(root, scan, extra=name)
    cached = cache_load(f"{name}-{fp}-{split}")
    if cached is not None and cached[1] is not None:
        images, labels, meta = cached
        return ImageData(torch.from_numpy(images), torch.from_numpy(labels), name, meta["classes"], source=str(root))
    files = {s: list_image_files(root / s) for s in ("train", "test") if (root / s).is_dir()}
    classes = sorted(
        {p.relative_to(root / s).parts[0] for s in files for p in files[s] if len(p.relative_to(root / s).parts) > 1}
    )
    if canonical is not None and set(classes) == set(canonical):
        classes = list(canonical)
    cidx = {c: i for i, c in enumerate(classes)}
    blobs = {s: read_files(files[s]) for s in files}
    verified = None
    if known_tree_sha256:
        rel = [
            (p.relative_to(root).as_posix(), b)
            for s in files
            for p, b in zip(files[s], blobs[s])
            if p.suffix.lower() == ".jpg"
        ]
        verified = check_tree(tuple(known_tree_sha256), root, tree_sha256(rel))
    result = None
    for s in files:
        arrays = decode_images([(str(p), b) for p, b in zip(files[s], blobs[s])])
        stacked, _ = stack_images(arrays, None, f"{name} {root / s}")
        labels = np.array([cidx[p.relative_to(root / s).parts[0]] for p in files[s]], dtype=np.int64)
        images = stacked.numpy()
        cache_save(f"{name}-{fp}-{s}", images, labels, {"classes": classes, "source": str(root), "verified": verified})
        if s == split:
            result = ImageData(torch.from_numpy(images), torch.from_numpy(labels), name, classes, source=str(root))
    if result is None:
        raise DatasetError(f"{root / split}: no class folders with images")
    return result


def load_path(path: Path, like: tuple[int, int, int] | None) -> ImageData:
    """An arbitrary image folder (class-folder layout or flat, recursive) or image archive (tar of
    any compression, or zip)."""
    name = path.name
    if path.is_file():
        x, src = images_from_archive(name, path)
        return ImageData(torch.from_numpy(x), None, name, None, source=src)
    files = list_image_files(path)
    if not files:
        raise DatasetError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) found (recursive)")
    rel = [p.relative_to(path).parts for p in files]
    class_layout = all(len(r) > 1 for r in rel)
    x, src, rec = images_from_folder(name, path, stack_like=like)
    if class_layout:
        classes = sorted({r[0] for r in rel})
        cidx = {c: i for i, c in enumerate(classes)}
        labels = torch.tensor([cidx[r[0]] for r in rel], dtype=torch.int64)
        return ImageData(torch.from_numpy(x), labels, name, classes, conversion=rec, source=src)
    return ImageData(torch.from_numpy(x), None, name, None, conversion=rec, source=src)
