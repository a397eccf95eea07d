"""The roofline model of one operation (Williams, Waterman & Patterson, CACM 2009).

``time = max(flops / (peak · η_c), bytes / (bandwidth · η_m))`` with a smooth twin at ``temperature > 0``
(a log-sum-exp max at a temperature relative to the two times, see :func:`diffsys.primitives.smooth_max`).
With partial overlap ``o`` of the two phases (:func:`serialized`), ``time = max + (1 - o)·min``: ``o = 0`` is
Calculon's ``no_overlap`` processing mode, ``t_c + t_m`` (Isaev et al., SC 2023, Sec. 3.1).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from .._pytree import as_float
from ..primitives import relative_temperature, safe_divide, smooth_max


class Roofline(NamedTuple):
    """Metrics of one roofline evaluation (all SI)."""

    time_s: jnp.ndarray
    compute_time_s: jnp.ndarray
    memory_time_s: jnp.ndarray
    compute_bound: jnp.ndarray  # bool: compute ceiling is the binding one
    achieved_flops: jnp.ndarray  # FLOP/s actually delivered
    arithmetic_intensity: jnp.ndarray  # FLOP/byte
    energy_J: jnp.ndarray
    compute_energy_J: jnp.ndarray = 0.0  # flops · J/FLOP
    memory_energy_J: jnp.ndarray = 0.0  # bytes · J/B (summed over levels in the hierarchical roofline)


def serialized(time_s, compute_time_s, memory_time_s, overlap):
    """A kernel time ``time_s`` that assumes its compute and memory phases fully overlap, with only the fraction
    ``overlap`` of the shorter phase hidden: ``time + (1 - overlap)·max(t_c + t_m - time, 0)``.

    ``overlap = 1`` returns ``time_s``; ``overlap = 0`` gives at least ``t_c + t_m``, the phases back to back
    (Calculon's ``processing_mode: no_overlap``). For the roofline max this is ``max + (1 - overlap)·min``.
    Linear in ``overlap``, so less overlap is never faster."""
    return time_s + (1.0 - overlap) * jnp.maximum(compute_time_s + memory_time_s - time_s, 0.0)


def roofline(flops, bytes_moved, peak_flops, bandwidth_Bps, *, compute_efficiency=1.0, memory_efficiency=1.0,
             overhead_s=0.0, energy_J_per_flop=0.0, energy_J_per_B=0.0, temperature=0.0, overlap=1.0) -> Roofline:
    """Time, bound, achieved FLOP/s, intensity and energy of an op with ``flops`` work moving ``bytes_moved``.

    Args:
        flops: floating-point operations (a multiply-add counts 2).
        bytes_moved: bytes moved to/from the memory level whose ``bandwidth_Bps`` is given.
        peak_flops, bandwidth_Bps: the two ceilings.
        compute_efficiency, memory_efficiency: achievable fractions of the ceilings (0 < η ≤ 1).
        overhead_s: fixed per-op time added to the max (kernel launch, pipeline fill).
        energy_J_per_flop, energy_J_per_B: per-event energies; ``energy = flops·e_f + bytes·e_b``.
        temperature: 0 for the exact max; > 0 for a smooth max (dimensionless, relative to the two times).
        overlap: fraction of the shorter ceiling time hidden under the longer (1: the max; 0: the sum), see
            :func:`serialized`.
    """
    flops = as_float(flops)  # Python ints beyond int32 (2·8192³) are fine
    bytes_moved = as_float(bytes_moved)
    t_c = flops / (peak_flops * compute_efficiency)
    t_m = bytes_moved / (bandwidth_Bps * memory_efficiency)
    t = serialized(smooth_max(t_c, t_m, relative_temperature(temperature, t_c, t_m)), t_c, t_m, overlap) + overhead_s
    return Roofline(
        time_s=t,
        compute_time_s=t_c,
        memory_time_s=t_m,
        compute_bound=t_c >= t_m,
        achieved_flops=safe_divide(flops, t),
        arithmetic_intensity=safe_divide(flops, bytes_moved, jnp.inf),
        energy_J=flops * energy_J_per_flop + bytes_moved * energy_J_per_B,
        compute_energy_J=flops * energy_J_per_flop,
        memory_energy_J=bytes_moved * energy_J_per_B,
    )
