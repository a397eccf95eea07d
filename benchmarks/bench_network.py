"""Network-family throughput: collective-time evaluations/s and NoC (config, load) points/s (jit + vmap, float32).

- ``collective``: :func:`collective_time` all-reduce with NCCL-style selection (ring/tree × LL/LL128/Simple = 6
  candidates, exact argmin) at random (size, ranks, bandwidth, latency) points; also one fixed algorithm/protocol.
- ``NCCL model``: :func:`collective_time` with the fitted NCCL constants of the HGX H100 preset (``nccl=``):
  all-reduce over ring/tree × LL/LL128/Simple + NVLS (7 candidates), all-to-all with NCCL's peer-to-peer rule.
- ``hierarchical``: 2-level (NVLink × InfiniBand) all-reduce of the HGX H100 preset at random sizes and node counts.
- ``noc``: :func:`noc_latency` on a 6×6 mesh (uniform) and 8×8 mesh (transpose) at random injection rates and
  router delays; BookSim2 needs about 0.5 s per (config, load) point on this machine.

Run: ``JAX_PLATFORMS=cpu python benchmarks/bench_network.py [N]``.
"""

from __future__ import annotations

import os
import platform
import sys
import time

import jax
import numpy as np

from diffsys.topologies import (
    NocParams,
    collective_time,
    hierarchical_collective_time,
    noc_latency,
    system_preset,
)


BOOKSIM_S_PER_POINT = 0.5  # BookSim2 per (config, load) point on the 2-core reference machine

def best_of(fn, *args, repeat=5):
    jax.block_until_ready(fn(*args))  # compile
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return min(times)


def main(n=2_000_000):
    rng = np.random.default_rng(0)
    size = (2.0 ** rng.uniform(10, 33, n)).astype(np.float32)
    ranks = rng.integers(2, 1024, n).astype(np.float32)
    bw = rng.uniform(10e9, 900e9, n).astype(np.float32)
    lat = rng.uniform(1e-6, 20e-6, n).astype(np.float32)
    rows = []

    auto = jax.jit(jax.vmap(lambda s, r, b, a: collective_time("all_reduce", s, r, b, a).time_s))
    t = best_of(auto, size, ranks, bw, lat)
    rows.append(("collective_time all_reduce, auto (2 algorithms x 3 protocols)", n, n / t))
    fixed = jax.jit(jax.vmap(lambda s, r, b, a: collective_time("all_reduce", s, r, b, a, algorithm="ring",
                                                                protocol="simple").time_s))
    t = best_of(fixed, size, ranks, bw, lat)
    rows.append(("collective_time all_reduce, ring/Simple", n, n / t))

    # NCCL's fitted cost model (what the HGX/DGX presets run): ring/tree x LL/LL128/Simple + NVLS = 7 candidates
    d0 = system_preset("hgx_h100").dims[0]
    nccl_kw = {"nccl": d0.nccl, "efficiency": d0.efficiency, "local_Bps": d0.local_Bps,
               "in_network_Bps": d0.in_network_Bps}
    n8 = rng.integers(2, 9, n).astype(np.float32)
    for op in ("all_reduce", "all_to_all"):
        f = jax.jit(jax.vmap(lambda s, r, b, a, op=op: collective_time(op, s, r, b, a, **nccl_kw).time_s))
        t = best_of(f, size, n8, bw, lat)
        rows.append((f"collective_time {op}, NCCL model (H100 constants{', NVLS' if op == 'all_reduce' else ''})",
                     n, n / t))

    base = system_preset("hgx_h100")
    dims = base.dims
    nodes = rng.integers(1, 128, n).astype(np.float32)
    hier = jax.jit(jax.vmap(lambda s, m: hierarchical_collective_time(
        "all_reduce", s, (dims[0], dims[1].replace(size=m))).time_s))
    t = best_of(hier, size, nodes)
    rows.append(("hierarchical all_reduce, HGX H100 x nodes", n, n / t))

    m = n // 4
    lam = rng.uniform(0.0, 0.2, m).astype(np.float32)
    delay = rng.uniform(0.0, 3.0, m).astype(np.float32)
    for k, pattern in ((6, "uniform"), (8, "transpose")):
        f = jax.jit(jax.vmap(lambda x, d, k=k, pattern=pattern: noc_latency(
            x, NocParams(routing_delay=d, packet_size=4.0, num_vcs=8.0), pattern, k=k).latency_cycles))
        t = best_of(f, lam, delay)
        rows.append((f"noc_latency {k}x{k} mesh {pattern} (load, router delay)", m, m / t))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load avg {load:.1f}, "
          f"jax {jax.__version__}, {jax.devices()[0].platform}")
    print("| benchmark | points | evals/s |")
    print("|---|---|---|")
    for name, pts, rate in rows:
        print(f"| {name} | {pts:.1e} | {rate:.2e} |")
    noc = min(rate for name, _, rate in rows if name.startswith("noc"))
    print(f"peer: BookSim2 ≈ {1 / BOOKSIM_S_PER_POINT:.0f} (config, load) points/s on the 2-core reference CPU "
          f"-> NoC ratio ≥ {noc * BOOKSIM_S_PER_POINT:,.0f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000)
