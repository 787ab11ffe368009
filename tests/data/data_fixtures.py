"""Writers of tiny data files in the original formats (used by the isomax.data tests)."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image


# ---- writers --------------------------------------------------------------------------------
def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + arr.tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = idx_bytes(arr)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data, mtime=0))
    else:
        path.write_bytes(data)
    return path


def make_mnist_like(folder: Path, n_train=20, n_test=12, gz=True, seed=0, splits=("train", "test")):
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        if (split == "t10k" and "test" not in splits) or (split == "train" and "train" not in splits):
            continue
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / f"{split}-images-idx3-ubyte", x, gz)
        write_idx(folder / f"{split}-labels-idx1-ubyte", y, gz)
        out[split] = (x, y)
    return out


def cifar_pickle(x: np.ndarray, labels, label_key="labels") -> bytes:
    d = {b"data": x.reshape(len(x), -1), label_key.encode(): list(int(v) for v in labels), b"batch_label": b"fixture"}
    return pickle.dumps(d, protocol=2)


def make_cifar10(root: Path, per_batch=6, n_test=8, seed=0, archive=False):
    rng = np.random.default_rng(seed)
    files = {}
    xs, ys = [], []
    for i in range(1, 6):
        x = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        y = rng.integers(0, 10, per_batch)
        files[f"data_batch_{i}"] = cifar_pickle(x, y)
        xs.append(x)
        ys.append(y)
    xt = rng.integers(0, 256, (n_test, 3, 32, 32), dtype=np.uint8)
    yt = rng.integers(0, 10, n_test)
    files["test_batch"] = cifar_pickle(xt, yt)
    files["batches.meta"] = pickle.dumps(
        {
            b"label_names": [
                b"airplane",
                b"automobile",
                b"bird",
                b"cat",
                b"deer",
                b"dog",
                b"frog",
                b"horse",
                b"ship",
                b"truck",
            ]
        },
        protocol=2,
    )
    write_members(root, "cifar-10-batches-py", files, archive, "cifar-10-python.tar.gz")
    return (np.concatenate(xs), np.concatenate(ys)), (xt, yt)


def make_cifar100(root: Path, n_train=10, n_test=5, seed=0, archive=False):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n_train, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 100, n_train)
    xt = rng.integers(0, 256, (n_test, 3, 32, 32), dtype=np.uint8)
    yt = rng.integers(0, 100, n_test)
    files = {
        "train": cifar_pickle(x, y, "fine_labels"),
        "test": cifar_pickle(xt, yt, "fine_labels"),
        "meta": pickle.dumps({b"fine_label_names": [f"c{i}".encode() for i in range(100)]}, protocol=2),
    }
    write_members(root, "cifar-100-python", files, archive, "cifar-100-python.tar.gz")
    return (x, y), (xt, yt)


def write_members(root: Path, folder: str, files: dict, archive: bool, archive_name: str):
    root.mkdir(parents=True, exist_ok=True)
    if archive:
        with tarfile.open(root / archive_name, "w:gz") as tf:
            for name, data in files.items():
                ti = tarfile.TarInfo(f"{folder}/{name}")
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    else:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (root / folder / name).write_bytes(data)


def make_svhn(folder: Path, n=7, seed=0, split="test"):
    import scipy.io

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    y = (np.arange(n) % 10 + 1).reshape(n, 1).astype(np.uint8)  # 1..10, 10 means digit 0
    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(folder / f"{split}_32x32.mat", {"X": x, "y": y})
    return x, y


def image_bytes(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    """arr (H, W) or (H, W, 3) uint8 -> encoded image."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def make_tar_images(path: Path, prefix: str, n=5, size=32, ext="jpeg", seed=0):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        d = tarfile.TarInfo(prefix.rstrip("/"))
        d.type = tarfile.DIRTYPE
        tf.addfile(d)
        for i in range(n):
            arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            data = image_bytes(arr, "JPEG" if ext.lower() in ("jpg", "jpeg") else "PNG")
            ti = tarfile.TarInfo(f"{prefix}{i}.{ext}")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return path


def write_image(path: Path, arr: np.ndarray, fmt: str | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = fmt or ("JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG")
    path.write_bytes(image_bytes(arr, fmt))
