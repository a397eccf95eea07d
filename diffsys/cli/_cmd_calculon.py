"""``diffsys calculon``: drop-in for ``calculon llm MODEL.json EXECUTION.json SYSTEM.json OUT.json``.

    diffsys calculon MODEL.json EXECUTION.json SYSTEM.json [OUT.json|-]

Reads Calculon's three JSON inputs (see :mod:`diffsys.io._calculon` for how each field maps), evaluates one training
step with :func:`diffsys.llm.training_step` and writes Calculon-style statistics — ``total_time`` (seconds per
iteration), ``proc_mem_tier1_cap_req`` (GiB per processor), ... — plus diffsys's full breakdown under ``"diffsys"``.
Output goes to OUT.json, or to stdout when OUT is ``-`` or omitted.
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("calculon", help="Calculon-compatible LLM training-step estimate",
                              description="Same arguments and JSON formats as Calculon's 'llm' command; writes "
                                          "Calculon-style stats (total_time in s, proc_mem_tier1_cap_req in GiB).")
    p.add_argument("model", help="Calculon model JSON (hidden, feedforward, seq_size, attn_heads, ...)")
    p.add_argument("execution", help="Calculon execution JSON (num_procs, tensor_par, pipeline_par, ...)")
    p.add_argument("system", help="Calculon system JSON (matrix, vector, mem1, mem2, networks)")
    p.add_argument("output", nargs="?", default="-", help="output JSON path, or - for stdout (default)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..io import run_calculon, write_calculon_stats

    from .._files import check_output_file

    if args.output != "-":
        check_output_file(args.output, "Calculon output")  # before the run, so a bad path costs nothing
    stats = run_calculon(args.model, args.execution, args.system)
    write_calculon_stats(stats, args.output)
    return 0
