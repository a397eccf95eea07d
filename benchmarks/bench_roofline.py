"""Op-roofline throughput: evaluations/s of ``op_time`` (jit + vmap, float32) vs a hand-fused NumPy evaluation.

Each evaluation is one GEMM shape on one accelerator variant (peak FLOP/s and HBM bandwidth varied per point); all
Roofline metrics are produced (time, compute/memory times, bound, achieved FLOP/s, intensity, energies). Two
sections: the generic roofline with the size-dependent efficiency curves (checked against NumPy), and the default
``op_time`` of a GEMM, the calibrated kernel model ``gemm_time`` (tiles, waves, stream-K, L2 residency, launch). Run: ``JAX_PLATFORMS=cpu python benchmarks/bench_roofline.py [N]``.
"""

from __future__ import annotations

import os
import platform
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import diffsys.hardware as H
import diffsys.roofline as R

H100 = H.preset("h100")
HBM = H100.main_memory_index


def _scaled(ps, bs):
    return eqx.tree_at(lambda a: (a.matrix_flops["bf16"], a.memory[HBM].bandwidth_Bps), H100,
                       (H100.matrix_flops["bf16"] * ps, H100.main_memory.bandwidth_Bps * bs))


def model(x):
    """x = (m, n, k, peak_scale, bw_scale) -> generic Roofline (size-dependent efficiency curves) of a bf16 GEMM on
    a scaled H100."""
    acc = _scaled(x[3], x[4])
    return R.op_time(R.gemm(x[0], x[1], x[2]), acc, "bf16", R.default_efficiency(acc, "bf16"))


def kernel_model(x):
    """The same point through the default ``op_time``: the calibrated GEMM kernel model (``gemm_time``)."""
    return R.op_time(R.gemm(x[0], x[1], x[2]), _scaled(x[3], x[4]), "bf16")


def numpy_fused(x):
    """The same formulas written directly in NumPy (float32), fused by hand."""
    m, n, k, ps, bs = x.T
    peak = np.float32(989.4e12) * ps
    bw = np.float32(3.35e12) * bs
    flops = 2 * m * n * k
    nbytes = (m * k + k * n) * 2 + m * n * 2
    eff_c = np.float32(R.MATRIX_EFFICIENCY_MAX) * flops / (flops + peak * np.float32(R.MATRIX_RAMP_S))
    t_c = flops / (peak * eff_c)
    lat = np.float32(float(H100.main_memory.latency_s))
    eff_m = np.float32(R.MEMORY_EFFICIENCY_MAX) * nbytes / (nbytes + bw * lat)
    t_m = nbytes / (bw * eff_m)
    t = np.maximum(t_c, t_m)
    e_f = np.float32(float(H100.energy_J_per_flop))
    e_b = np.float32(float(H100.main_memory.energy_J_per_B))
    return (t, t_c, t_m, t_c >= t_m, flops / t, flops / nbytes, flops * e_f + nbytes * e_b, flops * e_f,
            nbytes * e_b)


def points(n, seed=0):
    rng = np.random.default_rng(seed)
    x = np.empty((n, 5), np.float32)
    x[:, :3] = 2.0 ** rng.uniform(6, 15, (n, 3))
    x[:, 3:] = rng.uniform(0.5, 2.0, (n, 2))
    return x


def best_of(fn, repeats=3):
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(n=2_000_000):
    x_np = points(n)
    x = jnp.asarray(x_np)
    f = jax.jit(jax.vmap(model))
    jax.block_until_ready(f(x))  # compile
    t_jax = best_of(lambda: jax.block_until_ready(f(x)))
    t_np = best_of(lambda: numpy_fused(x_np))
    g = jax.jit(jax.vmap(kernel_model))
    jax.block_until_ready(g(x))  # compile
    t_kernel = best_of(lambda: jax.block_until_ready(g(x)))
    # the two agree
    ref = numpy_fused(x_np[:1000])
    got = f(x[:1000])
    np.testing.assert_allclose(np.asarray(got.time_s), ref[0], rtol=1e-4)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} " \
              f"({jax.default_backend()})"
    print(f"op_time (jit+vmap, float32), {n:,} GEMM roofline evaluations: {t_jax:.3f} s -> {n / t_jax:,.0f} evals/s")
    print(f"hand-fused NumPy, same formulas:                  {t_np:.3f} s -> {n / t_np:,.0f} evals/s")
    print(f"calibrated GEMM kernel model (default op_time):   {t_kernel:.3f} s -> {n / t_kernel:,.0f} evals/s "
          f"({t_kernel / t_jax:.2f}x the generic roofline's time)")
    print(f"ratio (NumPy time / JAX time): {t_np / t_jax:.2f}")
    print(f"machine: {machine}")
    return n / t_jax, n / t_np, n / t_kernel


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000)
