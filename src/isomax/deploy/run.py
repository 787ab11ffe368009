"""A run directory ready to deploy: model (calibrated if ``calibration.json``), threshold, class names,
input shape and normalisation, each with where it came from."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from .calibration import load_calibrated_run
from .threshold import Threshold, ThresholdMismatchError, head_temperature, load_threshold

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


def _raw_config(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def run_class_names(run_dir: str | os.PathLike, dataset: str, num_classes: int) -> tuple[list[str], str | None]:
    """Class names from the run's config (``class_names`` / ``classes``), else the dataset's, else indices.

    Returns ``(names, note)``: ``note`` says where they came from when not from the run's config.
    """
    raw = _raw_config(Path(run_dir))
    for key in ("class_names", "classes"):
        names = raw.get(key)
        if isinstance(names, list) and len(names) == num_classes:
            return [str(n) for n in names], None
    from ..data import datasets as _ds

    try:
        canonical = _ds.canonical_name(dataset)
    except ValueError:
        canonical = None
    known = {"fashion-mnist": _ds.FASHION_MNIST_CLASSES, "mnist": _ds.MNIST_CLASSES, "cifar10": _ds.CIFAR10_CLASSES,
             "svhn": _ds.SVHN_CLASSES}
    if canonical in known and len(known[canonical]) == num_classes:
        return list(known[canonical]), f"class names: not recorded in the run's config; using {canonical}'s"
    return [str(i) for i in range(num_classes)], "class names: not recorded in the run's config; using class indices"


def load_deployed(run_dir: str | os.PathLike, device="cpu", score: str | None = None) -> DeployedRun:
    """Load what ``isomax predict`` / ``export`` need; raises if the run has no ``threshold.json``
    (:class:`~isomax.deploy.MissingThresholdError`, saying how to fit one) or if ``score`` is not the
    threshold's (:class:`~isomax.deploy.ThresholdMismatchError`)."""
    from ..data import normalization

    run_dir = Path(run_dir)
    model, config, _ = load_calibrated_run(run_dir, device)
    threshold = load_threshold(run_dir)
    try:
        threshold.check_score(score or threshold.score, head_temperature(model))
    except ThresholdMismatchError as err:  # name the run in the command to run
        raise ThresholdMismatchError(str(err).replace("RUN_DIR", str(run_dir))) from None
    raw = _raw_config(run_dir)
    notes = []
    num_classes = int(getattr(model, "num_classes", 0) or model.head.weight.shape[0])
    names, note = run_class_names(run_dir, config.dataset, num_classes)
    if note:
        notes.append(note)
    shape = raw.get("input_shape") or raw.get("input_size")
    if not (isinstance(shape, list) and len(shape) == 3):
        shape = getattr(model, "input_size", None)
        c = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
        shape = (c,) + tuple(shape[1:])
    mean, std = raw.get("mean"), raw.get("std")
    if mean is None or std is None:
        mean, std = normalization(config.dataset)
    return DeployedRun(run_dir, model, config, threshold, names, tuple(int(v) for v in shape),
                       tuple(float(v) for v in mean), tuple(float(v) for v in std), notes)

