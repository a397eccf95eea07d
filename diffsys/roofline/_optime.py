"""Roofline time of an :class:`~diffsys.roofline.OpCost` on an :class:`~diffsys.hardware.Accelerator`."""

from __future__ import annotations

import jax.numpy as jnp

from ..primitives import safe_divide
from .._checks import check_range
from ._core import Roofline, roofline
from ._efficiency import as_efficiency
from ._ops import OpCost


def unit_peaks(accel, dtype="bf16", *, sparse=False):
    """(matrix, vector) peak FLOP/s for ``dtype``; a unit lacking the dtype (and its fallbacks) is replaced by the
    other one (an fp32 GEMM on V100 runs on the CUDA cores); raises when neither supports it."""
    try:
        p_mat = accel.peak_flops(dtype, sparse=sparse)
    except ValueError:
        p_mat = None
    try:
        p_vec = accel.peak_flops(dtype, matrix=False)
    except ValueError:
        if p_mat is None:
            raise
        p_vec = None
    if p_mat is None:
        p_mat = p_vec
    if p_vec is None:
        p_vec = p_mat
    return p_mat, p_vec


def compute_time(op: OpCost, accel, dtype="bf16", efficiency=None, *, sparse=False):
    """Compute-ceiling time: matrix FLOPs at the matrix peak plus vector FLOPs at the vector peak (seconds).

    ``t_c = F·μ / (P_mat·η_mat(F·μ)) + F·(1-μ) / (P_vec·η_vec)`` with ``μ = op.matrix``.
    """
    eff = as_efficiency(efficiency, accel, dtype)
    p_mat, p_vec = unit_peaks(accel, dtype, sparse=sparse)
    f_mat = op.flops * op.matrix
    f_vec = op.flops - f_mat
    # an op without matrix (vector) work spends no time on those units (safe_divide: 0/0 -> 0)
    return safe_divide(f_mat, p_mat * eff.matrix(f_mat)) + safe_divide(f_vec, p_vec * eff.vector)


def op_time(op: OpCost, accel, dtype="bf16", efficiency=None, temperature=0.0, *, level=None, overhead_s=0.0,
            sparse=False) -> Roofline:
    """Roofline of ``op`` on ``accel``: ``time = max(t_compute, bytes / (bandwidth · η_mem(bytes))) + overhead``.

    Args:
        op: the op's FLOPs and main-memory bytes (fields may be arrays: a batch of ops).
        accel: the device (:class:`diffsys.hardware.Accelerator`).
        dtype: data type selecting the peak (``accel.peak_flops(dtype)``; vector work uses the vector units).
        efficiency: ``None`` = size-dependent defaults (:func:`default_efficiency`), a number, a
            ``(compute, memory)`` pair or an :class:`Efficiency`.
        temperature: 0 = exact max; > 0 = smooth max (dimensionless, relative to the two times).
        level: memory level the bytes move through (default: main memory).
        overhead_s: fixed per-op time (kernel launch), added to the max.
        sparse: use the 2:4-sparse matrix peak.

    Energy: ``flops · accel.energy_J_per_flop + bytes · level.energy_J_per_B``.
    """
    check_range("temperature", temperature, 0.0, None)
    mem = accel.main_memory if level is None else accel.level(level)
    eff = as_efficiency(efficiency, accel, dtype, level=level)
    flops = jnp.asarray(op.flops)
    nbytes = jnp.asarray(op.bytes)
    t_c = compute_time(op, accel, dtype, eff, sparse=sparse)
    ok = t_c > 0
    rate = jnp.where(ok, flops / jnp.where(ok, t_c, 1.0), 1.0)  # delivered compute rate; flops/rate == t_c
    return roofline(flops, nbytes, rate, mem.bandwidth_Bps, memory_efficiency=eff.memory(nbytes),
                    overhead_s=overhead_s, energy_J_per_flop=accel.energy_J_per_flop,
                    energy_J_per_B=mem.energy_J_per_B, temperature=temperature)
