"""The ``diffsys`` command: every sub-command is registered and bad input gives one clear line, not a traceback."""

import subprocess
import sys

import pytest

from diffsys.cli import build_parser, main

COMMANDS = ("booksim", "calculon", "hotspot", "nccl-tests", "optimize", "sweep")


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in COMMANDS:
        assert cmd in out
    for cmd in COMMANDS:  # each sub-command has its own help
        with pytest.raises(SystemExit):
            build_parser().parse_args([cmd, "--help"])


def test_bad_input_is_one_clear_line(capsys):
    assert main(["sweep", "--top", "0"]) == 2
    err = capsys.readouterr().err
    assert "--top must be >= 1" in err and "Traceback" not in err


def test_console_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "diffsys", "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("diffsys ")
