"""Training options from a file: ``isomax train --config run.toml`` (or ``.json``, ``.yaml``).

The file holds :class:`~isomax.presets.TrainConfig` and :class:`~isomax.presets.Runtime` fields, flat, by
their names (``isomax train --print-config`` prints every one, with its value, the runtime ones last)::

    preset = "cifar10-cpu"        # optional: start from a preset (default: TrainConfig's defaults)
    model = "timm:resnet18"
    pretrained = "resnet18.safetensors"
    optimizer = "adamw"
    lr = 0.001
    schedule = "cosine"
    milestones = []               # lists for tuple fields

What wins: command-line flags, then the file, then the preset (``--preset`` or the file's
``preset``), then TrainConfig's defaults. A field left out (TOML has no null) keeps the preset's
value. The run directory's ``config.json`` is the resolved configuration and is itself a valid
``--config`` file. Unknown keys and wrong types are refused with a one-line error naming the file.
The runtime fields (``device``, ``threads``, ``data_dir``, ``eval_batch_size``, ``workers``:
:data:`isomax.presets.RUNTIME_FIELDS`) go to the :class:`~isomax.presets.Runtime`; they are not part of
what a run is, so a run resumes with other values of them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from .errors import InputError
from .presets import Runtime, TrainConfig

__all__ = ["read_config_file", "to_toml"]

_MAX_BYTES = 1 << 20  # a configuration is a few hundred bytes: refuse anything large


def _parse(path: Path, text: str) -> object:
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib
            except ImportError as err:
                raise ImportError("--config .toml on Python 3.10 needs tomli: pip install tomli") from err
        return tomllib.loads(text)
    if suffix == ".json":
        return json.loads(text)
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as err:
            raise ImportError("--config .yaml needs PyYAML: pip install pyyaml (or use a .toml file)") from err
        return yaml.safe_load(text)
    raise InputError(f"Expected --config to be a .toml, .json or .yaml file, but got: {str(path)!r}")


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The file's settings as a dict of TrainConfig and Runtime fields (plus ``preset``), flat
    (:func:`isomax.presets.split_settings` separates them); lists become tuples."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"--config {path}: no such file")
    if path.stat().st_size > _MAX_BYTES:
        raise InputError(f"--config {path}: {path.stat().st_size} bytes, more than a configuration ({_MAX_BYTES} max)")
    try:
        data = _parse(path, path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:  # tomllib.TOMLDecodeError and JSONDecodeError are ValueErrors
        raise InputError(f"--config {path}: cannot parse it ({type(err).__name__}: {err})") from None
    except Exception as err:  # noqa: BLE001 - yaml.YAMLError and friends
        raise InputError(f"--config {path}: cannot parse it ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict):
        raise InputError(f"--config {path}: expected a table of settings, but got {type(data).__name__}")
    fields = {f.name: f for cls in (TrainConfig, Runtime) for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields) - {"preset"})
    if unknown:
        raise InputError(f"--config {path}: unknown setting(s) {unknown}; known: preset, {', '.join(fields)}")
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            raise InputError(f"--config {path}: `{key}` is a table; settings are flat (key = value)")
        value = tuple(value) if isinstance(value, list) else value
        if key != "preset" and not _type_ok(str(fields[key].type), value):
            raise InputError(f"--config {path}: expected `{key}` to be {fields[key].type}, but got: {value!r}")
        out[key] = value
    if "preset" in out and not isinstance(out["preset"], str):
        raise InputError(f"--config {path}: `preset` must be a string, but got: {out['preset']!r}")
    return out


def _type_ok(annotation: str, value: Any) -> bool:
    """Whether ``value`` fits a TrainConfig annotation such as ``float``, ``int | None``, ``tuple[str, ...]``."""
    for part in (p.strip() for p in annotation.split("|")):
        if part == "None" and value is None:
            return True
        if part == "bool" and isinstance(value, bool):
            return True
        if part == "int" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if part == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if part == "str" and isinstance(value, str):
            return True
        if part.startswith("tuple[") and isinstance(value, tuple):
            inner = part[len("tuple[") :].split(",")[0].strip()
            return all(_type_ok(inner, v) for v in value)
    return False


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if not isinstance(value, float) or value == value else "nan"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(config: TrainConfig, runtime: Runtime | None = None) -> str:
    """Every field of ``config`` as TOML, in declaration order, then (with ``runtime``) the Runtime's after a
    comment line, in the same flat table (a valid ``--config`` file); fields set to None are commented out
    (TOML has no null: leaving them out keeps the default, None)."""
    lines = _toml_lines(config)
    if runtime is not None:
        lines += ["# runtime: where and how fast it runs (a run resumes with other values)", *_toml_lines(runtime)]
    return "\n".join(lines) + "\n"


def _toml_lines(settings: TrainConfig | Runtime) -> list[str]:
    lines = []
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        lines.append(f"# {f.name} =  (not set)" if value is None else f"{f.name} = {_toml_value(value)}")
    return lines
