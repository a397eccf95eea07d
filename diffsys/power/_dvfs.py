"""DVFS voltage–frequency curves from the alpha-power law.

Sakurai & Newton, "Alpha-power law MOSFET model and its applications to CMOS inverter delay and other formulas",
IEEE JSSC 25(2), 1990: gate delay ``∝ V / (V − V_th)^α`` so the maximum clock is
``f(V) = f_max · [(V − V_th)^α / V] / [(V_max − V_th)^α / V_max]`` (α ≈ 1.3 for short-channel devices).

The inverse ``V(f)`` is an :func:`optimistix.root_find` (Newton from ``V_max``; ``f(V)`` is concave and increasing
above ``V_th``, so the iterates decrease monotonically to the root) with ``throw=False`` and implicit-function
gradients (``dV/dθ = −(∂f/∂θ)/(∂f/∂V)`` at the root).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx

from .._checks import check_range
from .._pytree import as_float
from .._status import log_unconverged, succeeded

logger = logging.getLogger(__name__)

_f = {"converter": as_float}


class DVFSCurve(eqx.Module):
    """A V–f curve: voltage range ``[v_min_V, v_max_V]``, the clock ``f_max_Hz`` at ``v_max_V``, threshold voltage
    and velocity-saturation exponent α. Clocks below ``frequency(v_min_V)`` run at ``v_min_V`` (voltage floor)."""

    f_max_Hz: jnp.ndarray = eqx.field(**_f)
    v_max_V: jnp.ndarray = eqx.field(default=1.0, **_f)
    v_min_V: jnp.ndarray = eqx.field(default=0.65, **_f)
    v_th_V: jnp.ndarray = eqx.field(default=0.3, **_f)
    alpha: jnp.ndarray = eqx.field(default=1.3, **_f)
    f_min_Hz: jnp.ndarray = eqx.field(default=0.0, **_f)

    def __check_init__(self):
        check_range("DVFSCurve.f_max_Hz", self.f_max_Hz, 0.0, None, lo_open=True)
        check_range("DVFSCurve.v_th_V", self.v_th_V, 0.0, None)
        check_range("DVFSCurve.alpha", self.alpha, 1.0, 2.0)
        try:
            if not float(self.v_th_V) < float(self.v_min_V) <= float(self.v_max_V):
                raise ValueError(f"DVFSCurve needs v_th_V < v_min_V <= v_max_V, got {float(self.v_th_V):g}, "
                                 f"{float(self.v_min_V):g}, {float(self.v_max_V):g}")
        except TypeError:
            pass
        check_range("DVFSCurve.f_min_Hz", self.f_min_Hz, 0.0, None)

    def _shape(self, v):
        return (v - self.v_th_V) ** self.alpha / v

    def frequency(self, voltage_V):
        """Highest clock (Hz) at ``voltage_V``."""
        v = jnp.maximum(voltage_V, self.v_th_V + 1e-3)
        return self.f_max_Hz * self._shape(v) / self._shape(self.v_max_V)

    @property
    def f_floor_Hz(self):
        """Clock at the minimum voltage."""
        return self.frequency(self.v_min_V)

    def solve_voltage(self, frequency_Hz, n_newton: int = 25) -> VoltageSolve:
        """Lowest voltage that sustains ``frequency_Hz`` (never below ``v_min_V``) with the solver's status.

        Newton on ``f(V) − f_target`` from ``v_max_V`` (at most ``n_newton`` steps, stopping at a relative step
        below ~100 machine epsilons), the result clipped to ``[v_min_V, 1.5·v_max_V]``; elementwise over the shape of
        ``frequency_Hz``."""
        f = jnp.asarray(frequency_Hz)
        target = jnp.maximum(f, self.f_floor_Hz)
        dtype = jnp.result_type(target, float)
        eps = float(jnp.finfo(dtype).eps)
        solver = optx.Newton(rtol=100 * eps, atol=100 * eps)
        f_max = self.f_max_Hz

        def one(t):
            def resid(v, curve):
                return (curve.frequency(v) - t) / f_max

            v0 = jnp.asarray(self.v_max_V, dtype)
            sol = optx.root_find(resid, solver, v0, self, max_steps=n_newton, throw=False)
            return jnp.clip(sol.value, self.v_min_V, self.v_max_V * 1.5), succeeded(sol.result)

        flat = jnp.ravel(target).astype(dtype)
        v, ok = jax.vmap(one)(flat) if flat.size != 1 or jnp.ndim(target) else one(flat[0])
        v, ok = jnp.reshape(v, jnp.shape(target)), jnp.reshape(ok, jnp.shape(target))
        log_unconverged(logger, ok, "DVFS voltage solve")
        return VoltageSolve(v, ok)

    def voltage(self, frequency_Hz, n_newton: int = 25):
        """Lowest voltage that sustains ``frequency_Hz`` (inverse of :meth:`frequency`, never below ``v_min_V``);
        :meth:`solve_voltage` also returns the convergence flag."""
        return self.solve_voltage(frequency_Hz, n_newton).voltage_V


class VoltageSolve(NamedTuple):
    voltage_V: jnp.ndarray
    converged: jnp.ndarray  # bool: the Newton solve met its tolerance within n_newton steps
