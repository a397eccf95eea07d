"""Scale-up vs scale-out: where fewer, larger-memory GPUs on one NVLink domain beat twice as many GPUs on a network.

The characterization of Go et al. ("Characterizing the efficiency of distributed training: a power, performance,
and thermal perspective", 2025; H100/H200/MI250) reports that scale-up systems with fewer, higher-memory GPUs can
outperform scale-out systems in communication-bound regimes, while in other cases scale-out wins. This example
finds that crossover with the training model: Llama-3 8B trained on

- *scale-up*: one HGX H200 node (8 GPUs, 141 GB HBM3e at 4.8 TB/s, every collective on NVLink), or
- *scale-out*: two HGX H100 nodes (16 GPUs, 80 GB at 3.35 TB/s) joined by a scale-out network of bandwidth ``B``
  per GPU per direction, swept from 0.1 GB/s (1 GbE shared by a node) to 100 GB/s (800 Gb/s per GPU).

Each system runs its own best execution at every ``B`` (exact enumeration of tp, pp, microbatch, recompute and
ZeRO stage; data parallelism fills the rest), for two global batches (16 and 64 sequences: a small batch leaves
less compute to hide the gradient all-reduce). Prints throughput, the crossover bandwidth and throughput per
capital cost (:func:`diffsys.llm.gpu_capex_usd`); writes docs/img/scale_up_vs_scale_out.png.

    python examples/scale_up_vs_scale_out.py
"""

from __future__ import annotations

import pathlib

import equinox as eqx
import jax
import numpy as np

from diffsys import llm
from diffsys.space import Categorical, DesignSpace, PowerOfTwo

HERE = pathlib.Path(__file__).resolve().parent
SCALE_OUT_PATH = "cluster.network.dims.1.bandwidth_Bps"


def best_throughput(model, system: str, gpus: int, global_batch: int, bandwidths_Bps) -> dict:
    """Best feasible tokens/s of ``gpus`` GPUs of cluster preset ``system`` at each scale-out bandwidth."""
    base = llm.default_training_design(model, llm.cluster_preset(system, gpus), gpus, global_batch)
    base = eqx.tree_at(lambda d: d.par, base, llm.Parallelism(tp=1, pp=1, dp=gpus, global_batch=global_batch,
                                                               sequence_parallel=1, dp_overlap=0.5))
    space = DesignSpace({SCALE_OUT_PATH: Categorical(tuple(float(b) for b in bandwidths_Bps)),
                         "par.tp": PowerOfTwo(1, 8), "par.pp": PowerOfTwo(1, 8), "par.microbatch": PowerOfTwo(1, 4),
                         "par.recompute": Categorical((0, 1, 2)), "par.zero_stage": Categorical((0, 1, 3))},
                        base=base)
    points, _ = space.grid_chunk(space.digits(0), space.size)
    m = jax.jit(jax.vmap(lambda p: llm.training_design_metrics(space.apply(p))))(points)
    tps = np.where(np.asarray(m["feasible"]), np.asarray(m["tokens_per_s"]), 0.0)
    bw = np.asarray(points[SCALE_OUT_PATH])
    values = np.asarray(space.params[SCALE_OUT_PATH].values)
    best = np.array([tps[np.isclose(bw, v, rtol=1e-6)].max() for v in values])
    return {"bandwidth_Bps": values, "tokens_per_s": best, "capex_usd": float(np.asarray(m["capex_usd"])[0])}


def crossover_Bps(bw, up, out) -> float:
    """Smallest bandwidth above which the scale-out system is faster (log-linear interpolation; nan if none)."""
    diff = np.asarray(out) - np.asarray(up)
    for i in range(1, len(bw)):
        if diff[i - 1] < 0 <= diff[i]:
            f = -diff[i - 1] / (diff[i] - diff[i - 1])
            return float(np.exp(np.log(bw[i - 1]) + f * (np.log(bw[i]) - np.log(bw[i - 1]))))
    return float("nan")


def study(model="llama3_8b", batches=(16, 64), bandwidths_Bps=None) -> dict:
    model = llm.transformer_preset(model) if isinstance(model, str) else model
    bw = np.geomspace(0.1e9, 100e9, 13) if bandwidths_Bps is None else np.asarray(bandwidths_Bps)
    out = {}
    for gbs in batches:
        up = best_throughput(model, "hgx_h200", 8, gbs, bw)
        so = best_throughput(model, "hgx_h100", 16, gbs, bw)
        out[gbs] = {"scale_up": up, "scale_out": so,
                    "crossover_Bps": crossover_Bps(up["bandwidth_Bps"], up["tokens_per_s"], so["tokens_per_s"])}
    return out


def main():
    res = study()
    for gbs, r in res.items():
        up, so = r["scale_up"], r["scale_out"]
        print(f"Llama-3 8B, global batch {gbs}: scale-up 8 x H200 {up['tokens_per_s'][0]:,.0f} tokens/s "
              f"(${up['capex_usd'] / 1e3:,.0f}k); scale-out 16 x H100 {so['tokens_per_s'][0]:,.0f} -> "
              f"{so['tokens_per_s'][-1]:,.0f} tokens/s from {so['bandwidth_Bps'][0] / 1e9:.1f} to "
              f"{so['bandwidth_Bps'][-1] / 1e9:.0f} GB/s (${so['capex_usd'] / 1e3:,.0f}k)")
        print(f"  scale-out is faster above {r['crossover_Bps'] / 1e9:.2f} GB/s per GPU; per capital cost "
              f"scale-up {up['tokens_per_s'].max() / up['capex_usd'] * 1e3:.1f} vs scale-out at best "
              f"{so['tokens_per_s'].max() / so['capex_usd'] * 1e3:.1f} tokens/s per k$")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11.5, 4.3), dpi=120)
    for k, (gbs, r) in enumerate(res.items()):
        up, so = r["scale_up"], r["scale_out"]
        x = so["bandwidth_Bps"] / 1e9
        a.plot(x, so["tokens_per_s"] / 1e3, "o-", color=f"C{k}", ms=3, label=f"16 x H100, 2 nodes (batch {gbs})")
        a.plot(x, up["tokens_per_s"] / 1e3, "--", color=f"C{k}", label=f"8 x H200, 1 node (batch {gbs})")
        if np.isfinite(r["crossover_Bps"]):
            a.axvline(r["crossover_Bps"] / 1e9, color=f"C{k}", lw=0.6, ls=":")
        b.plot(x, so["tokens_per_s"] / so["capex_usd"] * 1e3, "o-", color=f"C{k}", ms=3,
               label=f"16 x H100 (batch {gbs})")
        b.plot(x, up["tokens_per_s"] / up["capex_usd"] * 1e3, "--", color=f"C{k}", label=f"8 x H200 (batch {gbs})")
    for ax in (a, b):
        ax.set_xscale("log")
        ax.set_xlabel("scale-out bandwidth per GPU per direction (GB/s)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    a.set_ylabel("best training throughput (k tokens/s)")
    a.set_title("Llama-3 8B: scale-up vs scale-out (dotted: crossover)")
    b.set_ylabel("tokens/s per k$ of capital cost")
    b.set_title("throughput per capital cost")
    fig.tight_layout()
    path = HERE.parent / "docs" / "img" / "scale_up_vs_scale_out.png"
    fig.savefig(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
