"""Leakage–temperature fixed point ``T = steady(P_dyn + P_leak(T))`` with a thermal-runaway flag.

HotSpot 6 (``steady_state_temp`` with ``-leakage_used 1``) iterates the same loop and aborts on runaway; here the
iteration count is fixed (jit/vmap friendly), the leakage is evaluated at temperatures clipped to ``runaway_K`` so a
runaway point stays finite in a batch, and runaway is reported as a flag plus a smooth violation amount.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from ._dynamic import hotspot_leakage
from ._thermal_block import RCNetwork, SteadySolver, Temperatures

#: HotSpot's thermal-runaway sanity threshold (temperature.h ``TEMP_HIGH``), kelvin.
RUNAWAY_K = 500.0


class LeakageSteady(NamedTuple):
    temperatures: Temperatures
    leakage_W: jnp.ndarray  # (n,) per-block leakage at the fixed point
    total_power_W: jnp.ndarray  # dynamic + leakage, summed over blocks
    converged: jnp.ndarray  # bool: last update below ``tol_K``
    runaway: jnp.ndarray  # bool: no convergence or temperature above ``runaway_K``
    runaway_excess_K: jnp.ndarray  # smooth amount: max(peak − runaway_K, 0) + last update size if not converged
    iterations_residual_K: jnp.ndarray  # size of the last update


@eqx.filter_jit
def steady_state_with_leakage(net: RCNetwork, dynamic_power_W, leakage_fn: Callable | None = None, *,
                              area_m2=None, n_iter: int = 60, tol_K: float = 0.01,
                              runaway_K: float = RUNAWAY_K) -> LeakageSteady:
    """Solve the leakage–temperature loop on a block network.

    ``leakage_fn(block_temperature_K) -> (n,) W``; by default HotSpot's ``1.5e4·A·exp(0.036(T − 383.15))`` with the
    block areas ``area_m2``. Fixed ``n_iter`` iterations (unrolled gradients); HotSpot's convergence test is
    ``max ΔT < 0.01 K``.
    """
    if leakage_fn is None:
        if area_m2 is None:
            raise ValueError("steady_state_with_leakage needs leakage_fn or area_m2 (block areas, m^2)")
        leakage_fn = lambda T: hotspot_leakage(area_m2, T)
    solve = SteadySolver(net)
    p_dyn = jnp.asarray(dynamic_power_W)

    def body(T_blk, _):
        leak = leakage_fn(jnp.minimum(T_blk, runaway_K))
        new = solve(p_dyn + leak).block_K
        return new, jnp.max(jnp.abs(new - T_blk))

    T0 = solve(p_dyn).block_K
    T_blk, deltas = jax.lax.scan(body, T0, None, length=n_iter)
    last = deltas[-1]
    leak = leakage_fn(jnp.minimum(T_blk, runaway_K))
    temps = solve(p_dyn + leak)
    converged = last < tol_K
    too_hot = temps.peak_K > runaway_K
    excess = jnp.maximum(temps.peak_K - runaway_K, 0.0) + jnp.where(converged, 0.0, last)
    return LeakageSteady(temps, leak, jnp.sum(p_dyn + leak), converged, ~converged | too_hot, excess, last)
