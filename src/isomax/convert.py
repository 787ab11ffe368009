"""One call swaps a model's classifier (or classifiers) for IsoMax / IsoMax+ heads.

    >>> model = isomax.convert(torchvision.models.resnet18(num_classes=10), head="isomaxplus")
    >>> model.fc
    IsoMaxPlusHead(in_features=512, out_features=10, distance=euclidean, normalize=True, distance_scale=True)

Where the classifier is looked for, in this order:

1. ``module="name"`` (or a list of names) given: those submodules (dotted names as in
   ``model.named_modules()``, e.g. ``"classifier.2"``), each an ``nn.Linear`` or a 1x1 ``nn.Conv2d``.
2. timm models (anything with ``get_classifier()``): the module it returns, or every module of the
   tuple it returns (distilled models: ``head`` and ``head_dist`` of DeiT, LeViT, EfficientFormer;
   a head that wraps its ``nn.Linear``, as LeViT's ``NormLinear``, has that ``nn.Linear`` replaced).
3. The attributes torchvision uses: ``fc`` (ResNet, RegNet, GoogLeNet, ...), ``classifier``
   (DenseNet, VGG, MobileNet, EfficientNet, ConvNeXt: the last ``nn.Linear`` inside it; SqueezeNet:
   its 1x1 ``nn.Conv2d``), ``heads`` (ViT: ``heads.head``), ``head`` (Swin). Exactly one of them must
   hold a classifier, otherwise the model is ambiguous or unsupported and the error lists the
   ``nn.Linear`` modules that could be meant, with the call that picks one.

Two head layouts get a rule of their own:

* **1x1 convolution classifiers** (SqueezeNet: ``Dropout, Conv2d(512, C, 1), ReLU, AdaptiveAvgPool2d(1)``).
  A distance head needs one feature vector per image, so the convolution and what follows it (only
  ``ReLU``, pooling to 1x1, ``Flatten``, ``Dropout`` are allowed there) become
  ``AdaptiveAvgPool2d(1), Flatten(1), head``: the features are pooled first (for a linear classifier
  pooling and a 1x1 convolution commute) and the ReLU on the logits is dropped (it would clip the
  negative distances). Any other layout is refused with a clear error.
* **Auxiliary heads** (torchvision ``inception_v3``: ``AuxLogits.fc``; ``googlenet``: ``aux1.fc2``,
  ``aux2.fc2``; any top-level submodule whose name starts with ``aux``): with ``aux=True`` (default)
  their last ``nn.Linear`` is converted too, so that the training-time auxiliary losses see IsoMax
  logits; ``aux=False`` leaves them as they are (e.g. when they are not trained).
"""

from __future__ import annotations

from typing import TypeGuard

from torch import nn

from .errors import InputError
from .heads import head_kind, make_head
from .registry import DEFAULT_LOSS

__all__ = ["convert", "classifier_names"]

# Attributes under which torchvision models keep their classifier.
_CLASSIFIER_ATTRIBUTES = ("fc", "classifier", "heads", "head")
# What may follow a 1x1 convolution classifier (SqueezeNet): replaced by pooling + the head.
_AFTER_CONV_CLASSIFIER = (nn.ReLU, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Dropout, nn.Identity)


def convert(
    model: nn.Module,
    head: str = DEFAULT_LOSS,
    *,
    module: str | list[str] | tuple[str, ...] | None = None,
    num_classes: int | None = None,
    aux: bool = True,
    **head_kwargs,
) -> nn.Module:
    """Replace the classifier(s) of ``model`` by heads of kind ``head``, in place.

    Args:
        model: a torchvision or timm classifier, or any model whose classifier is named by ``module``.
        head: ``"isomaxplus"`` (default), ``"isomax"``, or any name of :func:`isomax.heads.head_kind`
            (``"softmax"`` gives a freshly initialised ``nn.Linear``).
        module: dotted name (or list of names) of the ``nn.Linear`` / 1x1 ``nn.Conv2d`` to replace,
            when they cannot be found automatically; ``aux`` then does not apply.
        num_classes: number of classes of the new heads; that of the replaced layer if None.
        aux: also convert auxiliary classifiers (``AuxLogits`` of inception_v3, ``aux1``/``aux2`` of
            googlenet); False leaves them unchanged.
        head_kwargs: passed to the heads' constructor (e.g. ``temperature=``).

    Returns:
        ``model`` itself, its classifiers replaced under every name they are reachable by (a layer
        shared as ``model.aux = model.fc`` is replaced under both); every new head is on the device
        and in the dtype of the replaced layer. Nothing changes when an error is raised.

    Raises:
        ValueError: unknown head name, no classifier found (the message names the candidates and
            shows how to pass ``module=``), a ``module`` that is not an ``nn.Linear`` or 1x1
            ``nn.Conv2d``, or a convolution classifier followed by layers the rule above does not cover.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected `model` to be a torch.nn.Module, but got: {type(model).__name__}")
    head_kind(head)  # raises on an unknown name before anything changes
    if module is None:
        names = classifier_names(model)
        names += [n for n in _auxiliary_classifiers(model) if aux and n not in names]
    else:
        names = [module] if isinstance(module, str) else list(module)
    plans = [_plan(model, name, head) for name in names]  # every check before the first change
    main = classifier_path(model, names[0]) if names else None
    for target, replacement in plans:
        _replace_module(model, target, replacement(num_classes, head_kwargs))
    if hasattr(model, "num_classes") and isinstance(getattr(model, "num_classes"), int) and main:
        # timm models keep it in sync with their head
        setattr(model, "num_classes", _out_features(model.get_submodule(main)))
    return model


def classifier_names(model: nn.Module) -> list[str]:
    """Dotted names of the model's classifier layers (``nn.Linear`` or 1x1 ``nn.Conv2d``), auxiliary
    heads excluded; several for distilled timm models. A ValueError lists candidates when none is found."""
    names = {m: n for n, m in model.named_modules()}
    get_classifier = getattr(model, "get_classifier", None)
    if callable(get_classifier):  # timm (and models following its convention)
        classifier = get_classifier()
        heads = classifier if isinstance(classifier, (tuple, list)) else (classifier,)
        found = [_last_classifier(names, m) for m in heads]
        named = [n for n in found if n is not None]
        if named and len(named) == len(found):
            return named
        raise InputError(
            f"Expected `model.get_classifier()` to return an nn.Linear (or a tuple of heads holding one), but got: "
            f"{_type_names(classifier)} (a timm model created with num_classes=0?). {_candidates_hint(model)}"
        )
    candidates: list[str] = []
    for attribute in _CLASSIFIER_ATTRIBUTES:
        sub = getattr(model, attribute, None)
        if isinstance(sub, nn.Module):
            name = _last_classifier(names, sub)
            if name:
                candidates.append(name)
    candidates = list(dict.fromkeys(candidates))  # one layer under two attributes is one classifier
    if len(candidates) == 1:
        return candidates
    problem = (
        "several candidate classifiers " + ", ".join(map(repr, candidates)) if candidates else "no classifier attribute"
    )
    raise InputError(
        f"Expected `model` to have one final nn.Linear classifier under one of {list(_CLASSIFIER_ATTRIBUTES)} "
        f"or `get_classifier()`, but found {problem}. {_candidates_hint(model)}"
    )


def classifier_path(model: nn.Module, name: str) -> str:
    """Where the head that replaced classifier ``name`` lives after :func:`convert` (the same name,
    except for convolution classifiers: pooling and flattening come before the head)."""
    sub = model.get_submodule(name)
    if isinstance(sub, nn.Conv2d):
        parent, _, index = name.rpartition(".")
        return f"{parent}.{int(index) + 2}" if parent else name
    return name


# ---- what to replace, and with what ---------------------------------------------------------------
def _last_classifier(names: dict, sub: nn.Module) -> str | None:
    """The name of ``sub`` if it is a classifier layer, else of its last ``nn.Linear`` (or, without any,
    its last 1x1 ``nn.Conv2d``: SqueezeNet); None if it holds neither."""
    if sub not in names:
        return None
    from .heads import DistanceHead

    if isinstance(sub, (nn.Linear, DistanceHead)) or _is_conv1x1(sub):  # a DistanceHead: already converted
        return names[sub]
    linear = [m for m in sub.modules() if isinstance(m, nn.Linear)]
    convs = [m for m in sub.modules() if _is_conv1x1(m)]
    last = linear[-1] if linear else convs[-1] if convs else None
    return names.get(last) if last is not None else None


def _is_conv1x1(m: nn.Module) -> TypeGuard[nn.Conv2d]:
    return isinstance(m, nn.Conv2d) and tuple(m.kernel_size) == (1, 1) and m.groups == 1


def _auxiliary_classifiers(model: nn.Module) -> list[str]:
    """The last ``nn.Linear`` of every top-level submodule named ``aux*`` (AuxLogits, aux1, aux2)."""
    found = []
    for child_name, child in model.named_children():
        if child_name.lower().startswith("aux"):
            linear = [n for n, m in child.named_modules() if isinstance(m, nn.Linear)]
            if linear:
                found.append(f"{child_name}.{linear[-1]}")
    return found


def _plan(model: nn.Module, name: str, head: str):
    """``(dotted name to replace, factory of the replacement)`` for classifier ``name``; raises if unsupported."""
    try:
        old = model.get_submodule(name)
    except AttributeError:
        raise InputError(
            f"Expected `module` to name a submodule of the model, but got: {name!r}. {_candidates_hint(model, head)}"
        ) from None
    factory = dict(device=old.weight.device, dtype=old.weight.dtype) if hasattr(old, "weight") else {}
    if isinstance(old, nn.Linear):
        return name, lambda c, kw: make_head(
            head, old.in_features, c if c is not None else old.out_features, **factory, **kw
        )
    if _is_conv1x1(old):
        parent_name, _, index = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else None  # the model itself cannot be replaced
        before, after = (
            (list(parent)[: int(index)], list(parent)[int(index) + 1 :])
            if isinstance(parent, nn.Sequential)
            else ([], None)
        )
        if (
            after is None
            or not all(isinstance(m, _AFTER_CONV_CLASSIFIER) for m in after)
            or not all(_pools_to_one(m) for m in after if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)))
        ):
            raise InputError(
                f"Expected the 1x1 convolution classifier {name!r} to be followed in its nn.Sequential only by ReLU, "
                f"pooling to 1x1, Flatten or Dropout (as in SqueezeNet), but got: "
                f"{_type_names(after) if after is not None else 'no enclosing nn.Sequential'}; "
                "pass `module=` an nn.Linear"
            )

        def replacement(c, kw):
            new_head = make_head(head, old.in_channels, c if c is not None else old.out_channels, **factory, **kw)
            return nn.Sequential(*before, nn.AdaptiveAvgPool2d(1), nn.Flatten(1), new_head)

        return parent_name, replacement
    raise InputError(
        f"Expected `module` {name!r} to be an nn.Linear or a 1x1 nn.Conv2d, but got: "
        f"{type(old).__name__}. {_candidates_hint(model, head)}"
    )


def _pools_to_one(m: nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d) -> bool:
    size = m.output_size
    return size == 1 or (isinstance(size, (tuple, list)) and tuple(size) in ((1, 1), (1,)))


def _replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where ``model``'s submodule ``name`` is, under every name that layer is reachable by
    (a classifier shared as ``aux = fc`` is one layer: both names get the new head)."""
    old = model.get_submodule(name)
    aliases = [n for n, m in model.named_modules(remove_duplicate=False) if m is old]
    for alias in aliases or [name]:
        parent_name, _, attribute = alias.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, attribute, new)


def _out_features(m: nn.Module) -> int:
    return int(getattr(m, "out_features", 0) or getattr(m, "num_classes", 0))


def _type_names(obj) -> str:
    if isinstance(obj, (tuple, list)):
        return "(" + ", ".join(type(m).__name__ for m in obj) + ")"
    return type(obj).__name__


def _candidates_hint(model: nn.Module, head: str = DEFAULT_LOSS) -> str:
    linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linear:
        return "The model has no nn.Linear module to replace."
    shown = ", ".join(repr(n) for n in linear[-5:])
    more = f" (last {min(5, len(linear))} of {len(linear)})" if len(linear) > 5 else ""
    return (
        f"nn.Linear modules{more}: {shown}; pass the one to replace, "
        f"e.g. convert(model, head={head!r}, module={linear[-1]!r})."
    )
