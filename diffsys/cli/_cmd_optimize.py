"""``diffsys optimize``: run gradient, evolutionary, exact-MIQP and trust-region search and the exhaustive sweep on the
same problem, and print a comparison table (best objective, gap to the exhaustive optimum, evaluations used, wall
time; the exact MIQP also reports its proven lower bound and gap).

Problems (``--problem``): ``edge_soc`` (default; energy per token of LLM decode on an edge SoC, 387,072 designs),
``systolic`` (EDP of a transformer layer on systolic-array accelerators, 379,080 designs), ``llm`` (GPT-3 175B
training parallelism × hardware, 2,540,160 designs), ``toy`` (3,528 designs).
``--json`` prints ``{"exhaustive_best": ..., "<method>": {"best", "evaluations", "seconds", ...}, ...}``; the
``miqp`` row (:func:`diffsys.optimize.exact_search`) adds ``bound`` (proven lower bound), ``gap_percent_proven``,
``solver`` and ``proof``; ``trust_region`` is the local sequential MIQP heuristic (:func:`miqp_search`).
"""

from __future__ import annotations

import json
import sys
import time

from .._checks import SEED_MAX, arg_number, check_name, with_suggestion

METHODS = ("gradient", "evolutionary", "miqp", "trust_region")
EXACT_SOLVERS = ("auto", "enumerate", "bnb", "scip")


def register(subparsers):
    p = subparsers.add_parser(
        "optimize", help="compare gradient, evolutionary, exact MIQP and trust-region search with the exhaustive sweep",
        description=__doc__.split("\n\n")[0])
    p.add_argument("--problem", default="edge_soc", help="edge_soc (default), systolic, llm, toy or edge_orchestration")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated subset of {','.join(METHODS)} (default: all)")
    p.add_argument("--seed", type=arg_number("--seed", 0, SEED_MAX, integer=True), default=0,
                   help="PRNG seed in [0, 2^63-1] (results are deterministic given the seed)")
    p.add_argument("--exact-solver", default="auto", choices=EXACT_SOLVERS,
                   help="exact MIQP (method miqp): auto (enumeration up to 1e7 designs, else branch-and-bound), "
                        "enumerate, bnb (interval-bound branch-and-bound) or scip (tabulated-term MILP, the [miqp] "
                        "extra; only problems that split into small terms)")
    p.add_argument("--miqp-solver", default=_default_miqp_solver(), choices=("scip", "jax"),
                   help="trust-region sub-problem solver: SCIP (the [miqp] extra; default when installed) or jax "
                        "(batched enumeration)")
    p.add_argument("--no-exhaustive", action="store_true", help="skip the exhaustive sweep")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.set_defaults(func=run)
    return p


def _default_miqp_solver() -> str:
    """SCIP when PySCIPOpt (the ``[miqp]`` extra) is installed, else the JAX-native solver."""
    import importlib.util

    return "scip" if importlib.util.find_spec("pyscipopt") is not None else "jax"


def _run_method(name, problem, key, args):
    from ..optimize import evolutionary_search, exact_search, gradient_search, miqp_search

    if name == "gradient":
        return gradient_search(problem, key=key, raise_on_infeasible=False)
    if name == "evolutionary":
        return evolutionary_search(problem, key=key, raise_on_infeasible=False)
    if name == "miqp":
        return exact_search(problem, key=key, solver=args.exact_solver, raise_on_infeasible=False)
    return miqp_search(problem, key=key, solver=args.miqp_solver, raise_on_infeasible=False)


def parse_methods(text: str) -> list:
    """The ``--methods`` list: known names, in order, without repeats; at least one."""
    methods = list(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    if not methods:
        raise ValueError(f"--methods must name at least one of {', '.join(METHODS)}; got {text!r}")
    for m in methods:
        check_name("--methods: method", m, METHODS)
    return methods


def run(args) -> int:
    import jax
    from tqdm import tqdm

    from ..optimize import sweep
    from ..problems import problem as get_problem

    methods = parse_methods(args.methods)
    try:
        problem = get_problem(args.problem)
    except ValueError as e:  # unknown problem: suggest the closest known name
        raise with_suggestion("--problem", e, args.problem) from None
    space = problem.space
    stages = ([] if args.no_exhaustive else ["exhaustive"]) + methods
    show = not (args.no_progress or args.json)
    bar = tqdm(stages, desc="optimize", disable=not show, file=sys.stderr, unit="method")
    results, exhaustive = {}, None
    key = jax.random.key(args.seed)
    for stage in bar:
        bar.set_description(f"optimize [{stage}]")
        if stage == "exhaustive":
            t0 = time.perf_counter()
            res = sweep(problem, top_k=1, progress=False, chunk_size=min(space.size, 65536))
            best = float(res.top_objective[0])
            exhaustive = {"best": best, "evaluations": int(res.n_evaluated), "seconds": time.perf_counter() - t0,
                          "feasible_points": int(res.n_feasible),
                          "point": space.label(res.best_point) if res.n_feasible else None}
        else:
            try:
                r = _run_method(stage, problem, jax.random.fold_in(key, METHODS.index(stage)), args)
            except ValueError as e:  # e.g. a problem SCIP's tabulated MILP cannot split
                raise ValueError(f"--methods {stage}: {e}") from None
            row = r.summary()
            row["point"] = space.label(r.point)
            row["method"] = r.method
            results[stage] = row
    bar.close()
    out = {"problem": problem.name, "objective": str(problem.objective), "space_size": space.size,
           "exhaustive_best": exhaustive["best"] if exhaustive else None}
    if exhaustive:
        out["exhaustive"] = exhaustive
    for name, row in results.items():
        if exhaustive and row["feasible"]:
            row["gap_percent"] = 100.0 * (row["best"] - exhaustive["best"]) / abs(exhaustive["best"])
            row["evaluations_percent"] = 100.0 * row["evaluations"] / exhaustive["evaluations"]
        out[name] = row
    if args.json:
        print(json.dumps(out, indent=2, default=float))
        return 0
    print(f"problem {problem.name}: minimize {problem.objective} over {space.size:,} designs")
    header = f"{'method':<14}{'best':>14}{'gap %':>9}{'evaluations':>13}{'% of grid':>11}{'seconds':>9}  feasible"
    print(header)
    print("-" * len(header))
    if exhaustive:
        print(f"{'exhaustive':<14}{exhaustive['best']:>14.6g}{0.0:>9.2f}{exhaustive['evaluations']:>13,}"
              f"{100.0:>11.2f}{exhaustive['seconds']:>9.2f}  {exhaustive['feasible_points']:,} feasible points")
    for name, row in results.items():
        gap = f"{row['gap_percent']:>9.2f}" if "gap_percent" in row else f"{'-':>9}"
        pct = f"{row['evaluations_percent']:>11.3f}" if "evaluations_percent" in row else f"{'-':>11}"
        print(f"{row['method']:<14}{row['best']:>14.6g}{gap}{row['evaluations']:>13,}{pct}{row['seconds']:>9.2f}"
              f"  {'yes' if row['feasible'] else 'NO'}")
    best_name = min(results, key=lambda k: results[k]["best"] if results[k]["feasible"] else float("inf"),
                    default=None)
    if "miqp" in results:
        row = results["miqp"]
        print(f"\nexact MIQP ({row['solver']}): proven lower bound {row['bound']:.6g}, gap "
              f"{row['gap_percent_proven']:.3g} % ({row['proof']}); time to the incumbent "
              f"{row['time_to_incumbent_s']:.2f} s, to the proof {row['seconds']:.2f} s")
    if best_name:
        print(f"\nbest design ({results[best_name]['method']}): {results[best_name]['point']}")
    return 0
