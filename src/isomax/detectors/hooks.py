"""Reading and changing a model's intermediate activations with forward hooks, on any ``nn.Module``.

A :class:`Tap` names one point of a model: the output of a named submodule (``Tap(model, "stages.2")``,
names as in ``model.named_modules()``) or, by default, the *input of the final classifier* found by
:func:`find_classifier` (the penultimate features that post-hoc detectors such as KNN, ViM, ReAct
read). :func:`read_activations` runs the model once and returns its output and the activations at
several taps; :meth:`Tap.forward_from` runs the rest of the model from a (changed) activation,
which is what the activation-shaping detectors (ReAct, ASH, SCALE) need.

Nothing here depends on the isomax models: a torchvision ResNet (``fc``), a timm model
(``get_classifier()``), a ``nn.Sequential`` ending in a ``nn.Linear`` all work.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn
from ..errors import InputError

__all__ = ["Tap", "find_classifier", "read_activations", "pool"]

#: attribute names under which models keep their classifier (timm, torchvision, isomax), in order of preference
CLASSIFIER_NAMES: tuple[str, ...] = ("head", "fc", "classifier", "heads.head", "heads", "linear", "last_linear")


def _has_parameters(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def _last_with_parameters(name: str, module: nn.Module) -> tuple[str, nn.Module]:
    """The last parameterised child of a ``nn.Sequential`` (skipping Dropout, Flatten, ...)."""
    while isinstance(module, nn.Sequential):
        children = [(n, m) for n, m in module.named_children() if _has_parameters(m)]
        if not children:
            break
        child, module = children[-1]
        name = f"{name}.{child}"
    return name, module


def find_classifier(model: nn.Module) -> tuple[str, nn.Module]:
    """``(name, module)`` of the final classifier of ``model``, found generically.

    In order: timm's ``get_classifier()``; a submodule named one of :data:`CLASSIFIER_NAMES`
    (the last parameterised layer of it when it is a ``nn.Sequential``); the last ``nn.Linear``.
    """
    modules = dict(model.named_modules())
    names = {id(m): n for n, m in modules.items()}
    get = getattr(model, "get_classifier", None)
    if callable(get):
        module = get()
        if isinstance(module, nn.Module) and id(module) in names and _has_parameters(module):
            return _last_with_parameters(names[id(module)], module)
    for name in CLASSIFIER_NAMES:
        module = modules.get(name)
        if module is not None and _has_parameters(module):
            return _last_with_parameters(name, module)
    linears = [(n, m) for n, m in modules.items() if isinstance(m, nn.Linear)]
    if linears:
        return linears[-1]
    raise InputError(
        f"Cannot find the classifier of {type(model).__name__}: expected a submodule named one of "
        f"{list(CLASSIFIER_NAMES)}, a `get_classifier()` method or an nn.Linear; name a layer instead"
    )


class Tap:
    """One point of a model where activations are read (and may be replaced).

    Args:
        model: any ``nn.Module``.
        layer: a name of ``model.named_modules()`` (the module's *output* is tapped), or ``None``
            for the *input* of the classifier found by :func:`find_classifier`.
    """

    def __init__(self, model: nn.Module, layer: str | None = None) -> None:
        if layer is None:
            self.name, self.module = find_classifier(model)
            self.at_input = True
        else:
            modules = dict(model.named_modules())
            if not isinstance(layer, str) or layer not in modules or layer == "":
                top = [n for n, _ in model.named_children()]
                raise InputError(
                    f"Expected `layer` to name a submodule of {type(model).__name__} (a name of "
                    f"`model.named_modules()`, e.g. one of {top}), but got: {layer!r}"
                )
            self.name, self.module, self.at_input = layer, modules[layer], False

    def __repr__(self) -> str:
        return f"Tap({'input of' if self.at_input else 'output of'} {self.name!r})"

    def _hook(self, store: list, i: int, replace: Tensor | None = None):
        if self.at_input:

            def pre_hook(module, args):
                store[i] = args[0]
                if replace is not None:
                    return (replace.reshape(args[0].shape), *args[1:])

            return self.module.register_forward_pre_hook(pre_hook)

        def hook(module, args, output):
            store[i] = output
            if replace is not None:
                return replace.reshape(output.shape)

        return self.module.register_forward_hook(hook)

    def forward_from(self, model: nn.Module, x: Tensor | None, activation: Tensor) -> Tensor:
        """The model's output when this point's activation is replaced by ``activation``.

        At the classifier input this is just ``classifier(activation)`` (``x`` is not needed);
        elsewhere the model runs on ``x`` with the tapped output replaced (same number of elements).
        """
        if self.at_input:
            return self.module(activation)
        if x is None:
            raise InputError(f"Expected the inputs `x` to run {type(model).__name__} from the output of {self.name!r}")
        store: list = [None]
        handle = self._hook(store, 0, replace=activation)
        try:
            return model(x)
        finally:
            handle.remove()


def read_activations(model: nn.Module, x: Tensor, taps: Sequence[Tap]) -> tuple[Tensor, list[Tensor]]:
    """Run ``model(x)`` once; return its output and the activation at every tap (in the graph: differentiable)."""
    store: list = [None] * len(taps)
    handles = [tap._hook(store, i) for i, tap in enumerate(taps)]
    try:
        out = model(x)
    finally:
        for h in handles:
            h.remove()
    missing = [tap for tap, a in zip(taps, store) if not isinstance(a, Tensor)]
    if missing:
        raise InputError(f"Expected {missing} to see a tensor during `model(x)`, but it was not called with one")
    return out, store


def pool(activation: Tensor) -> Tensor:
    """``(B, C, H, W) -> (B, C)`` spatial mean; ``(B, C)`` as is; other shapes flattened to ``(B, -1)``."""
    if activation.ndim == 4:
        return activation.mean(dim=(2, 3))
    return activation if activation.ndim == 2 else activation.flatten(1)
