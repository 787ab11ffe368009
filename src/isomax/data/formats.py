"""Readers of the labelled sets' file formats: idx (MNIST, Fashion-MNIST), CIFAR python pickles and
SVHN .mat. Image files and archives are in :mod:`.images` and :mod:`.archives`."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import zlib
from pathlib import Path

import numpy as np

from .errors import DatasetError
from .images import read_file
from .limits import Limits, current_limits, read_capped

__all__ = [
    "read_file_bytes",
    "parse_idx",
    "read_cifar_pickle",
    "cifar_batch_to_arrays",
    "read_svhn_mat",
]

_IDX_DTYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# --------------------------------------------------------------------------------------------
# idx (MNIST / Fashion-MNIST)
# --------------------------------------------------------------------------------------------
def read_file_bytes(path: os.PathLike | str, limits: Limits | None = None) -> tuple[bytes, bytes]:
    """(raw file bytes, content bytes): gunzips when the file starts with the gzip magic. Both the
    file and its uncompressed content are capped at ``member_bytes`` (a gzip bomb stops there)."""
    limits = limits or current_limits()
    raw = read_file(Path(path), limits)
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
                return raw, read_capped(f, f"{path} (uncompressed)", limits)
        except (EOFError, OSError, zlib.error) as e:
            raise DatasetError(f"{path}: corrupt or truncated gzip file ({e}). Delete it and get a fresh copy.") from e
    return raw, raw


def parse_idx(content: bytes, path: os.PathLike | str = "<bytes>") -> np.ndarray:
    """Parse an idx buffer (http://yann.lecun.com/exdb/mnist/) into a numpy array."""
    if len(content) < 4 or content[0] != 0 or content[1] != 0 or content[2] not in _IDX_DTYPES:
        raise DatasetError(
            f"{path}: not an idx file (bad magic number {content[:4].hex()!r}; expected 0x0000 0x08 <ndim>)"
        )
    ndim = content[3]
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DatasetError(f"{path}: truncated idx header")
    dims = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[content[2]])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(content) - header != expected:
        raise DatasetError(
            f"{path}: idx payload has {len(content) - header} bytes, header "
            f"{dims} needs {expected} (truncated or corrupt file)"
        )
    arr = np.frombuffer(content, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # a writable copy


# --------------------------------------------------------------------------------------------
# CIFAR python pickles
# --------------------------------------------------------------------------------------------
class _RestrictedUnpickler(pickle.Unpickler):
    """Only what the CIFAR batches need (dicts, lists, numpy arrays): never arbitrary code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
        ("__builtin__", "object"),
        ("builtins", "object"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def read_cifar_pickle(data: bytes, path: str = "<bytes>") -> dict:
    """Unpickle one CIFAR batch (python-2 pickles: latin1) with keys decoded to ``str``."""
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise DatasetError(f"{path}: not a valid CIFAR python pickle ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: CIFAR pickle should hold a dict, found {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def cifar_batch_to_arrays(d: dict, label_key: str, path: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        x = np.asarray(d["data"], dtype=np.uint8)
        y = np.asarray(d[label_key], dtype=np.int64)
    except KeyError as e:
        raise DatasetError(f"{path}: CIFAR batch lacks key {e}") from e
    if x.ndim != 2 or x.shape[1] != 3072 or len(y) != len(x):
        raise DatasetError(
            f"{path}: CIFAR batch has data {x.shape} and {len(y)} labels; expected (N, 3072) and N labels"
        )
    return x.reshape(-1, 3, 32, 32), y


# --------------------------------------------------------------------------------------------
# SVHN .mat
# --------------------------------------------------------------------------------------------
def read_svhn_mat(path: os.PathLike | str, limits: Limits | None = None) -> tuple[np.ndarray, np.ndarray]:
    """SVHN cropped digits: X (32, 32, 3, N) -> (N, 3, 32, 32); label 10 -> 0. The file is capped
    at ``member_bytes`` (checked on its size before scipy reads it)."""
    import scipy.io

    try:
        size = os.stat(path).st_size
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e})") from e
    (limits or current_limits()).check("member_bytes", size, str(path))
    try:
        m = scipy.io.loadmat(str(path), variable_names=["X", "y"])
        x, y = m["X"], m["y"]
    except Exception as e:  # noqa: BLE001
        raise DatasetError(f"{path}: not a valid SVHN .mat file ({type(e).__name__}: {e})") from e
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or y.size != x.shape[3]:
        raise DatasetError(f"{path}: SVHN X has shape {x.shape}, y {y.shape}; expected (32, 32, 3, N) and N labels")
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1)).astype(np.uint8, copy=False)
    labels = y.reshape(-1).astype(np.int64)
    labels[labels == 10] = 0
    return images, labels
