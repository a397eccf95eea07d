"""Roofline time of an :class:`~diffsys.roofline.OpCost` on an :class:`~diffsys.hardware.Accelerator`."""

from __future__ import annotations

import jax.numpy as jnp

from ..primitives import safe_divide
from .._checks import check_range
from ._core import Roofline, roofline
from ._efficiency import as_efficiency
from ._gemm import gemm_time
from ._ops import OpCost


def unit_peaks(accel, dtype="bf16", *, sparse=False):
    """(matrix, vector) peak FLOP/s for ``dtype``: an alias of :meth:`Accelerator.unit_peaks`."""
    return accel.unit_peaks(dtype, sparse=sparse)


def compute_time(op: OpCost, accel, dtype="bf16", efficiency=None, *, sparse=False):
    """Compute-ceiling time: matrix FLOPs at the matrix peak plus vector FLOPs at the vector peak (seconds).

    ``t_c = F·μ / (P_mat·η_mat(F·μ)) + F·(1-μ) / (P_vec·η_vec)`` with ``μ = op.matrix``.
    """
    eff = as_efficiency(efficiency, accel, dtype)
    p_mat, p_vec = accel.unit_peaks(dtype, sparse=sparse)
    f_mat = op.flops * op.matrix
    f_vec = op.flops - f_mat
    # an op without matrix (vector) work spends no time on those units (safe_divide: 0/0 -> 0)
    return safe_divide(f_mat, p_mat * eff.matrix(f_mat)) + safe_divide(f_vec, p_vec * eff.vector)


def op_time(op: OpCost, accel, dtype="bf16", efficiency=None, temperature=0.0, *, level=None, overhead_s=0.0,
            sparse=False) -> Roofline:
    """Roofline of ``op`` on ``accel``: ``time = max(t_compute, bytes / (bandwidth · η_mem(bytes))) + overhead``,
    the max serialized by ``accel.compute_memory_overlap`` (:func:`serialized`; 1 = the max).

    Args:
        op: the op's FLOPs and main-memory bytes (fields may be arrays: a batch of ops).
        accel: the device (:class:`diffsys.hardware.Accelerator`).
        dtype: data type selecting the peak (``accel.peak_flops(dtype)``; vector work uses the vector units).
        efficiency: ``None`` = size-dependent defaults (:func:`default_efficiency`), a number, a
            ``(compute, memory)`` pair or an :class:`Efficiency`. With ``None`` (and no ``level``/``sparse``), the
            GEMM kernels an op carries (:attr:`OpCost.gemm`, set by :func:`gemm`) are timed by the calibrated
            kernel model :func:`diffsys.roofline.gemm_time`, and only the op's remaining work by the roofline.
        temperature: 0 = exact max; > 0 = smooth max (dimensionless, relative to the two times).
        level: memory level the bytes move through (default: main memory).
        overhead_s: fixed per-op time (kernel launch), added to the max.
        sparse: use the 2:4-sparse matrix peak.

    Energy: ``flops · accel.energy_J_per_flop + bytes · level.energy_J_per_B``.
    """
    check_range("temperature", temperature, 0.0, None)
    if efficiency is None and level is None and not sparse and op.gemm is not None:
        return _kernel_op_time(op, accel, dtype, temperature, overhead_s)
    mem = accel.main_memory if level is None else accel.level(level)
    eff = as_efficiency(efficiency, accel, dtype, level=level)
    flops = jnp.asarray(op.flops)
    nbytes = jnp.asarray(op.bytes)
    t_c = compute_time(op, accel, dtype, eff, sparse=sparse)
    ok = t_c > 0
    rate = jnp.where(ok, flops / jnp.where(ok, t_c, 1.0), 1.0)  # delivered compute rate; flops/rate == t_c
    return roofline(flops, nbytes, rate, mem.bandwidth_Bps, memory_efficiency=eff.memory(nbytes),
                    overhead_s=overhead_s, energy_J_per_flop=accel.energy_J_per_flop,
                    energy_J_per_B=mem.energy_J_per_B, temperature=temperature,
                    overlap=accel.compute_memory_overlap)


def _kernel_op_time(op: OpCost, accel, dtype, temperature, overhead_s) -> Roofline:
    """``Σ count · gemm_time(m, n, k, batch)`` over the op's GEMM kernels plus the roofline of the remaining work."""
    g = op.gemm
    pad = g.count == 0
    m, n, k, batch = (jnp.where(pad, 1.0, x) for x in (g.m, g.n, g.k, g.batch))  # padding: a safe dummy GEMM
    r = gemm_time(m, n, k, accel, dtype, batch=batch, temperature=temperature)
    flops = jnp.asarray(op.flops)
    nbytes = jnp.asarray(op.bytes)
    total = lambda x: jnp.sum(jnp.where(pad, 0.0, g.count * x), axis=-1)
    g_flops = total(2.0 * batch * m * n * k)
    time = total(r.time_s) + overhead_s
    t_c = total(r.compute_time_s)
    t_m = total(r.memory_time_s)
    if not g.only:  # work outside the GEMM kernels (e.g. an elementwise op fused via add_ops): the roofline
        rest_f = jnp.maximum(flops - g_flops, 0.0)
        rest_b = jnp.maximum(nbytes - total(g.bytes), 0.0)
        rest_mf = jnp.maximum(flops * op.matrix - g_flops, 0.0)
        has = (rest_f > 1e-6 * flops) | (rest_b > 1e-6 * nbytes)
        safe = lambda x: jnp.where(has, x, 1.0)
        rest = op_time(OpCost(safe(rest_f), safe(rest_b), 0.0 * rest_b, safe(rest_mf) / safe(rest_f)), accel,
                       dtype, as_efficiency(None, accel, dtype), temperature)
        add = lambda x: jnp.where(has, x, 0.0)
        time, t_c, t_m = time + add(rest.time_s), t_c + add(rest.compute_time_s), t_m + add(rest.memory_time_s)
    mem = accel.main_memory
    return Roofline(
        time_s=time, compute_time_s=t_c, memory_time_s=t_m, compute_bound=t_c >= t_m,
        achieved_flops=safe_divide(flops, time), arithmetic_intensity=safe_divide(flops, nbytes, jnp.inf),
        energy_J=flops * accel.energy_J_per_flop + nbytes * mem.energy_J_per_B,
        compute_energy_J=flops * accel.energy_J_per_flop, memory_energy_J=nbytes * mem.energy_J_per_B,
    )
