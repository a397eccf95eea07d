"""Sweep-engine throughput: diffsys.optimize.sweep vs a hand-fused NumPy evaluation of the same formula.

Two models over a 4-parameter grid (peak FLOP/s × bandwidth × op FLOPs × op bytes):
- ``op``: the single-op roofline ``max(F/P, B/W)``, top-10;
- ``codesign``: the default ``diffsys sweep`` model (8 GEMMs with SRAM tiling, cost proxy) with top-10 *and* a
  two-objective Pareto front.
The NumPy baseline decodes the same grid indices in chunks and keeps a running top-10 with ``argpartition`` (and for
``codesign`` no Pareto front, so the comparison favours NumPy).

    python benchmarks/bench_sweep.py --points 1e8     # the issue's 1e8-point sweep (a few minutes on 2 cores)
    python benchmarks/bench_sweep.py --points 4e6     # quick
"""

from __future__ import annotations

import argparse
import platform
import time

import equinox as eqx
import jax
import numpy as np

from diffsys import Metrics
from diffsys.optimize import sweep
from diffsys.problems import LAYER_GEMMS as _LAYER_GEMMS, AcceleratorDesign, accelerator_model as roofline_model
from diffsys.roofline import roofline
from diffsys.space import Continuous, DesignSpace


class OpGrid(eqx.Module):
    """Peak FLOP/s, bandwidth (B/s), op FLOPs and op bytes."""

    peak: float = 1.0
    bw: float = 1.0
    flops: float = 1.0
    bytes: float = 1.0


class OpTime(Metrics):
    time_s: jax.Array


def op_space(points):
    side = int(round(points ** 0.25))
    return DesignSpace({
        "peak": Continuous(1e13, 4e15, log=True, grid=side),
        "bw": Continuous(1e11, 1e13, log=True, grid=side),
        "flops": Continuous(1e6, 1e15, log=True, grid=side),
        "bytes": Continuous(1e4, 1e12, log=True, grid=side),
    }, base=OpGrid())


def op_model(d, *, temperature=0.0):
    return OpTime(roofline(d.flops, d.bytes, d.peak, d.bw, temperature=temperature).time_s)


def numpy_op(space, chunk=1 << 20, k=10):
    axes = [np.asarray(d.grid_values(), np.float32) for d in space.params.values()]
    radices = np.array(space.radices)
    best = np.full(k, np.inf, np.float32)
    for start in range(0, space.size, chunk):
        idx = np.arange(start, min(start + chunk, space.size))
        digits = []
        for r in radices[::-1]:
            idx, dgt = np.divmod(idx, r)
            digits.append(dgt)
        p, w, f, b = (ax[dg] for ax, dg in zip(axes, digits[::-1]))
        t = np.maximum(f / p, b / w)
        cand = np.concatenate([best, t])
        best = np.sort(cand[np.argpartition(cand, k)[:k]])
    return best


def codesign_space(points):
    side = int(round((points / 2 / 9) ** 0.5))
    from diffsys.space import PowerOfTwo

    return DesignSpace({
        "peak_flops": Continuous(100e12, 4000e12, log=True, grid=side),
        "hbm_bandwidth_Bps": Continuous(0.5e12, 12e12, log=True, grid=side),
        "sram_MiB": PowerOfTwo(4, 1024),
        "bytes_per_element": Continuous(1.0, 2.0, grid=2),
    }, base=AcceleratorDesign())


def numpy_codesign(space, chunk=1 << 18, k=10):
    axes = [np.asarray(d.grid_values() if hasattr(d, "grid_values") else d.values, np.float32)
            for d in space.params.values()]
    m, n, kk = (_LAYER_GEMMS[:, i][:, None] for i in range(3))
    best = np.full(k, np.inf, np.float32)
    for start in range(0, space.size, chunk):
        idx = np.arange(start, min(start + chunk, space.size))
        digits = []
        for r in space.radices[::-1]:
            idx, dgt = np.divmod(idx, r)
            digits.append(dgt)
        peak, bw, sram, bpe = (ax[dg] for ax, dg in zip(axes, digits[::-1]))
        tile = np.sqrt(sram * 2**20 / (3 * bpe))
        comp = bpe * (m * kk + kk * n + m * n)
        tiled = bpe * (m * n * kk * (1 / np.minimum(tile, n) + 1 / np.minimum(tile, m)) + m * n)
        t = np.maximum(2 * m * n * kk / (peak * 2 / bpe), np.maximum(comp, tiled) / bw).sum(0)
        area = peak / 1.2e12 + sram * 0.5
        t = np.where(area <= 858.0, t, np.inf)
        cand = np.concatenate([best, t])
        best = np.sort(cand[np.argpartition(cand, k)[:k]])
    return best


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=float, default=4e6)
    ap.add_argument("--chunk-size", type=int, default=1 << 18)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}, "
          f"{len(jax.devices())} device(s), jax {jax.__version__}")
    for name, make_space, model, extra, baseline in (
        ("op", op_space, op_model, {}, numpy_op),
        ("codesign", codesign_space, roofline_model, {"pareto": ("time_s", "cost_usd")}, numpy_codesign),
    ):
        space = make_space(args.points)
        first = sweep(model, space, "time_s", chunk_size=args.chunk_size, progress=False, **extra)
        res = sweep(model, space, "time_s", chunk_size=args.chunk_size, progress=False, **extra)  # compiled
        rate = res.n_evaluated / res.seconds
        ref, t_np = timed(lambda: baseline(space))
        np.testing.assert_allclose(np.sort(res.top_objective), ref, rtol=1e-5)
        rate_np = space.size / t_np
        print(f"{name:9s} points={space.size:.3g}  diffsys {rate:,.0f} evals/s (first call incl. compile "
              f"{first.seconds:.2f} s)  numpy {rate_np:,.0f} evals/s  ratio diffsys/numpy = {rate / rate_np:.2f}")


if __name__ == "__main__":
    main()
