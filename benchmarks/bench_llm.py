"""Training-step sweep throughput and compile time (diffsys.llm.training_step, float32, full model).

The design space is the ``diffsys sweep`` default: GPT-3 175B on 1,024 H100s over TP × PP × microbatch ×
interleave × recompute × ZeRO × SP × NVLink × NIC × HBM capacity × HBM bandwidth (2,540,160 grid points). Every
point evaluates the whole model: per-layer GEMM rooflines, TP/PP/DP/EP/CP collectives on the two-level network,
ZeRO/recompute memory, feasibility, MFU, energy and cost.

Measured:
- ``model``: ``jit(vmap(training_design_metrics))`` on a batch of sampled points, reduced to (min time, #feasible);
- ``sweep top-k``: :func:`diffsys.optimize.sweep` over the full grid, top-10 (grid decoding inside jit);
- ``sweep top-k + Pareto``: the same plus the step-time/capex Pareto front (what ``diffsys sweep`` runs).
Each is run twice; the first call includes compilation (reported as compile time = first − second).

    python benchmarks/bench_llm.py            # ~2 min on 2 shared cores
    python benchmarks/bench_llm.py --model-only --batch 16384   # the model row only
    python benchmarks/bench_llm.py --space full_stack   # llm.full_stack_space (collective algorithm per dimension,
                                                        # scale-up domain size; 1,451,520 points)
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import jax.numpy as jnp

from diffsys import llm
from diffsys.optimize import sweep


def bench_model(space, n):
    """Evaluations/s of the compiled batch and its first-call cost (trace + lower + compile); prints the program size
    (StableHLO characters) and the trace/lower and XLA compile times separately."""
    pts = space.sample(jax.random.PRNGKey(0), n)

    def run(p):
        m = jax.vmap(lambda q: llm.training_design_metrics(space.apply(q)))(p)
        return jnp.min(jnp.where(m["feasible"], m["time_s"], jnp.inf)), jnp.sum(m["feasible"])

    t0 = time.perf_counter()
    lowered = jax.jit(run).lower(pts)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    jax.block_until_ready(compiled(pts))
    first = time.perf_counter() - t0
    print(f"program: {len(lowered.as_text()):,} StableHLO characters; trace + lower {t1 - t0:.1f} s, "
          f"XLA compile {t2 - t1:.1f} s")
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(pts))
        best = min(best, time.perf_counter() - t0)
    return n / best, first - best


def bench_sweep(space, pareto):
    kw = dict(top_k=10, pareto=("time_s", "capex_usd") if pareto else None, chunk_size=1 << 16, progress=False)
    t0 = time.perf_counter()
    sweep(llm.training_model, space, "time_s", **kw)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = sweep(llm.training_model, space, "time_s", **kw)
    second = time.perf_counter() - t0
    return res.n_evaluated / second, first - second, res


CALCULON_CONFIGS_PER_S = 440.0  # Calculon's own search on the 2-core reference machine (measured figure)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1 << 18)
    ap.add_argument("--model-only", action="store_true", help="only the jit(vmap(training_design_metrics)) row")
    ap.add_argument("--space", choices=("default", "full_stack"), default="default",
                    help="default: the diffsys sweep default space; full_stack: llm.full_stack_space")
    args = ap.parse_args()
    space = llm.default_training_space() if args.space == "default" else llm.full_stack_space()
    print(f"machine: {platform.machine()} {platform.processor() or ''} devices={jax.devices()}")
    print(f"space: {space.size:,} points")
    rate, comp = bench_model(space, args.batch)
    print(f"| model: jit(vmap(training_design_metrics)) | {args.batch:,} | {rate:.2e} | {comp:.1f} s |")
    if args.model_only:
        return
    rate, comp, res = bench_sweep(space, pareto=False)
    print(f"| sweep, top-10 | {res.n_evaluated:,} | {rate:.2e} | {comp:.1f} s |")
    rate, comp, res = bench_sweep(space, pareto=True)
    print(f"| sweep, top-10 + Pareto (diffsys sweep default) | {res.n_evaluated:,} | {rate:.2e} | {comp:.1f} s |")
    print(f"peer: Calculon's brute-force search ≈ {CALCULON_CONFIGS_PER_S:.0f} configs/s on the 2-core reference CPU "
          f"-> ratio {rate / CALCULON_CONFIGS_PER_S:,.0f}x")
    best = res.labels()[0]
    print(f"best: {best['time_s']:.3f} s/step, tp={best['par.tp']} pp={best['par.pp']} mb={best['par.microbatch']}")


if __name__ == "__main__":
    main()
