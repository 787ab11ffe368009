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

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from ..errors import InputError

__all__ = [
    "expected_calibration_error",
    "negative_log_likelihood",
    "brier_score",
    "calibration_metrics",
    "reliability_bins",
    "fit_temperature",
    "apply_temperature",
    "calibrate_run",
    "load_calibrated_run",
    "Calibration",
    "CALIBRATION_FILE",
    "read_calibration",
    "calibrate_model",
]

CALIBRATION_FILE = "calibration.json"


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
    """Per confidence bin ``(lo, hi]`` (equal width over [0, 1]): ``count``, mean ``confidence``, ``accuracy``, ``edges``."""
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

    def closure():
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


def apply_temperature(model: nn.Module, temperature: float) -> nn.Module:
    """Make ``model`` divide its logits by ``temperature`` in total (absolute, not relative), in place.

    IsoMax heads: sets ``head.temperature``. ``nn.Linear`` heads: rescales weight and bias by
    ``old / temperature`` and records ``head.folded_temperature`` (not in the ``state_dict``).
    """
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE
    ):
        raise InputError(
            f"Expected `temperature` to be a number in [{MIN_TEMPERATURE:g}, {MAX_TEMPERATURE:g}], "
            f"but got: {temperature!r}"
        )
    from ._files import model_fingerprint

    head = getattr(model, "head", None)
    if isinstance(getattr(head, "temperature", None), Tensor):
        head.temperature.fill_(float(temperature))
    elif isinstance(head, nn.Linear):
        if getattr(model, "_isomax_fingerprint", None) is None:  # the weights' identity before any fold
            model._isomax_fingerprint = model_fingerprint(model)
        old = float(getattr(head, "folded_temperature", 1.0))
        with torch.no_grad():
            head.weight.mul_(old / temperature)
            if head.bias is not None:
                head.bias.mul_(old / temperature)
        head.folded_temperature = float(temperature)
    else:
        raise InputError(
            f"Expected a model whose `head` is an isomax head or nn.Linear, but got: {type(head).__name__}"
        )
    return model


#: the temperatures :func:`apply_temperature` and ``calibration.json`` accept
MIN_TEMPERATURE, MAX_TEMPERATURE = 1e-6, 1e6


@dataclass
class Calibration:
    """What ``calibration.json`` holds: the fitted temperature, test metrics before/after (may be empty),
    and the model it belongs to: :func:`~isomax.deploy._files.model_fingerprint` of the checkpoint's
    weights and the loss."""

    temperature: float
    n_val: int
    before: dict
    after: dict
    fingerprint: str | None = None
    loss: str | None = None
    split: str = "test"  # where ``before`` / ``after`` were measured (the fit is always on validation)

    def save(self, run_dir: str | os.PathLike) -> Path:
        from .._io import atomic_write_text

        return atomic_write_text(Path(run_dir) / CALIBRATION_FILE, json.dumps(asdict(self), indent=1) + "\n")


def read_calibration(path: str | os.PathLike, fingerprint: str | None = None) -> Calibration:
    """``calibration.json`` read strictly (size and nesting capped, a temperature in [1e-6, 1e6], the model's
    fingerprint when ``fingerprint`` is given); one ``ValueError`` line naming the file and ``isomax calibrate``."""
    from ._files import finite_number, read_json_file

    path = Path(path)
    fix = f"refit it with `isomax calibrate {path.parent}` (or delete it)"
    d = read_json_file(path, fix)
    try:
        if not isinstance(d, dict):
            raise InputError(f"Expected a JSON object, but got {type(d).__name__}")
        if "temperature" not in d:
            raise InputError("Expected a `temperature`, but the record has none")
        t = finite_number("temperature", d["temperature"], positive=True)
        if not MIN_TEMPERATURE <= t <= MAX_TEMPERATURE:
            raise InputError(f"Expected `temperature` in [{MIN_TEMPERATURE:g}, {MAX_TEMPERATURE:g}], but got: {t!r}")
        n_val = d.get("n_val", 0)
        if isinstance(n_val, bool) or not isinstance(n_val, int) or n_val < 0:
            raise InputError(f"Expected `n_val` to be a count, but got: {n_val!r}")
        before, after = d.get("before", {}), d.get("after", {})
        if not isinstance(before, dict) or not isinstance(after, dict):
            raise InputError("Expected `before` and `after` to be objects")
        fp, loss = d.get("fingerprint"), d.get("loss")
        for name, v in (("fingerprint", fp), ("loss", loss)):
            if v is not None and not isinstance(v, str):
                raise InputError(f"Expected `{name}` to be a string, but got: {v!r}")
        if fingerprint is not None and fp != fingerprint:
            raise InputError(
                "Expected a calibration fitted for this model, but it "
                + (
                    "does not record its model"
                    if fp is None
                    else f"was fitted for another one (fingerprint {fp[:12]}, this model {fingerprint[:12]})"
                )
            )
    except ValueError as err:
        raise InputError(f"{path}: {err}; {fix}") from None
    split = d.get("split", "test")
    return Calibration(
        temperature=t,
        n_val=n_val,
        before=before,
        after=after,
        fingerprint=fp,
        loss=loss,
        split=split if split in ("test", "validation") else "test",
    )


def load_calibrated_run(run_dir: str | os.PathLike, device="cpu"):
    """:func:`isomax.runs.load_run`, then the temperature of ``calibration.json`` if the run has one
    (refused if it was fitted for another model: :func:`read_calibration`). ``meta["fingerprint"]`` is the
    checkpoint's :func:`~isomax.deploy._files.model_fingerprint`."""
    from ..runs import load_run
    from ._files import model_fingerprint

    model, config, meta = load_run(run_dir, device)
    fingerprint = model_fingerprint(model)
    meta = dict(meta, fingerprint=fingerprint)
    path = Path(run_dir) / CALIBRATION_FILE
    if path.exists():
        apply_temperature(model, read_calibration(path, fingerprint).temperature)
        meta["calibration"] = str(path)
    return model, config, meta


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
    from ..evaluation import predict_logits
    from ._files import model_fingerprint

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
    after, and write ``calibration.json`` (read by :func:`load_calibrated_run`, hence by ``isomax predict``,
    ``threshold`` and ``export``). Refit the threshold afterwards (``isomax threshold RUN_DIR``)."""
    from ..runs import recorded_normalization
    from ..evaluation import predict_logits
    from ..devices import resolve_device
    from ..inputs import load_data, load_test
    from ..runs import load_run

    dev = resolve_device(device)
    model, config, meta = load_run(run_dir, dev)  # uncalibrated: the fit starts from the trained temperature
    data_dir = data_dir or config.data_dir
    _, val = load_data(config.replace(data_dir=data_dir))
    if len(val) == 0:
        raise InputError(f"{run_dir}: the run has no validation split (val_fraction=0) to fit a temperature on")
    test = load_test(config, data_dir)
    mean, std = recorded_normalization(meta, config.dataset)  # what the run was trained with
    t0 = head_temperature(model)
    logits_val = predict_logits(model, val, mean, std, dev, config.eval_batch_size, config.amp, "validation", progress)
    logits_test = predict_logits(model, test, mean, std, dev, config.eval_batch_size, config.amp, "test", progress)
    t = fit_temperature(logits_val, val.labels)
    from ._files import model_fingerprint

    cal = Calibration(
        temperature=t0 * t,
        n_val=len(val),
        before=calibration_metrics(logits_test, test.labels, n_bins),
        after=calibration_metrics(logits_test / t, test.labels, n_bins),
        fingerprint=model_fingerprint(model),
        loss=config.loss,
    )
    if save:
        path = cal.save(run_dir)
        log(
            f"temperature {cal.temperature:.4g}: test ECE {100 * cal.before['ece']:.2f}% -> {100 * cal.after['ece']:.2f}%, "
            f"NLL {cal.before['nll']:.4f} -> {cal.after['nll']:.4f}; wrote {path}"
        )
        if (Path(run_dir) / "threshold.json").exists():
            log(f"note: the scores changed with the temperature; refit the threshold: `isomax threshold {run_dir}`")
    return cal


def head_temperature(model: nn.Module) -> float:
    """The temperature the model's logits are divided by: the head's ``temperature`` buffer (IsoMax
    heads), or for an ``nn.Linear`` head the one folded into its weights by
    :func:`isomax.deploy.apply_temperature` (1 if never calibrated)."""
    head = getattr(model, "head", None)
    t = getattr(head, "temperature", None)
    if isinstance(t, Tensor):
        return float(t)
    return float(getattr(head, "folded_temperature", 1.0))
