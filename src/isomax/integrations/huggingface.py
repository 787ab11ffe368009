"""Hugging Face transformers models with an IsoMax / IsoMax+ head (``pip install 'isomax[huggingface]'``).

    from transformers import AutoModelForSequenceClassification
    from isomax.integrations import huggingface as hf

    model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=3)
    hf.convert(model, head="isomaxplus")          # classifier -> IsoMaxPlusHead, and the loss follows
    out = model(**batch, labels=labels)           # out.loss is the IsoMax loss (entropic scale 10)
    model.save_pretrained("my-model")
    model = hf.load_pretrained(AutoModelForSequenceClassification, "my-model")  # same logits

Why this is needed: ``isomax.convert`` alone swaps the classifier, but (1) a model called with
``labels=`` computes plain cross-entropy on the IsoMax logits, without the entropic scale, and
(2) ``from_pretrained`` rebuilds an ``nn.Linear`` classifier, reports the prototypes as unexpected
and re-initialises it. Here :func:`convert` records the head in ``model.config.isomax`` (saved in
``config.json``) and replaces the model's ``loss`` by the IsoMax loss whenever ``labels=`` is given
(a forward hook; single-label classification only, anything else is refused);
:func:`load_pretrained` rebuilds the head and loads its weights.

With ``transformers.Trainer`` either rely on that patched loss, or pass
``compute_loss_func=isomax_compute_loss(entropic_scale)`` (the Trainer then takes the labels
away from the model and calls it; the loss is a per-batch mean).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from ..convert import classifier_names, convert as _convert
from ..heads import head_kind
from ..registry import DEFAULT_LOSS, get_loss
from ..losses import make_loss

__all__ = ["convert", "isomax_compute_loss", "load_pretrained", "patch_loss"]

_HOOK = "_isomax_loss_hook"


def convert(
    model: nn.Module,
    head: str = DEFAULT_LOSS,
    *,
    entropic_scale: float = 10.0,
    label_smoothing: float = 0.0,
    module: str | None = None,
) -> nn.Module:
    """Swap the classifier of a transformers ``...ForSequenceClassification`` / ``...ForImageClassification``
    model for an isomax head, record it in ``model.config.isomax`` and patch the loss (:func:`patch_loss`).
    Returns ``model``."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        raise TypeError(f"Expected a transformers PreTrainedModel (with `config`), but got: {type(model).__name__}")
    name = module if module is not None else classifier_names(model)[0]
    kind = head_kind(head)
    _convert(model, head=kind, module=name)
    config.isomax = {
        "head": kind,
        "module": name,
        "entropic_scale": float(entropic_scale),
        "label_smoothing": float(label_smoothing),
    }
    patch_loss(model)
    return model


def _loss_fn(info: dict) -> nn.Module:
    smoothing = {"label_smoothing": info["label_smoothing"]} if info.get("label_smoothing") else {}
    return make_loss(info["head"], info.get("entropic_scale", 10.0), **smoothing)


def isomax_compute_loss(entropic_scale: float = 10.0, head: str = DEFAULT_LOSS, label_smoothing: float = 0.0):
    """A ``compute_loss_func`` for ``transformers.Trainer``: ``(outputs, labels, num_items_in_batch) -> loss``,
    the IsoMax loss (per-batch mean) of ``outputs.logits``."""
    loss_fn = _loss_fn({"head": head_kind(head), "entropic_scale": entropic_scale, "label_smoothing": label_smoothing})

    def compute_loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
        return loss_fn.to(logits.device)(logits.float().view(-1, logits.shape[-1]), labels.view(-1))

    return compute_loss


def _isomax_info(config) -> dict | None:
    """``config.isomax`` (what :func:`convert` recorded), None if absent."""
    try:
        return config.isomax
    except AttributeError:
        return None


def patch_loss(model: nn.Module) -> nn.Module:
    """Make ``model(..., labels=y)`` return the IsoMax loss of ``model.config.isomax`` instead of the
    model's own (cross-entropy on the logits). Idempotent. Refuses regression and multi-label
    problems (an IsoMax head is a single-label classifier)."""
    info = _isomax_info(model.config)
    if not isinstance(info, dict) or "head" not in info:
        raise InputError("Expected a model converted by isomax.integrations.huggingface.convert (config.isomax)")
    for old in getattr(model, _HOOK, ()):
        old.remove()
    loss_fn = _loss_fn(info)

    def check(module, args, kwargs):  # before the model computes its own loss (which may fail first)
        labels = kwargs.get("labels")
        problem = getattr(module.config, "problem_type", None)
        if labels is not None and (problem not in (None, "single_label_classification") or labels.is_floating_point()):
            raise InputError(
                f"Expected single-label classification labels (integer class indices) for an isomax "
                f"head, but got problem_type={problem!r}, labels of dtype {labels.dtype}"
            )

    def hook(module, args, kwargs, output):
        labels = kwargs.get("labels")
        if labels is None or getattr(output, "logits", None) is None:
            return output
        logits = output.logits
        output.loss = loss_fn.to(logits.device)(logits.float().view(-1, logits.shape[-1]), labels.view(-1))
        return output

    if not get_loss(info["head"]).linear or info.get("label_smoothing"):
        object.__setattr__(
            model,
            _HOOK,
            (
                model.register_forward_pre_hook(check, with_kwargs=True),
                model.register_forward_hook(hook, with_kwargs=True),
            ),
        )
    return model


def _read_weights(path: Path, keys_under: str) -> dict[str, torch.Tensor]:
    """The tensors of a saved model folder whose names start with ``keys_under`` (safetensors, sharded or
    not, or pytorch_model.bin read with weights_only=True)."""

    def wanted(name: str) -> bool:
        return name.startswith(keys_under)

    if (path / "model.safetensors.index.json").is_file():
        weight_map = json.loads((path / "model.safetensors.index.json").read_text())["weight_map"]
        files = sorted({f for k, f in weight_map.items() if wanted(k)})
    elif (path / "model.safetensors").is_file():
        files = ["model.safetensors"]
    elif (path / "pytorch_model.bin").is_file():
        state = torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
        return {k: v for k, v in state.items() if wanted(k)}
    else:
        raise FileNotFoundError(f"{path}: no model.safetensors(.index.json) or pytorch_model.bin")
    from safetensors import safe_open

    out = {}
    for f in files:
        with safe_open(str(path / f), framework="pt", device="cpu") as fh:
            out.update({k: fh.get_tensor(k) for k in fh.keys() if wanted(k)})
    return out


def load_pretrained(model_class, path: str | os.PathLike, **kwargs) -> nn.Module:
    """``model_class.from_pretrained(path, **kwargs)`` for a folder saved from a converted model: the
    isomax head is rebuilt and its weights loaded (without it, ``from_pretrained`` would re-initialise
    an ``nn.Linear``), and the loss patched again. A folder of a plain model loads as usual.

    ``path`` is a local folder written by ``save_pretrained``.
    """
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"Expected `path` to be a folder written by save_pretrained, but got: {str(path)!r}")
    info = _isomax_info(AutoConfig.from_pretrained(path))
    if not isinstance(info, dict):
        return model_class.from_pretrained(path, **kwargs)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the classifier keys differ on purpose: they are loaded below
    try:
        model = model_class.from_pretrained(path, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    module = info["module"]
    _convert(model, head=info["head"], module=module)
    model.config.isomax = dict(info)
    head = model.get_submodule(module)
    prefix = module + "."  # save_pretrained writes the keys of model.state_dict()
    saved = _read_weights(path, prefix)
    state = {k[len(prefix) :]: v for k, v in saved.items()}
    expected = set(head.state_dict())
    if set(state) != expected:
        raise InputError(f"{path}: the saved head {module!r} has {sorted(state)}, expected {sorted(expected)}")
    reference = next(iter(head.state_dict().values()))
    head.load_state_dict({k: v.to(reference.device) for k, v in state.items()})
    patch_loss(model)
    return model
