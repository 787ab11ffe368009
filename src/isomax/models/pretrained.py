"""Start a model from a local checkpoint: ``isomax train --pretrained PATH``.

``PATH`` is a ``.safetensors`` file or a ``.pt`` / ``.pth`` / ``.bin`` state dict (read with
``torch.load(weights_only=True)``: a crafted file cannot run code), as the library that made the
model saves it (timm, torchvision: ``torch.save(model.state_dict())``; a dict holding it under
``state_dict`` / ``model`` is unwrapped, a ``module.`` prefix of DistributedDataParallel dropped).

The classifier's weights are dropped (the run's head is new: other classes, other kind); every
other weight must be there with the right shape, and nothing else may be: otherwise a one-line
error lists the missing, unexpected and mis-shaped keys.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import IsoMaxError, InputError

__all__ = ["read_state_dict", "load_pretrained", "PretrainedMismatchError"]

_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
_SHOWN = 8  # keys listed per kind in an error


class PretrainedMismatchError(IsoMaxError, ValueError):
    """The checkpoint's weights do not fit the model (missing, unexpected or mis-shaped keys)."""


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` / ``.pt`` / ``.pth`` / ``.bin`` file (on the CPU)."""
    path = Path(path).expanduser()
    if path.suffix not in _SUFFIXES:
        raise InputError(f"Expected --pretrained to be a {', '.join(_SUFFIXES)} file, but got: {str(path)!r}")
    if not path.is_file():
        raise FileNotFoundError(f"--pretrained {path}: no such file")
    state: Any  # checked below: a dict of names -> tensors
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as err:
            raise ImportError("reading .safetensors needs safetensors: pip install safetensors") from err
        try:
            state = load_file(str(path), device="cpu")
        except Exception as err:  # noqa: BLE001 - safetensors raises its own error types for bad bytes
            raise InputError(
                f"cannot read --pretrained {path}: not a safetensors file ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''})"
            ) from err
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - torch raises many kinds for bad bytes; all mean "not a state dict"
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise InputError(
                f"cannot read --pretrained {path}: not a state dict of tensors (only tensors and plain "
                f"types are loaded; {type(err).__name__}: {first})"
            ) from err
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
                break
    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    ):
        raise InputError(
            f"cannot read --pretrained {path}: expected a state dict (names -> tensors), but got {type(state).__name__}"
        )
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _target(model: nn.Module) -> tuple[nn.Module, list[str], list[str]]:
    """(module to load into, checkpoint prefixes of the classifier to drop, state-dict prefixes of the new heads)."""
    from .library import LibraryModel

    if isinstance(model, LibraryModel):
        aux = [n for n, _ in model.net.named_children() if n.lower().startswith("aux")]
        return model.net, model.classifier_names + ["AuxLogits", "aux1", "aux2"] + aux, model.head_names
    if hasattr(model, "head") and isinstance(model.head, nn.Module):
        return model, ["head"], ["head"]
    raise TypeError(f"Expected an isomax model or a timm:/torchvision: model, but got: {type(model).__name__}")


def _under(key: str, prefixes: list[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def _listing(kind: str, keys: list[str]) -> str:
    more = f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
    return f"{kind} {len(keys)}: {', '.join(keys[:_SHOWN])}{more}"


def load_pretrained(model: nn.Module, path: str | os.PathLike) -> dict:
    """Load ``path``'s weights into ``model`` (an isomax model or a :class:`LibraryModel`), all but the classifier.

    Returns ``{"loaded": n, "dropped": [classifier keys of the checkpoint]}``. Raises
    :class:`PretrainedMismatchError` (nothing loaded) when the rest does not match exactly.
    """
    state = read_state_dict(path)
    target, classifier, heads = _target(model)
    dropped = sorted(k for k in state if _under(k, classifier))
    given = {k: v for k, v in state.items() if k not in set(dropped)}
    expected = {k: v for k, v in target.state_dict().items() if not _under(k, heads)}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    shapes = sorted(
        f"{k} {tuple(given[k].shape)} vs {tuple(expected[k].shape)}"
        for k in set(given) & set(expected)
        if given[k].shape != expected[k].shape
    )
    if missing or unexpected or shapes:
        parts = [
            _listing(kind, keys)
            for kind, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("wrong shape (file vs model)", shapes),
            )
            if keys
        ]
        name = getattr(model, "spec", type(model).__name__)
        raise PretrainedMismatchError(
            f"--pretrained {path} does not fit {name} (classifier keys dropped: {len(dropped)}): {'; '.join(parts)}"
        )
    result = target.load_state_dict(given, strict=False)
    assert not result.unexpected_keys and set(result.missing_keys) <= {
        k for k in target.state_dict() if _under(k, heads)
    }
    return {"loaded": len(given), "dropped": dropped}
