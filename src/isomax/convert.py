"""One call swaps a model's final ``nn.Linear`` classifier for an IsoMax / IsoMax+ head.

    >>> model = torchvision.models.resnet18(num_classes=10)
    >>> isomax.convert(model, head="isomaxplus")   # model.fc is now an IsoMaxPlusHead(512, 10)

Where the classifier is looked for, in this order:

1. ``module="name"`` given: that submodule (a dotted name as in ``model.named_modules()``, e.g.
   ``"classifier.2"``), which must be an ``nn.Linear``.
2. timm models (anything with ``get_classifier()``): the module it returns.
3. The attributes torchvision uses: ``fc`` (ResNet, RegNet, GoogLeNet, ...), ``classifier``
   (DenseNet, VGG, MobileNet, EfficientNet, ConvNeXt: the last ``nn.Linear`` inside it),
   ``heads`` (ViT: ``heads.head``), ``head`` (Swin). Exactly one of them must hold an
   ``nn.Linear``, otherwise the model is ambiguous or unsupported and the error lists the
   ``nn.Linear`` modules that could be meant, with the call that picks one.
"""
from __future__ import annotations

from torch import nn

from .heads import head_kind, make_head

__all__ = ["convert"]

# Attributes under which torchvision models keep their classifier.
_CLASSIFIER_ATTRIBUTES = ("fc", "classifier", "heads", "head")


def convert(model: nn.Module, head: str = "isomaxplus", *, module: str | None = None,
            num_classes: int | None = None, **head_kwargs) -> nn.Module:
    """Replace the final ``nn.Linear`` classifier of ``model`` by a head of kind ``head``, in place.

    Args:
        model: a torchvision or timm classifier, or any model whose classifier is named by ``module``.
        head: ``"isomaxplus"`` (default), ``"isomax"``, or any name of :func:`isomax.heads.head_kind`
            (``"softmax"`` gives a freshly initialised ``nn.Linear``).
        module: dotted name of the ``nn.Linear`` to replace, when it cannot be found automatically.
        num_classes: number of classes of the new head; that of the replaced layer if None.
        head_kwargs: passed to the head's constructor (e.g. ``temperature=``).

    Returns:
        ``model`` itself, its classifier replaced under every name it is reachable by (a layer shared as
        ``model.aux = model.fc`` is replaced under both); the new head is on the device and in the dtype
        of the replaced layer.

    Raises:
        ValueError: unknown head name, no unique ``nn.Linear`` classifier found (the message names
            the candidates and shows how to pass ``module=``), or ``module`` is not an ``nn.Linear``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected `model` to be a torch.nn.Module, but got: {type(model).__name__}")
    head_kind(head)  # raises on an unknown name before anything changes
    name = module if module is not None else _find_classifier(model)
    try:
        old = model.get_submodule(name)
    except AttributeError:
        raise ValueError(f"Expected `module` to name a submodule of the model, but got: {name!r}. "
                         f"{_candidates_hint(model, head)}") from None
    if not isinstance(old, nn.Linear):
        raise ValueError(f"Expected `module` {name!r} to be an nn.Linear, but got: {type(old).__name__}. "
                         f"{_candidates_hint(model, head)}")
    new = make_head(head, old.in_features, num_classes if num_classes is not None else old.out_features,
                    device=old.weight.device, dtype=old.weight.dtype, **head_kwargs)
    # every name the classifier is reachable under (a layer shared as `aux = fc` is one classifier)
    aliases = [n for n, m in model.named_modules(remove_duplicate=False) if m is old]
    for alias in aliases or [name]:
        parent_name, _, attribute = alias.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, attribute, new)
    if hasattr(model, "num_classes") and isinstance(getattr(model, "num_classes"), int):
        model.num_classes = new.out_features  # timm models keep it in sync with their head
    return model


def _find_classifier(model: nn.Module) -> str:
    """The dotted name of the model's final ``nn.Linear`` classifier, or a ValueError listing candidates."""
    names = {m: n for n, m in model.named_modules()}
    get_classifier = getattr(model, "get_classifier", None)
    if callable(get_classifier):  # timm (and models following its convention)
        classifier = get_classifier()
        if isinstance(classifier, nn.Linear) and classifier in names:
            return names[classifier]
        raise ValueError(
            f"Expected `model.get_classifier()` to return an nn.Linear, but got: {type(classifier).__name__} "
            f"(a timm model created with num_classes=0, or one with a convolutional classifier). "
            f"{_candidates_hint(model)}"
        )
    found = []
    for attribute in _CLASSIFIER_ATTRIBUTES:
        sub = getattr(model, attribute, None)
        if isinstance(sub, nn.Linear):
            found.append(attribute)
        elif isinstance(sub, nn.Module):  # a Sequential / container: its last nn.Linear
            inner = [n for n, m in sub.named_modules() if isinstance(m, nn.Linear)]
            if inner:
                found.append(f"{attribute}.{inner[-1]}")
    distinct = {id(model.get_submodule(n)): n for n in reversed(found)}  # one layer under two attributes: one
    if len(distinct) == 1:
        return next(iter(distinct.values()))
    problem = "several candidate classifiers " + ", ".join(map(repr, found)) if found else "no classifier attribute"
    raise ValueError(
        f"Expected `model` to have one final nn.Linear classifier under one of {list(_CLASSIFIER_ATTRIBUTES)} "
        f"or `get_classifier()`, but found {problem}. {_candidates_hint(model)}"
    )


def _candidates_hint(model: nn.Module, head: str = "isomaxplus") -> str:
    linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linear:
        return "The model has no nn.Linear module to replace."
    shown = ", ".join(repr(n) for n in linear[-5:])
    more = f" (last {min(5, len(linear))} of {len(linear)})" if len(linear) > 5 else ""
    return f"nn.Linear modules{more}: {shown}; pass the one to replace, e.g. convert(model, head={head!r}, module={linear[-1]!r})."
