"""Search methods vs the exhaustive sweep on the embedded problems.

For each problem: the exhaustive optimum (``diffsys.optimize.sweep`` over the full grid), then gradient search
(several seeds), the GA + CMA-ES, and sequential MIQP with both sub-problem solvers (batched JAX enumeration and
SCIP). Reports best objective, gap to the exhaustive optimum, evaluations (and their share of the grid) and wall
time (compilation included). Continuous parameters are searched continuously by the methods, so they can beat the
grid optimum slightly (negative gap).

    python benchmarks/bench_optimize.py [--problems edge_soc,systolic,llm] [--seeds 3] [--json out.json]

``--exact`` runs the exact-MIQP comparison instead (:func:`run_exact`): per problem the exhaustive sweep, then
``exact_search`` by enumeration, by interval branch-and-bound and by SCIP's tabulated-term MILP (where the problem
splits into small terms), beside one GA + CMA-ES run and one gradient search; it prints the docs/optimize.md table.

    python benchmarks/bench_optimize.py --exact [--problems toy,edge_soc,systolic,accelerator,llm] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import numpy as np

from diffsys.optimize import evolutionary_search, exact_search, gradient_search, miqp_search, sweep
from diffsys.problems import accelerator_problem
from diffsys.problems import problem as get_problem


def _get(name):
    return accelerator_problem() if name == "accelerator" else get_problem(name)


def exhaustive(problem):
    t0 = time.perf_counter()
    res = sweep(problem, top_k=1, progress=False)
    return {"best": float(res.top_objective[0]), "evaluations": int(res.n_evaluated),
            "seconds": time.perf_counter() - t0, "evals_per_s": res.evals_per_s}


def run(problems, seeds, methods):
    rows = []
    for name in problems:
        pb = get_problem(name)
        ex = exhaustive(pb)
        print(f"\n## {name}: {pb.space.size:,} designs, exhaustive best {ex['best']:.6g} in {ex['seconds']:.1f} s "
              f"({ex['evals_per_s']:.3g} evaluations/s)")
        rows.append({"problem": name, "method": "exhaustive", **ex, "gap_percent": 0.0})
        for method in methods:
            for seed in range(seeds if method == "gradient" else 1):
                key = jax.random.key(seed)
                if method == "gradient":
                    r = gradient_search(pb, key=key, raise_on_infeasible=False)
                elif method == "evolutionary":
                    r = evolutionary_search(pb, key=key, raise_on_infeasible=False)
                elif method == "miqp-jax":
                    r = miqp_search(pb, key=key, solver="jax", raise_on_infeasible=False)
                else:
                    r = miqp_search(pb, key=key, solver="scip", raise_on_infeasible=False)
                gap = 100 * (r.objective - ex["best"]) / abs(ex["best"]) if r.feasible else float("inf")
                row = {"problem": name, "method": method, "seed": seed, "best": r.objective,
                       "evaluations": r.evaluations, "seconds": r.seconds, "gap_percent": gap,
                       "evaluations_percent": 100 * r.evaluations / ex["evaluations"], "feasible": r.feasible}
                rows.append(row)
                print(f"{method:<13} seed {seed}: best {r.objective:.6g} gap {gap:+.2f}%  {r.evaluations:,} evals "
                      f"({row['evaluations_percent']:.3f}% of grid)  {r.seconds:.1f} s")
    return rows


def run_exact(problems, bnb_time_limit_s=600.0, fine_grid=256, fine_problems=("toy", "edge_soc", "systolic",
                                                                               "accelerator")):
    """Exact MIQP (enumeration, branch-and-bound, SCIP) vs the exhaustive sweep, GA + CMA-ES and gradient search;
    on ``fine_problems`` also branch-and-bound with every continuous domain refined to ``fine_grid`` values."""
    rows = []
    for name in problems:
        pb = _get(name)
        ex = exhaustive(pb)
        row = {"problem": name, "designs": pb.space.size, "exhaustive": ex["best"], "exhaustive_s": ex["seconds"]}
        for solver in ("enumerate", "bnb", "scip"):
            try:
                r = exact_search(pb, solver=solver, time_limit_s=bnb_time_limit_s if solver == "bnb" else None,
                                 raise_on_infeasible=False)
            except ValueError as e:  # SCIP: the model does not split into small terms
                row[solver] = {"refused": str(e).split(":")[1].strip()[:80]}
                print(f"{name} {solver}: refused ({e})")
                continue
            row[solver] = {"best": r.objective, "bound": r.bound, "gap_proven_percent": 100 * r.gap,
                           "gap_to_exhaustive_percent": 100 * (r.objective - ex["best"]) / abs(ex["best"]),
                           "seconds": r.seconds, "time_to_incumbent_s": r.time_to_incumbent_s,
                           "evaluations": r.evaluations, "pruned_points": r.pruned_points, "nodes": r.nodes}
            print(f"{name} {solver}: {r.objective:.6g} bound {r.bound:.6g} gap {100 * r.gap:.3g} % "
                  f"(vs exhaustive {row[solver]['gap_to_exhaustive_percent']:+.2g} %) {r.seconds:.1f} s, "
                  f"{r.evaluations:,} evaluations, {r.pruned_points:,} pruned")
        if name in fine_problems:
            r = exact_search(pb, solver="bnb", continuous_grid=fine_grid, time_limit_s=bnb_time_limit_s)
            row["bnb_fine"] = {"best": r.objective, "gap_proven_percent": 100 * r.gap, "seconds": r.seconds,
                               "designs": int(np.prod([fine_grid if type(d).__name__ == "Continuous" else d.size
                                                       for d in pb.space.params.values()])),
                               "continuous_bound": (r.trajectory or {}).get("continuous_bound", r.bound),
                               "gap_to_exhaustive_percent": 100 * (r.objective - ex["best"]) / abs(ex["best"])}
            print(f"{name} bnb continuous_grid={fine_grid}: {r.objective:.6g} gap {100 * r.gap:.3g} % "
                  f"({row['bnb_fine']['gap_to_exhaustive_percent']:+.2f} % vs the coarse grid) {r.seconds:.1f} s; "
                  f"continuous bound {row['bnb_fine']['continuous_bound']:.6g}")
        for method, fn in (("ga", evolutionary_search), ("gradient", gradient_search)):
            r = fn(pb, key=jax.random.key(0), raise_on_infeasible=False)
            row[method] = {"best": r.objective, "seconds": r.seconds, "evaluations": r.evaluations,
                           "gap_to_exhaustive_percent": 100 * (r.objective - ex["best"]) / abs(ex["best"])}
            print(f"{name} {method}: {r.objective:.6g} ({row[method]['gap_to_exhaustive_percent']:+.2f} %) "
                  f"{r.seconds:.1f} s")
        rows.append(row)
    print("\n| problem | designs | exhaustive optimum | MIQP optimum (enumeration / B&B / SCIP) | proven gap | "
          "time to proof, s (enumeration / B&B / SCIP) | B&B points pruned | GA + CMA-ES | gradient |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ok = [r[s] for s in ("enumerate", "bnb", "scip") if "best" in r[s]]
        same = all(abs(o["best"] - r["exhaustive"]) <= 1e-6 * abs(r["exhaustive"]) for o in ok)
        gaps = max(o["gap_proven_percent"] for o in ok)
        times = " / ".join(f"{r[s]['seconds']:.1f}" if "best" in r[s] else "—" for s in ("enumerate", "bnb", "scip"))
        bnb = r["bnb"]
        pruned = f"{100 * bnb['pruned_points'] / r['designs']:.0f} %" if "best" in bnb else "—"
        ga, gr = r["ga"], r["gradient"]
        print(f"| `{r['problem']}` | {r['designs']:,} | {r['exhaustive']:.6g} | {ok[0]['best']:.6g} "
              f"({'all equal' if same else 'DIFFER'}; SCIP {'yes' if 'best' in r['scip'] else 'does not split'}) | "
              f"{gaps:.2g} % | {times} | {pruned} | {ga['best']:.6g} ({ga['gap_to_exhaustive_percent']:+.2f} %)"
              f" | {gr['best']:.6g} ({gr['gap_to_exhaustive_percent']:+.2f} %) |")
    print(f"\n| problem | B&B on a {fine_grid}-value continuous grid: optimum (vs coarse grid) | proven gap | s | "
          "lower bound, continuous parameters free |")
    print("|---|---|---|---|---|")
    for r in rows:
        if "bnb_fine" in r:
            f = r["bnb_fine"]
            print(f"| `{r['problem']}` ({f['designs']:,} designs) | {f['best']:.6g} "
                  f"({f['gap_to_exhaustive_percent']:+.2f} %) | {f['gap_proven_percent']:.2g} % | {f['seconds']:.1f} | "
                  f"{f['continuous_bound']:.6g} |")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", default="edge_soc,systolic,llm")
    ap.add_argument("--methods", default="gradient,evolutionary,miqp-jax,miqp-scip")
    ap.add_argument("--seeds", type=int, default=3, help="gradient-search seeds")
    ap.add_argument("--json", help="write the rows to this file")
    ap.add_argument("--exact", action="store_true", help="the exact-MIQP comparison (run_exact)")
    args = ap.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}, "
          f"jax {jax.__version__}")
    if args.exact:
        rows = run_exact(args.problems.split(","))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1, default=float)
        return
    rows = run(args.problems.split(","), args.seeds, args.methods.split(","))
    print("\n| problem | method | best | gap to exhaustive | evaluations (% of grid) | seconds |")
    print("|---|---|---|---|---|---|")
    for name in dict.fromkeys(r["problem"] for r in rows):
        for method in dict.fromkeys(r["method"] for r in rows if r["problem"] == name):
            rs = [r for r in rows if r["problem"] == name and r["method"] == method]
            gaps = np.array([r["gap_percent"] for r in rs])
            ev = np.median([r["evaluations"] for r in rs])
            pct = np.median([r.get("evaluations_percent", 100.0) for r in rs])
            gap_s = (f"{np.median(gaps):+.2f}% (worst {gaps.max():+.2f}%, {len(rs)} seeds)" if len(rs) > 1
                     else f"{gaps[0]:+.2f}%")
            print(f"| {name} | {method} | {np.median([r['best'] for r in rs]):.5g} | {gap_s} | {ev:,.0f} ({pct:.3f}%) "
                  f"| {np.median([r['seconds'] for r in rs]):.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, default=float)


if __name__ == "__main__":
    main()
