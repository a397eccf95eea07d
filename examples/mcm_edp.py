"""EdP improvement of co-optimized chiplet packages over the uniform-partition, mesh-only baseline.

For ResNet-50 and ViT-B/16 (batch 8) on 4 (2x2), 9 (3x3) and 16 (4x4) chiplets with organic-substrate or
silicon-interposer die-to-die links, run GA, MIQP and gradient search (``diffsys.problems.optimize_mcm``) and print the
baseline EdP, each method's EdP (re-evaluated by the exact model at the discretized design), the improvement, the
evaluations used and the wall time.

    python examples/mcm_edp.py                      # the table with GA and MIQP, quick search budgets
    python examples/mcm_edp.py --methods ga miqp gradient   # adds gradient search (slower)
    python examples/mcm_edp.py --json               # machine-readable rows
    python examples/mcm_edp.py --chiplets 4 --workloads resnet50 --methods ga
    python examples/mcm_edp.py --budget default     # larger budgets (several minutes per row)
    python examples/mcm_edp.py --chiplets 16 --workloads resnet50 --packaging organic --figures docs/img
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax

from diffsys import chiplet, problems

GRIDS = {4: (2, 2), 9: (3, 3), 16: (4, 4)}


def run(workloads, chiplets, packagings, methods, budget="quick", batch=8, seed=0, progress=None, figures=None):
    rows = []
    for wname in workloads:
        work = chiplet.workload(wname, batch=batch)
        for n in chiplets:
            r, c = GRIDS[n]
            graph = chiplet.D2DGraph.build(r, c, routing="shortest", placements="edge")
            model = chiplet.MCMModel(work, graph)
            for tech in packagings:
                package = chiplet.ChipletPackage.split(n, tech)
                designs = {"baseline": chiplet.baseline(model, package)[0]}
                for method in methods:
                    res = problems.optimize_mcm(model, package, method, key=jax.random.PRNGKey(seed), budget=budget)
                    row = {"workload": wname, "chiplets": n, "packaging": tech, "method": method, "edp": res.edp,
                               "baseline_edp": res.baseline_edp, "improvement": res.improvement,
                               "evaluations": res.evaluations, "seconds": round(res.seconds, 2),
                               "diagonals": res.label["diagonals"], "memory": res.label["memory"],
                               "strategies": {k.split(".", 1)[1]: v for k, v in res.label.items()
                                           if k.startswith("strategy.")}}
                    rows.append(row)
                    designs[f"{method} ({res.improvement:.2f}x)"] = res.design
                    if progress:
                        progress(row)
                if figures:
                    chiplet.save_figures(model, designs, package, f"{figures}/chiplet_{wname}_{n}_{tech}.png")
    return rows


def format_table(rows):
    head = (f"{'workload':<9} {'n':>3} {'packaging':<10} {'method':<12} {'baseline EdP (J·s)':>18} "
            f"{'EdP (J·s)':>11} {'improv.':>8} {'evals':>6} {'seconds':>8}  design")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['workload']:<9} {r['chiplets']:>3} {r['packaging']:<10} {r['method']:<12} "
                     f"{r['baseline_edp']:>18.4e} {r['edp']:>11.4e} {r['improvement']:>7.3f}x {r['evaluations']:>6} "
                     f"{r['seconds']:>8.1f}  diag={r['diagonals']}, mem={r['memory']}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", nargs="+", default=["resnet50", "vit_b16"], choices=["resnet50", "vit_b16"])
    ap.add_argument("--chiplets", nargs="+", type=int, default=[4, 9, 16], choices=sorted(GRIDS))
    ap.add_argument("--packaging", nargs="+", default=["organic", "interposer"], choices=list(chiplet.PACKAGING_NAMES))
    ap.add_argument("--methods", nargs="+", default=["ga", "miqp"], choices=list(problems.MCM_METHODS),
                    help="search methods (default ga miqp; add gradient / ga+gradient, slower)")
    ap.add_argument("--budget", default="quick", choices=["quick", "default"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    ap.add_argument("--figures", metavar="DIR", help="save package diagrams and link-load heat maps (PNG) here")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()

    def progress(row):  # on stderr, so --json output stays clean
        print(f"  {row['workload']} n={row['chiplets']} {row['packaging']} {row['method']}: "
              f"{row['improvement']:.3f}x ({row['seconds']:.1f} s)", file=sys.stderr, flush=True)

    rows = run(args.workloads, args.chiplets, args.packaging, args.methods, args.budget, args.batch, args.seed,
               progress, args.figures)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(format_table(rows))
        print(f"\n{len(rows)} searches in {time.perf_counter() - t0:.0f} s; EdP re-evaluated by the exact model.")
    return rows


if __name__ == "__main__":
    main()
