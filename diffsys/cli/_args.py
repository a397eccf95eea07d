"""Argument and output helpers shared by the LLM commands (``diffsys serve``, ``diffsys train``)."""

from __future__ import annotations

import json

from .._checks import arg_number

#: upper bound of a count flag (GPUs, parallel degrees, batch sizes, token counts)
COUNT_MAX = 1 << 20


def count(flag: str):
    """An ``argparse`` type for a count flag: an integer in ``[1, COUNT_MAX]`` (errors name the flag and range)."""
    return arg_number(flag, 1, COUNT_MAX, integer=True)


def add_counts(parser, defaults: dict, helps: dict | None = None) -> None:
    """``--flag N`` count arguments, one per ``{flag: default}`` entry."""
    helps = helps or {}
    for flag, default in defaults.items():
        parser.add_argument(flag, type=count(flag), default=default, help=helps.get(flag))


def print_report(out: dict, as_json: bool, *, title: str | None = None) -> None:
    """A report as indented JSON, or as a ``key value`` table (a nested mapping as indented rows under its key)."""
    if as_json:
        print(json.dumps(out, indent=1))
        return
    if title:
        print(title)

    def show(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    for k, v in out.items():
        if isinstance(v, dict):
            print(k)
            for k2, v2 in v.items():
                print(f"  {k2:26s} {show(v2)}")
        else:
            print(f"{k:28s} {show(v)}")
