"""Synthetic out-of-distribution sets: Gaussian and uniform noise images, made from a seed."""

from __future__ import annotations

import torch

from ..errors import InputError
from .imagedata import ImageData

__all__ = ["NOISE_KINDS", "synthetic"]

#: name -> description of the distribution (per pixel, in [0, 1] units before uint8 rounding)
NOISE_KINDS = {"gaussian": "N(0.5, 0.25^2) clipped to [0, 1]", "uniform": "uniform U{0..255}"}


def synthetic(name: str, like: tuple[int, int, int] | None, num_samples: int, seed: int) -> ImageData:
    """``num_samples`` noise images of shape ``like`` (default (3, 32, 32)), deterministic in
    ``seed``; the recipe is recorded in ``.conversion``."""
    if name not in NOISE_KINDS:
        raise InputError(f"unknown noise {name!r}; known: {', '.join(NOISE_KINDS)}")
    c, h, w = like if like is not None else (3, 32, 32)
    g = torch.Generator().manual_seed(int(seed))
    if name == "gaussian":
        x = torch.randn((num_samples, c, h, w), generator=g).mul_(0.25).add_(0.5).clamp_(0, 1)
        images = x.mul_(255).round_().to(torch.uint8)
    else:
        images = torch.randint(0, 256, (num_samples, c, h, w), generator=g, dtype=torch.uint8)
    return ImageData(
        images,
        None,
        name,
        None,
        conversion=f"synthetic {NOISE_KINDS[name]}, {num_samples} images {h}x{w}x{c}, seed {seed}",
    )
