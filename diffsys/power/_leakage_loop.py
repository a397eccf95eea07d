"""Leakage–temperature fixed point ``T = steady(P_dyn + P_leak(T))`` with a thermal-runaway flag.

HotSpot 6 (``steady_state_temp`` with ``-leakage_used 1``) iterates the same loop until ``max ΔT < 0.01 K`` and
aborts on runaway. Here the loop is :func:`optimistix.fixed_point` (plain fixed-point iteration, the same iterates
as HotSpot's, max-norm test ``max ΔT < tol_K``) with ``throw=False``: the leakage is evaluated at temperatures
clipped to ``runaway_K`` so a runaway point stays finite in a batch, and runaway is reported as a flag plus a smooth
violation amount. Gradients use the implicit function theorem (optimistix's ``ImplicitAdjoint``:
``dT*/dθ = (I − ∂F/∂T)⁻¹ ∂F/∂θ`` at the fixed point), so memory does not grow with the iteration count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp
import optimistix as optx

from .._status import log_unconverged, succeeded
from ._dynamic import hotspot_leakage
from ._thermal_block import RCNetwork, SteadySolver, Temperatures

logger = logging.getLogger(__name__)

#: HotSpot's thermal-runaway sanity threshold (temperature.h ``TEMP_HIGH``), kelvin.
RUNAWAY_K = 500.0


class LeakageSteady(NamedTuple):
    temperatures: Temperatures
    leakage_W: jnp.ndarray  # (n,) per-block leakage at the fixed point
    total_power_W: jnp.ndarray  # dynamic + leakage, summed over blocks
    converged: jnp.ndarray  # bool: the fixed-point solve succeeded (last update below ``tol_K``)
    runaway: jnp.ndarray  # bool: no convergence or temperature above ``runaway_K``
    runaway_excess_K: jnp.ndarray  # smooth amount: max(peak − runaway_K, 0) + last update size if not converged
    iterations_residual_K: jnp.ndarray  # max |F(T) − T| at the returned temperatures (size of one more update)
    steps: jnp.ndarray  # fixed-point iterations taken


@eqx.filter_jit
def steady_state_with_leakage(net: RCNetwork, dynamic_power_W, leakage_fn: Callable | None = None, *,
                              area_m2=None, n_iter: int = 60, tol_K: float = 0.01,
                              runaway_K: float = RUNAWAY_K) -> LeakageSteady:
    """Solve the leakage–temperature loop on a block network.

    ``leakage_fn(block_temperature_K) -> (n,) W``; by default HotSpot's ``1.5e4·A·exp(0.036(T − 383.15))`` with the
    block areas ``area_m2``. At most ``n_iter`` fixed-point iterations from the leakage-free solution; HotSpot's
    convergence test ``max ΔT < tol_K`` (0.01 K). Gradients by the implicit function theorem.
    """
    if leakage_fn is None:
        if area_m2 is None:
            raise ValueError("steady_state_with_leakage needs leakage_fn or area_m2 (block areas, m^2)")
        leakage_fn = lambda T: hotspot_leakage(area_m2, T)
    solve = SteadySolver(net)
    p_dyn = jnp.asarray(dynamic_power_W)

    def update(T_blk, p):
        return solve(p + leakage_fn(jnp.minimum(T_blk, runaway_K))).block_K

    T0 = solve(p_dyn).block_K
    sol = optx.fixed_point(update, optx.FixedPointIteration(rtol=0.0, atol=tol_K, norm=optx.max_norm), T0, p_dyn,
                           max_steps=n_iter, throw=False)
    T_blk = sol.value
    leak = leakage_fn(jnp.minimum(T_blk, runaway_K))
    temps = solve(p_dyn + leak)
    last = jnp.max(jnp.abs(temps.block_K - T_blk))
    converged = succeeded(sol.result)
    log_unconverged(logger, converged, f"leakage-temperature loop ({n_iter} iterations, tol {tol_K} K)")
    too_hot = temps.peak_K > runaway_K
    excess = jnp.maximum(temps.peak_K - runaway_K, 0.0) + jnp.where(converged, 0.0, last)
    return LeakageSteady(temps, leak, jnp.sum(p_dyn + leak), converged, ~converged | too_hot, excess, last,
                         sol.stats["num_steps"])
