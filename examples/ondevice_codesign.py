"""On-device LLM co-design: the best language-model shape under a decode-latency budget on a Jetson AGX Orin.

Quality comes from the Chinchilla scaling law, the parametric fit of Hoffmann et al., "Training compute-optimal
large language models", NeurIPS 2022 (Eq. 10, "Approach 3"):

    L(N, D) = E + A / N^α + B / D^β,   E = 1.69, A = 406.4, B = 410.7, α = 0.34, β = 0.28,

with N parameters (here ``12·L·d² + V·d``: attention + MLP blocks of width ``4d``, tied embedding of a 32k
vocabulary) and D training tokens (fixed at 2·10¹² — on-device models are trained far past compute-optimal).

Speed is the roofline time of one decode step at batch 1 with a 2,048-token KV cache on the Jetson AGX Orin preset
(fp16 weights streamed from LPDDR5; FLOPs on the fp16 tensor cores), plus a kernel-launch overhead per layer; the
KV-cache reads lose efficiency as heads get narrower (a per-head fixed cost of 16 elements per access). Head
dimension must lie in [32, 256].

The script sweeps the whole shape space (d_model × layers × heads) with ``diffsys.optimize.sweep`` to get the exact
loss-vs-latency Pareto front, then runs ``gradient_search`` for several latency budgets and checks it lands on the
front; the plot (``ondevice_codesign.png``) shows both. The scaling law only knows N and D, so shape matters only
through latency: this is a co-design of *speed* for a given quality, not a claim about shape effects on loss.

    python examples/ondevice_codesign.py [--out ondevice_codesign.png]
"""

from __future__ import annotations

import argparse
import functools
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import diffsys
from diffsys import Metrics
from diffsys.optimize import Problem, gradient_search, sweep
from diffsys.primitives import relu
from diffsys.roofline import roofline
from diffsys.space import DesignSpace, Integer, PowerOfTwo

# Hoffmann et al. 2022, Eq. 10 (Approach 3 fit)
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28
VOCAB, CONTEXT, TOKENS = 32_000, 2048, 2e12
LAUNCH_S_PER_LAYER = 6 * 5e-6  # ~6 kernels per layer at ~5 µs launch each on Jetson-class GPUs

ORIN = diffsys.hardware.preset("jetson_orin")
PEAK, BW = float(ORIN.peak_flops("fp16")), float(ORIN.main_memory.bandwidth_Bps)


class LMShape(eqx.Module):
    """A decoder's width, depth and head count (float leaves)."""

    d_model: float = 1024.0
    n_layers: float = 12.0
    n_heads: float = 16.0


class LMMetrics(Metrics):
    loss: jnp.ndarray
    latency_s: jnp.ndarray
    params: jnp.ndarray


def lm_model(design: LMShape, *, temperature=0.0, budget_s=None) -> LMMetrics:
    d, layers, heads = design.d_model, design.n_layers, design.n_heads
    n = 12.0 * layers * d**2 + VOCAB * d
    loss = E + A / n**ALPHA + B / TOKENS**BETA
    head_dim = d / heads
    kv_B = 2.0 * layers * CONTEXT * d * 2.0
    kv_eff = head_dim / (head_dim + 16.0)
    flops = 2.0 * n + 4.0 * layers * CONTEXT * d
    bytes_moved = 2.0 * n + kv_B / kv_eff
    r = roofline(flops, bytes_moved, PEAK, BW, compute_efficiency=0.6, memory_efficiency=0.8,
                 temperature=temperature)
    latency = r.time_s + layers * LAUNCH_S_PER_LAYER
    ratios = [32.0 / head_dim, head_dim / 256.0]
    if budget_s is not None:
        ratios.append(latency / budget_s)
    ratios = jnp.stack(ratios)
    return LMMetrics(loss, latency, n, violation=jnp.sum(relu(ratios - 1.0, 0.01 * temperature)),
                     feasible=jnp.all(ratios <= 1.0))


def shape_space() -> DesignSpace:
    return DesignSpace({"d_model": Integer(256, 4096, step=128), "n_layers": Integer(2, 48),
                        "n_heads": PowerOfTwo(2, 64)}, base=LMShape())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budgets-ms", default="5,10,20,40", help="decode latency budgets (ms per token)")
    ap.add_argument("--out", default="ondevice_codesign.png")
    args = ap.parse_args(argv)
    space = shape_space()
    t0 = time.perf_counter()
    res = sweep(lm_model, space, objective="loss", pareto=("loss", "latency_s"), top_k=1, progress=False)
    front = np.asarray(res.pareto_objectives)
    order = np.argsort(front[:, 1])
    front = front[order]
    print(f"swept {res.n_evaluated:,} shapes in {time.perf_counter() - t0:.2f} s; Pareto front has {len(front)} points")
    rows = []
    for b_ms in map(float, args.budgets_ms.split(",")):
        budget = b_ms * 1e-3

        problem = Problem(functools.partial(lm_model, budget_s=budget), space, objective="loss",
                          name=f"lm@{b_ms}ms")
        g = gradient_search(problem, key=jax.random.key(0), n_starts=8, steps=150)
        ok = front[:, 1] <= budget
        exact = float(front[ok, 0].min()) if ok.any() else float("nan")
        m = lm_model(space.apply({k: jnp.float32(v) for k, v in g.point.items()}))
        rows.append((b_ms, g, float(m.latency_s), exact))
        lab = space.label(g.point)
        print(f"budget {b_ms:5.1f} ms: gradient search loss {g.objective:.4f} (exhaustive {exact:.4f}) "
              f"d_model={lab['d_model']} layers={lab['n_layers']} heads={lab['n_heads']} "
              f"N={float(m.params) / 1e6:.0f}M latency {1e3 * float(m.latency_s):.2f} ms, "
              f"{g.evaluations} evaluations")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.8, 4.2))
    ax.step(1e3 * front[:, 1], front[:, 0], where="post", label="exact Pareto front (sweep)")
    ax.plot([1e3 * r[2] for r in rows], [r[1].objective for r in rows], "o", label="gradient search per budget")
    for b_ms, *_ in rows:
        ax.axvline(b_ms, color="grey", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("decode latency per token on Jetson AGX Orin (ms, roofline)")
    ax.set_ylabel("Chinchilla loss L(N, D = 2T tokens)")
    ax.set_title("On-device LM co-design: loss vs latency")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
