"""Models from the libraries users have: ``timm:NAME`` and ``torchvision:NAME``.

    >>> model = create_model("timm:resnet18", num_classes=10, head="isomaxplus", in_channels=3)
    >>> model = create_model("torchvision:resnet18", num_classes=10, head="isomax")

The library builds the model with random weights (never a download: ``pretrained=False`` /
``weights=None``) and the run's number of classes (and, for timm, input channels); then
:func:`isomax.convert` puts the run's head in place of the classifier. The result is a
:class:`LibraryModel`: the library's own model under ``net`` (its state-dict keys are those of the
library's model, prefixed ``net.``), with what the rest of isomax reads from a model (``head``,
``num_classes``, ``head_kind``, ``spec``). The spec string is the model name a run records, so
every later command rebuilds the same model.

Torchvision's ``inception_v3`` and ``googlenet`` are built without their training-time auxiliary
heads (``aux_logits=False``): one output, one loss. Distilled timm models (two classifier heads)
are refused: train their plain variant, or convert them with :func:`isomax.convert` in your own loop.
"""

from __future__ import annotations

import inspect

from torch import Tensor, nn
from ..errors import InputError
from ..registry import BASELINE_LOSS

__all__ = [
    "LIBRARIES",
    "LibraryModel",
    "create_library_model",
    "is_library_spec",
    "check_library_spec",
    "library_data_config",
]

LIBRARIES = ("timm", "torchvision")


def is_library_spec(name: str) -> bool:
    """True for ``"timm:NAME"`` / ``"torchvision:NAME"`` (whether or not NAME exists)."""
    return isinstance(name, str) and name.partition(":")[0] in LIBRARIES and ":" in name


def _split(spec: str) -> tuple[str, str]:
    library, _, name = spec.partition(":")
    if library not in LIBRARIES or not name:
        raise InputError(f"Expected a model spec 'timm:NAME' or 'torchvision:NAME', but got: {spec!r}")
    return library, name


def _import_timm():
    try:
        import timm
    except ImportError as err:
        raise ImportError("timm models need timm: pip install 'isomax[timm]'") from err
    return timm


def check_library_spec(spec: str) -> None:
    """Raise a one-line ValueError if the library does not know the model (nothing is built)."""
    library, name = _split(spec)
    if library == "timm":
        if not _import_timm().is_model(name):
            raise InputError(
                f"Expected --model {spec!r} to name a timm model, but timm has no {name!r} "
                "(see timm.list_models('*pattern*'))"
            )
        return
    import torchvision.models as tvm

    known = tvm.list_models(module=tvm)  # classification models only
    if name not in known:
        close = [k for k in known if name.split("_")[0] in k][:8]
        raise InputError(
            f"Expected --model {spec!r} to name a torchvision classification model, but got {name!r}"
            + (f"; similar: {', '.join(close)}" if close else "; see torchvision.models.list_models()")
        )


class LibraryModel(nn.Module):
    """A timm / torchvision classifier whose classifier was replaced by an isomax head.

    Attributes:
        net: the library's model (converted in place).
        spec: ``"timm:NAME"`` or ``"torchvision:NAME"``.
        head_names: dotted names (in ``net``) of the head(s) :func:`isomax.convert` put in.
        classifier_names: dotted names (in ``net``) of the layers they replaced: the state-dict
            prefixes a pretrained checkpoint's classifier has (dropped by ``load_pretrained``).
        num_classes, head_kind: as for the isomax models.
    """

    def __init__(
        self, spec: str, net: nn.Module, head_names: list[str], classifier_names: list[str], head_kind: str
    ) -> None:
        super().__init__()
        self.spec = spec
        self.net = net
        self.head_names = list(head_names)
        self.classifier_names = list(classifier_names)
        self.head_kind = head_kind
        self.num_classes = int(getattr(self.head, "out_features"))

    @property
    def head(self) -> nn.Module:
        """The head (the one isomax head for a model built by :func:`create_library_model`)."""
        return self.net.get_submodule(self.head_names[0])

    def get_classifier(self) -> nn.Module:
        """timm's name for the head (what :func:`isomax.detectors.hooks.find_classifier` looks for)."""
        return self.head

    def head_modules(self) -> list[nn.Module]:
        return [self.net.get_submodule(n) for n in self.head_names]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def extra_repr(self) -> str:
        return f"spec={self.spec!r}, num_classes={self.num_classes}, head={self.head_kind!r}"


def _build(spec: str, num_classes: int, in_channels: int | None) -> nn.Module:
    library, name = _split(spec)
    check_library_spec(spec)
    if library == "timm":
        extra = {} if in_channels is None else {"in_chans": in_channels}
        return _import_timm().create_model(name, pretrained=False, num_classes=num_classes, **extra)
    import torchvision.models as tvm

    if in_channels not in (None, 3):
        raise InputError(
            f"torchvision models take 3-channel images, but the data has {in_channels} channel(s); "
            f"use an RGB dataset or a timm model (timm:NAME builds with in_chans={in_channels})"
        )
    builder = tvm.get_model_builder(name)
    kwargs: dict = {"weights": None, "num_classes": num_classes}
    params = inspect.signature(builder).parameters
    if name in ("inception_v3", "googlenet"):  # training-time auxiliary heads off: one output, one loss
        kwargs["aux_logits"] = False
        kwargs["init_weights"] = True
    return builder(**{k: v for k, v in kwargs.items() if k in params or "kwargs" in params})


def create_library_model(
    spec: str, num_classes: int = 10, head: str = BASELINE_LOSS, in_channels: int | None = None, **kwargs
) -> LibraryModel:
    """Build ``spec`` (``"timm:NAME"`` / ``"torchvision:NAME"``) with random weights and the head ``head``.

    Raises ValueError for an unknown name, channels torchvision cannot take, a model with several
    classifier heads, or extra keyword arguments (the spec string must be enough to rebuild it).
    """
    from ..convert import classifier_names, classifier_path, convert
    from ..heads import head_kind

    if kwargs:
        raise InputError(
            f"library models take no extra arguments (the run records only the spec {spec!r}), "
            f"but got: {sorted(kwargs)}"
        )
    kind = head_kind(head)
    net = _build(spec, num_classes, in_channels)
    names = classifier_names(net)
    if len(names) > 1:
        raise InputError(
            f"{spec} has {len(names)} classifier heads ({', '.join(names)}: a distilled model); "
            "training it needs its teacher: use the model's plain variant, or isomax.convert() it in "
            "your own training loop"
        )
    paths = [classifier_path(net, n) for n in names]
    convert(net, head=kind, module=names)
    return LibraryModel(spec, net, paths, names, kind)


def pretrained_img_size(spec: str) -> int | None:
    """The input side of a timm model's pretrained configuration (``resnet18``: 224), read from timm's
    registry without building the model or downloading anything; None for other models."""
    if not is_library_spec(spec) or _split(spec)[0] != "timm":
        return None
    cfg = _import_timm().models.get_pretrained_cfg(_split(spec)[1])
    size = getattr(cfg, "input_size", None)
    return int(size[-1]) if size else None


def library_data_config(model: nn.Module) -> dict | None:
    """``{"input_size": (C, H, W), "mean": (...), "std": (...), "interpolation": str}`` of a timm model's
    pretrained configuration (read from the model, never downloaded); None for other models."""
    net = getattr(model, "net", model)
    cfg = getattr(net, "pretrained_cfg", None)
    if not isinstance(cfg, dict) or not cfg.get("mean") or not cfg.get("std"):
        return None
    out: dict[str, tuple | str] = {k: tuple(cfg[k]) for k in ("input_size", "mean", "std") if cfg.get(k)}
    if cfg.get("interpolation"):
        out["interpolation"] = str(cfg["interpolation"])
    return out
