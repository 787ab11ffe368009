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

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from .._validation import as_numpy_scores
from ..errors import IsoMaxError, InputError
from .calibration import head_temperature  # re-exported: isomax.deploy.threshold.head_temperature

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

THRESHOLD_FILE = "threshold.json"


class MissingThresholdError(IsoMaxError, FileNotFoundError):
    """A run directory has no ``threshold.json``."""


class ThresholdMismatchError(IsoMaxError, ValueError):
    """A threshold fitted for one score (or temperature) was used with another."""


def default_score(loss: str) -> str:
    """The deployed score of a loss (its :class:`isomax.registry.LossSpec` ``score``): MDS for IsoMax+, MMLES for
    DisMax, ES for IsoMax and SoftMax (as in the papers)."""
    from ..registry import get_loss

    return get_loss(loss).score


@dataclass
class Threshold:
    """Accept an input when ``score >= threshold`` (higher score = more in-distribution).

    Attributes:
        score: the score's name (``"mds"``, ``"es"``, ... or a detector's ``name``).
        threshold: the score value at and above which inputs are accepted (a finite number).
        target_tpr: the fraction of in-distribution inputs meant to be accepted (NaN: not fitted).
        val_tpr: the fraction of the validation inputs actually accepted.
        n: number of validation inputs it was fitted on.
        temperature: the head temperature the scores were computed under (None: unknown; such a record
            is refused by :meth:`check_score` when a temperature is checked and cannot be saved). Every
            score's values change with it (ES, MPS, energy also their ranking; MDS and max_logit are
            divided by it), so a threshold is refused under another temperature.
        fingerprint: :func:`model_fingerprint` of the model it was fitted for (its checkpoint's weights).
        loss: the loss the model was trained with.
        input: the input it was fitted on: ``{"channels", "height", "width", "mean", "std"}``.
        extra: free-form provenance (run directory, split, ...).

    Every field is validated when the record is made (a NaN, infinite, boolean or string threshold
    is a ``ValueError``), so a record read from a file is as checked as one fitted in memory.
    """

    score: str
    threshold: float
    target_tpr: float = 0.95
    val_tpr: float = float("nan")
    n: int = 0
    temperature: float | None = None
    extra: dict = field(default_factory=dict)
    fingerprint: str | None = None
    loss: str | None = None
    input: dict | None = None

    def __post_init__(self) -> None:
        from ._files import check_depth, finite_number

        if not isinstance(self.score, str) or not self.score:
            raise InputError(f"Expected `score` to be a score name, but got: {self.score!r}")
        self.threshold = finite_number("threshold", self.threshold)
        self.target_tpr = finite_number("target_tpr", self.target_tpr, allow_nan=True)
        if not (math.isnan(self.target_tpr) or 0 < self.target_tpr <= 1):
            raise InputError(f"Expected `target_tpr` to be in (0, 1], but got: {self.target_tpr!r}")
        self.val_tpr = finite_number("val_tpr", self.val_tpr, allow_nan=True)
        if not (math.isnan(self.val_tpr) or 0 <= self.val_tpr <= 1):
            raise InputError(f"Expected `val_tpr` to be in [0, 1], but got: {self.val_tpr!r}")
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 0:
            raise InputError(f"Expected `n` to be a count >= 0, but got: {self.n!r}")
        self.n = int(self.n)
        if self.temperature is not None:
            self.temperature = finite_number("temperature", self.temperature, positive=True)
        for name in ("fingerprint", "loss"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v or len(v) > 200):
                raise InputError(f"Expected `{name}` to be a short string, but got: {v!r}")
        if self.input is not None:
            self.input = _check_input(self.input)
        if not isinstance(self.extra, dict):
            raise InputError(f"Expected `extra` to be a dict, but got: {type(self.extra).__name__}")
        check_depth(self.extra)

    def accept(self, scores) -> Tensor:
        """Boolean tensor: ``scores >= threshold``."""
        s = torch.as_tensor(scores)
        return s >= torch.as_tensor(self.threshold, dtype=s.dtype if s.is_floating_point() else torch.float64)

    def check_score(self, score: str, temperature: float | None = None) -> "Threshold":
        """Raise :class:`ThresholdMismatchError` unless fitted for ``score`` (and ``temperature`` where it matters:
        a record of unknown temperature is refused when a temperature is given)."""
        if score != self.score:
            raise ThresholdMismatchError(
                f"Expected a threshold fitted for score {score!r}, but got one fitted for {self.score!r}; fit one "
                f"for {score!r} (`isomax threshold RUN_DIR --score {score}` or `Predictor(...).fit(val_data)`)"
            )
        if temperature is not None and self.temperature is None:
            raise ThresholdMismatchError(
                "Expected a threshold that records the head temperature it was fitted under, but got one without "
                "(temperature: null): score values change with it; refit it (`isomax threshold RUN_DIR`)"
            )
        # Every score's *values* scale or change with the head temperature (MDS and max_logit keep their ranking).
        if temperature is not None and not math.isclose(temperature, self.temperature, rel_tol=1e-6):
            raise ThresholdMismatchError(
                f"Expected the head temperature the threshold was fitted under ({self.temperature:g}), but the model "
                f"has temperature {temperature:g}: score values change with it; refit the threshold after "
                "calibrating (`isomax threshold RUN_DIR`)"
            )
        return self

    def check_model(
        self, fingerprint: str | None = None, loss: str | None = None, input: dict | None = None
    ) -> "Threshold":
        """Raise :class:`ThresholdMismatchError` unless fitted for this model (fingerprint), loss and input
        description; a record without them is refused where they are given."""
        fix = "refit it (`isomax threshold RUN_DIR`)"
        if fingerprint is not None and self.fingerprint != fingerprint:
            what = (
                "does not record the model it was fitted for"
                if self.fingerprint is None
                else f"was fitted for another model (fingerprint {self.fingerprint[:12]}, this model {fingerprint[:12]})"
            )
            raise ThresholdMismatchError(f"Expected a threshold fitted for this model, but it {what}; {fix}")
        if loss is not None and self.loss is not None and _canonical(self.loss) != _canonical(loss):
            raise ThresholdMismatchError(
                f"Expected a threshold fitted for loss {loss!r}, but got one for {self.loss!r}; {fix}"
            )
        if input is not None and self.input is not None and not _same_input(self.input, _check_input(input)):
            raise ThresholdMismatchError(
                f"Expected a threshold fitted on the model's input {_describe(input)}, but "
                f"got one fitted on {_describe(self.input)}; {fix}"
            )
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Threshold":
        if not isinstance(d, dict):
            raise InputError(f"Expected a threshold record (a JSON object), but got {type(d).__name__}")
        known = {f for f in cls.__dataclass_fields__}
        missing = {"score", "threshold"} - set(d)
        if missing:
            raise InputError(f"Expected a threshold record with keys {sorted(missing)}, but got keys {sorted(d)}")
        return cls(**{k: v for k, v in d.items() if k in known})

    def save(self, path: str | os.PathLike) -> Path:
        """Write JSON atomically; ``path`` may be a run directory (writes ``threshold.json`` in it). A record
        without its temperature is refused (it would skip the calibration check when read)."""
        path = Path(path)
        if path.is_dir():
            path = path / THRESHOLD_FILE
        if self.temperature is None:
            raise InputError(
                "Expected a threshold with the head `temperature` it was fitted under, but it is None "
                "(it would skip the calibration check when read); pass temperature=head_temperature(model) "
                "to fit_threshold"
            )
        from .._io import atomic_write_text

        return atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")

    def __str__(self) -> str:
        return (
            f"{self.score} >= {self.threshold:.6g} (target TPR {100 * self.target_tpr:.1f}%, validation TPR "
            f"{100 * self.val_tpr:.2f}% on n={self.n})"
        )


def _canonical(loss: str) -> str:
    from ..heads import canonical_head_name

    try:
        return canonical_head_name(loss)
    except ValueError:
        return loss


def _check_input(d) -> dict:
    from ._files import finite_number

    if not isinstance(d, dict) or set(d) != {"channels", "height", "width", "mean", "std"}:
        raise InputError(f"Expected `input` to be {{channels, height, width, mean, std}}, but got: {d!r}")
    out = {}
    for k in ("channels", "height", "width"):
        v = d[k]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 < v <= 1 << 16:
            raise InputError(f"Expected `input.{k}` to be a positive integer, but got: {v!r}")
        out[k] = int(v)
    for k in ("mean", "std"):
        v = d[k]
        if not isinstance(v, (list, tuple)) or not 0 < len(v) <= 16:
            raise InputError(f"Expected `input.{k}` to be a list of numbers, but got: {v!r}")
        out[k] = [finite_number(f"input.{k}", x, positive=k == "std") for x in v]
    return out


def _same_input(a: dict, b: dict) -> bool:
    return all(a[k] == b[k] for k in ("channels", "height", "width")) and all(
        len(a[k]) == len(b[k]) and all(math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-7) for x, y in zip(a[k], b[k]))
        for k in ("mean", "std")
    )


def _describe(d: dict) -> str:
    return f"{d['channels']}x{d['height']}x{d['width']} mean {d['mean']} std {d['std']}"


def input_description(shape, mean, std) -> dict:
    """``{"channels", "height", "width", "mean", "std"}`` of a model input ``shape = (C, H, W)``."""
    c, h, w = (int(v) for v in shape)
    return _check_input(
        dict(
            channels=c,
            height=h,
            width=w,
            mean=[float(m) for m in np.ravel(mean)],
            std=[float(s) for s in np.ravel(std)],
        )
    )


#: scores whose *ranking* changes with the head temperature (MDS and max_logit values are only divided by it)
TEMPERATURE_DEPENDENT = ("es", "mps", "energy")


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

    def __init__(self, threshold: Threshold | None = None) -> None:
        super().__init__()
        nan = float("nan")
        self.score = threshold.score if threshold else ""  # "" and a NaN threshold: not fitted yet
        self.temperature = threshold.temperature if threshold else None
        self.binding = (
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


def load_threshold(run_dir: str | os.PathLike) -> Threshold:
    """The run's ``threshold.json``; :class:`MissingThresholdError` (saying how to fit one) if absent.

    Read strictly: at most 1 MiB, JSON nested at most 8 deep, a known score name, finite numbers of the
    right type (see :class:`Threshold`); every problem is one ``ValueError`` line naming the file and
    the command that rewrites it."""
    from ..scores import SCORES
    from ._files import read_json_file

    path = Path(run_dir)
    path = path / THRESHOLD_FILE if path.is_dir() or not path.suffix else path
    if not path.exists():
        raise MissingThresholdError(
            f"{path.parent} has no {THRESHOLD_FILE}: fit the operating threshold on the validation split first with "
            f"`isomax threshold {path.parent}` (options: --score S, --tpr 0.95), or in Python "
            "`isomax.deploy.fit_run_threshold(run_dir)`"
        )
    fix = f"refit it with `isomax threshold {path.parent}`"
    d = read_json_file(path, fix)
    try:
        t = Threshold.from_dict(d)
        if t.score not in SCORES:
            raise InputError(f"Expected `score` to be one of {list(SCORES)}, but got: {t.score!r}")
    except (ValueError, TypeError) as err:
        raise InputError(f"{path}: {err}; {fix}") from None
    return t


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
    from ..evaluation import predict_logits
    from ..scores import SCORES

    score = score or default_score(loss)
    if score not in SCORES:
        raise InputError(f"Expected `score` to be one of {list(SCORES)}, but got: {score!r}")
    from ._files import model_fingerprint

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

    Loads the model with :func:`isomax.runs.load_run` (applying ``calibration.json`` if
    present), scores the validation split (:func:`isomax.inputs.load_data`, the split training
    held out) with ``score`` (default: :func:`default_score` of the run's loss). With
    ``report_test``, also records in ``extra["test_tpr"]`` the fraction of the *test* split the
    threshold accepts (for information: the test split plays no part in the fit).
    """
    from ..evaluation import applicable_scores, predict_logits
    from ..runs import recorded_normalization
    from ..scores import SCORES
    from ..devices import resolve_device
    from ..inputs import load_data, load_test
    from .calibration import load_calibrated_run

    dev = resolve_device(device)
    model, config, meta = load_calibrated_run(run_dir, dev)
    score = score or default_score(config.loss)
    if score not in SCORES:
        raise InputError(f"Expected `score` to be one of {list(SCORES)}, but got: {score!r}")
    if score not in applicable_scores(config.loss):
        raise InputError(
            f"Expected a score for loss {config.loss!r} in {list(applicable_scores(config.loss))}, but got: {score!r}"
        )
    _, val = load_data(config.replace(data_dir=data_dir or config.data_dir))
    if len(val) == 0:
        raise InputError(
            f"{run_dir}: the run has no validation split (val_fraction=0); a threshold needs held-out "
            "in-distribution data"
        )
    mean, std = recorded_normalization(meta, config.dataset)  # what the run was trained with
    t = fit_model_threshold(
        model,
        config.loss,
        val,
        mean,
        std,
        dev,
        score=score,
        target_tpr=target_tpr,
        batch_size=config.eval_batch_size,
        amp=config.amp,
        progress=progress,
    )
    t.extra["dataset"] = config.dataset
    if report_test:
        test = load_test(config, data_dir)
        test_logits = predict_logits(model, test, mean, std, dev, config.eval_batch_size, config.amp, "test", progress)
        t.extra["test_tpr"] = float(t.accept(SCORES[score](test_logits)).double().mean())
        t.extra["test_n"] = len(test)
        log(f"achieved TPR on the test split: {100 * t.extra['test_tpr']:.2f}% (target {100 * target_tpr:.1f}%)")
    if save:
        path = t.save(Path(run_dir) / THRESHOLD_FILE)
        log(f"threshold: {t}; wrote {path}")
    return t
