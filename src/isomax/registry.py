"""The registries of losses and scores: one :class:`LossSpec` per loss, one :class:`ScoreSpec` per score.

Everything the library knows about a loss lives in its spec: the head it trains, its factory, the score
it is deployed with, the score that chooses its entropic scale, its label and colour in tables and
figures, the scores of its ROC figure. Everything about a score lives in its :class:`ScoreSpec`: the
checked function, the unchecked graph form (exported as it is), its label, the heads it applies to.
Heads, losses, training, evaluation, threshold, export, tables, plots and report ask here, so adding a
loss or a score is one call::

    import isomax
    from isomax.registry import LossSpec, register_loss

    register_loss(LossSpec(name="myloss", head="isomaxplus", head_factory=isomax.IsoMaxPlusHead,
                           loss_factory=isomax.IsoMaxLoss, score="mds", label="MyLoss"))
    isomax.make_head("myloss", 512, 10), isomax.make_loss("myloss")  # and `isomax train --loss myloss`

The built-in entries are registered where their classes are defined: the losses at the end of
:mod:`isomax.losses`, the scores at the end of :mod:`isomax.scores` (this module sits below both, so
that :func:`isomax.heads.make_head` and friends can read it). Lookups are live: an entry registered
after import is visible everywhere, and :data:`isomax.scores.SCORES` or :data:`isomax.heads.LOSSES`
are views of these registries, not copies.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar, overload

from torch import Tensor, nn

from .errors import InputError

__all__ = [
    "LossSpec",
    "ScoreSpec",
    "register_loss",
    "register_score",
    "unregister_loss",
    "unregister_score",
    "registered",
    "get_loss",
    "get_score",
    "list_losses",
    "list_scores",
    "canonical_loss_name",
    "head_kinds",
    "head_kind_of",
    "applicable_scores",
    "DEFAULT_LOSS",
    "BASELINE_LOSS",
    "PAPER_LOSSES",
    "SWEEP_LOSSES",
]

# The named defaults of the library and its commands: the only loss names written outside the entries.
#: The loss of ``isomax train`` / :class:`isomax.presets.TrainConfig` and of :func:`isomax.convert`.
DEFAULT_LOSS = "isomaxplus"
#: The baseline: cross-entropy on a plain ``nn.Linear`` head (the default head of the model constructors,
#: the loss that gets ODIN / Mahalanobis / Outlier Exposure in ``isomax bench``, as in the papers).
BASELINE_LOSS = "softmax"
#: The losses the papers compare (``isomax bench``'s default).
PAPER_LOSSES = ("softmax", "isomax", "isomaxplus")
#: The loss of the 2019 paper's entropic-scale sweep (``isomax sweep``'s default).
SWEEP_LOSSES = ("isomax",)


@dataclass(frozen=True)
class LossSpec:
    """A training loss and everything that goes with it.

    Attributes:
        name: canonical name (``isomax train --loss NAME``), lower case.
        head: the head kind it trains; a loss that introduces a new head names the kind after itself.
            Models record this kind, and scores declare the kinds they apply to.
        head_factory: ``(num_features, num_classes, **kwargs) -> nn.Module`` (e.g. a head class).
        loss_factory: ``(entropic_scale, **kwargs) -> nn.Module``; ``kwargs`` are the criterion's
            (``reduction``, ``label_smoothing``, ``validate_args``, ...).
        score: the score a run of this loss is deployed with (threshold, predict, export), a
            :class:`ScoreSpec` name.
        label: the name in tables and figures (``"IsoMax+"``).
        color: its colour in every figure (hex); None: one derived from the name.
        aliases: other accepted names (matched case-insensitively).
        sweep_score: the score ``isomax sweep`` uses to choose the entropic scale (None: not swept).
        entropic_scale: whether ``entropic_scale`` means anything for this loss.
        label_smoothing: whether the loss accepts ``label_smoothing``.
        roc_scores: the scores of its curves in the report's ROC figures.
        distance: what ``-logits`` are, for the report's minimum-distance figures: ``"Euclidean"``,
            ``"normalised"`` (IsoMax+: divided by ``|d_s|`` when known), or None (not a distance).
    """

    name: str
    head: str
    head_factory: Callable[..., nn.Module]
    loss_factory: Callable[..., nn.Module]
    score: str
    label: str
    color: str | None = None
    aliases: tuple[str, ...] = ()
    sweep_score: str | None = None
    entropic_scale: bool = True
    label_smoothing: bool = True
    roc_scores: tuple[str, ...] = ()
    distance: str | None = None

    @property
    def linear(self) -> bool:
        """Whether the head is a plain ``nn.Linear`` (its logits are not distances)."""
        return self.head_factory is nn.Linear

    def make_head(self, num_features: int, num_classes: int, **kwargs: Any) -> nn.Module:
        """A freshly initialised head (``kwargs``: e.g. ``device=``, ``dtype=``)."""
        return self.head_factory(num_features, num_classes, **kwargs)

    def make_loss(self, entropic_scale: float = 10.0, **kwargs: Any) -> nn.Module:
        """The training criterion."""
        return self.loss_factory(entropic_scale, **kwargs)


@dataclass(frozen=True)
class ScoreSpec:
    """An OOD score of logits (higher = more in-distribution).

    Attributes:
        name: short name (``"mds"``), as in results, thresholds and ``--score``.
        function: the public score, ``(logits (B, C), **kwargs) -> (B,)``, with its argument checks.
        graph: the same score without checks (no host sync): what ONNX export and compiled graphs run.
            ``function(logits)`` must equal ``graph(logits)`` for valid logits.
        label: the name in tables and figures (``"MDS"``).
        heads: the head classes it applies to (None: every head): it applies to a loss whose ``head_factory``
            is one of them or a subclass.
    """

    name: str
    function: Callable[..., Tensor]
    graph: Callable[[Tensor], Tensor]
    label: str
    heads: tuple[type[nn.Module], ...] | None = None

    def applies_to(self, loss: LossSpec) -> bool:
        """Whether the score makes sense for the head a loss trains."""
        factory = loss.head_factory
        return self.heads is None or (isinstance(factory, type) and issubclass(factory, self.heads))


_LOSSES: dict[str, LossSpec] = {}  # canonical name -> spec, in registration order
_LOSS_KEYS: dict[str, str] = {}  # lower-case name or alias -> canonical name
_SCORES: dict[str, ScoreSpec] = {}


def _key(name: object) -> str:
    return str(name).strip().lower()


def register_loss(spec: LossSpec) -> LossSpec:
    """Add a loss; its name and aliases must not collide with another loss's. Returns ``spec``."""
    if not isinstance(spec, LossSpec):
        raise InputError(f"Expected a LossSpec, but got: {type(spec).__name__}")
    keys = {_key(spec.name), *(_key(a) for a in spec.aliases)}
    for k in keys:
        if _LOSS_KEYS.get(k, spec.name) != spec.name:
            raise InputError(f"loss name or alias {k!r} of {spec.name!r} is already used by {_LOSS_KEYS[k]!r}")
    if spec.name in _LOSSES:
        raise InputError(f"loss {spec.name!r} is already registered (unregister_loss it first)")
    _LOSSES[spec.name] = spec
    _LOSS_KEYS.update(dict.fromkeys(keys, spec.name))
    return spec


def register_score(spec: ScoreSpec) -> ScoreSpec:
    """Add a score; its name must be new. Returns ``spec``."""
    if not isinstance(spec, ScoreSpec):
        raise InputError(f"Expected a ScoreSpec, but got: {type(spec).__name__}")
    if spec.name in _SCORES:
        raise InputError(f"score {spec.name!r} is already registered (unregister_score it first)")
    _SCORES[spec.name] = spec
    return spec


def unregister_loss(name: str) -> LossSpec:
    """Remove a loss (and its aliases); returns its spec."""
    spec = _LOSSES.pop(canonical_loss_name(name))
    for k in [k for k, v in _LOSS_KEYS.items() if v == spec.name]:
        del _LOSS_KEYS[k]
    return spec


def unregister_score(name: str) -> ScoreSpec:
    """Remove a score; returns its spec."""
    spec = get_score(name)
    del _SCORES[spec.name]
    return spec


@contextmanager
def registered(*specs: LossSpec | ScoreSpec) -> Iterator[None]:
    """Register ``specs`` for the duration of a ``with`` block (tests, experiments)."""
    done: list[LossSpec | ScoreSpec] = []
    try:
        for spec in specs:
            done.append(register_loss(spec) if isinstance(spec, LossSpec) else register_score(spec))
        yield
    finally:
        for spec in reversed(done):
            if isinstance(spec, LossSpec):
                unregister_loss(spec.name)
            else:
                unregister_score(spec.name)


def canonical_loss_name(name: str) -> str:
    """The registered name of a loss or alias (case ignored); InputError listing the known names.

    >>> canonical_loss_name("IsoMax+"), canonical_loss_name("linear")
    ('isomaxplus', 'softmax')
    """
    key = _key(name)
    if key not in _LOSS_KEYS:
        raise InputError(f"Expected a loss/head name in {list(_LOSSES)}, but got: {name!r}")
    return _LOSS_KEYS[key]


def get_loss(name: str) -> LossSpec:
    """The spec of a loss, by name or alias (InputError listing the known names)."""
    return _LOSSES[canonical_loss_name(name)]


def get_score(name: str) -> ScoreSpec:
    """The spec of a score, by name (InputError listing the known names)."""
    if not isinstance(name, str) or name not in _SCORES:
        raise InputError(f"Expected a score name in {list(_SCORES)}, but got: {name!r}")
    return _SCORES[name]


def list_losses() -> tuple[str, ...]:
    """The registered loss names, in registration order."""
    return tuple(_LOSSES)


def list_scores() -> tuple[str, ...]:
    """The registered score names, in registration order."""
    return tuple(_SCORES)


def head_kinds() -> tuple[str, ...]:
    """The head kinds the registered losses train, in registration order."""
    return tuple(dict.fromkeys(s.head for s in _LOSSES.values()))


def head_kind_of(head: nn.Module) -> str | None:
    """The head kind of a head module: the first loss whose ``head_factory`` is its class, else the first of
    which it is an instance (registration order); None if no registered loss builds it."""
    specs = list(_LOSSES.values())
    for exact in (True, False):
        for s in specs:
            factory = s.head_factory
            if isinstance(factory, type) and (type(head) is factory if exact else isinstance(head, factory)):
                return s.head
    return None


def applicable_scores(loss: str) -> tuple[str, ...]:
    """The scores that apply to the head a loss (or head kind) trains, in registration order.

    >>> applicable_scores("softmax")
    ('mps', 'es', 'energy', 'max_logit')
    """
    spec = get_loss(loss)
    return tuple(s.name for s in _SCORES.values() if s.applies_to(spec))


# ---------------------------------------------------------------------------------------------
# Live views: read-only names that older code imports as constants (isomax.scores.SCORES, ...).
# ---------------------------------------------------------------------------------------------
V = TypeVar("V")


class LiveMapping(Mapping[str, V], Generic[V]):
    """A read-only mapping recomputed from the registries at every access."""

    def __init__(self, build: Callable[[], Mapping[str, V]]) -> None:
        self._build = build

    def __getitem__(self, key: str) -> V:
        return self._build()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._build())

    def __len__(self) -> int:
        return len(self._build())

    def __repr__(self) -> str:
        return repr(dict(self._build()))


T = TypeVar("T")


class LiveTuple(Sequence[T], Generic[T]):
    """A read-only tuple recomputed from the registries at every access."""

    def __init__(self, build: Callable[[], tuple[T, ...]]) -> None:
        self._build = build

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[T, ...]: ...
    def __getitem__(self, index: int | slice) -> T | tuple[T, ...]:
        return self._build()[index]

    def __len__(self) -> int:
        return len(self._build())

    def __eq__(self, other: object) -> bool:
        return self._build() == (tuple(other) if isinstance(other, (tuple, list, LiveTuple)) else other)

    def __hash__(self) -> int:
        return hash(self._build())

    def __repr__(self) -> str:
        return repr(self._build())


def roc_combos() -> tuple[tuple[str, str], ...]:
    """``(loss, score)`` pairs of the report's ROC figures (each loss's ``roc_scores``), in registration order."""
    return tuple((n, score) for n, s in _LOSSES.items() for score in s.roc_scores)


def loss_labels() -> LiveMapping[str]:
    """Live ``{loss name: label}`` (tables, figures)."""
    return LiveMapping(lambda: {n: s.label for n, s in _LOSSES.items()})


def loss_colors() -> LiveMapping[str]:
    """Live ``{loss name: colour}`` of the losses that have one."""
    return LiveMapping(lambda: {n: s.color for n, s in _LOSSES.items() if s.color is not None})


def score_labels() -> LiveMapping[str]:
    """Live ``{score name: label}``."""
    return LiveMapping(lambda: {n: s.label for n, s in _SCORES.items()})


def score_functions() -> LiveMapping[Callable[..., Tensor]]:
    """Live ``{score name: checked function}`` (:data:`isomax.scores.SCORES`)."""
    return LiveMapping(lambda: {n: s.function for n, s in _SCORES.items()})
