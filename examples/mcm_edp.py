"""EdP gains of chiplet-package co-optimization levers over the paper's baseline (uniform partition on a mesh).

For ResNet-50 and ViT-B/16 at batch 1 (one 224² image; ViT: 197 tokens), a regime where die-to-die communication is
a third to two thirds of the baseline latency, on a 4×4 grid of chiplets (fixed total silicon, organic substrate
unless the packaging lever changes it), run for every lever — strategy per group, diagonal links, on-chip
redistribution, non-uniform partitioning, memory placement, packaging technology, all levers — a GA and an exact
search (exhaustive enumeration of the lever's lattice; block-coordinate exact for the combined levers), see
``diffsys.problems.LeverStudy``. Every EdP is the exact model at the returned lattice point.

    python examples/mcm_edp.py                       # the table (about 1-3 min on 2 CPU cores)
    python examples/mcm_edp.py --json                # machine-readable rows: GA and exact per workload and lever
    python examples/mcm_edp.py --figures docs/img    # also the bar chart and the package / link-load figure
    python examples/mcm_edp.py --overlap 1           # transfers hidden behind compute (double buffering)
    python examples/mcm_edp.py --chiplets 9 --batch 8
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from diffsys import chiplet, problems

GRIDS = {4: (2, 2), 9: (3, 3), 16: (4, 4)}
PAPER = {"ga": 1.58, "exact": 2.7}  # arXiv 2505.00041, abstract: "up to 1.58x (GA) and 2.7x (MIQP) EdP"


def run(workloads, chiplets=16, batch=1, overlap=0.0, seed=0, progress=None, figures=None):
    r, c = GRIDS[chiplets]
    rows, baselines = [], []
    for wname in workloads:
        work = chiplet.workload(wname, batch=batch)
        study, lever_rows = problems.mcm_lever_study(work, r, c, overlap=overlap, seed=seed, progress=progress)
        b = study.breakdown(study.baseline_point)
        baselines.append({"workload": wname, "chiplets": chiplets, "batch": batch,
                          "baseline": study.label(study.baseline_point), "compile_seconds":
                          round(study.compile_seconds, 1), **b})
        rows += lever_rows
        if figures:
            best = max(lever_rows, key=lambda x: x["exact"] if x["lever"] == "all" else 0)
            designs = {"baseline": study.design(study.baseline_point)[0],
                       f"GA, all levers ({best['ga']:.2f}x)": study.design(best["ga_point"])[0],
                       f"exact, all levers ({best['exact']:.2f}x)": study.design(best["exact_point"])[0]}
            package = study.design(study.baseline_point)[1]
            chiplet.save_figures(study.model, designs, package, f"{figures}/chiplet_{wname}_{chiplets}_levers.png")
    if figures:
        chiplet.plot_lever_gains(rows, paper=PAPER, path=f"{figures}/chiplet_levers.png")
    return rows, baselines


def format_table(rows, baselines):
    lines = []
    for b in baselines:
        lines.append(f"{b['workload']} (batch {b['batch']}, {b['chiplets']} chiplets): baseline EdP {b['edp_Js']:.3e} J*s, "
                     f"latency {b['latency_s'] * 1e6:.1f} us, compute {100 * b['compute_share']:.0f} % / "
                     f"communication {100 * b['communication_share']:.0f} % of latency, D2D+on-chip transport "
                     f"{100 * b['d2d_energy_share']:.0f} % of energy; strategy {set(b['baseline']['strategies'].values())}")
    head = (f"{'workload':<9} {'lever':<30} {'points':>7} {'GA':>7} {'evals':>6} {'exact':>7} {'evals':>6}  "
            f"exact design")
    lines += ["", head, "-" * len(head)]
    for r in rows:
        d = r["exact_design"]
        what = {"mapping": lambda: ",".join(s[0] for s in d["strategies"].values()),
                "diagonals": lambda: f"{d['diagonals']}, share {d['diagonal_share']}",
                "redistribution": lambda: f"rho {d['redistribution']}",
                "non_uniform": lambda: ",".join(f"{v:+.2f}" for v in d["affinity"].values()),
                "memory": lambda: d["memory"], "packaging": lambda: d["packaging"]}.get(
            r["lever"], lambda: (f"{','.join(s[0] for s in d['strategies'].values())}; {d['diagonals']} "
                                 f"{d['diagonal_share']}; rho {d['redistribution']}; {d['memory']}; {d['packaging']}"))()
        lines.append(f"{r['workload']:<9} {r['title']:<30} {r['lattice_points']:>7} {r['ga']:>6.3f}x "
                     f"{r['ga_evaluations']:>6} {r['exact']:>6.3f}x {r['exact_evaluations']:>6}  {what}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", nargs="+", default=["resnet50", "vit_b16"], choices=["resnet50", "vit_b16"])
    ap.add_argument("--chiplets", type=int, default=16, choices=sorted(GRIDS))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--overlap", type=float, default=0.0, help="ChipletPackage.overlap (0: no double buffering)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    ap.add_argument("--figures", metavar="DIR", help="save the lever bar chart and package figures (PNG) here")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()

    def progress(row):  # on stderr, so --json output stays clean
        print(f"  {row['workload']} {row['lever']}: GA {row['ga']:.3f}x, exact {row['exact']:.3f}x "
              f"({row['ga_seconds'] + row['exact_seconds']:.1f} s)", file=sys.stderr, flush=True)

    rows, baselines = run(args.workloads, args.chiplets, args.batch, args.overlap, args.seed, progress, args.figures)
    seconds = time.perf_counter() - t0
    if args.json:
        print(json.dumps({"baselines": baselines, "rows": rows, "seconds": round(seconds, 1)}, indent=1))
    else:
        print(format_table(rows, baselines))
        print(f"\n{seconds:.0f} s in all; EdP re-evaluated by the exact model at every returned design.")
    return rows


if __name__ == "__main__":
    main()
