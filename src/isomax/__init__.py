"""isomax: seamless out-of-distribution detection with the IsoMax, IsoMax+ and DisMax losses.

Replace the last ``nn.Linear`` of a classifier with :class:`IsoMaxPlusHead` and
``nn.CrossEntropyLoss`` with :class:`IsoMaxLoss`, train as usual, and score inputs with
:func:`isomax.scores.min_distance_score` (higher = more in-distribution)::

    model.fc = isomax.IsoMaxPlusHead(model.fc.in_features, num_classes)
    criterion = isomax.IsoMaxLoss()
    ...
    scores = isomax.scores.min_distance_score(model(x))
    isomax.metrics.ood_metrics(scores_in, scores_out)
"""

from . import metrics, registry, scores
from .compat import IsoMaxLossFirstPart, IsoMaxLossSecondPart, IsoMaxPlusLossFirstPart, IsoMaxPlusLossSecondPart
from .convert import convert
from .errors import InputError, IsoMaxError
from .heads import (
    DISTANCES,
    DisMaxHead,
    DistanceHead,
    IsoMaxHead,
    IsoMaxPlusHead,
    canonical_head_name,
    head_kind,
    make_head,
)
from .losses import DisMaxLoss, IsoMaxLoss, LogitNormLoss, SoftMaxLoss, fpr_batch, make_loss
from .metrics import ood_metrics

__version__ = "0.1.0"

__all__ = [
    "IsoMaxError",
    "InputError",
    "DISTANCES",
    "DistanceHead",
    "IsoMaxHead",
    "IsoMaxPlusHead",
    "DisMaxHead",
    "IsoMaxLoss",
    "DisMaxLoss",
    "fpr_batch",
    "SoftMaxLoss",
    "LogitNormLoss",
    "canonical_head_name",
    "head_kind",
    "make_head",
    "convert",
    "make_loss",
    "ood_metrics",
    "metrics",
    "registry",
    "scores",
    "IsoMaxLossFirstPart",
    "IsoMaxLossSecondPart",
    "IsoMaxPlusLossFirstPart",
    "IsoMaxPlusLossSecondPart",
]


def __getattr__(name: str):
    """``isomax.load_pretrained(AutoModelFor..., path)``: :func:`isomax.integrations.huggingface.load_pretrained`
    (imported on first use: transformers is an optional extra)."""
    if name == "load_pretrained":
        from .integrations.huggingface import load_pretrained

        return load_pretrained
    raise AttributeError(f"module 'isomax' has no attribute {name!r}")
