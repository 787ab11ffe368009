"""Every exception class of isomax derives from IsoMaxError and keeps its builtin base."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import isomax
from isomax import IsoMaxError


def _project_exceptions():
    found = {}
    for info in pkgutil.walk_packages(isomax.__path__, "isomax."):
        if info.name.startswith("isomax.integrations") or info.name.endswith("__main__"):  # extras; the CLI entry
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__.startswith("isomax"):
                found[f"{obj.__module__}.{name}"] = obj
    return found


def test_every_project_exception_is_an_isomax_error_with_a_builtin_base():
    classes = _project_exceptions()
    assert len(classes) >= 14  # the walk found them (CheckpointError, DatasetError, DivergenceError, ...)
    for name, cls in classes.items():
        if issubclass(cls, Warning) or cls is IsoMaxError:
            continue
        assert issubclass(cls, IsoMaxError), name
        assert any(base.__module__ == "builtins" and base is not Exception for base in cls.__mro__[1:-2]), name


def test_builtin_bases_still_catch_them():
    from isomax.data import DatasetNotFoundError
    from isomax.runs import CheckpointError

    assert issubclass(CheckpointError, ValueError) and issubclass(DatasetNotFoundError, FileNotFoundError)
