"""Search methods vs the exhaustive sweep on the embedded problems.

For each problem: the exhaustive optimum (``diffsys.optimize.sweep`` over the full grid), then gradient search
(several seeds), the GA + CMA-ES, and sequential MIQP with both sub-problem solvers (batched JAX enumeration and
SCIP). Reports best objective, gap to the exhaustive optimum, evaluations (and their share of the grid) and wall
time (compilation included). Continuous parameters are searched continuously by the methods, so they can beat the
grid optimum slightly (negative gap).

    python benchmarks/bench_optimize.py [--problems edge_soc,systolic,llm] [--seeds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import numpy as np

from diffsys.optimize import evolutionary_search, gradient_search, miqp_search, sweep
from diffsys.problems import problem as get_problem


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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", default="edge_soc,systolic,llm")
    ap.add_argument("--methods", default="gradient,evolutionary,miqp-jax,miqp-scip")
    ap.add_argument("--seeds", type=int, default=3, help="gradient-search seeds")
    ap.add_argument("--json", help="write the rows to this file")
    args = ap.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}, "
          f"jax {jax.__version__}")
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
