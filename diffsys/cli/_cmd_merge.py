"""``diffsys merge``: combine the output folders of ``diffsys sweep --shard I/N`` runs into the whole sweep's
outputs (top configurations, Pareto front CSV/JSON and plot, summary), exactly as one unsharded run.

Each folder holds ``summary.json`` (with the provenance: the full command line) and ``sweep_result.npz``. The
shards must come from the same command apart from ``--shard``, ``--out``, ``--checkpoint``/``--resume`` and output
options; the design space is rebuilt from the recorded command line and checked against each shard's space
fingerprint.
"""

from __future__ import annotations

import json
import os

from . import _provenance

#: options that may differ between the shards of one sweep
_PER_SHARD = {"shard", "out", "checkpoint", "resume", "json", "force", "cache_dir", "no_cache"}


def register(sub):
    p = sub.add_parser("merge", help="merge the output folders of sharded sweeps (diffsys sweep --shard I/N)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", metavar="DIR", help="output folders of `diffsys sweep --shard I/N` runs")
    p.add_argument("--out", default="diffsys_merged", help="output folder (default diffsys_merged)")
    p.add_argument("--top", type=int, default=None, help="configurations to print (default: the shards' --top)")
    p.add_argument("--force", action="store_true", help="overwrite a previous run's outputs in --out")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary instead of tables")
    p.set_defaults(func=run)
    return p


def _shard_args(folder: str):
    """The parsed ``diffsys sweep`` arguments recorded in a shard's summary."""
    from .._files import check_input_file
    from . import build_parser

    path = check_input_file(os.path.join(folder, "summary.json"), "shard summary")
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)["provenance"]
        argv = record["command_line"][1:]
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a diffsys sweep summary with provenance ({e})") from None
    if not argv or argv[0] != "sweep":
        raise ValueError(f"{path} was written by `diffsys {argv[0] if argv else '?'}`, not `diffsys sweep`")
    return build_parser().parse_args(argv), record


def run(args) -> int:
    from ..optimize import load_result, merge
    from ._cmd_sweep import problem_of, report

    from .._files import check_output_dir

    check_output_dir(args.out, "--out folder")
    _provenance.check_fresh_output(args.out, args.force)
    parsed = [_shard_args(d) for d in args.dirs]
    first, _ = parsed[0]
    same = {k: v for k, v in vars(first).items() if k not in _PER_SHARD and k != "func"}
    for folder, (a, _) in zip(args.dirs[1:], parsed[1:]):
        for k, v in same.items():
            if getattr(a, k, None) != v:
                raise ValueError(f"{folder} is a shard of another sweep: --{k.replace('_', '-')} "
                                 f"{getattr(a, k, None)!r} vs {v!r} in {args.dirs[0]}")
    problem = problem_of(first)
    space = problem[0]
    from .._files import check_input_file

    results = [load_result(check_input_file(os.path.join(d, "sweep_result.npz"), "shard result"), space)
               for d in args.dirs]
    merged = merge(results)
    out = first
    out.out, out.json, out.shard, out.checkpoint, out.resume = args.out, args.json, None, None, False
    out.top = args.top or first.top
    if not 1 <= out.top <= 10_000:
        raise ValueError(f"--top must be >= 1 and <= 10,000, got {out.top}")
    extra = {"merged_from": [os.path.abspath(d) for d in args.dirs]}
    if merged.shards != [(0, 1)]:
        extra["incomplete"] = "the merged shards do not cover the whole space"
    return report(out, problem, merged, "merge", extra=extra)


__all__ = ["register", "run"]
