"""Distance-based classification heads: drop-in replacements for the last ``nn.Linear``.

The 2019 paper (Macedo et al., "Entropic Out-of-Distribution Detection", Eq. 4-5) frames
IsoMax as one member of a family of *distance-based* losses::

    probabilities = softmax(-h(d(f, p_j)))        (inference, Eq. 4)
    loss          = -log softmax(-g(d(f, p_j)))_y  (training,  Eq. 5)

where ``f`` is the feature vector produced by the backbone, ``p_j`` the learnable prototype of
class ``j`` and ``d`` a distance. A head computes the *logits* ``-h(d) / temperature``; the loss
(:class:`isomax.IsoMaxLoss`) applies ``g`` to them, by default multiplication by the entropic
scale, so that ``g(d) = E_s * h(d)``.

* :class:`IsoMaxHead`: ``d`` = Euclidean distance, ``h(x) = x``, prototypes initialised to zero.
* :class:`IsoMaxPlusHead`: ``d`` = ``|d_s|`` times the Euclidean distance between the
  L2-normalised feature and prototype ("isometric distance", 2021 paper, Eq. 2-4),
  prototypes ~ N(0, 1), ``d_s`` initialised to 1.
* :class:`DisMaxHead`: DisMax's "enhanced logits" (Macedo et al. 2022, arXiv 2205.05874):
  ``-(d_j + mean_k d_k)``, ``d_j`` the isometric distance of IsoMax+ divided by ``sqrt(2)``.
* :class:`DistanceHead`: any distance (a name in :data:`DISTANCES` or a callable) and any ``h``.

Distances are computed in float32 (also under ``torch.autocast``) with the matrix-product
expansion ``|f|^2 + |p|^2 - 2 f.p`` (one GEMM, as fast as ``nn.Linear``). That expansion has an
absolute error of about ``eps * (|f|^2 + |p|^2)`` on the squared distance, which ruins the
*relative* precision of small distances by cancellation. So, for every row, the distance to its
nearest prototype (by the GEMM estimate) is then recomputed exactly as ``|f - p|^2`` from the
vectors themselves (``argmin`` + row gather, O(B F), no host sync, no data-dependent branch: it
always runs, so the code compiles and exports as one graph).

Guarantee (tested against float64 ``torch.cdist``): the smallest distance of each row (the one
that decides the prediction and the minimum distance score) has full relative precision, down to
exactly 0 for a feature equal to a prototype (for IsoMax+, down to the precision of the normalised
vectors themselves, about 1e-7 absolute in float32); every other distance has an absolute error
below ``10 * eps * (|f| + |p|)`` (about 1.2e-6 in float32, 2.2e-15 in float64). A second distance
of a row can only be small if two prototypes are that close to each other (triangle inequality),
which training does not produce. "Nearest" is decided on the GEMM estimate: it can differ from the
true order only between distances that agree to within that absolute error.
The square root has a zero (sub)gradient at distance zero instead of ``inf``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import InputError
from ._validation import all_finite, check_features, check_finite, check_positive_finite, value_checks_enabled
from .registry import DEFAULT_LOSS, LiveMapping, LiveTuple, canonical_loss_name, get_loss, head_kinds, list_losses

__all__ = [
    "DISTANCES",
    "DistanceHead",
    "IsoMaxHead",
    "IsoMaxPlusHead",
    "DisMaxHead",
    "HEADS",
    "LOSSES",
    "LOSS_HEADS",
    "DEFAULT_HEAD",
    "canonical_head_name",
    "head_kind",
    "make_head",
    "euclidean_distances",
    "squared_euclidean_distances",
]

DistanceFn = Callable[[Tensor, Tensor], Tensor]


class _EuclideanDistance(torch.autograd.Function):
    """``-|scale| * |f_i - p_j| / temperature`` (or between L2-normalised vectors), hand-written backward.

    Written by hand rather than left to autograd because autograd records ~20 small kernels for
    normalise + GEMM expansion + clamp + sqrt + scaling and as many in the backward; here the
    forward is one GEMM plus a few elementwise passes and the backward two GEMMs, as for
    ``nn.Linear`` (see ``benchmarks/bench_core.py``). ``scale`` (``d_s``) and ``temperature`` are
    folded in (their gradients too) to spare the autograd nodes of the scalar arithmetic; with both
    None the plain distances are returned. No ``.item()``, no branch on tensor values: the same
    kernels run for every input, so ``torch.compile(fullgraph=True)`` and ``torch.export`` see one graph.
    """

    @staticmethod
    def forward(
        ctx, features: Tensor, prototypes: Tensor, normalized: bool, scale: Tensor | None, temperature: Tensor | None
    ) -> Tensor:
        if normalized:
            # x / max(|x|, 1e-12), exactly as F.normalize; |x^|^2 = (|x| / max(|x|, 1e-12))^2 is 1,
            # or less for |x| < 1e-12 (0 for an all-zero vector).
            f_len = torch.linalg.vector_norm(features, dim=1, keepdim=True)  # (B, 1)
            p_len = torch.linalg.vector_norm(prototypes, dim=1, keepdim=True)  # (C, 1)
            f_norm, p_norm = f_len.clamp_min(1e-12), p_len.clamp_min(1e-12)
            f, p = features / f_norm, prototypes / p_norm
            f_sq, p_sq = (f_len / f_norm).square(), (p_len / p_norm).square().t()  # (B, 1), (1, C)
        else:
            f, p, f_norm, p_norm = features, prototypes, None, None
            # |x|^2 computed as the exact recomputation below computes it, so that equal distances
            # come out bit-equal (e.g. all logits of an IsoMax head at initialisation)
            f_sq = torch.linalg.vector_norm(f, dim=1, keepdim=True).square()  # (B, 1)
            p_sq = torch.linalg.vector_norm(p, dim=1).square().unsqueeze(0)  # (1, C)
        d = torch.addmm(f_sq, f, p.t(), alpha=-2.0).add_(p_sq).clamp_min_(0.0)  # (B, C), GEMM estimate of d^2
        # Exact |f_i - p_j|^2 for the nearest prototype of each row (the small distance, where the
        # GEMM estimate loses its relative precision). F.embedding is the row gather (3-7x faster on
        # the CPU than p[nearest], benchmarks/bench_head_ops.py); one (B, F) temporary, modified in
        # place, since fresh large CPU buffers can cost more than the arithmetic.
        nearest = d.argmin(1, keepdim=True)  # (B, 1)
        diff = F.embedding(nearest.squeeze(1), p).sub_(f)  # (B, F): p_j - f_i
        d = d.scatter_(1, nearest, torch.linalg.vector_norm(diff, dim=1, keepdim=True).square_()).sqrt_()  # (B, C)
        ctx.normalized = normalized
        ctx.scaled = scale is not None or temperature is not None
        coef = _coef(scale, temperature) if ctx.scaled else None  # d logits / d distance
        # For the backward: where the normalisation is the plain division (|x| < 1e-12) instead of a projection.
        f_small = f_len < 1e-12 if normalized else None
        p_small = p_len < 1e-12 if normalized else None
        ctx.save_for_backward(f, p, d, f_norm, p_norm, f_small, p_small, scale, temperature, coef)
        return d * coef if coef is not None else d

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        if torch.is_grad_enabled():  # create_graph=True: this backward is not differentiable, fail loudly
            raise RuntimeError("isomax distance heads do not support double backward (create_graph=True)")
        f, p, d, f_norm, p_norm, f_small, p_small, scale, temperature, coef = ctx.saved_tensors
        grad_scale = grad_temperature = None
        if ctx.needs_input_grad[3] or ctx.needs_input_grad[4]:
            grad_d_sum = torch.linalg.vecdot(grad_out.reshape(-1), d.reshape(-1))  # sum_ij grad_ij * d_ij
            if ctx.needs_input_grad[3]:  # logits = -|s| d / T
                dcoef = torch.sign(scale).neg_()  # d(-|s| / T) / ds = -sign(s) / T
                dcoef = dcoef.div_(temperature) if temperature is not None else dcoef
                grad_scale = (grad_d_sum * dcoef).reshape(scale.shape)
            if ctx.needs_input_grad[4]:
                grad_temperature = (-grad_d_sum * coef / temperature).reshape(temperature.shape)
        # g = dL/dd / d, with a zero (sub)gradient where d == 0
        g = torch.where(d > 0, grad_out / d, 0.0)
        if coef is not None:
            g = g.mul_(coef)
        # dd_ij/df_i = (f_i - p_j) / d_ij, dd_ij/dp_j = (p_j - f_i) / d_ij
        gp, gf = g @ p, g.t() @ f  # (B, F), (C, F)
        g_rows, g_cols = g.sum(1, keepdim=True), g.sum(0).unsqueeze(1)  # (B, 1), (C, 1)
        if ctx.normalized:
            # Backward of x / max(|x|, 1e-12) applied to v = x^ * s - w (s = g_rows, w = gp): for |x| >= 1e-12
            # remove the radial component, v - x^ (x^.v) = x^ (x^.w) - w as |x^| = 1; below, a plain
            # division (v itself); then divide by max(|x|, 1e-12).
            g_rows = torch.where(f_small, g_rows, torch.linalg.vecdot(f, gp).unsqueeze(1))
            g_cols = torch.where(p_small, g_cols, torch.linalg.vecdot(p, gf).unsqueeze(1))
        grad_f = gp.neg_().addcmul_(f, g_rows)  # in place: no fresh (B, F) buffer
        grad_p = gf.neg_().addcmul_(p, g_cols)
        if ctx.normalized:
            grad_f, grad_p = grad_f.div_(f_norm), grad_p.div_(p_norm)
        return grad_f, grad_p, None, grad_scale, grad_temperature


def _coef(scale: Tensor | None, temperature: Tensor | None) -> Tensor:
    """``-|scale| / temperature`` (either may be None, not both)."""
    if scale is None:
        assert temperature is not None  # the caller passes at least one
        return torch.reciprocal(temperature).neg_()
    coef = -scale.abs()
    return coef / temperature if temperature is not None else coef


def euclidean_distances(features: Tensor, prototypes: Tensor, *, normalized: bool = False) -> Tensor:
    """Euclidean (non-squared) distances ``|f_i - p_j|``, shape (batch, num_classes).

    One matrix product for all pairs; each row's smallest distance is recomputed exactly
    (see the module docstring for the precision guaranteed). With ``normalized=True``, distances between
    ``f_i/|f_i|`` and ``p_j/|p_j|`` (an all-zero vector normalises to zero, as with ``F.normalize``).
    """
    return _EuclideanDistance.apply(features, prototypes, normalized, None, None)


def squared_euclidean_distances(features: Tensor, prototypes: Tensor) -> Tensor:
    """Squared Euclidean distances ``|f_i - p_j|^2``, shape (batch, num_classes)."""
    return euclidean_distances(features, prototypes).pow(2)


def _cosine_distances(features: Tensor, prototypes: Tensor) -> Tensor:
    return 1.0 - F.normalize(features, dim=1) @ F.normalize(prototypes, dim=1).t()


def _manhattan_distances(features: Tensor, prototypes: Tensor) -> Tensor:
    return torch.cdist(features, prototypes, p=1.0)


DISTANCES: dict[str, DistanceFn] = {
    "euclidean": euclidean_distances,
    "squared_euclidean": squared_euclidean_distances,
    "cosine": _cosine_distances,
    "manhattan": _manhattan_distances,
}


class DistanceHead(nn.Module):
    """General distance-based head: ``logits = -h(d(f, p_j)) / temperature``.

    Has the habits of ``nn.Linear``: ``device=``/``dtype=`` factory arguments, ``in_features`` /
    ``out_features`` (aliases of ``num_features`` / ``num_classes``), ``reset_parameters()``.

    Args:
        num_features: size of the feature vector ``f`` (input of the replaced ``nn.Linear``).
        num_classes: number of classes (one prototype each).
        distance: a name in :data:`DISTANCES` or a callable ``(features (B, F), prototypes (C, F))
            -> distances (B, C)``.
        h: monotone function applied to the distances (Eq. 4 of the 2019 paper); identity if None.
        normalize: L2-normalise features and prototypes before the distance (IsoMax+).
        distance_scale: if True, multiply distances by ``|d_s|``, a learnable scalar initialised
            to 1 (IsoMax+).
        init: prototype initialisation, ``"zeros"`` (IsoMax) or ``"normal"`` (N(0, 1), IsoMax+).
        temperature: logits are divided by it (finite, > 0; checked here and on assignment).
        validate_args: shapes and dtype of the features are always checked (free: metadata only).
            With True (default) the *values* are checked too where that costs no host-device
            sync: in eager mode on CPU tensors, one reduction over the logits detects NaN/inf
            features and distances that overflow. Skipped under ``torch.compile`` /
            ``torch.export`` and on accelerators (see :mod:`isomax._validation`).
        device, dtype: where and in which floating type to create the parameters, as ``nn.Linear``.

    Attributes:
        prototypes: ``nn.Parameter`` of shape (num_classes, num_features).
        distance_scale: ``nn.Parameter`` of shape (1,) when enabled (as in the papers' code), else None.
        temperature: buffer (saved in the ``state_dict``), 1 by default; logits are divided by it.
            Set it after training, e.g. for calibration (``head.temperature = 1.5``); it is not
            meant to change during training.
    """

    temperature: Tensor  # a buffer (declared for the type checker: nn.Module.__getattr__ is untyped)
    distance_scale: nn.Parameter | None

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        distance: Union[str, DistanceFn] = "euclidean",
        h: Callable[[Tensor], Tensor] | None = None,
        *,
        normalize: bool = False,
        distance_scale: bool = False,
        init: str = "zeros",
        temperature: float = 1.0,
        validate_args: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for arg, value in (("num_features", num_features), ("num_classes", num_classes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"Expected `{arg}` to be a positive int, but got: {value!r}")
        if isinstance(distance, str):
            if distance not in DISTANCES:
                raise InputError(
                    f"Expected `distance` to be one of {sorted(DISTANCES)} or a callable, but got: {distance!r}"
                )
            self._distance: DistanceFn = DISTANCES[distance]
        elif callable(distance):
            self._distance = distance
        else:
            raise InputError(f"Expected `distance` to be a name or a callable, but got: {distance!r}")
        if init not in ("zeros", "normal"):
            raise InputError(f"Expected `init` to be 'zeros' or 'normal', but got: {init!r}")
        if dtype is not None and not dtype.is_floating_point:
            raise InputError(f"Expected `dtype` to be a floating-point dtype, but got: {dtype}")
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.num_classes = num_classes
        self.h = h
        self.normalize = normalize
        self.validate_args = validate_args
        self.init = init
        self.prototypes = nn.Parameter(torch.empty(num_classes, num_features, **factory))
        # shape (1,) as in the papers' code, so its checkpoints load
        self.distance_scale = nn.Parameter(torch.empty(1, **factory)) if distance_scale else None
        self.register_buffer("temperature", torch.tensor(check_positive_finite("temperature", temperature), **factory))
        self.reset_parameters()

    # nn.Linear's names for the two sizes
    @property
    def in_features(self) -> int:
        return self.num_features

    @property
    def out_features(self) -> int:
        return self.num_classes

    def __setattr__(self, name: str, value) -> None:
        if name == "temperature" and "temperature" in self.__dict__.get("_buffers", {}):
            # Checked once here, not at every forward: finite and > 0. A number is accepted and
            # stored in the buffer's device and dtype.
            check_positive_finite("temperature", value)
            old = self.temperature
            value = torch.as_tensor(value, dtype=old.dtype, device=old.device).detach().reshape(old.shape).clone()
        super().__setattr__(name, value)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints of the papers' code have no temperature buffer (it was a plain attribute).
        key = prefix + "temperature"
        if key in state_dict:
            check_positive_finite("temperature", state_dict[key])
        else:
            state_dict[key] = self.temperature.detach().clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def reset_parameters(self) -> None:
        """Re-initialise the prototypes (and ``d_s``) as at construction; the temperature is kept."""
        if self.init == "zeros":
            nn.init.zeros_(self.prototypes)
        else:
            nn.init.normal_(self.prototypes, mean=0.0, std=1.0)
        if self.distance_scale is not None:
            nn.init.constant_(self.distance_scale, 1.0)

    def distances(self, features: Tensor) -> Tensor:
        """Distances (B, C) between features and prototypes, *without* ``|d_s|`` (float32 or float64)."""
        return self._forward(features, scaled=False)

    def forward(self, features: Tensor) -> Tensor:
        return self._forward(features, scaled=True)

    def _forward(self, features: Tensor, scaled: bool) -> Tensor:
        check_features("features", features, self.num_features)  # static: shape and dtype
        if torch.is_autocast_enabled(features.device.type):  # distances in float32 under mixed precision
            with torch.autocast(device_type=features.device.type, enabled=False):
                return self._forward(features.float(), scaled)
        out = self._logits(features, scaled)
        if self.validate_args and value_checks_enabled(out):
            t = float(self.temperature)  # a scalar read: catches an in-place `head.temperature.fill_(-1)`
            if not (math.isfinite(t) and t > 0):
                raise InputError(
                    f"Expected the head's `temperature` to be finite and > 0, but it is {t!r} (changed "
                    "in place?); set it with `head.temperature = value`, which is checked"
                )
            # One reduction over the (B, C) result instead of a pass over the features; the cause
            # is looked for only when something is wrong.
            if not all_finite(out):
                check_finite("features", features)
                for name, value in (("prototypes", self.prototypes), ("distance_scale", self.distance_scale)):
                    if value is not None and not all_finite(value):  # not the features' fault
                        raise InputError(
                            f"Expected the head's `{name}` to be finite, but it holds NaN/inf (a diverged "
                            "training step or a corrupted state_dict); retrain or reload them"
                        )
                raise InputError(
                    "Expected `features` small enough for the distances to fit in "
                    f"{out.dtype} (largest |feature| {float(features.abs().max()):.3g}), but got "
                    "non-finite distances (overflow): scale the features down or use float64"
                )
        return out

    def _logits(self, features: Tensor, scaled: bool) -> Tensor:
        dtype = torch.promote_types(torch.promote_types(features.dtype, self.prototypes.dtype), torch.float32)
        f, p = features.to(dtype), self.prototypes.to(dtype)  # float32 at least, float64 kept
        fused = self._distance is euclidean_distances and (not scaled or self.h is None)
        if fused:  # one autograd node for distances, |d_s|, temperature and sign
            if not scaled:
                return _EuclideanDistance.apply(f, p, self.normalize, None, None)
            return _EuclideanDistance.apply(f, p, self.normalize, self.distance_scale, self.temperature)
        if self.normalize:
            f, p = F.normalize(f, dim=1), F.normalize(p, dim=1)
        d = self._distance(f, p)
        if not isinstance(d, Tensor) or d.shape != (f.shape[0], self.num_classes):
            got = tuple(d.shape) if isinstance(d, Tensor) else type(d).__name__
            raise InputError(
                "Expected `distance` to return shape (batch, num_classes) = "
                f"{(f.shape[0], self.num_classes)}, but got {got}"
            )
        if not scaled:
            return d
        if self.distance_scale is not None:
            d = self.distance_scale.to(dtype).abs() * d
        if self.h is not None:
            d = self.h(d)
        return -d / self.temperature

    def extra_repr(self) -> str:
        name = next(
            (k for k, v in DISTANCES.items() if v is self._distance), getattr(self._distance, "__name__", "custom")
        )
        return (
            f"in_features={self.num_features}, out_features={self.num_classes}, distance={name}, "
            f"normalize={self.normalize}, distance_scale={self.distance_scale is not None}"
        )


class IsoMaxHead(DistanceHead):
    """IsoMax head (2019 paper, published as "DisMax"): ``logits = -|f - p_j|``.

    Prototypes start at zero, so every logit is equal at initialisation (expected).
    Pair with :class:`isomax.IsoMaxLoss` and score with :func:`isomax.scores.entropic_score`.

    Example:
        >>> head = IsoMaxHead(num_features=342, num_classes=10)
        >>> head(torch.randn(4, 342)).shape
        torch.Size([4, 10])
    """

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        *,
        temperature: float = 1.0,
        validate_args: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            num_features,
            num_classes,
            "euclidean",
            init="zeros",
            temperature=temperature,
            validate_args=validate_args,
            device=device,
            dtype=dtype,
        )


class _UnitSphereHead(DistanceHead):
    """Euclidean distances between L2-normalised features and prototypes, with a learnt ``distance_scale``;
    prototypes ~ N(0, 1): what IsoMax+ and DisMax share. (A common base rather than DisMax subclassing IsoMax+,
    so that ``isinstance(head, IsoMaxPlusHead)`` stays false for a DisMax head.)"""

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        *,
        temperature: float = 1.0,
        validate_args: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            num_features,
            num_classes,
            "euclidean",
            normalize=True,
            distance_scale=True,
            init="normal",
            temperature=temperature,
            validate_args=validate_args,
            device=device,
            dtype=dtype,
        )


class IsoMaxPlusHead(_UnitSphereHead):
    """IsoMax+ head (2021 paper): ``logits = -|d_s| * |f/|f| - p_j/|p_j||``.

    Prototypes ~ N(0, 1), ``distance_scale`` (``d_s``) = 1 at initialisation.
    Pair with :class:`isomax.IsoMaxLoss` and score with
    :func:`isomax.scores.min_distance_score`.

    Example:
        >>> head = IsoMaxPlusHead(num_features=342, num_classes=10)
        >>> head(torch.randn(4, 342)).shape
        torch.Size([4, 10])
    """


_INV_SQRT2 = 1.0 / math.sqrt(2.0)


class DisMaxHead(_UnitSphereHead):
    """DisMax head (Macedo et al. 2022, "Distinction Maximization Loss", arXiv 2205.05874): enhanced logits

        d_j = |d_s| * |f/|f| - p_j/|p_j|| / sqrt(2)          (isometric distance, in [0, |d_s|])
        logits_j = -(d_j + (1/C) sum_k d_k) / temperature

    Each logit depends on the distance to its own prototype and on the mean distance to all of
    them. Prototypes ~ N(0, 1), ``distance_scale`` (``d_s``) = 1 at initialisation, as IsoMax+.
    Pair with :class:`isomax.DisMaxLoss` and score with
    :func:`isomax.scores.max_mean_logit_entropy_score` (MMLES, the paper's choice).
    :meth:`distances` returns the plain ``|f/|f| - p_j/|p_j||`` (no ``|d_s|``, no ``sqrt(2)``).

    Example:
        >>> head = DisMaxHead(num_features=342, num_classes=10)
        >>> head(torch.randn(4, 342)).shape
        torch.Size([4, 10])
    """

    def _logits(self, features: Tensor, scaled: bool) -> Tensor:
        if not scaled:
            return super()._logits(features, scaled)
        dtype = torch.promote_types(torch.promote_types(features.dtype, self.prototypes.dtype), torch.float32)
        # -|d_s| |f^ - p^_j| / T in one autograd node (as IsoMax+), then the mean over classes added
        z = _EuclideanDistance.apply(
            features.to(dtype), self.prototypes.to(dtype), True, self.distance_scale, self.temperature
        )  # (B, C)
        return (z + z.mean(dim=1, keepdim=True)) * _INV_SQRT2

    def extra_repr(self) -> str:
        return f"in_features={self.num_features}, out_features={self.num_classes}, enhanced_logits=True"


# ---------------------------------------------------------------------------------------------
# Head and loss names: read live from isomax.registry (the loss specs, registered in isomax.losses).
# ---------------------------------------------------------------------------------------------
#: The head kinds of the registered losses (a live view: ``"softmax"``, ``"isomax"``, ``"isomaxplus"``, ...).
HEADS = LiveTuple(head_kinds)
#: The registered loss names (a live view).
LOSSES = LiveTuple(list_losses)
#: Live ``{loss name: head kind}``: LogitNorm trains a linear head like SoftMax, DisMax+FPR a DisMax head.
LOSS_HEADS = LiveMapping(lambda: {name: get_loss(name).head for name in list_losses()})
#: The default head of :func:`isomax.convert` and of training (IsoMax+).
DEFAULT_HEAD = DEFAULT_LOSS


def canonical_head_name(kind: str) -> str:
    """Normalise a loss/head name (``"isomax+"`` -> ``"isomaxplus"``); raises on unknown names.

    Returns one of :data:`LOSSES` (:func:`isomax.registry.canonical_loss_name`). A loss name is not
    always a head kind: ``"logitnorm"`` trains a linear head, so code that picks the head (or the
    scores that go with it) should ask :func:`head_kind`.
    """
    return canonical_loss_name(kind)


def head_kind(kind: str) -> str:
    """The head kind (one of :data:`HEADS`) that a loss/head name trains.

    Example:
        >>> head_kind("logitnorm"), head_kind("isomax+"), head_kind("linear")
        ('softmax', 'isomaxplus', 'softmax')
    """
    return get_loss(kind).head


def make_head(kind: str, num_features: int, num_classes: int, **kwargs) -> nn.Module:
    """Build a classifier head by loss/head name (its :class:`isomax.registry.LossSpec`'s ``head_factory``):
    ``"softmax"`` and ``"logitnorm"`` give an ``nn.Linear``, ``"isomax"`` an :class:`IsoMaxHead`,
    ``"isomaxplus"`` an :class:`IsoMaxPlusHead`, ``"dismax"`` (and ``"dismax-fpr"``) a :class:`DisMaxHead`.

    ``kwargs`` go to the constructor (e.g. ``device=``, ``dtype=``).
    """
    try:
        spec = get_loss(kind)
    except ValueError:
        raise InputError(f"Expected `kind` to be one of {list(LOSSES)}, but got: {kind!r}") from None
    return spec.make_head(num_features, num_classes, **kwargs)
