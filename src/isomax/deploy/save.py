"""Deploy a model trained elsewhere: :func:`save_run` writes a run folder that ``isomax predict``,
``export``, ``threshold`` and ``calibrate`` accept.

    model = timm.create_model("resnet18", num_classes=5)     # or torchvision / isomax models
    isomax.convert(model, head="isomaxplus")
    ... train it in your own loop ...
    pred = Predictor(model, "mds", mean=mean, std=std).fit(val_images)
    save_run(model, "runs/mine", predictor=pred, input_size=(3, 64, 64), mean=mean, std=std,
             class_names=["cat", "dog", ...], dataset="my_photos")

The folder holds what ``isomax train`` writes: ``config.json`` (the model *spec* that rebuilds it
and the loss), ``checkpoint.pt`` (the weights, the input description and class names) and, from
the predictor or ``threshold=``, ``threshold.json``. Before returning, the folder is loaded back
with :meth:`isomax.runs.Run.load` and its logits compared with the model's: a folder that would not
rebuild the same model is never left behind silently.

Models it can describe (a spec rebuilds them from the library, the weights fill them):

* isomax models (:func:`isomax.models.create_model`): their name;
* timm models (converted with :func:`isomax.convert` or not): ``timm:<architecture>``;
* torchvision models: pass ``model_spec="torchvision:NAME"`` (torchvision does not record the name).
  Auxiliary heads (inception_v3, googlenet) are training-time only and are not saved.

Anything else raises :class:`UnsupportedModelError` (register the model with
:func:`isomax.models.register_model` so that a name rebuilds it).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..errors import IsoMaxError, InputError

__all__ = ["save_run", "UnsupportedModelError"]


class UnsupportedModelError(IsoMaxError, TypeError):
    """:func:`save_run` cannot record how to rebuild this model."""


def _model_spec(model: nn.Module, model_spec: str | None) -> str:
    if model_spec is not None:
        return model_spec
    spec = getattr(model, "spec", None)
    if isinstance(spec, str):
        return spec
    cfg = getattr(model, "pretrained_cfg", None)
    if isinstance(cfg, dict) and cfg.get("architecture"):
        return f"timm:{cfg['architecture']}"
    raise UnsupportedModelError(
        f"save_run cannot tell how to rebuild a {type(model).__name__}: pass model_spec='torchvision:NAME' for a "
        "torchvision model; for your own nn.Module, register a constructor with isomax.models.register_model and "
        "pass model_spec=its name (isomax models, LibraryModel and timm models are recognised)"
    )


def _head_kind(model: nn.Module, spec: str) -> str:
    from ..convert import classifier_names
    from ..registry import head_kind_of

    head = getattr(model, "head", None)
    if not isinstance(head, nn.Module) or ":" in spec:  # a library model: where convert() put the head
        net = getattr(model, "net", model)
        head_names = getattr(model, "head_names", None)  # a LibraryModel's: where convert() put the head
        names = classifier_names(net) if head_names is None else head_names
        head = net.get_submodule(names[0])
    kind = head_kind_of(head) if isinstance(head, nn.Module) else None
    if kind is not None:
        return kind
    raise UnsupportedModelError(
        f"Expected the model's classifier to be an isomax head or nn.Linear, but got: {type(head).__name__}"
    )


def _state_for(model: nn.Module, rebuilt: nn.Module) -> tuple[dict, list[str]]:
    """``model``'s weights under ``rebuilt``'s key names (a plain timm / torchvision model: ``net.`` prefix),
    and the auxiliary-head keys left out."""
    state = model.state_dict()
    if hasattr(rebuilt, "net") and not hasattr(model, "net"):
        state = {f"net.{k}": v for k, v in state.items()}
    expected = rebuilt.state_dict()
    aux = sorted(
        k
        for k in state
        if k not in expected and k.split(".")[1 if k.startswith("net.") else 0].lower().startswith("aux")
    )
    return {k: v for k, v in state.items() if k not in set(aux)}, aux


def save_run(
    model: nn.Module,
    out_dir: str | os.PathLike,
    *,
    predictor=None,
    threshold=None,
    input_size: tuple[int, int, int] | None = None,
    mean=None,
    std=None,
    class_names=None,
    dataset: str = "external",
    data_dir: str | None = None,
    loss: str | None = None,
    model_spec: str | None = None,
    check: bool = True,
) -> Path:
    """Write ``model`` as a run folder ``out_dir`` for ``isomax predict / export / threshold / calibrate``.

    Args:
        model: an isomax model, a timm model, a torchvision model (with ``model_spec``), converted
            with :func:`isomax.convert` or not (a plain ``nn.Linear`` classifier is a softmax run).
        out_dir: the folder to write (created; an existing run folder's files are replaced).
        predictor: a fitted :class:`~isomax.deploy.Predictor`: its threshold is saved (``threshold.json``).
        threshold: a :class:`~isomax.deploy.Threshold` to save instead of the predictor's.
        input_size: ``(C, H, W)`` of the model's input; mean, std: per-channel normalisation in
            [0, 1]-pixel units. For timm models the defaults are its pretrained configuration's.
        class_names: one name per class (default: the class indices).
        dataset, data_dir: the in-distribution data set (name, or what ``--dataset`` takes) that
            ``isomax threshold`` / ``calibrate`` split for validation data; not needed by predict / export.
        loss: the training loss recorded (default: the head's kind; e.g. ``"logitnorm"`` for LogitNorm).
        model_spec: how to rebuild the model: an isomax model name, ``"timm:NAME"``, ``"torchvision:NAME"``.
        check: load the folder back and compare its logits with ``model``'s (default True).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        UnsupportedModelError: the model cannot be described by a spec (see the module docstring).
        ValueError: missing input description, class names of the wrong length, a rebuilt model that
            differs from ``model``.
    """
    from .. import runs
    from ..models import create_model, library_data_config
    from ..presets import Runtime, TrainConfig

    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected `model` to be a torch.nn.Module, but got: {type(model).__name__}")
    spec = _model_spec(model, model_spec)
    kind = _head_kind(model, spec)
    timm_cfg = library_data_config(model) or {}
    input_size = tuple(input_size or timm_cfg.get("input_size") or ())
    mean = tuple(mean if mean is not None else timm_cfg.get("mean") or ())
    std = tuple(std if std is not None else timm_cfg.get("std") or ())
    if len(input_size) != 3 or len(mean) != input_size[0] or len(std) != input_size[0]:
        raise InputError(
            f"Expected `input_size` (C, H, W) and `mean`, `std` with C values each, but got: "
            f"input_size={input_size or None}, mean={mean or None}, std={std or None}"
        )
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with torch.no_grad():
        was_training = model.training
        model.eval()
        example = torch.randn(2, *input_size, generator=torch.Generator().manual_seed(0)).to(device)
        logits = model(example).float().cpu()
        model.train(was_training)
    num_classes = int(logits.shape[1])
    if class_names is not None and len(class_names) != num_classes:
        raise InputError(f"Expected {num_classes} class names (one per logit), but got {len(class_names)}")
    try:
        rebuilt = create_model(spec, num_classes=num_classes, head=kind, in_channels=int(input_size[0]))
    except ValueError as err:
        raise UnsupportedModelError(f"save_run cannot rebuild {spec!r}: {err}") from err
    state, aux = _state_for(model, rebuilt)
    try:
        rebuilt.load_state_dict({k: v.detach().cpu() for k, v in state.items()})
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise InputError(
            f"save_run: {spec!r} rebuilt with {num_classes} classes, head {kind!r} and "
            f"{input_size[0]} input channels does not hold this model's weights ({first}); "
            "pass the right model_spec"
        ) from err

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(dataset=dataset, model=spec, loss=loss or kind, epochs=1)
    runtime = Runtime(device="cpu", data_dir=data_dir)  # recorded in config.json: where threshold/calibrate look
    data = runs.InputSpec(
        channels=int(input_size[0]),
        height=int(input_size[1]),
        width=int(input_size[2]),
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        classes=tuple(str(c) for c in class_names) if class_names is not None else None,
        num_classes=num_classes,
        dataset=dataset,
    ).to_dict()
    runs.write_config(out, config, runtime)
    runs.save_checkpoint(
        out / runs.CHECKPOINT,
        dict(
            model=rebuilt.state_dict(),
            epoch=0,
            history=[],
            config=runs.config_record(config, runtime),
            data=data,
            saved_by="save_run",
            dropped_auxiliary=aux,
        ),
    )
    runs.write_log(out, [])
    for stale in ("threshold.json", "calibration.json"):
        (out / stale).unlink(missing_ok=True)
    t = threshold if threshold is not None else getattr(predictor, "threshold_", None)
    if predictor is not None and t is None:
        raise InputError("Expected a fitted `predictor` (call predictor.fit(val_data) first) or `threshold=`")
    if t is not None:
        t.save(out)
    if check:
        loaded = runs.Run.load(out, calibrated=False).model
        with torch.no_grad():
            again = loaded(example.cpu()).float()
        if not torch.allclose(again, logits, rtol=1e-4, atol=1e-4):
            raise InputError(
                f"save_run: the model rebuilt from {out} gives other logits than `model` "
                f"(max difference {float((again - logits).abs().max()):.3g}); it was built differently "
                f"from what the spec {spec!r} builds"
            )
    return out
