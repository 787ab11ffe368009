"""The model base class and the registry behind :func:`create_model`.

Every backbone of the library is an :class:`IsoMaxModel`: a feature extractor that ends in a
global average pool producing ``num_features`` values, followed by a swappable ``head`` built by
:func:`isomax.heads.make_head` (``"softmax"``: the usual ``nn.Linear``; ``"isomax"`` and
``"isomaxplus"``: the distance-based heads of the IsoMax papers). Swapping the head is the whole
point of the method: the backbone, the optimiser and the training loop stay the same.

The layout follows timm: ``forward = forward_head(forward_features(x))``, models are registered by
small constructor functions and created by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Literal, TypeVar, overload

import torch
from torch import Tensor, nn

from isomax.heads import HEADS as HEAD_KINDS  # the head kinds; names live in one place, isomax.heads
from isomax.heads import head_kind
from ..errors import InputError
from ..registry import BASELINE_LOSS

if TYPE_CHECKING:
    from .library import LibraryModel

__all__ = ["IsoMaxModel", "check_model_name", "create_model", "list_models", "register_model"]


def _canonical_head_kind(head: str) -> str:
    """The head kind (one of ``HEAD_KINDS``) for a head or loss name: ``"isomax+"`` -> ``"isomaxplus"``,
    ``"logitnorm"`` -> ``"softmax"`` (see :func:`isomax.heads.head_kind`)."""
    try:
        return head_kind(head)
    except ValueError:
        raise InputError(f"Expected argument `head` to be one of {list(HEAD_KINDS)}, but got: {head!r}") from None


def _validate_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"Expected argument `{name}` to be a positive integer, but got: {value!r}")


class IsoMaxModel(nn.Module):
    """Base class of the backbones: features, then a swappable classification head.

    Subclasses build their layers, set ``num_features`` and ``input_size``, initialise their own
    weights, and call :meth:`reset_head` last (so that a backbone's weight initialisation never
    touches the head, whose initialisation is part of the loss: IsoMax prototypes start at zero).

    Attributes:
        num_features: size of the pooled feature vector ``f(x)`` fed to the head.
        num_classes: number of outputs of the head.
        head: the classification head, ``(B, num_features) -> (B, num_classes)``.
        head_kind: ``"softmax"``, ``"isomax"`` or ``"isomaxplus"``.
        input_size: the ``(C, H, W)`` input the model was designed for.
        spec: the name :func:`create_model` built it from (what a run records to rebuild it).
    """

    num_features: int
    num_classes: int
    head: nn.Module
    head_kind: str
    input_size: tuple[int, int, int]
    spec: str

    def forward_features(self, x: Tensor) -> Tensor:
        """Pooled features ``f(x)``, the input of the head: ``(B, C, H, W) -> (B, num_features)``."""
        raise NotImplementedError

    def feature_list(self, x: Tensor) -> list[Tensor]:
        """Intermediate feature maps, for the Mahalanobis detector (Lee et al., 2018).

        Returns the output of the stem and of each stage, as in the reference code of Lee et al.
        (``deep_Mahalanobis_detector``), each ``(B, C_i, H_i, W_i)``. The last map is the final
        pre-pool map: its spatial mean equals :meth:`forward_features`. Maps may be stored
        channels-last; use ``reshape`` / ``flatten``, not ``view``, to flatten them whole.
        """
        raise NotImplementedError

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor:
        """Head logits ``(B, num_classes)``; with ``pre_logits=True`` return ``features`` as is."""
        return features if pre_logits else self.head(features)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, num_classes)``. For IsoMax heads these are negative distances."""
        return self.forward_head(self.forward_features(x))

    def reset_head(self, head: str, num_classes: int | None = None) -> None:
        """Replace the head by a freshly initialised one of kind ``head``.

        Args:
            head: ``"softmax"``, ``"isomax"`` or ``"isomaxplus"`` (or an alias or loss name accepted
                by :func:`isomax.heads.head_kind`, e.g. ``"isomax+"``, ``"logitnorm"``; the head
                kind is stored).
            num_classes: number of classes; keeps the current number when ``None``.
        """
        from isomax.heads import make_head  # imported late: the heads module is independent

        head = _canonical_head_kind(head)
        if num_classes is None:
            num_classes = self.num_classes
        _validate_positive_int("num_classes", num_classes)
        new_head = make_head(head, self.num_features, num_classes)
        # Follow the backbone onto its device and dtype (the head may be reset after `.to()`).
        reference = next((p for p in self.parameters() if p.is_floating_point()), None)
        if reference is not None:
            new_head = new_head.to(device=reference.device, dtype=reference.dtype)
        self.head = new_head
        self.head_kind = head
        self.num_classes = num_classes

    def reset_classifier(self, num_classes: int, head: str | None = None) -> None:
        """timm-style alias of :meth:`reset_head` (keeps the head kind unless ``head`` is given)."""
        self.reset_head(self.head_kind if head is None else head, num_classes)

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}, num_classes={self.num_classes}, head={self.head_kind!r}"


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------

_F = TypeVar("_F", bound=Callable[..., IsoMaxModel])
_MODEL_ENTRYPOINTS: dict[str, Callable[..., IsoMaxModel]] = {}


@overload
def register_model(fn: _F) -> _F: ...
@overload
def register_model(fn: None = None, *, name: str | None = None) -> Callable[[_F], _F]: ...
def register_model(fn=None, *, name=None):
    """Register a model constructor under ``name`` (default: the function name, ``_`` -> ``-``).

    Use as ``@register_model`` or ``@register_model(name="my-net")``. The constructor must accept
    ``num_classes``, ``head`` and ``in_channels`` keyword arguments and return an
    :class:`IsoMaxModel`.
    """

    def decorator(f: _F) -> _F:
        model_name = name if name is not None else f.__name__.replace("_", "-")
        if model_name in _MODEL_ENTRYPOINTS:
            raise InputError(f"A model named {model_name!r} is already registered")
        _MODEL_ENTRYPOINTS[model_name] = f
        return f

    return decorator(fn) if fn is not None else decorator


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return sorted(_MODEL_ENTRYPOINTS)


def create_model(
    name: str,
    num_classes: int = 10,
    head: str = BASELINE_LOSS,
    in_channels: int | None = None,
    **kwargs,
) -> IsoMaxModel | LibraryModel:
    """Create a registered model by name, or a timm / torchvision model by spec.

    Args:
        name: one of :func:`list_models`, e.g. ``"densenet-bc-100"``; or ``"timm:NAME"`` /
            ``"torchvision:NAME"`` (:mod:`isomax.models.library`: the library's model with random
            weights, its classifier converted to ``head``).
        num_classes: number of classes of the head.
        head: ``"softmax"`` (baseline), ``"isomax"`` or ``"isomaxplus"``.
        in_channels: input channels; ``None`` keeps the model's default (3 for the CIFAR models,
            1 for ``cnn-28``).
        **kwargs: passed to the model's constructor.

    Example:
        >>> import torch
        >>> from isomax.models import create_model
        >>> model = create_model("cnn-28", num_classes=10, head="isomaxplus")
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    from .library import create_library_model, is_library_spec

    if is_library_spec(name):
        return create_library_model(
            name, num_classes=num_classes, head=_canonical_head_kind(head), in_channels=in_channels, **kwargs
        )
    check_model_name(name)
    head = _canonical_head_kind(head)
    _validate_positive_int("num_classes", num_classes)
    if in_channels is not None:
        _validate_positive_int("in_channels", in_channels)
        kwargs["in_channels"] = in_channels
    model = _MODEL_ENTRYPOINTS[name](num_classes=num_classes, head=head, **kwargs)
    model.spec = name  # what a run records to rebuild it (isomax.deploy.save_run reads it)
    return model


def check_model_name(name: str, argument: str = "name") -> None:
    """Raise a one-line ValueError (naming ``argument``) unless ``name`` is a registered model or a known
    ``timm:`` / ``torchvision:`` model (nothing is built)."""
    from .library import check_library_spec, is_library_spec

    if is_library_spec(name):
        check_library_spec(name)
    elif name not in _MODEL_ENTRYPOINTS:
        raise InputError(
            f"Expected argument `{argument}` to be one of {list_models()}, or 'timm:NAME' / "
            f"'torchvision:NAME', but got: {name!r}"
        )


def init_backbone_weights(module: nn.Module, mode: Literal["fan_in", "fan_out"] = "fan_out") -> None:
    """Standard initialisation: Kaiming-normal (ReLU gain) convs, BatchNorm to identity.

    ``mode="fan_out"`` is the DenseNet/ResNet (torchvision) convention, ``"fan_in"`` the one of
    akamaster's CIFAR ResNets. Call it before :meth:`IsoMaxModel.reset_head`: heads keep their
    own initialisation.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def global_avg_pool(x: Tensor) -> Tensor:
    """``(B, C, H, W) -> (B, C)`` spatial mean."""
    return torch.mean(x, dim=(2, 3))
