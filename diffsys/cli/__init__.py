"""The ``diffsys`` command. Sub-commands live in ``diffsys/cli/_cmd_*.py`` modules, each exposing
``register(subparsers)`` that adds its parser and sets ``func`` (a callable taking the parsed args, returning an
exit code).

Bad input never ends in a traceback: argument errors, and ``ValueError``/``OSError`` raised while reading and checking
inputs, print one line ``diffsys <command>: error: <message>`` on stderr and exit with status 2 (argparse's
convention); outputs are written atomically, so a failed run leaves no partial file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import sys


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage block), with a "did you mean" for bad choices.
    Sub-command parsers inherit the class."""

    def error(self, message):
        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            from .._checks import did_you_mean

            message += did_you_mean(m.group(1), re.findall(r"'?([^',\s]+)'?", m.group(2)))
        self.exit(2, f"{self.prog}: error: {_one_line(message)}\n")


def _one_line(message) -> str:
    return " ".join(str(message).split())


def _error_text(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror and e.filename:  # '[Errno 13] Permission denied: x' -> plain words
        return f"{e.strerror}: {e.filename}"
    if isinstance(e, KeyError) and e.args:
        return f"unknown key {e.args[0]!r}"
    return _one_line(e)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="diffsys",
        description="Differentiable analytical performance models for computer systems and ML hardware.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"diffsys {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("_cmd_")):
        importlib.import_module(f"{__name__}.{mod}").register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # reported by the sub-command's parser, so the message names the command
            sub = next((a.choices.get(args.command) for a in parser._actions
                        if isinstance(a, argparse._SubParsersAction)), None)
            (sub or parser).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # an argument error (already reported in one line) returns its status; --help exits
        if e.code in (0, None):
            raise
        return int(e.code) if isinstance(e.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, KeyError) as e:  # bad user input: one clear line, no traceback
        sys.stdout.flush()
        print(f"diffsys {args.command}: error: {_error_text(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
