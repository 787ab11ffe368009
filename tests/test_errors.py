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


# ---- the CLI: deliberate errors are one line and exit 2, a bug keeps its traceback ----------------------
import pytest  # noqa: E402


@pytest.mark.parametrize(
    "error, code",
    [
        ("InputError", 2),  # an IsoMaxError
        ("FileNotFoundError", 2),  # an OSError
        ("DivergenceError", 3),
    ],
)
def test_cli_turns_deliberate_errors_into_one_line(monkeypatch, capsys, error, code):
    from isomax.cli import cache, main
    from isomax.training import DivergenceError

    cls = {"InputError": isomax.InputError, "FileNotFoundError": FileNotFoundError, "DivergenceError": DivergenceError}

    def fail(args, command_line):
        raise cls[error]("what went wrong, and how to fix it")

    monkeypatch.setattr(cache, "run", fail)
    assert main(["cache", "info"]) == code
    assert capsys.readouterr().err == "isomax cache: error: what went wrong, and how to fix it\n"  # one line


@pytest.mark.parametrize("bug", [RuntimeError("a bug"), ValueError("a builtin ValueError is a bug too"), KeyError("k")])
def test_cli_lets_a_bug_show_its_traceback(monkeypatch, bug):
    from isomax.cli import cache, main

    def fail(args, command_line):
        raise bug

    monkeypatch.setattr(cache, "run", fail)
    with pytest.raises(type(bug)) as info:
        main(["cache", "info"])
    assert info.value is bug


def test_cli_interrupt_is_130(monkeypatch, capsys):
    from isomax.cli import cache, main

    def stop(args, command_line):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache, "run", stop)
    assert main(["cache", "info"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_cli_argparse_errors_exit_2(capsys):
    from isomax.cli import main

    with pytest.raises(SystemExit) as info:
        main(["train", "--lr", "fast"])
    assert info.value.code == 2 and "isomax train: error: argument --lr" in capsys.readouterr().err
