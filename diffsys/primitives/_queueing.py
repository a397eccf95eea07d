"""Single-server queue waiting times with a smooth saturation barrier.

Sources:
- M/M/1 mean waiting time in queue ``W_q = ρ/(1-ρ) · S`` (Kleinrock, *Queueing Systems Vol. 1*, 1975, eq. 3.26).
- M/D/1 (deterministic service) ``W_q = ρ/(2(1-ρ)) · S`` (Pollaczek–Khinchine formula with zero service variance;
  Kleinrock 1975, eq. 5.73). This is the contention term of analytical NoC models (Dally & Towles,
  *Principles and Practices of Interconnection Networks*, 2004, §23).
- M/G/1 in general: ``W_q = ρ(1 + c_s²)/(2(1-ρ)) · S`` with ``c_s`` the coefficient of variation of service.

Near and beyond saturation (``ρ ≥ ρ_max``) the waiting time continues *linearly* with the slope it has at ``ρ_max``,
so values stay finite, monotone and differentiable through saturation; ``saturated`` flags those points so a sweep can
report them instead of crashing or returning ``inf``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

DEFAULT_RHO_MAX = 0.99


class QueueDelay(NamedTuple):
    wait_s: jnp.ndarray  # mean time waiting in queue (excludes service), same unit as ``service``
    utilization: jnp.ndarray  # ρ as given (may exceed 1)
    saturated: jnp.ndarray  # bool, ρ >= ρ_max


def mg1_wait(utilization, service, scv=1.0, rho_max=DEFAULT_RHO_MAX) -> QueueDelay:
    """M/G/1 mean queueing delay ``ρ(1+c²)/(2(1-ρ))·S`` with a linear continuation past ``rho_max``.

    Args:
        utilization: offered load ρ = λ·S (dimensionless, ≥ 0).
        service: mean service time S (any time unit; the result is in the same unit).
        scv: squared coefficient of variation of the service time (0 = deterministic, 1 = exponential).
        rho_max: where the exact formula hands over to its tangent line (0 < rho_max < 1).
    """
    rho = jnp.asarray(utilization)
    rho_c = jnp.minimum(rho, rho_max)
    k = (1.0 + scv) / 2.0
    exact = k * rho_c / (1.0 - rho_c)
    slope = k / (1.0 - rho_max) ** 2  # d/dρ [ρ/(1-ρ)] = 1/(1-ρ)²
    extra = jnp.maximum(rho - rho_max, 0.0) * slope
    return QueueDelay(wait_s=(exact + extra) * service, utilization=rho, saturated=rho >= rho_max)


def mm1_wait(utilization, service, rho_max=DEFAULT_RHO_MAX) -> QueueDelay:
    """M/M/1 mean waiting time in queue ``ρ/(1-ρ)·S`` (Kleinrock 1975, eq. 3.26), saturating smoothly."""
    return mg1_wait(utilization, service, scv=1.0, rho_max=rho_max)


def md1_wait(utilization, service, rho_max=DEFAULT_RHO_MAX) -> QueueDelay:
    """M/D/1 mean waiting time in queue ``ρ/(2(1-ρ))·S`` (Pollaczek–Khinchine, deterministic service)."""
    return mg1_wait(utilization, service, scv=0.0, rho_max=rho_max)
