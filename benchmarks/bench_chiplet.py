"""Throughput of the chiplet (MCM) model: exact evaluations per second under ``jit(vmap)``.

Each evaluation is one complete package: a random non-uniform partition of every layer group, random strategies,
diagonal pattern and memory placement, all layers of the workload (ResNet-50: 54 layers, ViT-B/16: 74 layers),
link loads, congestion and the energy/latency breakdown. Run:

    python benchmarks/bench_chiplet.py [--batch 1024] [--repeats 5] [--json]
    python benchmarks/bench_chiplet.py --study     # the lever study's evaluator and one full study per workload

``--study`` measures :class:`diffsys.problems.LeverStudy` (batch-1 workloads, 4×4, redistribution routes built,
package chosen per design): lattice points per second of its compiled evaluator, its compile time, and the wall time
of :func:`diffsys.problems.mcm_lever_study` (GA and exact for every lever), i.e. the cost of ``examples/mcm_edp.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax

from diffsys import chiplet


def bench(workload="resnet50", n=2, batch=1024, repeats=5, fixed_pattern=False, seed=0):
    w = chiplet.workload(workload, batch=8)
    graph = chiplet.D2DGraph.build(n, n, patterns=["none"] if fixed_pattern else None, placements="edge")
    model = chiplet.MCMModel(w, graph)
    pk = chiplet.ChipletPackage.split(n * n, "organic")
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(seed), 4)
    d = chiplet.MCMDesign(
        partition_logits=jax.random.normal(k1, (batch, model.num_groups, n * n)),
        strategy=jax.random.randint(k2, (batch, model.num_groups), 0, 3).astype(float),
        diagonals=jax.random.randint(k3, (batch,), 0, len(graph.pattern_names)).astype(float),
        memory=jax.random.randint(k4, (batch,), 0, len(graph.placement_names)).astype(float))
    f = jax.jit(jax.vmap(lambda x: model(x, pk).edp_Js))
    t = time.perf_counter()
    f(d).block_until_ready()
    compile_s = time.perf_counter() - t
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        f(d).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return {"workload": workload, "grid": f"{n}x{n}", "links": graph.num_links, "patterns": len(graph.pattern_names),
                "batch": batch, "evals_per_s": batch / best, "compile_s": round(compile_s, 2)}


def bench_study(workload="resnet50", n=4, points=1024, repeats=3, seed=0):
    import numpy as np

    from diffsys import problems

    w = chiplet.workload(workload, batch=1)
    t = time.perf_counter()
    st = problems.LeverStudy(w, n, n)
    compile_s = time.perf_counter() - t
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, st.sizes, (points, len(st.sizes)))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        st.edp(pts)
        best = min(best, time.perf_counter() - t)
    t = time.perf_counter()
    problems.mcm_lever_study(w, n, n)
    study_s = time.perf_counter() - t
    return {"workload": workload, "grid": f"{n}x{n} (lever study)", "links": st.graph.num_links,
            "patterns": len(st.graph.pattern_names), "batch": st.batch, "evals_per_s": points / best,
            "compile_s": round(compile_s, 2), "study_s": round(study_s, 1)}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", action="store_true", help="only the lever-study rows")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    if args.study:
        rows = [bench_study(w) for w in ("resnet50", "vit_b16")]
    else:
        for workload in ("resnet50", "vit_b16"):
            for n in (2, 3, 4):
                rows.append(bench(workload, n, args.batch, args.repeats))
        rows.append({**bench("resnet50", 4, args.batch, args.repeats, fixed_pattern=True),
                     "grid": "4x4 (one pattern)"})
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    if args.json:
        print(json.dumps({"machine": machine, "rows": rows}, indent=1))
        return rows
    print(f"machine: {machine}")
    print(f"{'workload':<9} {'grid':<18} {'links':>5} {'patterns':>8} {'evals/s':>10} {'compile s':>9}")
    for r in rows:
        print(f"{r['workload']:<9} {r['grid']:<18} {r['links']:>5} {r['patterns']:>8} {r['evals_per_s']:>10.0f} "
              f"{r['compile_s']:>9.2f}" + (f"  study {r['study_s']} s" if "study_s" in r else ""))
    return rows


if __name__ == "__main__":
    main()
