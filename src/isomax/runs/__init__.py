"""Run directories: what ``train``, ``evaluate``, ``bench``, ``sweep``, ``report`` and the deploy commands share.

* :class:`Run` (:mod:`.run`): a run directory loaded as one object (``Run.load(run_dir)``: configuration,
  model, input description, history, calibration, threshold, data splits, logits);
* :class:`InputSpec` (:mod:`.input_spec`): the model's input (size, channels, mean/std, class names);
* :class:`EpochRecord` (:mod:`.history`): one training epoch of ``log.jsonl`` / the checkpoint's history;
* the files of a run directory (:mod:`.files`: names, atomic writes, configuration, checkpoint, log, lock),
  ``threshold.json`` (:mod:`.threshold`), ``calibration.json`` (:mod:`.calibration`) and the weights'
  fingerprint they are bound to (:mod:`.fingerprint`).
"""

from .calibration import CALIBRATION_FILE, Calibration, apply_temperature, head_temperature, read_calibration
from .files import (
    CALIBRATION,
    CHECKPOINT,
    CONFIG,
    LOCK,
    LOG,
    RESULTS,
    RUN_FILES,
    THRESHOLD,
    CheckpointError,
    RunLock,
    RunLockedError,
    append_log,
    atomic_write_bytes,
    atomic_write_text,
    check_config,
    load_checkpoint,
    load_state,
    config_record,
    read_config,
    read_log,
    read_runtime,
    save_checkpoint,
    savez_atomic,
    unique_keys,
    write_config,
    write_json,
    write_log,
)
from .fingerprint import model_fingerprint
from .history import EpochRecord
from .input_spec import InputSpec
from .run import Run
from .threshold import (
    THRESHOLD_FILE,
    MissingThresholdError,
    Threshold,
    ThresholdMismatchError,
    input_description,
    load_threshold,
)

__all__ = [
    "Run",
    "InputSpec",
    "EpochRecord",
    "Threshold",
    "MissingThresholdError",
    "ThresholdMismatchError",
    "load_threshold",
    "input_description",
    "Calibration",
    "read_calibration",
    "apply_temperature",
    "head_temperature",
    "model_fingerprint",
    "CHECKPOINT",
    "CONFIG",
    "LOG",
    "LOCK",
    "THRESHOLD",
    "CALIBRATION",
    "RESULTS",
    "RUN_FILES",
    "THRESHOLD_FILE",
    "CALIBRATION_FILE",
    "CheckpointError",
    "RunLockedError",
    "RunLock",
    "atomic_write_bytes",
    "atomic_write_text",
    "write_json",
    "savez_atomic",
    "read_config",
    "read_runtime",
    "config_record",
    "check_config",
    "write_config",
    "save_checkpoint",
    "load_checkpoint",
    "load_state",
    "write_log",
    "append_log",
    "read_log",
    "unique_keys",
]
