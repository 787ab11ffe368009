"""Deployment numbers of one run, from one pass over its validation and test splits (nothing written).

:func:`deploy_summary` gives, for every applicable score: the threshold fitted on the validation
split and the TPR it achieves on the test split, the AURC and the risk at 95% coverage; and the
temperature fitted on the validation split with test ECE / NLL / Brier before and after, and the same
threshold numbers on the calibrated scores (``calibrated_scores``: what ``isomax train`` deploys by
default since it calibrates before fitting the threshold). The
README's "Deploying" numbers come from it; ``results.json`` / tables can take
:func:`isomax.deploy.selective_metrics` per run (logits of the test split, its labels, scores).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from .calibration import calibration_metrics, fit_temperature
from .selective import selective_metrics
from .threshold import fit_threshold

__all__ = ["deploy_summary"]


def deploy_summary(
    run_dir: str | os.PathLike,
    *,
    target_tpr: float = 0.95,
    scores=None,
    device: str = "auto",
    data_dir: str | None = None,
    progress: bool = False,
) -> dict:
    """``{"loss", "accuracy", "scores": {score: {threshold, val_tpr, test_tpr, aurc, e_aurc, ...}},
    "calibration": {"temperature", "before", "after"}, "calibrated_scores": {score: {...}}}`` of a run
    directory (model as trained, then with the validation-fitted temperature)."""
    from ..evaluation import applicable_scores
    from ..runs import Run
    from ..scores import SCORES

    run = Run.load(run_dir, device, calibrated=False)  # as trained: the temperature is fitted below
    config = run.config
    val, test = run.val_data(data_dir), run.test_data(data_dir)
    lv = run.logits(val, desc="validation", progress=progress)
    lt = run.logits(test, desc="test", progress=progress)
    scores = tuple(scores) if scores is not None else applicable_scores(config.loss)
    test_scores = {s: SCORES[s](lt) for s in scores}
    selective = selective_metrics(lt, test.labels, test_scores)
    out: dict[str, Any] = {
        "loss": config.loss,
        "run_dir": str(run_dir),
        "accuracy": float((lt.argmax(1) == test.labels).double().mean()),
        "n_val": len(val),
        "n_test": len(test),
        "scores": {},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small fixture runs: the sample-count warning is the caller's business
        for s in scores:
            t = fit_threshold(SCORES[s](lv), target_tpr, score=s)
            out["scores"][s] = dict(
                threshold=t.threshold,
                target_tpr=target_tpr,
                val_tpr=t.val_tpr,
                test_tpr=float(t.accept(test_scores[s]).double().mean()),
                **selective[s],
            )
        temperature = fit_temperature(lv, val.labels)
        out["calibration"] = {
            "temperature": temperature,
            "before": calibration_metrics(lt, test.labels),
            "after": calibration_metrics(lt / temperature, test.labels),
        }
        # what `isomax train` deploys by default: the threshold fitted on the calibrated scores
        lv_c, lt_c = lv / temperature, lt / temperature
        test_c = {s: SCORES[s](lt_c) for s in scores}
        selective_c = selective_metrics(lt_c, test.labels, test_c)
        out["calibrated_scores"] = {}
        for s in scores:
            t = fit_threshold(SCORES[s](lv_c), target_tpr, score=s)
            out["calibrated_scores"][s] = dict(
                threshold=t.threshold,
                target_tpr=target_tpr,
                val_tpr=t.val_tpr,
                test_tpr=float(t.accept(test_c[s]).double().mean()),
                **selective_c[s],
            )
    return out
