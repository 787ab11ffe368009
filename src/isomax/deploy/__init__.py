"""Deploying a trained model: operating threshold, predictor with reject option, temperature calibration,
selective classification, ``isomax predict / threshold / calibrate / export``.

* :mod:`.threshold`: :func:`fit_threshold` (keep ``target_tpr`` of held-out in-distribution data),
  :class:`Threshold` (``threshold.json``, bound to its model: fingerprint, loss, input, temperature),
  :func:`fit_run_threshold`.
* :mod:`.predictor`: :class:`Predictor` (``fit(val_data)`` / ``predict(x)``: class, probability,
  score, accepted), with a plain score or a fitted detector.
* :mod:`.calibration`: :func:`fit_temperature`, ECE / NLL / Brier, :func:`calibrate_run`.
* :mod:`.selective`: risk-coverage curve, AURC, :func:`selective_metrics`.
* :mod:`.fit`: :func:`fit_deployment`, what ``isomax train`` fits after training (calibration, threshold).
* :mod:`.predict`: :func:`run_predict`, image files to a resumable CSV (``isomax predict``).
* :mod:`.export`: :func:`export_onnx`, one ONNX graph from uint8 images to the accept flag.

Scores everywhere: higher = more in-distribution; accepted means ``score >= threshold``.
"""

from .calibration import (
    CALIBRATION_FILE,
    Calibration,
    apply_temperature,
    brier_score,
    calibrate_run,
    calibration_metrics,
    expected_calibration_error,
    fit_temperature,
    calibrate_model,
    negative_log_likelihood,
    read_calibration,
    reliability_bins,
)
from .fit import fit_deployment
from .predict import CSV_COLUMNS, PredictSummary, list_inputs, read_images, run_predict
from .predictor import Prediction, Predictor
from .save import UnsupportedModelError, save_run
from .selective import aurc, risk_coverage, selective_metrics
from .threshold import (
    THRESHOLD_FILE,
    MissingThresholdError,
    Threshold,
    ThresholdMismatchError,
    ThresholdModule,
    default_score,
    fit_model_threshold,
    fit_run_threshold,
    fit_threshold,
    head_temperature,
    input_description,
    load_threshold,
)

__all__ = [
    "Threshold",
    "ThresholdModule",
    "fit_threshold",
    "fit_run_threshold",
    "fit_model_threshold",
    "load_threshold",
    "default_score",
    "head_temperature",
    "input_description",
    "MissingThresholdError",
    "ThresholdMismatchError",
    "THRESHOLD_FILE",
    "Predictor",
    "Prediction",
    "fit_temperature",
    "apply_temperature",
    "calibrate_run",
    "Calibration",
    "CALIBRATION_FILE",
    "calibrate_model",
    "read_calibration",
    "expected_calibration_error",
    "negative_log_likelihood",
    "brier_score",
    "calibration_metrics",
    "reliability_bins",
    "risk_coverage",
    "aurc",
    "selective_metrics",
    "save_run",
    "UnsupportedModelError",
    "fit_deployment",
    "run_predict",
    "PredictSummary",
    "CSV_COLUMNS",
    "list_inputs",
    "read_images",
]
