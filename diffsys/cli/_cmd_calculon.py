"""``diffsys calculon``: drop-in for Calculon's ``llm``, ``llm-optimal-execution`` and ``llm-all-executions``.

    diffsys calculon [llm] MODEL.json EXECUTION.json SYSTEM.json [OUT.json|-]
    diffsys calculon llm-optimal-execution MODEL.json NUM_PROCS MAX_BATCH_SIZE DATATYPE SYSTEM.json OUT
        [-t TOP_N] [-f true|false|all] [--no-tp-overlap] [--no-dp-overlap] [-n] [-m] [-c CPUS]
    diffsys calculon llm-all-executions MODEL.json NUM_PROCS MAX_BATCH_SIZE DATATYPE SYSTEM.json OUT.csv
        [-f true|false|all] [-n] [-c CPUS]

Same arguments and file formats as Calculon (see :mod:`diffsys.io._calculon` for how each field maps). ``llm``
writes Calculon's statistics in Calculon's units (``total_time`` s per iteration, ``*_space`` and
``proc_mem_tier1_cap_req`` bytes per processor by Calculon's accounting, ``sample_rate`` samples/s) plus
diffsys's own figures under ``diffsys_*`` keys and ``"diffsys"``; OUT ``-`` or omitted prints to stdout. The
searches enumerate Calculon's execution space exactly, skip what Calculon rejects, and evaluate the rest in one
jitted, vmapped sweep (:func:`diffsys.io.search_calculon_executions`); ``-c`` and ``-m`` are accepted for compatibility
(the sweep is vectorised; memory-infeasible microbatch sizes are skipped anyway).
"""

from __future__ import annotations

import argparse
import sys
import time

_SEARCHES = {"llm-optimal-execution": "optimal", "loe": "optimal", "llm-all-executions": "all", "lae": "all"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calculon", help="Calculon-compatible LLM training estimate and execution searches",
        description="Calculon's 'llm' (MODEL EXECUTION SYSTEM [OUT]), 'llm-optimal-execution' and "
                    "'llm-all-executions' (MODEL NUM_PROCS MAX_BATCH_SIZE DATATYPE SYSTEM OUT) with Calculon's "
                    "formats and units.")
    p.add_argument("command_or_model", metavar="[COMMAND] MODEL",
                   help="llm | llm-optimal-execution | llm-all-executions, or directly the model JSON (llm)")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="the command's arguments (as Calculon's)")
    p.set_defaults(func=run)


def _fused(text):
    v = text.lower()
    if v not in ("true", "false", "all"):
        raise argparse.ArgumentTypeError(f"must be true, false or all, got {text!r}")
    return {"true": (True,), "false": (False,), "all": (True, False)}[v]


def _llm_parser():
    p = argparse.ArgumentParser(prog="diffsys calculon llm", exit_on_error=False)
    p.add_argument("model")
    p.add_argument("execution")
    p.add_argument("system")
    p.add_argument("output", nargs="?", default="-")
    return p


def _search_parser(name):
    p = argparse.ArgumentParser(prog=f"diffsys calculon {name}", exit_on_error=False)
    p.add_argument("application", help="Calculon model JSON")
    p.add_argument("num_procs", type=int)
    p.add_argument("max_batch_size", type=int, help="largest batch; the search uses the largest multiple of DP")
    p.add_argument("datatype", choices=("float8", "float16", "float32", "bfloat16"))
    p.add_argument("system", help="Calculon system JSON")
    p.add_argument("output", help="*.json, *.json.gz, *.csv or *.csv.gz (all-executions: CSV only)")
    p.add_argument("-c", "--cpus", type=int, default=None, help="accepted for compatibility (vectorised sweep)")
    p.add_argument("-n", "--noneok", action="store_true", help="no failure status when no execution is good")
    p.add_argument("-f", "--fused_activation", type=_fused, default=(True,), help="true, false or all")
    if name == "optimal":
        p.add_argument("-m", "--mbs-break", action="store_true", help="accepted for compatibility")
        p.add_argument("-t", "--top-n", type=int, default=1, help="number of best executions")
        p.add_argument("-l", "--layers", action="store_true", help="accepted for compatibility (no layer stats)")
        p.add_argument("--no-tp-overlap", action="store_true", help="don't search TP overlap")
        p.add_argument("--no-dp-overlap", action="store_true", help="don't search DP overlap")
    return p


def _parse(parser, argv):
    try:
        return parser.parse_args(argv)
    except argparse.ArgumentError as e:
        raise ValueError(f"{parser.prog}: {e}") from None


def run(args) -> int:
    from .._files import check_output_file

    first, rest = args.command_or_model, list(args.rest)
    if first in _SEARCHES:
        return _run_search(_SEARCHES[first], _parse(_search_parser(_SEARCHES[first]), rest), check_output_file)
    if first == "llm":
        a = _parse(_llm_parser(), rest)
    else:
        a = _parse(_llm_parser(), [first, *rest])
    from ..io import run_calculon, write_calculon_stats

    if a.output != "-":
        check_output_file(a.output, "Calculon output")  # before the run, so a bad path costs nothing
    write_calculon_stats(run_calculon(a.model, a.execution, a.system), a.output)
    return 0


def _run_search(kind, a, check_output_file) -> int:
    from ..io import optimal_calculon_executions as optimal_executions
    from ..io import search_calculon_executions as search_executions
    from ..io import write_calculon_all_executions as write_all
    from ..io import write_calculon_optimal_execution as write_optimal

    if kind == "optimal" and a.top_n < 1:
        raise ValueError(f"--top-n must be >= 1, got {a.top_n}")
    if a.num_procs < 1 or a.max_batch_size < 1:
        raise ValueError("num_procs and max_batch_size must be >= 1")
    check_output_file(a.output, "Calculon output")
    t0 = time.perf_counter()
    rows, counts = search_executions(
        a.application, a.num_procs, a.max_batch_size, a.datatype, a.system, a.fused_activation,
        tp_overlap=not getattr(a, "no_tp_overlap", False), dp_overlap=not getattr(a, "no_dp_overlap", False))
    dt = time.perf_counter() - t0
    print(f"Total executions: {counts['total']}\nGood executions: {counts['good']}\nBad executions: "
          f"{counts['bad']}\nCalculation rate: {counts['total'] / dt:.2f} calcs/sec", file=sys.stderr)
    if not rows:
        print("No acceptable configurations found :(", file=sys.stderr)
        return 0 if a.noneok else 1
    if kind == "optimal":
        best = optimal_executions(rows, a.top_n)
        print(f"Best sample rate: {best[0][1]['sample_rate']}", file=sys.stderr)
        write_optimal(best, a.output)
    else:
        write_all(rows, a.output)
    print(f"Output: {a.output}", file=sys.stderr)
    return 0
