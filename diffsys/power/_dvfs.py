"""DVFS voltage–frequency curves from the alpha-power law.

Sakurai & Newton, "Alpha-power law MOSFET model and its applications to CMOS inverter delay and other formulas",
IEEE JSSC 25(2), 1990: gate delay ``∝ V / (V − V_th)^α`` so the maximum clock is
``f(V) = f_max · [(V − V_th)^α / V] / [(V_max − V_th)^α / V_max]`` (α ≈ 1.3 for short-channel devices).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .._checks import check_range
from .._pytree import as_float

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

    def voltage(self, frequency_Hz, n_newton: int = 25):
        """Lowest voltage that sustains ``frequency_Hz`` (inverse of :meth:`frequency`, never below ``v_min_V``).

        Newton iterations from ``v_max_V`` on the concave, increasing ``f(V)`` (converge monotonically)."""
        f = jnp.asarray(frequency_Hz)
        target = jnp.maximum(f, self.f_floor_Hz)

        def step(v, _):
            val, d = jax.jvp(self.frequency, (v,), (jnp.ones_like(v),))
            return jnp.clip(v - (val - target) / d, self.v_min_V, self.v_max_V * 1.5), None

        v0 = jnp.broadcast_to(self.v_max_V, jnp.shape(target)).astype(jnp.result_type(target, float))
        v, _ = jax.lax.scan(step, v0, None, length=n_newton)
        return v
