"""Locating, verifying and loading the in- and out-of-distribution image sets."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import warnings
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from ._common import (
    ChecksumError,
    DatasetError,
    DatasetNotFoundError,
    ImageData,
    cache_dir,
    md5_bytes,
    md5_file,
    search_roots,
    unique_paths,
)
from .formats import (
    IMAGE_EXTENSIONS,
    cifar_batch_to_arrays,
    convert_like,
    decode_images,
    list_image_files,
    parse_idx,
    read_cifar_pickle,
    read_file_bytes,
    read_svhn_mat,
    read_tar_images,
    stack_images,
)

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
]

IN_DATASETS: tuple[str, ...] = ("fashion-mnist", "cifar10", "cifar100", "svhn")
OOD_DATASETS: tuple[str, ...] = ("mnist", "isun", "tinyimagenet-resize", "lsun-resize", "svhn",
                                 "cifar10", "cifar100", "fashion-mnist", "gaussian", "uniform")
_ALL_NAMES = tuple(dict.fromkeys(IN_DATASETS + ("mnist",) + OOD_DATASETS))

_ALIASES = {
    "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist", "mnist": "mnist",
    "cifar10": "cifar10", "cifar100": "cifar100", "svhn": "svhn", "isun": "isun",
    "tinyimagenetresize": "tinyimagenet-resize", "tinyimagenet": "tinyimagenet-resize",
    "imagenetresize": "tinyimagenet-resize", "lsunresize": "lsun-resize",
    "gaussian": "gaussian", "uniform": "uniform",
}

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"]
MNIST_CLASSES = [str(i) for i in range(10)]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck"]
SVHN_CLASSES = [str(i) for i in range(10)]

# mean / std per channel in [0, 1] pixel units. CIFAR/SVHN: the values of the IsoMax reference code
# (dlmacedo/entropic-out-of-distribution-detection); (Fashion-)MNIST: the training-set statistics.
_NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.491, 0.482, 0.446), (0.247, 0.243, 0.261)),
    "cifar100": ((0.507, 0.486, 0.440), (0.267, 0.256, 0.276)),
    "svhn": ((0.437, 0.443, 0.472), (0.198, 0.201, 0.197)),
}

# ---- checksums -----------------------------------------------------------------------------
#: (dataset, file name) -> accepted md5s of the file as stored. Published values (torchvision's
#: resources, the ODIN / SVHN / CIFAR pages) plus Debian's re-gzipped Fashion-MNIST
#: (package dataset-fashion-mnist, /var/lib/dpkg/info/dataset-fashion-mnist.md5sums).
KNOWN_MD5: dict[tuple[str, str], tuple[str, ...]] = {
    ("fashion-mnist", "train-images-idx3-ubyte.gz"): ("8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                                                       "cf8536b0aa1a6ac5fa3f23001093305c"),
    ("fashion-mnist", "train-labels-idx1-ubyte.gz"): ("25c81989df183df01b3e8a0aad5dffbe",
                                                       "10bea18fdb374794d4bb42e356e600c9"),
    ("fashion-mnist", "t10k-images-idx3-ubyte.gz"): ("bef4ecab320f06d8554ea6380940ec79",
                                                      "f78720b4224f21cce2f2ccf2d7a94c9a"),
    ("fashion-mnist", "t10k-labels-idx1-ubyte.gz"): ("bb300cfdad3c16e7a12a480ee83cd310",
                                                      "0d30e22e447f3c33dab9ed536400ac01"),
    # md5 of the *uncompressed* idx content (accepts any re-gzipped or gunzipped copy)
    ("fashion-mnist", "train-images-idx3-ubyte"): ("f4a8712d7a061bf5bd6d2ca38dc4d50a",),
    ("fashion-mnist", "train-labels-idx1-ubyte"): ("9018921c3c673c538a1fc5bad174d6f9",),
    ("fashion-mnist", "t10k-images-idx3-ubyte"): ("8181f5470baa50b63fa0f6fddb340f0a",),
    ("fashion-mnist", "t10k-labels-idx1-ubyte"): ("15d484375f8d13e6eb1aabb0c3f46965",),
    ("mnist", "train-images-idx3-ubyte.gz"): ("f68b3c2dcbeaaa9fbdd348bbdeb94873",),
    ("mnist", "train-labels-idx1-ubyte.gz"): ("d53e105ee54ea40749a09fcbcd1e9432",),
    ("mnist", "t10k-images-idx3-ubyte.gz"): ("9fb629c4189551a2d022fa330f9573f3",),
    ("mnist", "t10k-labels-idx1-ubyte.gz"): ("ec29112dd5afa0611ce80d1b7f02629c",),
    ("mnist", "t10k-images-idx3-ubyte"): ("2646ac647ad5339dbf082846283269ea",),
    ("mnist", "t10k-labels-idx1-ubyte"): ("27ae3e4e09519cfbb04c329615203637",),
    ("cifar10", "cifar-10-python.tar.gz"): ("c58f30108f718f92721af3b95e74349a",),
    ("cifar10", "data_batch_1"): ("c99cafc152244af753f735de768cd75f",),
    ("cifar10", "data_batch_2"): ("d4bba439e000b95fd0a9bffe97cbabec",),
    ("cifar10", "data_batch_3"): ("54ebc095f3ab1f0389bbae665268c751",),
    ("cifar10", "data_batch_4"): ("634d18415352ddfa80567beed471001a",),
    ("cifar10", "data_batch_5"): ("482c414d41f54cd18b22e5b47cb7c3cb",),
    ("cifar10", "test_batch"): ("40351d587109b95175f43aff81a1287e",),
    ("cifar10", "batches.meta"): ("5ff9c542aee3614f3951f8cda6e48888",),
    ("cifar100", "cifar-100-python.tar.gz"): ("eb9058c3a382ffc7106e4002c42a8d85",),
    ("cifar100", "train"): ("16019d7e3df5f24257cddd939b257f8d",),
    ("cifar100", "test"): ("f0ef6b0ae62326f3e7ffdfab6717acfc",),
    ("cifar100", "meta"): ("7973b15100ade9c7d40fb424638fde48",),
    ("svhn", "train_32x32.mat"): ("e26dedcc434d2e4c54c9b2d4a06d8373",),
    ("svhn", "test_32x32.mat"): ("eb5a983be6a315427106f1b164d9cef3",),
    ("isun", "iSUN.tar.gz"): ("be77b0f2c26fda898afac5f99645ee70",),
}

#: sha256 of all image files of a known folder copy, concatenated in C-locale sorted path order.
#: Checked only when the decoded-image cache is built; a mismatch is a warning, not an error,
#: because other legitimate copies (e.g. a PNG export of CIFAR-10) have other hashes.
KNOWN_TREE_SHA256: dict[str, tuple[str, ...]] = {
    "cifar10-jpg": ("dd89200ef3ace8900ff1354198dbb556809d3f6279e6ec7f75f21a417e15c9e2",),
    "tiny-imagenet-200/test": ("c9c8052cff82921baa9a8ea2d819a67d90ebe7b5cd3682203e508b48dd26493d",),
}

_CACHE_VERSION = "1"

ODIN_URL = "https://github.com/facebookresearch/odin"


class ChecksumWarning(UserWarning):
    """A folder copy of a data set differs from the copy whose checksum is known."""


def canonical_name(name: str) -> str:
    key = name.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if key not in _ALIASES:
        raise ValueError(f"unknown dataset {name!r}; known names: {', '.join(_ALL_NAMES)}")
    return _ALIASES[key]


def normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel, in [0, 1] pixel units, for an in-distribution data set."""
    try:
        key = canonical_name(name)
    except ValueError:
        key = None
    if key not in _NORMALIZATION:
        raise ValueError(f"no normalization for {name!r}; known: {', '.join(_NORMALIZATION)}")
    return _NORMALIZATION[key]


# ---- search helpers ------------------------------------------------------------------------
def _candidate_dirs(roots: Sequence[Path], subdirs: Sequence[str], bare: bool = True) -> list[Path]:
    """Named sub-folders of every root first, then the roots themselves (so that a root holding
    one data set's files cannot shadow another set's named folder further down the list)."""
    out = [r / s for r in roots for s in subdirs]
    if bare:
        out += list(roots)
    return unique_paths(out)


def _first_file(dirs: Iterable[Path], names: Sequence[str]) -> Path | None:
    for d in dirs:
        for n in names:
            p = d / n
            if p.is_file():
                return p
    return None


def _verify_md5(dataset: str, path: Path, raw: bytes | None = None, content: bytes | None = None,
                key: str | None = None) -> None:
    """Check ``path`` against the known md5s of the stored file or, for gzipped files, of the
    uncompressed content (so a re-gzipped or gunzipped copy is accepted too)."""
    key = key or path.name
    base = key[:-3] if key.endswith(".gz") else key
    file_ok = KNOWN_MD5.get((dataset, key), ())
    content_ok = KNOWN_MD5.get((dataset, base), ())
    if not file_ok and not content_ok:
        return
    actual = md5_bytes(raw) if raw is not None else md5_file(path)
    if actual in file_ok or actual in content_ok:
        return
    expected = list(dict.fromkeys(file_ok + content_ok))
    if content is not None and content is not raw and content_ok:
        actual_c = md5_bytes(content)
        if actual_c in content_ok:
            return
        expected = list(file_ok) + [f"{c} (uncompressed content)" for c in content_ok
                                    if c not in file_ok]
        raise ChecksumError(dataset, path, expected, f"{actual} (uncompressed content: {actual_c})")
    raise ChecksumError(dataset, path, expected, actual)


# ---- decoded-image cache --------------------------------------------------------------------
def _fingerprint(paths: Iterable[Path], base: Path, extra: str = "") -> str:
    h = hashlib.sha1(usedforsecurity=False)
    h.update(f"v{_CACHE_VERSION}|{os.path.abspath(base)}|{extra}".encode())
    for p in paths:
        st = p.stat()
        h.update(f"|{p.relative_to(base).as_posix() if p != base else '.'}:{st.st_size}:"
                 f"{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def _scan_tree(root: Path, images_only: bool = True) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of the files under ``root`` (recursive, hidden skipped),
    sorted in C-locale order. Cheap: one scandir pass, no decoding."""
    out: list[tuple[str, int, int]] = []
    stack = [(root, "")]
    while stack:
        d, prefix = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                if e.name.startswith("."):
                    continue
                if e.is_dir(follow_symlinks=True):
                    stack.append((Path(e.path), prefix + e.name + "/"))
                elif not images_only or e.name.lower().endswith(IMAGE_EXTENSIONS):
                    st = e.stat()
                    out.append((prefix + e.name, st.st_size, st.st_mtime_ns))
    out.sort(key=lambda t: os.fsencode(t[0]))
    return out


def _tree_fingerprint(root: Path, scan: list[tuple[str, int, int]], extra: str = "") -> str:
    h = hashlib.sha1(usedforsecurity=False)
    h.update(f"v{_CACHE_VERSION}|{os.path.abspath(root)}|{extra}".encode())
    for rel, size, mtime in scan:
        h.update(f"|{rel}:{size}:{mtime}".encode())
    return h.hexdigest()[:20]


def _cache_load(key: str) -> tuple[np.ndarray, np.ndarray | None, dict] | None:
    d = cache_dir() / "decoded"
    meta_p = d / f"{key}.json"
    if not meta_p.is_file():
        return None
    try:
        meta = json.loads(meta_p.read_text())
        images = np.load(d / f"{key}.images.npy")
        labels = np.load(d / f"{key}.labels.npy") if meta.get("has_labels") else None
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[0] != meta["n"]:
            return None
        return images, labels, meta
    except Exception:  # noqa: BLE001 - a broken cache entry is rebuilt
        return None


def _cache_save(key: str, images: np.ndarray, labels: np.ndarray | None, meta: dict) -> None:
    d = cache_dir() / "decoded"
    try:
        d.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        tmp_i, tmp_l = d / f".{key}.{pid}.images.npy", d / f".{key}.{pid}.labels.npy"
        np.save(tmp_i, images)
        os.replace(tmp_i, d / f"{key}.images.npy")
        if labels is not None:
            np.save(tmp_l, labels)
            os.replace(tmp_l, d / f"{key}.labels.npy")
        meta = dict(meta, n=int(images.shape[0]), has_labels=labels is not None)
        tmp_m = d / f".{key}.{pid}.json"
        tmp_m.write_text(json.dumps(meta))
        os.replace(tmp_m, d / f"{key}.json")
    except OSError:  # read-only home etc.: just don't cache
        pass


def _tree_sha256(files_bytes: Iterable[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for _, b in sorted(files_bytes, key=lambda it: os.fsencode(it[0])):
        h.update(b)
    return h.hexdigest()


def _check_tree(tree_key: str, folder: Path, actual: str) -> bool | None:
    known = KNOWN_TREE_SHA256.get(tree_key)
    if not known:
        return None
    if actual in known:
        return True
    warnings.warn(f"{folder}: sha256 of the image files is {actual}; the known copy has "
                  f"{' or '.join(known)}. This is a different (or damaged) copy; using it anyway.",
                  ChecksumWarning, stacklevel=3)
    return False


def _read_files(paths: Sequence[Path]) -> list[bytes]:
    out = []
    for p in paths:
        try:
            out.append(p.read_bytes())
        except OSError as e:
            raise DatasetError(f"{p}: cannot read ({e})") from e
    return out


# ---- in-distribution loaders ---------------------------------------------------------------
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MNIST_LIKE = {
    "fashion-mnist": dict(
        subdirs=("fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "FashionMNIST"),
        classes=FASHION_MNIST_CLASSES,
        how="`apt-get install dataset-fashion-mnist` (Debian/Ubuntu; files land in "
            "/usr/share/datasets/fashion-mnist), or load_dataset('fashion-mnist', download=True) "
            "(torchvision, needs internet), or the four idx .gz files from "
            "https://github.com/zalandoresearch/fashion-mnist"),
    "mnist": dict(
        subdirs=("mnist", "mnist-test", "MNIST/raw", "MNIST"),
        classes=MNIST_CLASSES,
        how="load_dataset('mnist', download=True) / load_ood('mnist', download=True) (torchvision, "
            "needs internet), or the idx .gz files from https://yann.lecun.com/exdb/mnist/"),
}


def _load_idx_set(name: str, split: str, roots: list[Path], verify: bool) -> ImageData | None:
    spec = _MNIST_LIKE[name]
    img_base, lab_base = _IDX_FILES[split]
    dirs = _candidate_dirs(roots, spec["subdirs"])
    for d in dirs:
        img = _first_file([d], (img_base + ".gz", img_base))
        lab = _first_file([d], (lab_base + ".gz", lab_base))
        if img is None or lab is None:
            continue
        arrays = []
        for p in (img, lab):
            raw, content = read_file_bytes(p)
            if verify:
                _verify_md5(name, p, raw, content)
            arrays.append(parse_idx(content, p))
        x, y = arrays
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DatasetError(f"{img}: images {x.shape} and labels {y.shape} ({lab}) do not match")
        return ImageData(torch.from_numpy(np.ascontiguousarray(x[:, None])),
                         torch.from_numpy(y.astype(np.int64)), name, list(spec["classes"]),
                         source=str(d))
    return None


def _idx_expected(name: str, split: str) -> list[str]:
    a, b = _IDX_FILES[split]
    return [f"{a}.gz + {b}.gz (or un-gzipped) in one of the folders "
            f"{', '.join(_MNIST_LIKE[name]['subdirs'])} or the data root itself"]


_CIFAR = {
    "cifar10": dict(folder="cifar-10-batches-py", archive="cifar-10-python.tar.gz",
                    train=[f"data_batch_{i}" for i in range(1, 6)], test=["test_batch"],
                    meta="batches.meta", meta_key="label_names", label_key="labels",
                    subdirs=("cifar10", "cifar-10", "CIFAR10", "cifar"),
                    jpg=("cifar10-jpg", "cifar10-png", "cifar10-images", "cifar10"),
                    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    "cifar100": dict(folder="cifar-100-python", archive="cifar-100-python.tar.gz",
                     train=["train"], test=["test"], meta="meta", meta_key="fine_label_names",
                     label_key="fine_labels", subdirs=("cifar100", "cifar-100", "CIFAR100", "cifar"),
                     jpg=("cifar100-jpg", "cifar100-png", "cifar100-images", "cifar100"),
                     url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
}


def _cifar_from_buffers(name: str, split: str, get: Callable[[str], tuple[bytes, str]],
                        verify: bool) -> ImageData:
    spec = _CIFAR[name]
    xs, ys = [], []
    for member in spec[split]:
        data, where = get(member)
        if verify:
            _verify_md5(name, Path(where), data, key=member)
        x, y = cifar_batch_to_arrays(read_cifar_pickle(data, where), spec["label_key"], where)
        xs.append(x)
        ys.append(y)
    classes = None
    try:
        data, where = get(spec["meta"])
        classes = [c.decode("latin1") if isinstance(c, bytes) else str(c)
                   for c in read_cifar_pickle(data, where)[spec["meta_key"]]]
    except (FileNotFoundError, KeyError, DatasetError):
        pass
    if classes is None and name == "cifar10":
        classes = list(CIFAR10_CLASSES)
    return ImageData(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)),
                     name, classes)


def _is_split_image_folder(d: Path, split: str) -> bool:
    s = d / split
    return s.is_dir() and any(c.is_dir() for c in s.iterdir())


def _load_split_image_folder(name: str, root: Path, split: str, canonical: list[str] | None,
                             tree_key: str | None) -> ImageData:
    """``root/{train,test}/<class>/*.jpg``: decode both splits once, cache them, return one."""
    scan = [t for t in _scan_tree(root) if t[0].split("/", 1)[0] in ("train", "test")]
    fp = _tree_fingerprint(root, scan, extra=name)
    cached = _cache_load(f"{name}-{fp}-{split}")
    if cached is not None and cached[1] is not None:
        images, labels, meta = cached
        return ImageData(torch.from_numpy(images), torch.from_numpy(labels), name, meta["classes"],
                         source=str(root))
    files = {s: list_image_files(root / s) for s in ("train", "test") if (root / s).is_dir()}
    classes = sorted({p.relative_to(root / s).parts[0] for s in files for p in files[s]
                      if len(p.relative_to(root / s).parts) > 1})
    if canonical is not None and set(classes) == set(canonical):
        classes = list(canonical)
    cidx = {c: i for i, c in enumerate(classes)}
    blobs = {s: _read_files(files[s]) for s in files}
    verified = None
    if tree_key is not None:
        rel = [(p.relative_to(root).as_posix(), b) for s in files for p, b in zip(files[s], blobs[s])
               if p.suffix.lower() == ".jpg"]
        verified = _check_tree(tree_key, root, _tree_sha256(rel))
    result = None
    for s in files:
        arrays = decode_images([(str(p), b) for p, b in zip(files[s], blobs[s])])
        images, conv = stack_images(arrays, None, f"{name} {root / s}")
        labels = np.array([cidx[p.relative_to(root / s).parts[0]] for p in files[s]], dtype=np.int64)
        images = images.numpy()
        _cache_save(f"{name}-{fp}-{s}", images, labels,
                    {"classes": classes, "source": str(root), "verified": verified})
        if s == split:
            result = ImageData(torch.from_numpy(images), torch.from_numpy(labels), name, classes,
                               source=str(root))
    assert result is not None
    return result


def _load_cifar(name: str, split: str, roots: list[Path], verify: bool) -> ImageData | None:
    spec = _CIFAR[name]
    dirs = _candidate_dirs(roots, spec["subdirs"])
    # 1. extracted python batches
    for d in dirs:
        folder = d / spec["folder"]
        if all((folder / m).is_file() for m in spec[split]):
            def get(member, folder=folder):
                p = folder / member
                if not p.is_file():
                    raise FileNotFoundError(p)
                return p.read_bytes(), str(p)
            data = _cifar_from_buffers(name, split, get, verify)
            data.source = str(folder)
            return data
    # 2. the original archive, read in place
    for d in dirs:
        arc = d / spec["archive"]
        if arc.is_file():
            raw = arc.read_bytes()
            if verify:
                _verify_md5(name, arc, raw)
            members: dict[str, bytes] = {}
            try:
                with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as tf:
                    for m in tf:
                        base = m.name.rsplit("/", 1)[-1]
                        if m.isfile() and base in set(spec[split]) | {spec["meta"]}:
                            members[base] = tf.extractfile(m).read()
            except (tarfile.TarError, EOFError, OSError) as e:
                raise DatasetError(f"{arc}: corrupt or truncated archive ({e})") from e

            def get(member, arc=arc):
                if member not in members:
                    if member == spec["meta"]:
                        raise FileNotFoundError(member)
                    raise DatasetError(f"{arc}: archive lacks member {spec['folder']}/{member}")
                return members[member], f"{arc}:{spec['folder']}/{member}"
            data = _cifar_from_buffers(name, split, get, verify)
            data.source = str(arc)
            return data
    # 3. image-folder layout <root>/cifar10-jpg/{train,test}/<class>/*.jpg
    for r in roots:
        for sub in spec["jpg"]:
            d = r / sub
            if _is_split_image_folder(d, split):
                canonical = CIFAR10_CLASSES if name == "cifar10" else None
                tree_key = "cifar10-jpg" if (name == "cifar10" and verify) else None
                return _load_split_image_folder(name, d, split, canonical, tree_key)
    return None


def _load_svhn(split: str, roots: list[Path], verify: bool) -> ImageData | None:
    fname = f"{split}_32x32.mat"
    p = _first_file(_candidate_dirs(roots, ("svhn", "SVHN")), (fname,))
    if p is None:
        return None
    if verify:
        _verify_md5("svhn", p)
    x, y = read_svhn_mat(p)
    return ImageData(torch.from_numpy(x), torch.from_numpy(y), "svhn", list(SVHN_CLASSES),
                     source=str(p))


def _download(name: str, split: str) -> None:
    import torchvision.datasets as tvd

    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    train = split == "train"
    if name == "fashion-mnist":
        tvd.FashionMNIST(str(root), train=train, download=True)
    elif name == "mnist":
        tvd.MNIST(str(root), train=train, download=True)
    elif name == "cifar10":
        tvd.CIFAR10(str(root), train=train, download=True)
    elif name == "cifar100":
        tvd.CIFAR100(str(root), train=train, download=True)
    elif name == "svhn":
        tvd.SVHN(str(root / "svhn"), split=split, download=True)
    else:  # pragma: no cover - guarded by callers
        raise ValueError(f"torchvision cannot download {name!r}")


def _how_to_get(name: str) -> str:
    if name in _MNIST_LIKE:
        return _MNIST_LIKE[name]["how"]
    if name in _CIFAR:
        s = _CIFAR[name]
        return (f"load_dataset('{name}', download=True) (torchvision, needs internet) or download "
                f"{s['url']} and put it (or its extracted {s['folder']}/ folder) in a data root; "
                f"an image-folder copy <root>/{s['jpg'][0]}/{{train,test}}/<class>/*.jpg also works")
    if name == "svhn":
        return ("load_dataset('svhn', download=True) (torchvision, needs internet) or "
                "http://ufldl.stanford.edu/housenumbers/ (train_32x32.mat, test_32x32.mat) into "
                "<root>/svhn/")
    return f"the ODIN archives from {ODIN_URL}"


def _expected(name: str, split: str) -> list[str]:
    if name in _MNIST_LIKE:
        return _idx_expected(name, split)
    if name in _CIFAR:
        s = _CIFAR[name]
        return [f"{s['folder']}/{{{','.join(s[split])}}}", s["archive"],
                f"{s['jpg'][0]}/{split}/<class>/*.jpg"]
    if name == "svhn":
        return [f"{split}_32x32.mat (in svhn/ or the root)"]
    return []


def _searched(name: str, roots: list[Path]) -> list[Path]:
    if name in _MNIST_LIKE:
        return _candidate_dirs(roots, _MNIST_LIKE[name]["subdirs"])
    if name in _CIFAR:
        return _candidate_dirs(roots, _CIFAR[name]["subdirs"]) + \
            [r / j for r in roots for j in _CIFAR[name]["jpg"]]
    if name == "svhn":
        return _candidate_dirs(roots, ("svhn", "SVHN"))
    return list(roots)


def _load_in(name: str, split: str, roots: list[Path], verify: bool) -> ImageData | None:
    if name in _MNIST_LIKE:
        return _load_idx_set(name, split, roots, verify)
    if name in _CIFAR:
        return _load_cifar(name, split, roots, verify)
    if name == "svhn":
        return _load_svhn(split, roots, verify)
    raise ValueError(f"{name!r} is not an in-distribution data set; known: {', '.join(IN_DATASETS)}")


def _verify_default(verify: bool | None) -> bool:
    """Checksums are verified unless asked not to (argument, or ``ISOMAX_VERIFY=0`` for test fixtures)."""
    if verify is not None:
        return bool(verify)
    return os.environ.get("ISOMAX_VERIFY", "1").strip().lower() not in ("0", "false", "no", "off")


def load_dataset(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
                 download: bool = False, verify: bool | None = None) -> ImageData:
    """Load an in-distribution set (``IN_DATASETS``, plus ``"mnist"``) as uint8 (N, C, H, W).

    Searches :func:`find_data_dir`'s roots for the original formats (idx, CIFAR pickles or archive,
    CIFAR image folders, SVHN .mat). ``download=True`` falls back to torchvision's download into
    ``~/.cache/isomax``. ``verify`` checks published checksums (default: on, unless the
    environment sets ``ISOMAX_VERIFY=0``).
    """
    verify = _verify_default(verify)
    key = canonical_name(name)
    if key not in IN_DATASETS + ("mnist",):
        raise ValueError(f"{name!r} is not an in-distribution data set; known: "
                         f"{', '.join(IN_DATASETS + ('mnist',))} (use load_ood for {name!r})")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    roots = search_roots(data_dir)
    existing = [r for r in roots if r.is_dir()]
    data = _load_in(key, split, existing, verify)
    note = ""
    if data is None and download:
        try:
            _download(key, split)
        except Exception as e:  # noqa: BLE001 - network errors of all kinds
            note = f"download=True failed: {type(e).__name__}: {e}"
        else:
            data = _load_in(key, split, [r for r in roots if r.is_dir()], verify)
    if data is None:
        raise DatasetNotFoundError(key, _expected(key, split), _searched(key, roots),
                                   _how_to_get(key), split=split, note=note)
    return data


# ---- out-of-distribution loaders ------------------------------------------------------------
_ODIN = {
    "isun": dict(archives=("iSUN.tar.gz",), folders=("iSUN",),
                 subdirs=("isun", "iSUN", "odin")),
    "lsun-resize": dict(archives=("LSUN_resize.tar.gz",), folders=("LSUN_resize",),
                        subdirs=("lsun-resize", "lsun_resize", "LSUN_resize", "odin")),
    "tinyimagenet-resize": dict(archives=("Imagenet_resize.tar.gz",), folders=("Imagenet_resize",),
                                subdirs=("tinyimagenet-resize", "imagenet-resize", "Imagenet_resize",
                                         "tinyimagenet", "odin")),
}


def _images_from_archive(name: str, arc: Path, verify: bool) -> tuple[np.ndarray, str]:
    st = arc.stat()
    key = f"{name}-{_fingerprint([arc], arc.parent, extra=name)}"
    if verify:  # cheap (only small archives have a known md5) and done even on a cache hit
        _verify_md5(name, arc)
    cached = _cache_load(key)
    if cached is not None:
        return cached[0], str(arc)
    items = read_tar_images(arc)
    if not items:
        raise DatasetError(f"{arc}: archive holds no images")
    arrays = decode_images(items)
    images, _ = stack_images(arrays, None, f"{name} ({arc})")
    images = images.numpy()
    _cache_save(key, images, None, {"source": str(arc), "size": st.st_size})
    return images, str(arc)


def _images_from_folder(name: str, folder: Path, tree_key: str | None = None,
                        post_like: tuple[int, int, int] | None = None,
                        stack_like: tuple[int, int, int] | None = None,
                        ) -> tuple[np.ndarray, str, str | None]:
    """All images under ``folder`` (natural order), decoded, optionally converted to ``post_like``,
    cached by a (path, size, mtime) fingerprint. With ``tree_key`` the sha256 of every file under
    the folder is compared with ``KNOWN_TREE_SHA256`` when the cache is built.
    Returns (images, source, conversion record)."""
    scan = _scan_tree(folder, images_only=tree_key is None)
    if not any(r.lower().endswith(IMAGE_EXTENSIONS) for r, _, _ in scan):
        raise DatasetError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) found")
    key = f"{name}-{_tree_fingerprint(folder, scan, extra=f'{name}|{post_like}|{stack_like}')}"
    cached = _cache_load(key)
    if cached is not None:
        return cached[0], str(folder), cached[2].get("conversion")
    if tree_key is not None and tree_key in KNOWN_TREE_SHA256:
        h = hashlib.sha256()
        for rel, _, _ in scan:  # C-locale order, every file, as the published hash was made
            h.update((folder / rel).read_bytes())
        _check_tree(tree_key, folder, h.hexdigest())
    files = list_image_files(folder)
    blobs = _read_files(files)
    arrays = decode_images([(str(p), b) for p, b in zip(files, blobs)])
    images, rec = stack_images(arrays, stack_like, f"{name} ({folder})")
    images, rec2 = convert_like(images, post_like)
    images = images.numpy()
    rec = _join(rec, rec2)
    _cache_save(key, images, None, {"source": str(folder), "conversion": rec})
    return images, str(folder), rec


def _load_odin(name: str, roots: list[Path], verify: bool) -> tuple[ImageData | None, list[Path]]:
    spec = _ODIN[name]
    dirs = _candidate_dirs(roots, spec["subdirs"])
    for d in dirs:
        for a in spec["archives"]:
            if (d / a).is_file():
                x, src = _images_from_archive(name, d / a, verify)
                return ImageData(torch.from_numpy(x), None, name, None, source=src), dirs
    for d in dirs:
        for f in spec["folders"]:
            if (d / f).is_dir() and list_image_files(d / f):
                x, src, rec = _images_from_folder(name, d / f)
                return ImageData(torch.from_numpy(x), None, name, None, conversion=rec,
                                 source=src), dirs
    searched = list(dirs)
    if name == "tinyimagenet-resize":
        tdirs = _candidate_dirs(roots, ("tiny-imagenet-200", "tinyimagenet/tiny-imagenet-200"),
                                bare=False)
        searched += tdirs
        for d in tdirs:
            test = d / "test"
            if (test / "images").is_dir():
                x, src, rec = _images_from_folder(
                    "tiny-imagenet-200-test", test,
                    tree_key="tiny-imagenet-200/test" if verify else None, post_like=(3, 32, 32))
                return ImageData(torch.from_numpy(x), None, name, None, conversion=rec,
                                 source=src), searched
    return None, searched


def _load_path(path: Path, like: tuple[int, int, int] | None) -> ImageData:
    """An arbitrary image folder (class-folder layout or flat, recursive) or image archive."""
    name = path.name
    if path.is_file():
        x, src = _images_from_archive(name, path, verify=False)
        return ImageData(torch.from_numpy(x), None, name, None, source=src)
    files = list_image_files(path)
    if not files:
        raise DatasetError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) found (recursive)")
    rel = [p.relative_to(path).parts for p in files]
    class_layout = all(len(r) > 1 for r in rel)
    x, src, rec = _images_from_folder(name, path, stack_like=like)
    if class_layout:
        classes = sorted({r[0] for r in rel})
        cidx = {c: i for i, c in enumerate(classes)}
        labels = torch.tensor([cidx[r[0]] for r in rel], dtype=torch.int64)
        return ImageData(torch.from_numpy(x), labels, name, classes, conversion=rec, source=src)
    return ImageData(torch.from_numpy(x), None, name, None, conversion=rec, source=src)


def _synthetic(name: str, like: tuple[int, int, int] | None, num_samples: int, seed: int
               ) -> ImageData:
    c, h, w = like if like is not None else (3, 32, 32)
    g = torch.Generator().manual_seed(int(seed))
    if name == "gaussian":
        x = torch.randn((num_samples, c, h, w), generator=g).mul_(0.25).add_(0.5).clamp_(0, 1)
        images = x.mul_(255).round_().to(torch.uint8)
        desc = "N(0.5, 0.25^2) clipped to [0, 1]"
    else:
        images = torch.randint(0, 256, (num_samples, c, h, w), generator=g, dtype=torch.uint8)
        desc = "uniform U{0..255}"
    return ImageData(images, None, name, None,
                     conversion=f"synthetic {desc}, {num_samples} images {h}x{w}x{c}, seed {seed}")


def _join(*recs: str | None) -> str | None:
    r = [x for x in recs if x]
    return "; ".join(r) if r else None


def load_ood(name_or_path: str | os.PathLike, like: tuple[int, int, int] | None = None,
             data_dir: str | os.PathLike | None = None, download: bool = False,
             num_samples: int = 10000, seed: int = 0, verify: bool | None = None) -> ImageData:
    """Load an out-of-distribution set by name (``OOD_DATASETS``) or from a path (image folder,
    class-folder or flat, recursive; or a tar archive of images).

    ``like=(C, H, W)`` converts the images to the in-distribution's channels and size (grey<->RGB,
    antialiased resize, center crop if aspect ratios differ); the conversion is recorded in
    ``.conversion``. Named in-distribution sets give their test split. ``"gaussian"`` and
    ``"uniform"`` make ``num_samples`` images deterministically from ``seed``; ``num_samples``
    does not subsample real sets (use :meth:`ImageData.subset`). ``verify`` as in :func:`load_dataset`.
    """
    verify = _verify_default(verify)
    like = None if like is None else tuple(int(v) for v in like)
    if like is not None and (len(like) != 3 or like[0] not in (1, 3) or min(like) < 1):
        raise ValueError(f"like must be (C, H, W) with C in (1, 3); got {like}")
    try:
        key = canonical_name(str(name_or_path))
    except ValueError:
        key = None
    if key is None or key not in OOD_DATASETS:
        p = Path(name_or_path).expanduser()
        if p.exists():
            data = _load_path(p, like)
            x, rec = convert_like(data.images, like)
            data.images, data.conversion = x, _join(data.conversion, rec)
            return data
        raise ValueError(f"{str(name_or_path)!r} is neither a known out-of-distribution set "
                         f"({', '.join(OOD_DATASETS)}) nor an existing path")
    if key in ("gaussian", "uniform"):
        return _synthetic(key, like, num_samples, seed)
    if key in ("mnist", "fashion-mnist", "cifar10", "cifar100", "svhn"):
        data = load_dataset(key, "test", data_dir=data_dir, download=download, verify=verify)
    else:
        roots = search_roots(data_dir)
        data, searched = _load_odin(key, [r for r in roots if r.is_dir()], verify)
        if data is None:
            spec = _ODIN[key]
            expected = [*spec["archives"], *(f"{f}/ (extracted folder)" for f in spec["folders"])]
            if key == "tinyimagenet-resize":
                expected.append("tiny-imagenet-200/test/images/*.JPEG (downscaled to 32x32)")
            how = (f"download {', '.join(spec['archives'])} from {ODIN_URL} (links in its README)"
                   f" into a data root or its {spec['subdirs'][0]}/ folder")
            if key == "tinyimagenet-resize":
                how += ("; or the original tiny-imagenet-200.zip "
                        "(http://cs231n.stanford.edu/tiny-imagenet-200.zip) extracted in a data root")
            note = "(torchvision has no download for this set; download=True cannot help.)" \
                if download else ""
            raise DatasetNotFoundError(key, expected, _searched_ood(key, roots), how, note=note)
    x, rec = convert_like(data.images, like)
    data.images, data.conversion = x, _join(data.conversion, rec)
    return data


def _searched_ood(key: str, roots: list[Path]) -> list[Path]:
    out = _candidate_dirs(roots, _ODIN[key]["subdirs"])
    if key == "tinyimagenet-resize":
        out += _candidate_dirs(roots, ("tiny-imagenet-200", "tinyimagenet/tiny-imagenet-200"),
                               bare=False)
    return out
