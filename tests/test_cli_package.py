"""The CLI is a package (issue 18): one module per command with ``HELP``, ``add_parser`` and ``run``, one
dispatch in :func:`isomax.cli.main`; ``isomax --help`` does not import what the commands need to run."""

import argparse
import importlib
import json
import subprocess
import sys

import pytest

from isomax.cli import COMMANDS, _build_parser


def test_every_command_is_a_module_with_help_add_parser_and_run():
    assert COMMANDS == (
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
    full = _build_parser()
    sub = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == list(COMMANDS)
    for name in COMMANDS:
        module = importlib.import_module(f"isomax.cli.{name}")
        assert callable(module.add_parser) and callable(module.run) and module.HELP
        # the line of `isomax --help` is the command's own help
        assert next(a.help for a in sub._choices_actions if a.dest == name) == module.HELP


@pytest.mark.parametrize("only", [frozenset(), frozenset({"train"})])
def test_stub_parsers_give_the_same_top_level_help(only):
    assert _build_parser(only).format_help() == _build_parser().format_help()


def test_top_level_help_imports_no_detector_deploy_or_training_module():
    code = (
        "import sys, json\n"
        "from isomax.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('isomax'))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "isomax.cli.train" in loaded  # the command modules are there (cheap) ...
    heavy = ("isomax.detectors", "isomax.deploy", "isomax.training", "isomax.evaluation", "isomax.data")
    assert [m for m in loaded if m.startswith(heavy)] == []  # ... not what they need to run


def test_configuration_flags_come_from_the_fields_metadata():
    import dataclasses

    from isomax.cli._common import config_flags
    from isomax.presets import Runtime, TrainConfig

    flags = {flag: (name, kwargs) for flag, name, kwargs in config_flags()}
    fields = dataclasses.fields(TrainConfig) + dataclasses.fields(Runtime)
    documented = {f.metadata["flag"]: f for f in fields if f.metadata["flag"]}
    assert set(flags) == set(documented) and len(flags) == 27
    assert {name for _, name, _ in config_flags("runtime")} == {f.name for f in dataclasses.fields(Runtime)}
    assert all(f.metadata["help"] for f in fields)  # every field says what it is
    assert flags["--lr"] == ("lr", dict(default=None, help="peak learning rate", metavar="LR", type=float))
    assert flags["--lr-schedule"][0] == "schedule" and flags["--train-limit"][1]["type"] is int
    assert (
        flags["--no-amp"][1]["const"] is False and flags["--no-amp"][1]["help"] == "disable bfloat16 autocast on CUDA"
    )
    args = _build_parser().parse_args(["train", "--lr", "0.3", "--mean", "0.5", "--std", "0.25", "--no-amp"])
    assert (args.cfg_lr, args.cfg_mean, args.cfg_std, args.cfg_amp, args.cfg_epochs) == (
        0.3,
        [0.5],
        [0.25],
        False,
        None,
    )
