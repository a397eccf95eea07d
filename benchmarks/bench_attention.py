"""Attention-kernel model throughput: evaluations/s of ``prefill_attention_time`` and ``decode_attention_time``.

Each evaluation is one attention op (batch, length, q heads, kv heads, head_dim drawn at random) on an H100 whose
HBM bandwidth and matrix peak are scaled per point, with the shipped calibration; every metric of
:class:`diffsys.roofline.AttentionKernelTime` is produced. ``jit(vmap(model))``, float32, best of 3.
Run: ``JAX_PLATFORMS=cpu python benchmarks/bench_attention.py [N]``.
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
from bench_roofline import best_of  # the same timing rule as the roofline benchmark

H100 = H.preset("h100_sxm")
HBM = H100.main_memory_index


def _accel(peak_scale, bw_scale):
    return eqx.tree_at(lambda a: (a.matrix_flops["bf16"], a.memory[HBM].bandwidth_Bps), H100,
                       (H100.matrix_flops["bf16"] * peak_scale, H100.main_memory.bandwidth_Bps * bw_scale))


def prefill(x):
    return R.prefill_attention_time(x[0], x[1], x[2], x[3], x[4], _accel(x[5], x[6]))


def decode(x):
    return R.decode_attention_time(x[0], x[1], x[2], x[3], x[4], _accel(x[5], x[6]))


def points(n, seed=0):
    rng = np.random.default_rng(seed)
    x = np.empty((n, 7), np.float32)
    x[:, 0] = 2.0 ** rng.integers(0, 9, n)                     # batch 1 .. 256
    x[:, 1] = np.round(2.0 ** rng.uniform(0, 17, n))           # length 1 .. 128k
    x[:, 3] = 2.0 ** rng.integers(0, 4, n)                     # kv heads 1 .. 8
    x[:, 2] = x[:, 3] * 2.0 ** rng.integers(0, 5, n)           # group 1 .. 16
    x[:, 4] = rng.choice([64.0, 128.0], n)
    x[:, 5:] = rng.uniform(0.5, 2.0, (n, 2))
    return x


def main(n=1_000_000):
    x = jnp.asarray(points(n))
    rates = {}
    for name, model in (("prefill_attention_time", prefill), ("decode_attention_time", decode)):
        f = jax.jit(jax.vmap(model))
        t0 = time.perf_counter()
        jax.block_until_ready(f(x))
        compile_s = time.perf_counter() - t0
        t = best_of(lambda: jax.block_until_ready(f(x)))
        rates[name] = n / t
        print(f"{name} (jit+vmap, float32), {n:,} evaluations: {t:.3f} s -> {n / t:,.0f} evals/s "
              f"(first call incl. compile {compile_s:.1f} s)")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} "
          f"({jax.default_backend()}), load average {os.getloadavg()[0]:.1f}")
    return rates


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
