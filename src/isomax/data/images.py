"""Image files: listing them, decoding them (with size caps), stacking them, and converting image
tensors to another set's channels and size."""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from .errors import DataLimitError, DatasetError
from .limits import Limits, current_limits, read_capped
from .paths import check_not_loop

__all__ = [
    "IMAGE_EXTENSIONS",
    "natural_key",
    "list_image_files",
    "read_file",
    "read_files",
    "decode_image_bytes",
    "decode_images",
    "stack_images",
    "convert_like",
    "reduce_factor",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm")


# --------------------------------------------------------------------------------------------
# listing and reading
# --------------------------------------------------------------------------------------------
def natural_key(s: str):
    """Sort key with numbers compared numerically: test_2 < test_10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def list_image_files(root: Path, skipped: dict[str, int] | None = None) -> list[Path]:
    """Every image file under ``root`` (recursive, hidden names skipped, directory symlinks
    followed but a symlink loop is a :class:`DatasetError`), in natural path order.

    Only regular files (or symlinks to them) are listed: a FIFO, device or socket named like an image
    would block or never end. ``skipped`` (if given) counts what was left out: ``"hidden"`` names
    and ``"not a regular file"``."""
    out = []
    skipped = {} if skipped is None else skipped

    def skip(why: str) -> None:
        skipped[why] = skipped.get(why, 0) + 1

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        hidden = [d for d in dirnames if d.startswith(".")]
        for _ in hidden:
            skip("hidden")
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for d in dirnames:
            if os.path.islink(os.path.join(dirpath, d)):
                check_not_loop(os.path.join(dirpath, d), dirpath)
        for f in filenames:
            if not f.lower().endswith(IMAGE_EXTENSIONS):
                continue
            if f.startswith("."):
                skip("hidden")
            elif not os.path.isfile(os.path.join(dirpath, f)):  # FIFO, device, socket, dangling link
                skip("not a regular file")
            else:
                out.append(Path(dirpath) / f)
    out.sort(key=lambda p: natural_key(p.relative_to(root).as_posix()))
    return out


def read_file(path: Path, limits: Limits | None = None) -> bytes:
    """The bytes of one data file, at most ``member_bytes`` of them (:class:`DataLimitError`),
    with a :class:`DatasetError` naming the file if it cannot be read or is not a regular file
    (opened without blocking, so a FIFO is refused instead of waiting for a writer)."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise DatasetError(f"{path}: not a regular file (a FIFO, device or socket); not read")
            return read_capped(f, str(path), limits, size_hint=st.st_size or None)
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e})") from e


def read_files(paths: Sequence[Path], limits: Limits | None = None) -> list[bytes]:
    limits = limits or current_limits()
    return [read_file(p, limits) for p in paths]


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------
def _decode_jpeg_torchvision(data: bytes) -> np.ndarray | None:
    """JPEG through ``torchvision.io.decode_image`` (libjpeg-turbo, releases the GIL, ~2x faster
    than PIL for small JPEGs). The pixels equal those of the private ``torch.ops.image.decode_jpeg``
    call used before (checked on the CIFAR-10 JPEG copy, iSUN and TinyImageNet: identical
    tensors), so the published results reproduce. ``None`` (PIL decodes instead) if torchvision
    has no image ops or fails, or for channel counts other than 1 or 3 (e.g. CMYK)."""
    try:
        from torchvision.io import ImageReadMode, decode_image

        # UNCHANGED mode, EXIF orientation applied (as PIL's ImageOps.exif_transpose in the PIL path)
        t = decode_image(
            torch.frombuffer(bytearray(data), dtype=torch.uint8),
            mode=ImageReadMode.UNCHANGED,
            apply_exif_orientation=True,
        )
    except Exception:  # noqa: BLE001 - fall back to PIL (which gives the real error message)
        return None
    if t.dim() != 3 or t.shape[0] not in (1, 3) or t.dtype != torch.uint8:
        return None
    return t.numpy()


def _pil_to_array(im) -> np.ndarray:
    if im.mode in ("L", "1", "LA", "I;16", "I", "F"):
        if im.mode in ("I;16", "I", "F"):  # 16-bit / float grey: scale to 8 bit
            a = np.asarray(im, dtype=np.float64)
            hi = 65535.0 if im.mode == "I;16" else max(1.0, float(a.max()))
            return np.clip(a * (255.0 / hi), 0, 255).round().astype(np.uint8)[None]
        return np.asarray(im.convert("L"), dtype=np.uint8)[None]
    im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame kinds


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's start-of-frame header, without decoding; None if not found
    (the caller then asks PIL). ~20x cheaper than ``PIL.Image.open``."""
    i, n = 2, len(data)
    while i + 9 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length field
            i += 2
            continue
        if marker in _SOF_MARKERS:
            h = int.from_bytes(data[i + 5 : i + 7], "big")
            w = int.from_bytes(data[i + 7 : i + 9], "big")
            return (w, h) if w and h else None
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


#: :func:`decode_image_bytes` with ``like`` decodes at a reduced size only while both sides stay at
#: least this many times the target's longer side (the final resize still antialiases over them)
REDUCE_MARGIN = 4


def reduce_factor(size: tuple[int, int], like: tuple[int, int, int] | None) -> int:
    """The integer factor an image of ``size = (w, h)`` may be decoded smaller by for a ``like = (C, H, W)``
    target: 1 (none) unless both sides stay >= :data:`REDUCE_MARGIN` x the target's longer side."""
    if like is None:
        return 1
    return max(1, min(size) // (REDUCE_MARGIN * max(int(like[1]), int(like[2]))))


def decode_image_bytes(
    name: str,
    data: bytes,
    limits: Limits | None = None,
    like: tuple[int, int, int] | None = None,
    info: dict | None = None,
) -> np.ndarray:
    """Decode one encoded image to uint8 (C, H, W), C in (1, 3), EXIF orientation applied.

    The header is read first and an image of more than ``image_pixels`` pixels is refused with
    :class:`DataLimitError` before any pixel is decoded (decompression bombs); anything undecodable
    is a :class:`DatasetError` naming ``name``. JPEGs go through torchvision, the rest (and JPEGs
    torchvision cannot decode) through PIL. With ``like = (C, H, W)`` (the size the image will be
    converted to), a large image is decoded at a reduced size where the format allows it (JPEG
    ``draft``: DCT scaling) and reduced right after decoding (``Image.reduce``, box averaging), by
    :func:`reduce_factor`, so memory after decoding is bounded by the target size, not the image's;
    ``info`` (if given) then gets ``"size"``: the image's (height, width) before the reduction.
    """
    from PIL import Image, ImageOps

    limits = limits or current_limits()
    if data[:2] == b"\xff\xd8":
        size = jpeg_size(data)
        if size is not None:
            limits.check("image_pixels", size[0] * size[1], f"{name} ({size[0]}x{size[1]} image)")
            if reduce_factor(size, like) == 1:
                arr = _decode_jpeg_torchvision(data)
                if arr is not None:
                    return arr
    try:
        with Image.open(io.BytesIO(data)) as im:  # reads the header only
            w, h = im.size
            limits.check("image_pixels", w * h, f"{name} ({w}x{h} image)")
            r = reduce_factor((w, h), like)
            if r > 1 and info is not None:
                info["size"] = (h, w) if im.getexif().get(0x0112, 1) < 5 else (w, h)  # orientations 5-8 swap
            if r > 1 and im.format == "JPEG":
                im.draft("L" if im.mode == "L" else "RGB", (w // r, h // r))  # decodes at >= 1/r size
            ImageOps.exif_transpose(im, in_place=True)  # rotates / mirrors as the EXIF orientation says
            r = reduce_factor(im.size, like)
            if r > 1:
                if im.mode == "I;16":  # Image.reduce has no 16-bit mode: reduce as 32-bit, scale as 16-bit
                    a = np.asarray(im.convert("I").reduce(r), dtype=np.float64)
                    return np.clip(a * (255.0 / 65535.0), 0, 255).round().astype(np.uint8)[None]
                if im.mode in ("1", "P", "PA"):
                    im = im.convert("L" if im.mode == "1" else "RGB")
                im = im.reduce(r)
            return _pil_to_array(im)
    except DataLimitError:
        raise
    except Image.DecompressionBombError as e:
        raise DatasetError(
            f"{name}: refused by PIL as a possible decompression bomb ({e}); if the "
            f"image is genuine, raise PIL.Image.MAX_IMAGE_PIXELS"
        ) from e
    except Exception as e:  # noqa: BLE001
        raise DatasetError(f"{name}: cannot decode image ({type(e).__name__}: {e})") from e


def _decode_one(item, limits: Limits) -> np.ndarray:
    name, data = item
    if isinstance(data, (str, Path)):
        data = read_file(Path(data), limits)
    return decode_image_bytes(name, data, limits)


def _decode_chunk(items, limits: Limits) -> list[np.ndarray]:
    return [_decode_one(it, limits) for it in items]


def num_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        n = os.cpu_count() or 1
    return max(1, min(n, 16))


@contextlib.contextmanager
def quiet_torchvision_deprecation() -> Iterator[None]:
    """Hide torchvision >= 0.29's DeprecationWarning, which its image decoders emit on *every*
    call. Entered in the calling thread around a whole decoding (worker threads see the same
    process-wide filters), never per image from the workers: ``catch_warnings`` is not
    thread-safe."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torchvision\.io")
        yield


def decode_images(
    items: Sequence[tuple[str, bytes | str | Path]], workers: int | None = None, limits: Limits | None = None
) -> list[np.ndarray]:
    """Decode (name, bytes-or-path) pairs to uint8 (C, H, W) arrays (1 or 3 channels), in order,
    with a thread pool (JPEGs through torchvision's libjpeg-turbo decoder, others through PIL)."""
    limits = limits or current_limits()
    workers = num_workers() if workers is None else workers
    with quiet_torchvision_deprecation():
        if workers <= 1 or len(items) < 256:
            return _decode_chunk(items, limits)
        chunk = max(64, len(items) // (workers * 8))
        chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
        out: list[np.ndarray] = []
        with ThreadPoolExecutor(workers) as ex:
            for part in ex.map(_decode_chunk, chunks, [limits] * len(chunks)):
                out.extend(part)
        return out


# --------------------------------------------------------------------------------------------
# stacking and conversion
# --------------------------------------------------------------------------------------------
def stack_images(
    arrays: Sequence[np.ndarray], like: tuple[int, int, int] | None, what: str
) -> tuple[torch.Tensor, str | None]:
    """Stack decoded (C, H, W) arrays into (N, C, H, W) uint8, converting to ``like`` if given.

    Images of different sizes or channel counts are grouped and converted group-wise; without
    ``like`` they must all share one shape (else a ValueError asks for ``like``), except a mix of
    grey and RGB images of one size, which becomes RGB.
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
            height, width = next(iter(sizes))
            like = (3, height, width)
        else:
            common = sorted(shapes.items(), key=lambda kv: -len(kv[1]))[:3]
            raise InputError(
                f"{what}: images have {len(shapes)} different shapes (most common: "
                f"{[s for s, _ in common]}); pass like=(C, H, W) to convert them"
            )
    c, h, w = (int(v) for v in like)
    like = (c, h, w)
    out = torch.empty((len(arrays), c, h, w), dtype=torch.uint8)
    records = []
    for shape, idx in shapes.items():
        x = torch.from_numpy(np.stack([arrays[i] for i in idx]))
        y, rec = convert_like(x, like)
        out[torch.as_tensor(idx)] = y
        if rec:
            records.append(rec if len(idx) == len(arrays) else f"{len(idx)} images: {rec}")
    records = sorted(set(records))
    return out, ("; ".join(records) if records else None)


_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's convert("L")


def _desc(c: int, h: int, w: int) -> str:
    return f"{h}x{w} " + ("grey" if c == 1 else "RGB" if c == 3 else f"{c}-channel")


def convert_like(
    x: torch.Tensor, like: tuple[int, int, int] | None, chunk: int = 2048
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
        raise InputError(f"cannot convert {c1}-channel images to {c2} channels")
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
        xb = x[i : i + chunk].to(torch.float32)
        if c1 == 3 and c2 == 1:
            xb = (xb * luma).sum(1, keepdim=True)
        if resize_to is not None:
            xb = F.interpolate(xb, size=resize_to, mode="bilinear", align_corners=False, antialias=True)
        if crop is not None:
            xb = xb[:, :, crop[0] : crop[0] + h2, crop[1] : crop[1] + w2]
        out[i : i + chunk] = xb.round_().clamp_(0, 255).to(torch.uint8)  # broadcasts grey -> RGB
    record = f"{_desc(c1, h1, w1)} -> {_desc(c2, h2, w2)} ({', '.join(steps)})"
    return out, record
