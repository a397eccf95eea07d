"""Thermal-model throughput: batched HotSpot-equivalent ev6 steady states and 64×64 grid solves.

    python benchmarks/bench_thermal.py [--batch 4096] [--repeats 3] [--grid 64]

Rows printed (solves per second, best of ``--repeats`` after one warm-up call):

1. ev6 block model, every point its own design (power vector, r_convec, TIM conductivity, spreader thickness):
   network assembly + block-elimination factor + solve per point, forward only and with gradients
   (value_and_grad of the peak temperature w.r.t. all 33 design inputs);
2. ev6 block model, power sweep on one package (factor once, batched triangular solves);
3. grid model ``G × G`` (4 layers + 12 periphery nodes), DCT-preconditioned CG, one solve per call, and a batch.

HotSpot 6 itself takes ~2.5 ms per ev6 block-model run on this machine (process start, parsing, LUP solve).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import diffsys.power as P
from diffsys.io import read_flp, read_hotspot_config, read_ptrace

HERE = pathlib.Path(__file__).resolve().parent
SHARED = pathlib.Path(os.environ.get("DIFFSYS_SHARED", HERE.parents[1] / "shared")) / "validation" / "hotspot"


HOTSPOT_S_PER_RUN = 2.5e-3  # HotSpot 6 per ev6 block-model run on the 2-core reference machine

def _time(fn, *args, repeats=3):
    out = fn(*args)
    jax.block_until_ready(out)
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--grid", type=int, default=64)
    ap.add_argument("--grid-batch", type=int, default=8)
    args = ap.parse_args()

    flp = read_flp(SHARED / "ev6.flp")
    base_p = jnp.asarray(read_ptrace(SHARED / "gcc.ptrace").for_floorplan(flp).mean(axis=0), jnp.float32)
    cfg = read_hotspot_config(SHARED / "example.config").thermal
    B = args.batch
    key = jax.random.PRNGKey(0)
    k1, k2 = jax.random.split(key)
    powers = base_p * jax.random.uniform(k1, (B, flp.n_blocks), minval=0.5, maxval=1.5)
    design = jax.random.uniform(k2, (B, 3), minval=0.7, maxval=1.3) * jnp.array(
        [float(cfg.r_convec), float(cfg.k_interface), float(cfg.t_spreader)])

    def one(p, d):
        c = P.ThermalConfig(t_chip=cfg.t_chip, k_chip=cfg.k_chip, p_chip=cfg.p_chip, r_convec=d[0],
                            k_interface=d[1], t_spreader=d[2], ambient=cfg.ambient)
        return P.steady_state(flp, p, c).peak_K

    fwd = jax.jit(jax.vmap(one))
    grad = jax.jit(jax.vmap(jax.value_and_grad(one, argnums=(0, 1))))
    rows = []
    t = _time(fwd, powers, design, repeats=args.repeats)
    rows.append(("ev6 block steady, per-point design (assembly + block elimination)", B / t))
    t = _time(grad, powers, design, repeats=args.repeats)
    rows.append(("ev6 block steady, per-point design, value+grad (33 inputs)", B / t))

    solver = P.SteadySolver(P.block_network(flp, cfg))
    sweep = jax.jit(lambda ps: solver(ps).peak_K)
    t = _time(sweep, powers, repeats=args.repeats)
    rows.append(("ev6 block steady, power sweep on one package (factor once)", B / t))
    sweep_g = jax.jit(jax.vmap(jax.grad(lambda p: solver(p).peak_K)))
    t = _time(sweep_g, powers, repeats=args.repeats)
    rows.append(("ev6 block steady, power sweep, grad w.r.t. block powers", B / t))

    G = args.grid
    gcfg = P.ThermalConfig(**{k: getattr(cfg, k) for k in ("t_chip", "k_chip", "p_chip", "r_convec", "ambient")})
    gnet = P.grid_network(flp, gcfg, G, G)
    g1 = jax.jit(lambda p: P.grid_steady_state(gnet, p, solver="cg").peak_K)
    t = _time(g1, base_p, repeats=args.repeats)
    rows.append((f"grid {G}x{G}x4 (+12) steady, CG, single solve", 1 / t))
    gb = jax.jit(jax.vmap(lambda p: P.grid_steady_state(gnet, p, solver="cg").peak_K))
    t = _time(gb, powers[:args.grid_batch], repeats=args.repeats)
    rows.append((f"grid {G}x{G}x4 (+12) steady, CG, batch of {args.grid_batch}", args.grid_batch / t))

    print(f"devices: {jax.devices()}  cores: {os.cpu_count()}  batch {B}")
    print("| benchmark | evaluations/s |")
    print("|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} |")
    print(f"peer: HotSpot 6 ≈ {1 / HOTSPOT_S_PER_RUN:.0f} ev6 block-model runs/s on the 2-core reference CPU -> "
          f"ratio {rows[0][1] * HOTSPOT_S_PER_RUN:,.0f}x for new designs, {rows[2][1] * HOTSPOT_S_PER_RUN:,.0f}x "
          f"for power sweeps")


if __name__ == "__main__":
    main()
