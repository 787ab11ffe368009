"""The operating threshold of a deployed OOD detector, fitted on held-out in-distribution data.

An input is **accepted** (taken as in-distribution) when ``score >= threshold``; scores follow
:mod:`isomax.scores` (higher = more in-distribution). :func:`fit_threshold` picks the threshold
that keeps ``target_tpr`` of the *validation* inputs (the in-distribution validation split, never
test or out-distribution data), with the rule of the papers' TNR@TPR95 metric
(:func:`isomax.metrics.ood_metrics`): sort the validation scores ascending and remove the lowest
``i`` samples, ``i`` the first minimiser of ``|(n - i) / n - target_tpr|``; the threshold is the
lowest remaining score. With ties at that score the achieved TPR can be higher than the target;
it is recorded in :attr:`Threshold.val_tpr`.

A :class:`Threshold` is a small record (score name, threshold, target TPR, achieved validation
TPR, n, head temperature it was fitted under) stored as ``threshold.json`` in a run directory
(:meth:`Threshold.save` / :func:`load_threshold`) and, inside a model, as buffers of a
:class:`ThresholdModule` (so it travels in a ``state_dict``).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from .._validation import as_numpy_scores
from ..errors import InputError
from ..runs.calibration import head_temperature  # re-exported: isomax.deploy.threshold.head_temperature
from ..runs.threshold import (  # the file format of a run directory; re-exported here under the old names
    THRESHOLD_FILE,
    MissingThresholdError,
    Threshold,
    ThresholdMismatchError,
    input_description,
    load_threshold,
)

__all__ = [
    "Threshold",
    "ThresholdModule",
    "fit_threshold",
    "default_score",
    "load_threshold",
    "fit_run_threshold",
    "fit_model_threshold",
    "head_temperature",
    "input_description",
    "MIN_THRESHOLD_SAMPLES",
    "THRESHOLD_FILE",
    "MissingThresholdError",
    "ThresholdMismatchError",
]


def default_score(loss: str) -> str:
    """The deployed score of a loss (its :class:`isomax.registry.LossSpec` ``score``): MDS for IsoMax+, MMLES for
    DisMax, ES for IsoMax and SoftMax (as in the papers)."""
    from ..registry import get_loss

    return get_loss(loss).score


#: fewer validation samples than this and :func:`fit_threshold` warns: the achieved TPR moves in steps of 1/n
#: and its standard error at 95% is about sqrt(0.95 * 0.05 / n) (2.2 points at n = 100)
MIN_THRESHOLD_SAMPLES = 100


def fit_threshold(
    scores_val,
    target_tpr: float = 0.95,
    *,
    score: str = "score",
    temperature: float | None = None,
    extra: dict | None = None,
    fingerprint: str | None = None,
    loss: str | None = None,
    input: dict | None = None,
) -> Threshold:
    """The threshold keeping ``target_tpr`` of the validation (in-distribution) scores.

    Args:
        scores_val: scores of held-out in-distribution inputs (1-D array or tensor), higher = more in.
        target_tpr: fraction to accept, in (0, 1].
        score: name of the score, recorded so a threshold cannot be used with another one.
        temperature: the head temperature the scores were computed under (needed to :meth:`Threshold.save`).
        fingerprint, loss, input: the model it belongs to (:func:`model_fingerprint`), its loss and
            input description (:func:`input_description`); checked by ``predict`` / ``export`` / Predictor.

    Warns (``UserWarning``) below :data:`MIN_THRESHOLD_SAMPLES` validation scores.

    Example:
        >>> t = fit_threshold([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 0.9, score="mds")
        >>> t.threshold, t.val_tpr
        (0.2, 0.9)
    """
    if not (isinstance(target_tpr, (int, float)) and 0.0 < target_tpr <= 1.0):
        raise InputError(f"Expected `target_tpr` to be in (0, 1], but got: {target_tpr!r}")
    s = np.sort(as_numpy_scores("scores_val", scores_val))
    n = s.size
    if n < MIN_THRESHOLD_SAMPLES:
        import warnings

        from ..metrics import SmallSampleWarning

        warnings.warn(
            f"fitting a threshold on only {n} validation scores (fewer than {MIN_THRESHOLD_SAMPLES}): the "
            f"achieved TPR moves in steps of {100 / n:.2g} points; use more validation data",
            SmallSampleWarning,
            stacklevel=2,
        )
    kept = (n - np.arange(n + 1)) / n  # TPR after removing the i lowest, i = 0..n (as ood_metrics' sweep)
    i = int(np.argmin(np.abs(kept - target_tpr)))  # first minimiser, as ood_metrics
    thr = float(s[i]) if i < n else float(np.nextafter(s[-1], np.inf))
    val_tpr = float(np.mean(s >= thr))
    return Threshold(
        score=score,
        threshold=thr,
        target_tpr=float(target_tpr),
        val_tpr=val_tpr,
        n=int(n),
        temperature=temperature,
        extra=dict(extra or {}),
        fingerprint=fingerprint,
        loss=loss,
        input=input,
    )


class ThresholdModule(nn.Module):
    """A :class:`Threshold` as buffers (``threshold``, ``target_tpr``, ``val_tpr``, ``n``) + extra state
    (score name), so it is saved in and restored from a ``state_dict``; ``forward(scores)`` -> accepted."""

    threshold: Tensor
    target_tpr: Tensor
    val_tpr: Tensor
    n: Tensor

    def __init__(self, threshold: Threshold | None = None) -> None:
        super().__init__()
        nan = float("nan")
        self.score = threshold.score if threshold else ""  # "" and a NaN threshold: not fitted yet
        self.temperature = threshold.temperature if threshold else None
        self.binding: dict[str, Any] = (
            dict(fingerprint=threshold.fingerprint, loss=threshold.loss, input=threshold.input) if threshold else {}
        )
        self.register_buffer("threshold", torch.tensor(threshold.threshold if threshold else nan, dtype=torch.float64))
        self.register_buffer(
            "target_tpr", torch.tensor(threshold.target_tpr if threshold else nan, dtype=torch.float64)
        )
        self.register_buffer("val_tpr", torch.tensor(threshold.val_tpr if threshold else nan, dtype=torch.float64))
        self.register_buffer("n", torch.tensor(threshold.n if threshold else 0, dtype=torch.int64))

    def get_extra_state(self) -> dict:
        return {"score": self.score, "temperature": self.temperature, **self.binding}

    def set_extra_state(self, state: dict) -> None:
        self.score = state["score"]
        self.temperature = state.get("temperature")
        self.binding = {k: state.get(k) for k in ("fingerprint", "loss", "input")}

    def to_threshold(self) -> Threshold:
        return Threshold(
            score=self.score,
            threshold=float(self.threshold),
            target_tpr=float(self.target_tpr),
            val_tpr=float(self.val_tpr),
            n=int(self.n),
            temperature=self.temperature,
            **self.binding,
        )

    def forward(self, scores: Tensor) -> Tensor:
        return scores >= self.threshold.to(scores.dtype)

    def extra_repr(self) -> str:
        return f"score={self.score!r}, threshold={float(self.threshold):.6g}, target_tpr={float(self.target_tpr):g}"


def fit_model_threshold(
    model: nn.Module,
    loss: str,
    val_data,
    mean,
    std,
    device,
    *,
    score: str | None = None,
    target_tpr: float = 0.95,
    batch_size: int = 1000,
    amp: bool = True,
    progress: bool = False,
) -> Threshold:
    """The threshold of an in-memory model on its validation split (``val_data``: ImageData); for the end
    of training: ``fit_model_threshold(model, config.loss, val_set, mean, std, device).save(run_dir)``."""
    from ..inference import predict_logits
    from ..runs.fingerprint import model_fingerprint
    from ..scores import SCORES

    score = score or default_score(loss)
    if score not in SCORES:
        raise InputError(f"Expected `score` to be one of {list(SCORES)}, but got: {score!r}")

    logits = predict_logits(model, val_data, mean, std, torch.device(device), batch_size, amp, "validation", progress)
    return fit_threshold(
        SCORES[score](logits),
        target_tpr,
        score=score,
        temperature=head_temperature(model),
        extra={"split": "validation", "loss": loss},
        fingerprint=model_fingerprint(model),
        loss=loss,
        input=input_description(val_data.shape, mean, std),
    )


def fit_run_threshold(
    run_dir: str | os.PathLike,
    score: str | None = None,
    target_tpr: float = 0.95,
    *,
    device: str = "auto",
    data_dir: str | None = None,
    progress: bool = True,
    save: bool = True,
    report_test: bool = False,
    log: Callable[[str], None] = print,
) -> Threshold:
    """Fit the threshold of a run directory on its validation split and write ``threshold.json``.

    Loads the run with :meth:`isomax.runs.Run.load` (applying ``calibration.json`` if
    present), scores the validation split (:meth:`~isomax.runs.Run.val_data`, the split training
    held out) with ``score`` (default: :func:`default_score` of the run's loss), normalised as the run
    was trained. With ``report_test``, also records in ``extra["test_tpr"]`` the fraction of the *test*
    split the threshold accepts (for information: the test split plays no part in the fit).
    """
    from ..evaluation import applicable_scores
    from ..runs import Run
    from ..scores import SCORES

    run = Run.load(run_dir, device)
    config = run.config
    score = score or default_score(config.loss)
    if score not in SCORES:
        raise InputError(f"Expected `score` to be one of {list(SCORES)}, but got: {score!r}")
    if score not in applicable_scores(config.loss):
        raise InputError(
            f"Expected a score for loss {config.loss!r} in {list(applicable_scores(config.loss))}, but got: {score!r}"
        )
    val = run.val_data(data_dir)
    if len(val) == 0:
        raise InputError(
            f"{run_dir}: the run has no validation split (val_fraction=0); a threshold needs held-out "
            "in-distribution data"
        )
    t = fit_model_threshold(
        run.model,
        config.loss,
        val,
        run.input.mean,
        run.input.std,
        run.device,
        score=score,
        target_tpr=target_tpr,
        batch_size=run.runtime.eval_batch_size,
        amp=config.amp,
        progress=progress,
    )
    t.extra["dataset"] = config.dataset
    if report_test:
        test = run.test_data(data_dir)
        test_logits = run.logits(test, desc="test", progress=progress)
        t.extra["test_tpr"] = float(t.accept(SCORES[score](test_logits)).double().mean())
        t.extra["test_n"] = len(test)
        log(f"achieved TPR on the test split: {100 * t.extra['test_tpr']:.2f}% (target {100 * target_tpr:.1f}%)")
    if save:
        path = t.save(run.path(THRESHOLD_FILE))
        log(f"threshold: {t}; wrote {path}")
    return t
