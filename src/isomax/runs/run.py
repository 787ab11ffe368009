"""A trained run directory as one object: :class:`Run`.

``Run.load(run_dir)`` reads the configuration, the checkpoint (model in eval mode, epoch, history), the input
description it was trained with (:class:`~isomax.runs.input_spec.InputSpec`), the weights' fingerprint and,
when the run was calibrated, ``calibration.json`` (the temperature applied to the model, checked against the
fingerprint). Every command that reads a run (``evaluate``, ``threshold``, ``calibrate``, ``predict``,
``export``, ``sweep``, the deploy summary) goes through it, so they all normalise inputs the same way: as the
run was trained.

Example::

    from isomax.runs import Run

    run = Run.load("runs/fmnist-isomaxplus")          # calibrated when calibration.json exists
    logits = run.logits(run.test_data())               # (N, C), normalised as in training
    threshold = run.threshold()                        # threshold.json, checked against this model
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..devices import resolve_device
from ..errors import InputError
from ..presets import Runtime, TrainConfig
from .calibration import Calibration, apply_temperature, head_temperature, read_calibration
from .files import (
    CALIBRATION,
    CHECKPOINT,
    CONFIG,
    THRESHOLD,
    CheckpointError,
    load_checkpoint,
    load_state,
    read_config,
    read_runtime,
)
from .fingerprint import model_fingerprint
from .history import EpochRecord
from .input_spec import InputSpec
from .threshold import Threshold, ThresholdMismatchError, load_threshold

__all__ = ["Run"]

_MODEL_KEYS = ("model", "epoch", "history")  # what loading a trained model needs
_SPLITS = {"train": "train", "val": "val", "validation": "val", "test": "test"}


@dataclass(eq=False)
class Run:
    """A loaded run directory (:meth:`load`). Attributes:

    * ``run_dir``, ``config`` (:class:`~isomax.presets.TrainConfig`), ``device``;
    * ``runtime``: the :class:`~isomax.presets.Runtime` of the run's last start (``config.json``): where its data
      is (``data_dir``, ``workers``) and its evaluation batch size, the defaults of the data and logits methods;
    * ``model``: in eval mode on ``device``, with ``calibration``'s temperature applied when loaded calibrated;
    * ``input``: the :class:`InputSpec` it was trained with (size, channels, mean/std, class names);
    * ``epoch``, ``history`` (:class:`EpochRecord` per finished epoch);
    * ``fingerprint``: :func:`~isomax.runs.fingerprint.model_fingerprint` of the checkpoint's weights;
    * ``calibration``: the :class:`Calibration` applied (None: not calibrated, or loaded with ``calibrated=False``);
    * ``notes``: what was not recorded with the run and where it came from instead.
    """

    run_dir: Path
    config: TrainConfig
    model: nn.Module = field(repr=False)
    input: InputSpec
    epoch: int
    history: list[EpochRecord] = field(repr=False)
    fingerprint: str
    device: torch.device
    calibration: Calibration | None = None
    notes: list[str] = field(default_factory=list)
    runtime: Runtime = field(default_factory=Runtime)

    # ---- loading ---------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, run_dir: str | os.PathLike, device: str | torch.device = "cpu", *, calibrated: bool = True) -> "Run":
        """Read ``run_dir`` (made by ``isomax train`` or :func:`isomax.deploy.save_run`).

        ``device``: ``"cpu"``, ``"cuda[:N]"`` or ``"auto"``. ``calibrated``: apply ``calibration.json`` when the
        run has one (refused if it was fitted for other weights); ``False`` gives the model as trained.

        Raises ``FileNotFoundError`` for a directory that is no run, :class:`~isomax.runs.CheckpointError` for
        a checkpoint that cannot be read or does not match its configuration, and
        :class:`~isomax.errors.InputError` for a bad ``calibration.json`` or input description.
        """
        from ..heads import canonical_head_name
        from ..models import create_model

        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"{run_dir} is not a run directory: no such directory (made by `isomax train`)")
        for name in (CONFIG, CHECKPOINT):
            if not (run_dir / name).exists():
                raise FileNotFoundError(f"{run_dir} is not a run directory: {name} is missing (made by `isomax train`)")
        dev = resolve_device(device)
        config = read_config(run_dir)
        ckpt = run_dir / CHECKPOINT
        state = load_checkpoint(ckpt, dev, keys=_MODEL_KEYS)
        data = state.get("data") if isinstance(state.get("data"), dict) else None
        try:
            recorded = data or _guess_data(state["model"])
            model = create_model(
                config.model,
                num_classes=recorded["num_classes"],
                head=canonical_head_name(config.loss),
                in_channels=recorded["channels"],
            )
        except (StopIteration, KeyError) as err:
            raise CheckpointError(f"checkpoint {ckpt} has no head weights for model {config.model!r}") from err
        load_state(model, state["model"], ckpt, "model", config)
        model.to(dev).eval()
        try:
            spec, notes = InputSpec.recorded(recorded, config.dataset)
            history = [EpochRecord.from_dict(r) for r in state["history"]]
        except InputError as err:
            raise CheckpointError(f"cannot read checkpoint {ckpt}: {err}") from err
        fingerprint = model_fingerprint(model)
        calibration = None
        if calibrated and (run_dir / CALIBRATION).exists():
            calibration = read_calibration(run_dir / CALIBRATION, fingerprint)
            apply_temperature(model, calibration.temperature)
        runtime = read_runtime(run_dir)
        return cls(
            run_dir, config, model, spec, int(state["epoch"]), history, fingerprint, dev, calibration, notes, runtime
        )

    # ---- files -----------------------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """``run_dir / name`` (a file name of :mod:`isomax.runs.files`: ``THRESHOLD``, ``CALIBRATION``, ...)."""
        return self.run_dir / name

    def threshold(self, score: str | None = None) -> Threshold:
        """``threshold.json``, strictly checked: :class:`~isomax.runs.MissingThresholdError` (saying how to fit
        one) when absent, :class:`~isomax.runs.ThresholdMismatchError` (naming the file and ``isomax threshold
        RUN_DIR``) when fitted for another ``score``, head temperature, model (fingerprint), loss or input."""
        t = load_threshold(self.run_dir)
        try:
            t.check_score(score or t.score, head_temperature(self.model))
            t.check_model(self.fingerprint, self.config.loss, self.input.description())
        except ThresholdMismatchError as err:  # name the file, and the run in the command to run
            raise ThresholdMismatchError(
                f"{self.path(THRESHOLD)}: " + str(err).replace("RUN_DIR", str(self.run_dir))
            ) from None
        return t

    @property
    def class_names(self) -> list[str]:
        """One name per class (recorded, else the dataset's, else the class indices: see ``notes``)."""
        return self.input.class_names()

    @property
    def temperature(self) -> float:
        """The temperature the model's logits are divided by (1 when never calibrated)."""
        return head_temperature(self.model)

    # ---- data and logits -------------------------------------------------------------------------------------
    def train_val_data(self, data_dir: str | os.PathLike | None = None) -> tuple[Any, Any]:
        """``(train, val)``: the splits the run was trained on and held out (:func:`isomax.inputs.load_data`;
        ``val`` is empty with ``val_fraction=0``), from ``data_dir`` or the run's (:attr:`runtime`)."""
        from ..inputs import load_data

        return load_data(self.config, self._data_dir(data_dir), self.runtime.workers)

    def _data_dir(self, data_dir: str | os.PathLike | None) -> str | os.PathLike | None:
        return self.runtime.data_dir if data_dir is None else data_dir

    def train_data(self, data_dir: str | os.PathLike | None = None) -> Any:
        """The split the run was trained on."""
        return self.train_val_data(data_dir)[0]

    def val_data(self, data_dir: str | os.PathLike | None = None) -> Any:
        """The validation split training held out (empty with ``val_fraction=0``)."""
        return self.train_val_data(data_dir)[1]

    def test_data(self, data_dir: str | os.PathLike | None = None) -> Any:
        """The in-distribution test split (:func:`isomax.inputs.load_test`)."""
        from ..inputs import load_test

        return load_test(self.config, self._data_dir(data_dir), self.runtime.workers)

    def data(self, split: str, data_dir: str | os.PathLike | None = None) -> Any:
        """``"train"``, ``"val"`` (``"validation"``) or ``"test"``."""
        if split not in _SPLITS:
            raise InputError(f"Expected a split in {list(_SPLITS)}, but got: {split!r}")
        return {"train": self.train_data, "val": self.val_data, "test": self.test_data}[_SPLITS[split]](data_dir)

    def logits(
        self,
        data: Any,
        *,
        batch_size: int | None = None,
        amp: bool | None = None,
        desc: str | None = None,
        progress: bool = False,
    ) -> Tensor:
        """Logits (N, C), float32 on the CPU, of ``data`` (an ImageData, or a split name for :meth:`data`),
        normalised with the run's recorded mean/std (:func:`isomax.inference.predict_logits`); batch size and
        mixed precision default to the run's (``runtime.eval_batch_size``, ``config.amp``)."""
        from ..inference import predict_logits

        if isinstance(data, str):
            desc = desc or data
            data = self.data(data)
        return predict_logits(
            self.model,
            data,
            self.input.mean,
            self.input.std,
            self.device,
            self.runtime.eval_batch_size if batch_size is None else batch_size,
            self.config.amp if amp is None else amp,
            desc,
            progress,
        )


def _guess_data(model_state: dict) -> dict:
    """Fallback for run directories written before ``data`` was recorded (isomax <= 0.x)."""
    num_classes = next(v.shape[0] for k, v in model_state.items() if k in ("head.weight", "head.prototypes"))
    first_4d = next((v for v in model_state.values() if v.ndim == 4), None)
    return dict(num_classes=int(num_classes), channels=int(first_4d.shape[1]) if first_4d is not None else None)
