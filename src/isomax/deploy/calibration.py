"""Temperature calibration (Guo et al. 2017) and calibration metrics: ECE, NLL, Brier score.

The class probabilities of a model are ``softmax(logits / T)``. :func:`fit_temperature` chooses
``T`` minimising the negative log-likelihood on the *validation* split (LBFGS on ``log T``);
:func:`apply_temperature` stores it in the model: the IsoMax heads' ``temperature`` buffer (their
logits are already divided by it), or, for an ``nn.Linear`` head, folded into its weight and
bias (``W / T``, ``b / T``: the same logits, and the model keeps its ``state_dict`` keys).

What a temperature changes (it never changes the predicted class nor the accuracy):

* probabilities, hence ECE / NLL / Brier, and the **MPS** and **ES** scores: their values *and*
  their ranking of inputs, so their OOD metrics can change;
* **energy** (``logsumexp``): values and ranking;
* **MDS**, **max_logit** and **MMLS**: divided by ``T``, the *ranking* (and every OOD metric) is unchanged;
* **MMLES**, **MMLEPS** (DisMax): values and ranking (they add probability terms to MMLS).

Every score's values change, so a threshold (:mod:`.threshold`) records the temperature it was
fitted under and is refused under another: refit it after calibrating.

Metrics (fractions, lower is better): :func:`expected_calibration_error` (15 equal-width bins of
the confidence ``max_j p_j``, ``sum_b n_b/n |acc_b - conf_b|``), :func:`negative_log_likelihood`
(mean ``-log p_y``), :func:`brier_score` (mean ``sum_j (p_j - 1[j = y])^2``).
"""

from __future__ import annotations

import math
import os
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from ..errors import InputError
from ..runs.files import THRESHOLD
from ..runs.calibration import (  # the file format of a run directory; re-exported here under the old names
    CALIBRATION_FILE,
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    Calibration,
    apply_temperature,
    head_temperature,
    read_calibration,
)

__all__ = [
    "expected_calibration_error",
    "negative_log_likelihood",
    "brier_score",
    "calibration_metrics",
    "reliability_bins",
    "fit_temperature",
    "apply_temperature",
    "calibrate_run",
    "head_temperature",
    "MIN_TEMPERATURE",
    "MAX_TEMPERATURE",
    "Calibration",
    "CALIBRATION_FILE",
    "read_calibration",
    "calibrate_model",
]


def _check(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    logits, labels = torch.as_tensor(logits), torch.as_tensor(labels)
    if logits.ndim != 2 or not logits.is_floating_point():
        raise InputError(
            f"Expected `logits` to be a floating (N, C) tensor, but got {logits.dtype} {tuple(logits.shape)}"
        )
    if labels.shape != (logits.shape[0],):
        raise InputError(f"Expected `labels` to have shape ({logits.shape[0]},), but got {tuple(labels.shape)}")
    if logits.shape[0] == 0:
        raise InputError("Expected at least one sample, but got empty `logits`")
    return logits.double(), labels.long()


def reliability_bins(logits: Tensor, labels: Tensor, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Per confidence bin ``(lo, hi]`` (equal width over [0, 1]): ``count``, mean ``confidence``,
    ``accuracy``, ``edges``."""
    logits, labels = _check(logits, labels)
    conf, pred = torch.softmax(logits, 1).max(1)
    correct = (pred == labels).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    idx = torch.bucketize(conf, edges[1:-1], right=False)  # (lo, hi] bins: conf == hi falls in that bin
    count = torch.bincount(idx, minlength=n_bins).double()
    conf_sum = torch.bincount(idx, conf, minlength=n_bins)
    acc_sum = torch.bincount(idx, correct, minlength=n_bins)
    safe = count.clamp_min(1)
    return {
        "edges": edges.numpy(),
        "count": count.numpy(),
        "confidence": (conf_sum / safe).numpy(),
        "accuracy": (acc_sum / safe).numpy(),
    }


def expected_calibration_error(logits: Tensor, labels: Tensor, n_bins: int = 15) -> float:
    """ECE with ``n_bins`` equal-width confidence bins (15 as in Guo et al. 2017), a fraction in [0, 1]."""
    b = reliability_bins(logits, labels, n_bins)
    return float(np.sum(b["count"] * np.abs(b["accuracy"] - b["confidence"])) / np.sum(b["count"]))


def negative_log_likelihood(logits: Tensor, labels: Tensor) -> float:
    """Mean ``-log softmax(logits)_y`` (nats)."""
    logits, labels = _check(logits, labels)
    return float(F.cross_entropy(logits, labels))


def brier_score(logits: Tensor, labels: Tensor) -> float:
    """Mean over samples of ``sum_j (p_j - onehot(y)_j)^2`` (in [0, 2])."""
    logits, labels = _check(logits, labels)
    p = torch.softmax(logits, 1)
    return float((p - F.one_hot(labels, p.shape[1]).double()).pow(2).sum(1).mean())


def calibration_metrics(logits: Tensor, labels: Tensor, n_bins: int = 15) -> dict[str, float]:
    """``{"accuracy", "ece", "nll", "brier"}`` of ``softmax(logits)``."""
    logits_d, labels_l = _check(logits, labels)
    return {
        "accuracy": float((logits_d.argmax(1) == labels_l).double().mean()),
        "ece": expected_calibration_error(logits_d, labels_l, n_bins),
        "nll": negative_log_likelihood(logits_d, labels_l),
        "brier": brier_score(logits_d, labels_l),
    }


def fit_temperature(logits: Tensor, labels: Tensor, *, max_iter: int = 100) -> float:
    """The ``T > 0`` minimising the NLL of ``softmax(logits / T)`` (LBFGS on ``log T``, float64).

    ``logits`` are the validation logits as the model outputs them now; if the model already divides
    by a temperature ``T0``, the model's new temperature is ``T0 * T`` (:func:`apply_temperature` does it).
    """
    logits, labels = _check(logits, labels)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.clamp(-7, 7).exp(), labels)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    t = float(log_t.detach().clamp(-7, 7).exp())
    if not math.isfinite(t):  # pragma: no cover - LBFGS diverged; keep the model as it is
        return 1.0
    return t


def calibrate_model(
    model: nn.Module,
    loss: str,
    val_data,
    mean,
    std,
    device,
    *,
    batch_size: int = 1000,
    amp: bool = True,
    n_bins: int = 15,
    progress: bool = False,
) -> Calibration:
    """Fit the temperature of an in-memory model on its validation split (``val_data``: ImageData) and apply it
    (:func:`apply_temperature`, in place); for the end of training:
    ``calibrate_model(model, config.loss, val_set, mean, std, device).save(run_dir)``. ``before`` / ``after``
    are the validation metrics (``split="validation"``)."""
    from ..inference import predict_logits
    from ..runs.fingerprint import model_fingerprint

    fingerprint = model_fingerprint(model)  # of the weights as trained, before a Linear head's fold
    logits = predict_logits(model, val_data, mean, std, torch.device(device), batch_size, amp, "validation", progress)
    t = fit_temperature(logits, val_data.labels)
    cal = Calibration(
        temperature=head_temperature(model) * t,
        n_val=len(val_data),
        before=calibration_metrics(logits, val_data.labels, n_bins),
        after=calibration_metrics(logits / t, val_data.labels, n_bins),
        fingerprint=fingerprint,
        loss=loss,
        split="validation",
    )
    apply_temperature(model, cal.temperature)
    return cal


def calibrate_run(
    run_dir: str | os.PathLike,
    *,
    device: str = "auto",
    data_dir: str | None = None,
    n_bins: int = 15,
    progress: bool = True,
    save: bool = True,
    log: Callable[[str], None] = print,
) -> Calibration:
    """Fit the temperature of a run on its validation split, measure ECE/NLL/Brier on test before and
    after, and write ``calibration.json`` (applied by :meth:`isomax.runs.Run.load`, hence by ``isomax predict``,
    ``threshold`` and ``export``). Refit the threshold afterwards (``isomax threshold RUN_DIR``)."""
    from ..runs import Run

    run = Run.load(run_dir, device, calibrated=False)  # uncalibrated: the fit starts from the trained temperature
    val = run.val_data(data_dir)
    if len(val) == 0:
        raise InputError(f"{run_dir}: the run has no validation split (val_fraction=0) to fit a temperature on")
    test = run.test_data(data_dir)
    logits_val = run.logits(val, desc="validation", progress=progress)
    logits_test = run.logits(test, desc="test", progress=progress)
    t = fit_temperature(logits_val, val.labels)
    cal = Calibration(
        temperature=head_temperature(run.model) * t,
        n_val=len(val),
        before=calibration_metrics(logits_test, test.labels, n_bins),
        after=calibration_metrics(logits_test / t, test.labels, n_bins),
        fingerprint=run.fingerprint,
        loss=run.config.loss,
    )
    if save:
        path = cal.save(run_dir)
        log(
            f"temperature {cal.temperature:.4g}: test ECE {100 * cal.before['ece']:.2f}% -> "
            f"{100 * cal.after['ece']:.2f}%, "
            f"NLL {cal.before['nll']:.4f} -> {cal.after['nll']:.4f}; wrote {path}"
        )
        if run.path(THRESHOLD).exists():
            log(f"note: the scores changed with the temperature; refit the threshold: `isomax threshold {run_dir}`")
    return cal
