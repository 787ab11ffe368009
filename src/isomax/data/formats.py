"""Readers for the on-disk formats (idx, CIFAR pickles, SVHN .mat, images in folders / tar archives)
and the tensor-level conversion used to match an in-distribution's shape."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import re
import tarfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ._common import DatasetError

__all__ = [
    "IMAGE_EXTENSIONS",
    "read_idx",
    "read_cifar_pickle",
    "read_svhn_mat",
    "decode_images",
    "list_image_files",
    "read_tar_images",
    "stack_images",
    "convert_like",
    "natural_key",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm", ".pbm", ".pnm")

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# --------------------------------------------------------------------------------------------
# idx (MNIST / Fashion-MNIST)
# --------------------------------------------------------------------------------------------
def read_file_bytes(path: os.PathLike | str) -> tuple[bytes, bytes]:
    """(raw file bytes, content bytes): gunzips when the file starts with the gzip magic."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return raw, gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise DatasetError(f"{path}: corrupt or truncated gzip file ({e}). Delete it and get a "
                               f"fresh copy.") from e
    return raw, raw


def parse_idx(content: bytes, path: os.PathLike | str = "<bytes>") -> np.ndarray:
    """Parse an idx buffer (http://yann.lecun.com/exdb/mnist/) into a numpy array."""
    if len(content) < 4 or content[0] != 0 or content[1] != 0 or content[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: not an idx file (bad magic number {content[:4].hex()!r}; "
                           f"expected 0x0000 0x08 <ndim>)")
    ndim = content[3]
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DatasetError(f"{path}: truncated idx header")
    dims = tuple(int.from_bytes(content[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[content[2]])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(content) - header != expected:
        raise DatasetError(f"{path}: idx payload has {len(content) - header} bytes, header "
                           f"{dims} needs {expected} (truncated or corrupt file)")
    arr = np.frombuffer(content, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # a writable copy


def read_idx(path: os.PathLike | str) -> np.ndarray:
    """Read an idx file, gzipped or not."""
    _, content = read_file_bytes(path)
    return parse_idx(content, path)


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
        raise DatasetError(f"{path}: CIFAR batch has data {x.shape} and {len(y)} labels; expected "
                           f"(N, 3072) and N labels")
    return x.reshape(-1, 3, 32, 32), y


# --------------------------------------------------------------------------------------------
# SVHN .mat
# --------------------------------------------------------------------------------------------
def read_svhn_mat(path: os.PathLike | str) -> tuple[np.ndarray, np.ndarray]:
    """SVHN cropped digits: X (32, 32, 3, N) -> (N, 3, 32, 32); label 10 -> 0."""
    import scipy.io

    try:
        m = scipy.io.loadmat(str(path), variable_names=["X", "y"])
        x, y = m["X"], m["y"]
    except Exception as e:  # noqa: BLE001
        raise DatasetError(f"{path}: not a valid SVHN .mat file ({type(e).__name__}: {e})") from e
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or y.size != x.shape[3]:
        raise DatasetError(f"{path}: SVHN X has shape {x.shape}, y {y.shape}; expected "
                           f"(32, 32, 3, N) and N labels")
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1)).astype(np.uint8, copy=False)
    labels = y.reshape(-1).astype(np.int64)
    labels[labels == 10] = 0
    return images, labels


# --------------------------------------------------------------------------------------------
# images (folders, archives)
# --------------------------------------------------------------------------------------------
def natural_key(s: str):
    """Sort key with numbers compared numerically: test_2 < test_10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def list_image_files(root: Path) -> list[Path]:
    """Every image file under ``root`` (recursive), in natural path order."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS):
                out.append(Path(dirpath) / f)
    out.sort(key=lambda p: natural_key(p.relative_to(root).as_posix()))
    return out


_JPEG_OP: list = []


def _jpeg_op():
    """torchvision's libjpeg-turbo decoder op (``None`` if unavailable). Called directly: the
    public wrapper warns on every call since torchvision 0.29; PIL is the fallback."""
    if not _JPEG_OP:
        op = None
        try:
            from torchvision.io import image as _tv_image

            if _tv_image._has_image_ops():
                op = torch.ops.image.decode_jpeg
        except Exception:  # noqa: BLE001
            op = None
        _JPEG_OP.append(op)
    return _JPEG_OP[0]


def _decode_jpeg_fast(data: bytes) -> np.ndarray | None:
    """~2x faster than PIL for small JPEGs, releases the GIL; identical pixels (same libjpeg)."""
    op = _jpeg_op()
    if op is None:
        return None
    try:
        # mode 0 = ImageReadMode.UNCHANGED; no EXIF rotation (as PIL's Image.open)
        t = op(torch.frombuffer(bytearray(data), dtype=torch.uint8), 0, False)
    except Exception:  # noqa: BLE001 - fall back to PIL (which gives the real error message)
        return None
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        return None
    return t.numpy()


def _decode_one(item) -> np.ndarray:
    from PIL import Image

    name, data = item
    if isinstance(data, (str, Path)):
        try:
            data = Path(data).read_bytes()
        except OSError as e:
            raise DatasetError(f"{name}: cannot read image file ({e})") from e
    if data[:2] == b"\xff\xd8":
        arr = _decode_jpeg_fast(data)
        if arr is not None:
            return arr
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.mode in ("L", "1", "LA", "I;16", "I", "F"):
                if im.mode in ("I;16", "I", "F"):  # 16-bit / float grey: scale to 8 bit
                    a = np.asarray(im, dtype=np.float64)
                    hi = 65535.0 if im.mode == "I;16" else max(1.0, float(a.max()))
                    return np.clip(a * (255.0 / hi), 0, 255).round().astype(np.uint8)[None]
                return np.asarray(im.convert("L"), dtype=np.uint8)[None]
            im = im.convert("RGB")
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    except Exception as e:  # noqa: BLE001
        raise DatasetError(f"{name}: cannot decode image ({type(e).__name__}: {e})") from e


def _decode_chunk(items) -> list[np.ndarray]:
    return [_decode_one(it) for it in items]


def num_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        n = os.cpu_count() or 1
    return max(1, min(n, 16))


def decode_images(items: Sequence[tuple[str, bytes | str | Path]], workers: int | None = None
                  ) -> list[np.ndarray]:
    """Decode (name, bytes-or-path) pairs to uint8 (C, H, W) arrays (1 or 3 channels), in order,
    with a thread pool (JPEGs through torchvision's libjpeg-turbo decoder, others through PIL)."""
    workers = num_workers() if workers is None else workers
    if workers <= 1 or len(items) < 256:
        return _decode_chunk(items)
    chunk = max(64, len(items) // (workers * 8))
    chunks = [items[i:i + chunk] for i in range(0, len(items), chunk)]
    out: list[np.ndarray] = []
    with ThreadPoolExecutor(workers) as ex:
        for part in ex.map(_decode_chunk, chunks):
            out.extend(part)
    return out


def read_tar_images(path: os.PathLike | str, member_filter: Callable[[str], bool] | None = None
                    ) -> list[tuple[str, bytes]]:
    """(member name, bytes) of every image member of a tar archive (any compression), in natural
    name order, without extracting to disk."""
    items = []
    try:
        with tarfile.open(path, "r:*") as tf:
            for m in tf:
                if not m.isfile():
                    continue
                base = m.name.rsplit("/", 1)[-1]
                if base.startswith(".") or not base.lower().endswith(IMAGE_EXTENSIONS):
                    continue
                if member_filter is not None and not member_filter(m.name):
                    continue
                f = tf.extractfile(m)
                if f is None:
                    continue
                items.append((m.name, f.read()))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise DatasetError(f"{path}: corrupt or truncated archive ({type(e).__name__}: {e})") from e
    items.sort(key=lambda it: natural_key(it[0]))
    return items


def stack_images(arrays: Sequence[np.ndarray], like: tuple[int, int, int] | None, what: str
                 ) -> tuple[torch.Tensor, str | None]:
    """Stack decoded (C, H, W) arrays into (N, C, H, W) uint8, converting to ``like`` if given.

    Images of different sizes or channel counts are grouped and converted group-wise; without
    ``like`` they must all share one shape (else a ValueError asks for ``like``).
    """
    if not arrays:
        raise DatasetError(f"{what}: no images found")
    shapes: dict[tuple[int, ...], list[int]] = {}
    for i, a in enumerate(arrays):
        shapes.setdefault(a.shape, []).append(i)
    if like is None:
        if len(shapes) == 1:
            return torch.from_numpy(np.stack(arrays)), None
        chans = {s[0] for s in shapes}
        sizes = {s[1:] for s in shapes}
        if len(sizes) == 1 and chans == {1, 3}:
            like = (3,) + next(iter(sizes))
        else:
            common = sorted(shapes.items(), key=lambda kv: -len(kv[1]))[:3]
            raise ValueError(f"{what}: images have {len(shapes)} different shapes (most common: "
                             f"{[s for s, _ in common]}); pass like=(C, H, W) to convert them")
    like = tuple(int(v) for v in like)
    out = torch.empty((len(arrays),) + like, dtype=torch.uint8)
    records = []
    for shape, idx in shapes.items():
        x = torch.from_numpy(np.stack([arrays[i] for i in idx]))
        y, rec = convert_like(x, like)
        out[torch.as_tensor(idx)] = y
        if rec:
            records.append(rec if len(idx) == len(arrays) else f"{len(idx)} images: {rec}")
    records = sorted(set(records))
    return out, ("; ".join(records) if records else None)


# --------------------------------------------------------------------------------------------
# shape / channel conversion
# --------------------------------------------------------------------------------------------
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's convert("L")


def _desc(c: int, h: int, w: int) -> str:
    return f"{h}x{w} " + ("grey" if c == 1 else "RGB" if c == 3 else f"{c}-channel")


def convert_like(x: torch.Tensor, like: tuple[int, int, int] | None, chunk: int = 2048
                 ) -> tuple[torch.Tensor, str | None]:
    """Convert uint8 (N, C, H, W) images to ``like`` = (C, H, W).

    Channels: RGB -> grey with ITU-R 601 luma, grey -> RGB by replication. Size: same aspect ratio
    -> bilinear resize with antialiasing; different aspect ratio -> resize so the image covers the
    target (shorter side fits) then center-crop. Returns (images, human-readable record or None).
    """
    if like is None:
        return x, None
    c2, h2, w2 = (int(v) for v in like)
    n, c1, h1, w1 = x.shape
    if (c1, h1, w1) == (c2, h2, w2):
        return x, None
    if c1 not in (1, 3) or c2 not in (1, 3):
        raise ValueError(f"cannot convert {c1}-channel images to {c2} channels")
    steps = []
    if c1 == 3 and c2 == 1:
        steps.append("ITU-R 601 luma")
    elif c1 == 1 and c2 == 3:
        steps.append("grey replicated to RGB")
    resize_to = None
    crop = None
    if (h1, w1) != (h2, w2):
        if h1 * w2 == h2 * w1:  # same aspect ratio
            resize_to = (h2, w2)
            kind = "downscale" if h1 > h2 else "upscale"
            steps.insert(0, f"bilinear {kind} with antialiasing")
        else:
            s = max(h2 / h1, w2 / w1)
            rh, rw = max(h2, round(h1 * s)), max(w2, round(w1 * s))
            if (rh, rw) != (h1, w1):
                resize_to = (rh, rw)
                steps.insert(0, f"bilinear resize to {rh}x{rw} with antialiasing")
            crop = ((rh - h2) // 2, (rw - w2) // 2)
            steps.insert(1 if resize_to else 0, f"center crop {h2}x{w2}")
    out = torch.empty((n, c2, h2, w2), dtype=torch.uint8)
    luma = torch.tensor(_LUMA, dtype=torch.float32).view(1, 3, 1, 1)
    for i in range(0, n, chunk):
        xb = x[i:i + chunk].to(torch.float32)
        if c1 == 3 and c2 == 1:
            xb = (xb * luma).sum(1, keepdim=True)
        if resize_to is not None:
            xb = F.interpolate(xb, size=resize_to, mode="bilinear", align_corners=False,
                               antialias=True)
        if crop is not None:
            xb = xb[:, :, crop[0]:crop[0] + h2, crop[1]:crop[1] + w2]
        out[i:i + chunk] = xb.round_().clamp_(0, 255).to(torch.uint8)  # broadcasts grey -> RGB
    record = f"{_desc(c1, h1, w1)} -> {_desc(c2, h2, w2)} ({', '.join(steps)})"
    return out, record


def iter_chunks(seq: Sequence, n: int) -> Iterable[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]
