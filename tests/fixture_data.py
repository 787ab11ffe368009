"""Tiny datasets in the original file formats, generated for tests (never the network)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write an idx file (gzipped if the name ends in .gz), as in the MNIST distribution."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def learnable_images(n: int, num_classes: int = 10, size: int = 28, seed: int = 0, vertical: bool = False):
    """Images of class k carry a bright bar at a class-specific position, on noise: learnable in one epoch."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, size, size), dtype=np.uint8)
    for i, k in enumerate(labels):
        row = 2 + (k * (size - 4)) // num_classes
        if vertical:
            images[i, :, row : row + 2] = 230
        else:
            images[i, row : row + 2, :] = 230
    return images, labels.astype(np.uint8)


def make_fashion_mnist(root: Path, n_train: int = 600, n_test: int = 200) -> Path:
    """``root/fashion-mnist/`` with the four idx.gz files, and ``root/mnist-test/`` with MNIST's test files."""
    d = root / "fashion-mnist"
    x, y = learnable_images(n_train, seed=1)
    write_idx(d / "train-images-idx3-ubyte.gz", x)
    write_idx(d / "train-labels-idx1-ubyte.gz", y)
    x, y = learnable_images(n_test, seed=2)
    write_idx(d / "t10k-images-idx3-ubyte.gz", x)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", y)
    x, y = learnable_images(150, seed=3, vertical=True)
    write_idx(root / "mnist-test" / "t10k-images-idx3-ubyte.gz", x)
    write_idx(root / "mnist-test" / "t10k-labels-idx1-ubyte.gz", y)
    return root


def make_image_folder(root: Path, n: int = 20, size: int = 32, seed: int = 0) -> Path:
    """A flat folder of RGB PNG images."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)).save(root / f"img_{i:03d}.png")
    return root
