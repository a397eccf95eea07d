"""The ``diffsys`` command. Sub-commands live in ``diffsys/cli/_cmd_*.py`` modules, each exposing
``register(subparsers)`` that adds its parser and sets ``func`` (a callable taking the parsed args, returning an
exit code)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as e:  # bad user input: one clear line, no traceback
        print(f"diffsys {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
