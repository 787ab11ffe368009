"""What ``isomax train`` fits after training: the head temperature (``calibration.json``), then the
operating threshold on the calibrated scores (``threshold.json``), on the run's validation split.

Training itself never imports :mod:`isomax.deploy` (the layers of issue 18); the train command, ``bench`` and
``sweep`` call :func:`fit_deployment` with the :class:`~isomax.training.TrainResult` they got, so the
validation data is not loaded again.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from .. import runs

__all__ = ["fit_deployment"]


def fit_deployment(result, *, calibrate: bool = True, log: Callable[[str], None] = print) -> None:
    """Fit the calibration and threshold of a trained run, once (a finished run keeps what it has).

    ``result`` is what :func:`isomax.training.train` returned (its model as trained, validation split,
    normalisation, device). With ``calibrate`` (``--no-calibrate`` turns it off), first the head temperature
    by NLL on the validation split (``calibration.json``; applied to a copy of the model, the returned model
    stays as trained), then the threshold of the loss's default score on the calibrated scores. Without a
    validation split (``val_fraction=0``) nothing is fitted. Call it in one process only (rank 0 under DDP).
    ``isomax threshold`` / ``isomax calibrate`` refit them later.
    """
    from ._files import model_fingerprint
    from .calibration import CALIBRATION_FILE, apply_temperature, calibrate_model, read_calibration
    from .threshold import THRESHOLD_FILE, fit_model_threshold

    run_dir, config, val_set = result.run_dir, result.config, result.val_set
    if val_set is None or len(val_set) == 0 or (run_dir / THRESHOLD_FILE).exists():
        if val_set is not None and len(val_set) == 0:
            log(f"[{run_dir.name}] no validation split: no threshold fitted (`isomax threshold` needs one)")
        return
    on_val = (val_set, result.data.mean, result.data.std, result.device)  # both fits: the same data and settings
    batches: dict[str, Any] = dict(batch_size=result.runtime.eval_batch_size, amp=config.amp)
    with runs.RunLock(run_dir):  # as training: no other process writes this run meanwhile
        model = result.model
        if (run_dir / CALIBRATION_FILE).exists():  # a finished run resumed after a kill between the two files
            model = copy.deepcopy(result.model)  # the returned model stays as trained (= the checkpoint)
            apply_temperature(model, read_calibration(run_dir / CALIBRATION_FILE, model_fingerprint(model)).temperature)
        elif calibrate:
            model = copy.deepcopy(result.model)
            cal = calibrate_model(model, config.loss, *on_val, **batches)
            cal.save(run_dir)
            log(
                f"[{run_dir.name}] calibrated: temperature {cal.temperature:.4g} (validation NLL "
                f"{cal.before['nll']:.4f} -> {cal.after['nll']:.4f}, ECE {100 * cal.before['ece']:.2f}% -> "
                f"{100 * cal.after['ece']:.2f}%); --no-calibrate skips it"
            )
        t = fit_model_threshold(model, config.loss, *on_val, **batches)
        t.save(run_dir)
    log(
        f"[{run_dir.name}] threshold: {t.score} >= {t.threshold:.6g} keeps {100 * t.val_tpr:.2f}% of the validation "
        f"split (target {100 * t.target_tpr:.1f}%); `isomax threshold` refits it and reports the TPR on the test split"
    )
