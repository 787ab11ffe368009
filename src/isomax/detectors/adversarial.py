"""FGSM adversarial samples (Goodfellow et al., 2015), used to validate ODIN and Mahalanobis.

Lee et al. (2018, "A Simple Unified Framework for Detecting Out-of-Distribution Samples and
Adversarial Attacks", ``deep_Mahalanobis_detector/ADV_Samples.py``) choose the detectors'
hyperparameters on in-distribution validation samples (positive) against FGSM adversarial
samples made from them (negative), never on the test out-distributions::

    x_adv = clip(x + eps * sign(grad_x CE(model(x), y)) / std)

with ``eps`` in [0, 1]-pixel units (0.05 in their code) and the result clipped to the range of
valid normalised pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from .base import pixel_scale

__all__ = ["fgsm", "FGSM_EPS"]

#: FGSM step of Lee et al.'s ``ADV_Samples.py`` (``adv_noise = 0.05``), in [0, 1]-pixel units
FGSM_EPS = 0.05


def fgsm(
    model: nn.Module, x: Tensor, y: Tensor | None, eps: float = FGSM_EPS, *, mean=None, std=None, batch_size: int = 500
) -> Tensor:
    """One FGSM step: ``x + eps * sign(grad_x CE(model(x), y))`` (scaled by ``1/std``), detached.

    Args:
        model: the classifier (put in eval mode by the caller; its weights get no gradient).
        x: normalised inputs ``(B, C, H, W)``.
        y: labels ``(B,)``; ``None`` uses the model's predictions.
        eps: step in [0, 1]-pixel units when ``std`` is given, else in normalised units.
        mean, std: the input normalisation (per channel). With both, the result is clipped to the
            normalised image of ``[0, 1]``.
        batch_size: samples per forward/backward pass.

    Returns:
        adversarial inputs, same shape and dtype as ``x``; the cross-entropy on them is higher
        (to first order).
    """
    if not eps >= 0:
        raise InputError(f"Expected `eps` to be >= 0, but got: {eps!r}")
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].detach().clone().requires_grad_(True)
        with torch.enable_grad():
            logits = model(xb)
            yb = logits.argmax(1) if y is None else y[i : i + batch_size].to(logits.device)
            loss = F.cross_entropy(logits.float(), yb, reduction="sum")
            (grad,) = torch.autograd.grad(loss, xb)
        adv = xb.detach() + eps * torch.sign(grad) * pixel_scale(std, xb)
        if mean is not None and std is not None:
            scale = pixel_scale(std, xb)  # 1/std, (1, C, 1, 1)
            m = torch.as_tensor(mean, dtype=xb.dtype, device=xb.device).flatten()
            m = (m.expand(xb.shape[1]) if m.numel() == 1 else m).view(1, -1, 1, 1)
            adv = torch.max(torch.min(adv, (1.0 - m) * scale), (0.0 - m) * scale)
        out.append(adv)
    return torch.cat(out) if out else x.detach().clone()


def adversarial_validation(
    model: nn.Module,
    val_data,
    max_samples: int | None = 500,
    *,
    eps: float = FGSM_EPS,
    mean=None,
    std=None,
    device=None,
    batch_size: int = 500,
    seed: int = 0,
) -> tuple[Tensor, Tensor, tuple | None]:
    """``(x_val, x_adv, std)``: up to ``max_samples`` validation inputs and their FGSM versions.

    ``val_data`` is labelled in-distribution *validation* data (ImageData, BatchLoader or batches
    of ``(x, y)``); an ImageData is subsampled at random (seeded). ``std`` is returned as used
    (from the argument or the loader / data set), so callers can scale their own noise the same way.
    """
    from .base import _data_norm, _model_device, collect

    mean, std = _data_norm(val_data, mean, std)
    device = device or _model_device(model)
    x_val, y_val = collect(val_data, max_samples, mean=mean, std=std, device=device, batch_size=batch_size, seed=seed)
    model.eval()
    x_adv = fgsm(model, x_val, y_val, eps, mean=mean, std=std, batch_size=batch_size)
    return x_val, x_adv, std
