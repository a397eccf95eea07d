"""Cluster power over a workload mix and the oversubscription headroom it leaves (in the spirit of POLCA).

Per-phase GPU power comes from the roofline-utilisation device model (``diffsys.power.device_power``) on H100 SXM:
training GEMMs (compute bound), prefill (compute bound, shorter kernels), decode (memory bound), idle. A cluster
provisioned at nameplate (8 × 700 W GPUs + host per node) rarely draws it; the plot shows how many extra nodes the
same budget supports at the 99th-percentile draw as the fleet's share of decode grows, and what a per-GPU power
cap adds.

    python examples/cluster_power.py [--out docs/img/cluster_power.png]
"""

from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import diffsys.hardware as H
import diffsys.power as P


def phase_powers(acc, cap_W=None):
    """GPU power (W) in each phase: (training, prefill, decode, idle)."""
    d, L = 8192.0, 80.0  # a 70B-class dense model
    params = 12 * d * d * L
    work = {
        "training": (6 * params * 4096, 3 * params * 2),  # fwd+bwd on a 4k-token microbatch, weights ×3
        "prefill": (2 * params * 2048, params * 2),  # 2k-token prompt
        "decode": (2 * params * 32, params * 2 + 32 * 4096 * L * 2 * d * 2 / 8),  # batch 32, KV cache (GQA /8)
    }
    out = []
    for flops, byts in work.values():
        if cap_W is None:
            out.append(P.device_power(acc, flops, byts).power_W)
        else:
            clk = P.power_capped_clock(acc, flops, byts, cap_W).clock_Hz
            out.append(P.device_power(acc, flops, byts, clock_Hz=clk).power_W)
    idle = acc.power.idle_W + acc.power.static_fraction * (acc.power.tdp_W - acc.power.idle_W) * 0.6
    return jnp.stack(out + [jnp.asarray(idle, jnp.float32)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parents[1] / "docs/img/cluster_power.png"))
    ap.add_argument("--nodes", type=float, default=512)
    args = ap.parse_args()
    acc = H.h100_sxm()
    p = phase_powers(acc)
    p_cap = phase_powers(acc, cap_W=jnp.float32(550.0))
    names = ("training", "prefill", "decode", "idle")
    print("GPU power per phase (W):", {n: round(float(v)) for n, v in zip(names, p)})
    print("with a 550 W cap      :", {n: round(float(v)) for n, v in zip(names, p_cap)})

    decode_share = jnp.linspace(0.0, 0.9, 46)

    def mix(s):  # the rest split 60/30/10 between training, prefill and idle
        return jnp.stack([0.6 * (1 - s), 0.3 * (1 - s), s, 0.1 * (1 - s)])

    def headroom(s, powers):
        return P.cluster_power(powers, mix(s), n_nodes=args.nodes, gpus_per_node=8, node_overhead_W=2000.0)

    res = jax.vmap(lambda s: headroom(s, p))(decode_share)
    res_cap = jax.vmap(lambda s: headroom(s, p_cap))(decode_share)
    d_head = jax.grad(lambda s: headroom(s, p).headroom)(0.5)
    i = 25
    print(f"{args.nodes:.0f} nodes, nameplate {float(res.nameplate_W[i]) / 1e6:.2f} MW; at {float(decode_share[i]):.0%} "
          f"decode the p99 draw is {float(res.quantile_W[i]) / 1e6:.2f} MW -> {float(res.headroom[i]):.0%} more nodes "
          f"fit the budget ({float(res_cap.headroom[i]):.0%} with a 550 W cap); d headroom / d decode share = "
          f"{float(d_head):.2f}")

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    ax[0].plot(decode_share * 100, res.mean_W / 1e6, label="mean draw")
    ax[0].plot(decode_share * 100, res.quantile_W / 1e6, label="p99 draw")
    ax[0].plot(decode_share * 100, res_cap.quantile_W / 1e6, "--", label="p99 draw, 550 W cap")
    ax[0].axhline(float(res.nameplate_W[0]) / 1e6, color="k", lw=0.8, label="nameplate budget")
    ax[0].set_xlabel("share of nodes in decode (%)")
    ax[0].set_ylabel("cluster power (MW)")
    ax[0].set_title(f"{args.nodes:.0f} × DGX-class H100 nodes")
    ax[0].legend(fontsize=8)
    ax[1].plot(decode_share * 100, res.headroom * 100, label="uncapped")
    ax[1].plot(decode_share * 100, res_cap.headroom * 100, "--", label="550 W per-GPU cap")
    ax[1].set_xlabel("share of nodes in decode (%)")
    ax[1].set_ylabel("extra nodes under the same budget (%)")
    ax[1].set_title("oversubscription headroom (p99)")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=130)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
