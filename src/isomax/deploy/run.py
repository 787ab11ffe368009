"""A run directory ready to deploy: model (calibrated if ``calibration.json``), threshold, class names,
input shape and normalisation, each with where it came from."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from .calibration import load_calibrated_run
from .threshold import Threshold, ThresholdMismatchError, head_temperature, input_description, load_threshold

__all__ = ["DeployedRun", "load_deployed", "run_class_names"]


@dataclass
class DeployedRun:
    run_dir: Path
    model: nn.Module
    config: object  # isomax.presets.TrainConfig
    threshold: Threshold
    class_names: list[str]
    input_shape: tuple[int, int, int]  # (C, H, W)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    notes: list[str] = field(default_factory=list)  # where class names etc. came from, when not the run's config
    fingerprint: str = ""  # of the checkpoint's weights (isomax.deploy._files.model_fingerprint)


def run_class_names(data: dict, dataset: str, num_classes: int) -> tuple[list[str], str | None]:
    """Class names recorded at training time (``data["classes"]`` of :func:`isomax.runs.load_run`'s
    metadata), else the dataset's (:func:`isomax.data.dataset_info`), else class indices.

    Returns ``(names, note)``: ``note`` says where they came from when they were not recorded.
    """
    from ..data import dataset_info

    names = data.get("classes")
    if isinstance(names, (list, tuple)) and len(names) == num_classes:
        return [str(n) for n in names], None
    try:
        known = dataset_info(dataset).classes
    except ValueError:  # not a registered dataset name (e.g. a folder)
        known = None
    if known and len(known) == num_classes:
        return list(known), f"class names: not recorded with the run; using {dataset}'s"
    return [str(i) for i in range(num_classes)], "class names: not recorded with the run; using class indices"


def run_input(data: dict, dataset: str) -> tuple[tuple[int, int, int], list, list, str | None]:
    """``(shape (C, H, W), mean, std, note)`` recorded at training time (``data`` of the checkpoint), else the
    dataset's (``note`` says so)."""
    from ..data import dataset_info

    if all(data.get(k) for k in ("channels", "height", "width", "mean", "std")):
        return (data["channels"], data["height"], data["width"]), data["mean"], data["std"], None
    info = dataset_info(dataset)
    return (
        info.shape,
        info.mean,
        info.std,
        f"input size and normalisation: not recorded with the run; using {dataset}'s",
    )


def load_deployed(run_dir: str | os.PathLike, device="cpu", score: str | None = None) -> DeployedRun:
    """Load what ``isomax predict`` / ``export`` need; raises if the run has no ``threshold.json``
    (:class:`~isomax.deploy.MissingThresholdError`, saying how to fit one) or if ``score`` is not the
    threshold's, or if the threshold was fitted for another model (fingerprint of the
    checkpoint's weights), loss, input description or head temperature (also
    :class:`~isomax.deploy.ThresholdMismatchError`, naming ``isomax threshold RUN_DIR``). Input shape, normalisation and class
    names are those recorded at training time; runs written before they were recorded fall back to
    the dataset's (said in ``notes``)."""
    run_dir = Path(run_dir)
    model, config, meta = load_calibrated_run(run_dir, device)
    threshold = load_threshold(run_dir)
    data = meta.get("data") or {}
    names, note = run_class_names(data, config.dataset, int(data.get("num_classes") or model.head.out_features))
    notes = [note] if note else []
    shape, mean, std, note = run_input(data, config.dataset)
    notes += [note] if note else []
    try:
        threshold.check_score(score or threshold.score, head_temperature(model))
        threshold.check_model(meta["fingerprint"], config.loss, input_description(shape, mean, std))
    except ThresholdMismatchError as err:  # name the file, and the run in the command to run
        raise ThresholdMismatchError(
            f"{run_dir / 'threshold.json'}: " + str(err).replace("RUN_DIR", str(run_dir))
        ) from None
    return DeployedRun(
        run_dir,
        model,
        config,
        threshold,
        names,
        tuple(int(v) for v in shape),
        tuple(float(v) for v in mean),
        tuple(float(v) for v in std),
        notes,
        meta["fingerprint"],
    )
