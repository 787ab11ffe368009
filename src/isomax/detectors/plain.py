"""Plain logit scores (:mod:`isomax.scores`) as detectors: nothing to fit.

``ScoreDetector("mds")`` scores ``x`` by ``isomax.scores.min_distance_score(model(x))`` (one
forward pass, no preprocessing); higher = more in-distribution, as every detector here.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..scores import SCORES
from .base import Detector, as_logits

__all__ = ["ScoreDetector"]


class ScoreDetector(Detector):
    """A score of :data:`isomax.scores.SCORES` (``mps``, ``es``, ``mds``, ``energy``, ``max_logit``).

    Args:
        score: the score's short name.
        model: the model (or give it to :meth:`fit`).
        **score_kwargs: passed to the score function (e.g. ``temperature`` for ``energy``).

    Example:
        >>> import torch
        >>> from isomax.models import create_model
        >>> model = create_model("cnn-28", head="isomaxplus").eval()
        >>> ScoreDetector("mds", model)(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2])
    """

    def __init__(self, score: str, model: nn.Module | None = None, **score_kwargs) -> None:
        if score not in SCORES:
            raise InputError(f"Expected `score` to be one of {list(SCORES)}, but got: {score!r}")
        super().__init__(model)
        self.score = score
        self.score_kwargs = score_kwargs
        self.name = score

    def _fit(self, model: nn.Module, *, train, val, mean, std, device, adversarial) -> "ScoreDetector":
        """Nothing to learn: ``fit(model)`` only stores the model (the data are ignored)."""
        return self

    def fit_features(self, features=None, labels=None) -> "ScoreDetector":
        return self

    def predict_features(self, features) -> Tensor:
        """The score of logits ``(N, K)`` (or of ``extract_features(...)["logits"]``)."""
        return SCORES[self.score](as_logits(features), **self.score_kwargs)

    def predict(self, x: Tensor) -> Tensor:
        model = self._check_model()
        with torch.no_grad():
            return self.predict_features(model(self._check_input(x)).float())

    def params(self) -> dict:
        return dict(self.score_kwargs)
