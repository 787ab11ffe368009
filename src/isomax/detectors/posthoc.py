r"""Modern post-hoc detectors from `pytorch-ood <https://github.com/kkirchheim/pytorch-ood>`_, behind the isomax API.

Each class here is a thin adapter: ``fit`` builds the pytorch-ood detector on the model (features
read by forward hooks, :mod:`.hooks`) and fits it on in-distribution *training* data only;
``predict`` returns pytorch-ood's outlier score **negated**, so that, as everywhere in isomax,
higher = more in-distribution. The formulas are pytorch-ood's, not re-implemented here.

=========  ===================================  ===================================  ==========  ==============
name       method                               reads                                fit on      head
=========  ===================================  ===================================  ==========  ==============
``knn``    KNN (Sun et al., ICML 2022)          penultimate features (or ``layer``)   ``train``   any
``vim``    ViM (Wang et al., CVPR 2022)         penultimate features + ``W``, ``b``   ``train``   linear only
``react``  ReAct (Sun et al., NeurIPS 2021)     penultimate activations, clipped      ``train``   any
``dice``   DICE (Sun & Li, ECCV 2022)           penultimate features + ``W``, ``b``   ``train``   linear only
``ash``    ASH-S (Djurisic et al., ICLR 2023)   penultimate activations, shaped       nothing     any
``scale``  SCALE (Xu et al., ICLR 2024)         penultimate activations, scaled       nothing     any
``gen``    GEN (Liu et al., CVPR 2023)          logits                                nothing     any
=========  ===================================  ===================================  ==========  ==============

"Penultimate" is the input of the final classifier, found generically
(:func:`~isomax.detectors.hooks.find_classifier`: ``get_classifier()``, ``head``, ``fc``,
``classifier``, ..., the last ``nn.Linear``); for the isomax models it is ``forward_features(x)``,
the pooled features ``(B, num_features)``. ReAct, ASH and SCALE change these activations and run
the classifier on the result (as OpenOOD does on pooled features, seen as ``(B, C, 1, 1)`` maps);
with ``layer="stages.2"`` they change that module's output instead and run the model again from it.
ViM and DICE need the weights ``W`` and bias ``b`` of a linear classifier: with the distance heads
of IsoMax / IsoMax+ they raise a ``ValueError`` (apply them to SoftMax models).
ReAct, ASH, SCALE and DICE score the changed logits with the energy, as their papers do.

Energy, MaxLogit and Entropy need no adapter: they are the plain scores ``energy``,
``max_logit`` and ``es`` of :mod:`isomax.scores` (:class:`~isomax.detectors.ScoreDetector`).
Hyperparameters are pytorch-ood's defaults unless stated; none is tuned on out-distribution data.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from ..errors import InputError
from .base import Detector, _data_norm, _is_image_data, _model_device, iter_batches
from .hooks import Tap, find_classifier, pool, read_activations
from ..sampling import seeded_subset

__all__ = ["PostHocDetector", "KNN", "ViM", "ReAct", "DICE", "ASH", "SCALE", "GEN"]


def _pytorch_ood():
    """``pytorch_ood.detector``, imported when first needed (it is slow to import)."""
    try:
        import pytorch_ood.detector as detector
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "The post-hoc detectors KNN, ViM, ReAct, DICE, ASH, SCALE and GEN come from pytorch-ood: "
            "`pip install 'pytorch-ood>=0.4'` (a dependency of isomax)"
        ) from e
    return detector


class _Remainder:
    """The rest of the model after a tap, as a callable of the (changed) activation: pytorch-ood's ``head``."""

    def __init__(self, model: nn.Module, tap: Tap) -> None:
        self.model, self.tap = model, tap
        self.x: Tensor | None = None  # the inputs of the current batch (needed after a named layer)
        self.shape: torch.Size | None = None  # the tapped activation's own shape

    def __call__(self, maps: Tensor) -> Tensor:
        assert self.shape is not None, "set by PostHocDetector.predict before pytorch-ood calls it"
        return self.tap.forward_from(self.model, self.x, maps.reshape(self.shape))


def _as_maps(activation: Tensor) -> Tensor:
    """``(B, C)`` -> ``(B, C, 1, 1)``; 4-D maps as they are (pytorch-ood's feature-map detectors want 4-D)."""
    if activation.ndim == 2:
        return activation[:, :, None, None]
    if activation.ndim == 4:
        return activation.contiguous()  # channels-last maps (the isomax CNNs) to the layout pytorch-ood views
    raise InputError(f"Expected the tapped activation to be (B, C) or (B, C, H, W), but got {tuple(activation.shape)}")


def _linear_head(model: nn.Module, method: str) -> tuple[Tensor, Tensor]:
    """``(W, b)`` of the model's linear classifier, or a ValueError saying why there is none."""
    name, head = find_classifier(model)
    if not isinstance(head, nn.Linear):
        raise InputError(
            f"Expected a linear classifier (weights W and bias b) for {method}, but the classifier "
            f"`{name}` of {type(model).__name__} is a {type(head).__name__} (distance-based heads such as "
            "IsoMax / IsoMax+ have no W, b): apply it to a SoftMax model"
        )
    bias = head.bias if head.bias is not None else torch.zeros(head.out_features, device=head.weight.device)
    return head.weight.detach().float(), bias.detach().float()


class PostHocDetector(Detector):
    """Base of the pytorch-ood adapters: a detector built in ``fit``, its outlier score negated.

    Subclasses set :attr:`representation` and implement :meth:`_build` (the pytorch-ood detector)
    and :meth:`params`. The ones with ``"train"`` in :attr:`requires` are fitted on activations
    of at most ``max_train`` training samples (a seeded random subset of an ImageData).

    Args:
        model: the classifier (or give it to :meth:`fit`).
        layer: where features are read: ``None`` for the input of the classifier, or a module
            name of ``model.named_modules()`` (detectors that need ``W``, ``b`` do not take it).
        max_train: cap on the training samples used by ``fit``.
        batch_size: samples per pass in ``fit``.
        seed: subsampling seed.
    """

    #: what the pytorch-ood detector consumes: "logits", "features" (B, D) or "feature_maps" (B, C, H, W)
    representation: ClassVar[str] = "features"

    tap_: Tap | None  # None for representation "logits"
    remainder_: _Remainder | None  # for representation "feature_maps"

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        layer: str | None = None,
        max_train: int | None = 20000,
        batch_size: int = 500,
        seed: int = 0,
    ) -> None:
        super().__init__(model)
        self.layer = layer
        self.max_train = max_train
        self.batch_size = batch_size
        self.seed = seed

    def _build(self, model: nn.Module):
        """The pytorch-ood detector for ``model`` (encoder / backbone / model set to None: the adapter feeds it)."""
        raise NotImplementedError

    # -- fitting -------------------------------------------------------------------------------
    def _setup(self, model: nn.Module) -> None:
        self.tap_ = None if self.representation == "logits" else Tap(model, self.layer)
        self.remainder_ = None
        if self.tap_ is not None and self.representation == "feature_maps":
            self.remainder_ = _Remainder(model, self.tap_)
        self.detector_ = self._build(model)
        self._built_for = model

    def _tap(self) -> Tap:
        assert self.tap_ is not None, "set by _setup for the representations other than 'logits'"
        return self.tap_

    def _fit(self, model: nn.Module, *, train, val, mean, std, device, adversarial) -> "PostHocDetector":
        self._setup(model)
        if "train" in self.requires:
            z, y = self._train_activations(model, train, mean=mean, std=std, device=device)
            self._fit_activations(z, y)
        return self

    def _fit_activations(self, z: Tensor, y: Tensor) -> None:
        if self.representation == "feature_maps":
            self.detector_.fit_feature_maps(z, y)
        else:
            self.detector_.fit_features(z, y)

    @torch.no_grad()
    def _train_activations(self, model: nn.Module, data, *, mean=None, std=None, device=None) -> tuple[Tensor, Tensor]:
        """Activations at the tap (pooled for "features", maps for "feature_maps") and labels, on the CPU."""
        device = device or _model_device(model)
        if self.max_train is not None and _is_image_data(data) and len(data) > self.max_train:
            mean, std = _data_norm(data, mean, std)
            data = seeded_subset(data, self.max_train, self.seed)
        zs, ys, n = [], [], 0
        for x, y in iter_batches(data, mean=mean, std=std, device=device, batch_size=self.batch_size):
            if self.max_train is not None and n + len(x) > self.max_train:
                x, y = x[: self.max_train - n], (y[: self.max_train - n] if y is not None else None)
            _, (a,) = read_activations(model, self._check_input(x), [self._tap()])
            a = pool(a) if self.representation == "features" else _as_maps(a)
            zs.append(a.float().cpu())
            ys.append(y.cpu().long() if isinstance(y, Tensor) else torch.zeros(len(x), dtype=torch.long))
            n += len(x)
            if self.max_train is not None and n >= self.max_train:
                break
        if not zs:
            raise InputError(
                f"Expected `train` to hold at least one sample to fit {type(self).__name__}, but it is empty"
            )
        return torch.cat(zs), torch.cat(ys)

    # -- scoring -------------------------------------------------------------------------------
    def is_fitted(self) -> bool:
        return hasattr(self, "detector_") or "train" not in self.requires

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Scores ``(B,)`` of normalised inputs ``x``: minus pytorch-ood's outlier score (higher = in)."""
        self._check_fitted()
        model = self._check_model()
        x = self._check_input(x)
        if getattr(self, "_built_for", None) is not model:  # nothing to fit (ASH, SCALE, GEN): build on first use
            self._setup(model)
        if self.representation == "logits":
            outlier = self.detector_.predict_logits(model(x))
        else:
            _, (a,) = read_activations(model, x, [self._tap()])
            if self.representation == "features":
                outlier = self.detector_.predict_features(pool(a))
            else:
                remainder = self.remainder_
                assert remainder is not None, "set by _setup for representation 'feature_maps'"
                remainder.x, remainder.shape = x, a.shape
                try:
                    outlier = self.detector_.predict_feature_maps(_as_maps(a))
                finally:
                    remainder.x = None
        return -outlier.float()


class KNN(PostHocDetector):
    """KNN (Sun, Ming, Zhu & Li, ICML 2022): distance to the ``k``-th nearest training feature.

    Features are normalised to unit length; the score is minus the distance. Fit: ``train``.
    ``k=50`` is the paper's CIFAR-10 value (with all 50,000 training images; the paper scales
    ``k`` with the fraction of the training set kept).
    """

    name = "knn"
    requires = ("train",)

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        k: int = 50,
        layer: str | None = None,
        max_train: int | None = 20000,
        batch_size: int = 500,
        seed: int = 0,
    ) -> None:
        super().__init__(model, layer=layer, max_train=max_train, batch_size=batch_size, seed=seed)
        self.k = k

    def _build(self, model):
        return _pytorch_ood().KNN(None, k=self.k)

    def params(self) -> dict:
        return {"k": self.k, "layer": self.layer}


class ViM(PostHocDetector):
    """ViM (Wang, Li, Feng & Zhang, CVPR 2022): virtual logit from the residual of the principal subspace.

    Needs a linear classifier (``W``, ``b``); fit: principal subspace and ``alpha`` on ``train``.
    ``d`` is the principal subspace's dimension, default ``D // 2`` of the ``D`` features
    (OpenOOD's CIFAR setting: 256 of ResNet-18's 512).
    """

    name = "vim"
    requires = ("train",)

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        d: int | None = None,
        max_train: int | None = 20000,
        batch_size: int = 500,
        seed: int = 0,
    ) -> None:
        super().__init__(model, max_train=max_train, batch_size=batch_size, seed=seed)
        self.d = d

    def _build(self, model):
        w, b = _linear_head(model, "ViM")
        d = self.d if self.d is not None else max(1, w.shape[1] // 2)
        return _pytorch_ood().ViM(None, d=d, w=w, b=b)

    def params(self) -> dict:
        if not hasattr(self, "detector_"):
            return {"d": self.d}
        return {"d": self.detector_.d, "alpha": self.detector_.alpha}


class ReAct(PostHocDetector):
    """ReAct (Sun, Guo & Li, NeurIPS 2021): clip activations at their ``percentile`` on ``train``, then energy.

    Fit: the clipping threshold, the ``percentile`` (0.9, the paper's 90th) of the training activations.
    """

    name = "react"
    requires = ("train",)
    representation = "feature_maps"

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        percentile: float = 0.9,
        layer: str | None = None,
        max_train: int | None = 20000,
        batch_size: int = 500,
        seed: int = 0,
    ) -> None:
        super().__init__(model, layer=layer, max_train=max_train, batch_size=batch_size, seed=seed)
        self.percentile = percentile

    def _build(self, model):
        return _pytorch_ood().ReAct(None, self.remainder_, percentile=self.percentile)

    def params(self) -> dict:
        threshold = getattr(getattr(self, "detector_", None), "threshold", None)
        return {"percentile": self.percentile, "threshold": threshold, "layer": self.layer}


class DICE(PostHocDetector):
    """DICE (Sun & Li, ECCV 2022): drop the fraction ``p`` of classifier weights that contribute least, then energy.

    Needs a linear classifier; fit: the mean training features, which rank the weights' contributions.
    ``p=0.9`` is the paper's CIFAR sparsity.
    """

    name = "dice"
    requires = ("train",)

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        p: float = 0.9,
        max_train: int | None = 20000,
        batch_size: int = 500,
        seed: int = 0,
    ) -> None:
        super().__init__(model, max_train=max_train, batch_size=batch_size, seed=seed)
        self.p = p

    def _build(self, model):
        w, b = _linear_head(model, "DICE")
        return _pytorch_ood().DICE(None, w=w, b=b, p=self.p)

    def params(self) -> dict:
        return {"p": self.p}


class ASH(PostHocDetector):
    """ASH (Djurisic, Bozanic, Ashok & Liu, ICLR 2023): prune and rescale each sample's activations, then energy.

    Nothing to fit. ``variant`` ``"ash-s"`` (default), ``"ash-p"`` or ``"ash-b"``; ``percentile``:
    the fraction of activations set to zero (pytorch-ood's default 0.65).
    """

    name = "ash"
    representation = "feature_maps"

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        variant: str = "ash-s",
        percentile: float = 0.65,
        layer: str | None = None,
    ) -> None:
        super().__init__(model, layer=layer)
        self.variant = variant
        self.percentile = percentile

    def _build(self, model):
        detector = _pytorch_ood().ASH
        if self.variant not in detector.variants:
            raise InputError(f"Expected `variant` to be one of {list(detector.variants)}, but got: {self.variant!r}")
        return detector(None, self.remainder_, variant=self.variant, percentile=self.percentile)

    def params(self) -> dict:
        return {"variant": self.variant, "percentile": self.percentile, "layer": self.layer}


class SCALE(PostHocDetector):
    """SCALE (Xu, Lian, Zhang, Wang & Lin, ICLR 2024): rescale each sample's activations (no pruning), then energy.

    Nothing to fit. ``percentile`` sets the top activations that define the scale (pytorch-ood's default 0.65).
    """

    name = "scale"
    representation = "feature_maps"

    def __init__(self, model: nn.Module | None = None, *, percentile: float = 0.65, layer: str | None = None) -> None:
        super().__init__(model, layer=layer)
        self.percentile = percentile

    def _build(self, model):
        return _pytorch_ood().SCALE(None, self.remainder_, percentile=self.percentile)

    def params(self) -> dict:
        return {"percentile": self.percentile, "layer": self.layer}


class GEN(PostHocDetector):
    """GEN (Liu, Lochman & Zach, CVPR 2023): generalised entropy of the softmax, ``gamma=0.1`` as the paper.

    Nothing to fit; ``M`` (top classes summed over) defaults to all classes.
    """

    name = "gen"
    representation = "logits"

    def __init__(self, model: nn.Module | None = None, *, gamma: float = 0.1, M: int | None = None) -> None:
        super().__init__(model)
        self.gamma = gamma
        self.M = M

    def _build(self, model):
        return _pytorch_ood().GEN(None, gamma=self.gamma, M=self.M)

    def params(self) -> dict:
        return {"gamma": self.gamma, "M": self.M}
