"""Command-line interface: ``isomax COMMAND ...`` (also ``python -m isomax``).

One module per command (:data:`COMMANDS`), each with ``HELP`` (its line in ``isomax --help``),
``add_parser(subparsers)`` and ``run(args, command_line) -> int``; a module imports what its command
needs inside ``run``, so building the parsers stays cheap. :func:`main` parses, checks the shared
flags (:func:`isomax.cli._common.check_args`), runs the command and turns deliberate errors into one line.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from types import ModuleType

__all__ = ["main", "COMMANDS"]

#: the commands, in the order of ``isomax --help``; ``isomax.cli.<name>`` implements each
COMMANDS = (
    "train",
    "evaluate",
    "bench",
    "report",
    "sweep",
    "shard",
    "cache",
    "threshold",
    "calibrate",
    "predict",
    "export",
)


def _command(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def _build_parser(full: set[str] | frozenset[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command; with ``full``, only those commands get their whole parser (the others
    their name and help line: enough for ``isomax --help`` without importing what their flags list)."""
    parser = argparse.ArgumentParser(
        prog="isomax",
        description="Seamless out-of-distribution detection with the IsoMax and IsoMax+ losses.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `isomax COMMAND --help` for the options of a command. Exit codes: 0 done, 2 bad input "
        "(flags, paths, checkpoints, a run directory in use), 3 training diverged.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = _command(name)
        if full is None or name in full:
            module.add_parser(sub)
        else:
            sub.add_parser(name, help=module.HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done; 2 bad input (flags, paths, OS errors, checkpoints, a locked run directory);
    3 training diverged; 130 interrupted. Unexpected exceptions keep their traceback (a bug is a bug)."""
    from ..errors import IsoMaxError
    from ._common import check_args

    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser(full=frozenset(argv[:1])).parse_args(argv)
    command_line = "isomax " + " ".join(shlex.quote(a) for a in argv)
    try:
        check_args(args)
        return _command(args.command).run(args, command_line)
    # IsoMaxError: every error the project raises on purpose; OSError: files. Anything else is a bug and
    # keeps its traceback.
    except (IsoMaxError, OSError) as err:
        print(f"isomax {args.command}: error: {err}", file=sys.stderr)
        return 3 if _diverged(err) else 2
    except KeyboardInterrupt:
        print("\ninterrupted; rerun the same command to resume from the last checkpoint", file=sys.stderr)
        return 130


def _diverged(err: BaseException) -> bool:
    """Training diverged: its own exit code, 3."""
    from ..training import DivergenceError

    return isinstance(err, DivergenceError)
