"""``calibration.json``: the head temperature fitted on a run's validation split (``isomax calibrate``,
:mod:`isomax.deploy.calibration`), read strictly, and how a temperature is applied to a model.

The fit and the calibration metrics live in :mod:`isomax.deploy.calibration`; this module is the file
format and what :meth:`isomax.runs.Run.load` needs to apply it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .._io import atomic_write_text
from ..errors import InputError
from .files import CALIBRATION
from .fingerprint import model_fingerprint
from .strict import finite_number, read_json_file

__all__ = [
    "CALIBRATION_FILE",
    "MIN_TEMPERATURE",
    "MAX_TEMPERATURE",
    "Calibration",
    "read_calibration",
    "apply_temperature",
    "head_temperature",
]

CALIBRATION_FILE = CALIBRATION


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
    head: Any = getattr(model, "head", None)
    if isinstance(getattr(head, "temperature", None), Tensor):
        head.temperature.fill_(float(temperature))
    elif isinstance(head, nn.Linear):
        if getattr(model, "_isomax_fingerprint", None) is None:  # the weights' identity before any fold
            setattr(model, "_isomax_fingerprint", model_fingerprint(model))
        old = float(getattr(head, "folded_temperature", 1.0))
        with torch.no_grad():
            head.weight.mul_(old / temperature)
            if head.bias is not None:
                head.bias.mul_(old / temperature)
        setattr(head, "folded_temperature", float(temperature))  # not in the state_dict
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
    and the model it belongs to: :func:`~isomax.runs.fingerprint.model_fingerprint` of the checkpoint's
    weights and the loss."""

    temperature: float
    n_val: int
    before: dict
    after: dict
    fingerprint: str | None = None
    loss: str | None = None
    split: str = "test"  # where ``before`` / ``after`` were measured (the fit is always on validation)

    def save(self, run_dir: str | os.PathLike) -> Path:
        return atomic_write_text(Path(run_dir) / CALIBRATION, json.dumps(asdict(self), indent=1) + "\n")


def read_calibration(path: str | os.PathLike, fingerprint: str | None = None) -> Calibration:
    """``calibration.json`` read strictly (size and nesting capped, a temperature in [1e-6, 1e6], the model's
    fingerprint when ``fingerprint`` is given); one ``ValueError`` line naming the file and ``isomax calibrate``."""
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


def head_temperature(model: nn.Module) -> float:
    """The temperature the model's logits are divided by: the head's ``temperature`` buffer (IsoMax
    heads), or for an ``nn.Linear`` head the one folded into its weights by
    :func:`isomax.deploy.apply_temperature` (1 if never calibrated)."""
    head = getattr(model, "head", None)
    t = getattr(head, "temperature", None)
    if isinstance(t, Tensor):
        return float(t)
    return float(getattr(head, "folded_temperature", 1.0))
