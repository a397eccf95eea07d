"""Protocol entry point of the power family: device power of a roofline workload, ``device_power_model(spec, *,
temperature=0.0)``.

The spec is the device, the workload (FLOPs, bytes to main memory), the clock, the *physical* die temperature
``die_temperature_K`` (leakage) and a power cap; the model is :func:`device_power` (CMOS switching ``f·V²`` plus
HotSpot-style exponential leakage, see its docstring). ``temperature`` is only the relaxation temperature of the
roofline's max. ``feasible`` means the draw is within ``power_cap_W``; ``violation`` is the relative excess.
"""

from __future__ import annotations

import equinox as eqx
import jax

from .._pytree import as_float
from ..hardware import Accelerator
from ..primitives import metrics_class, relu
from ._device import DevicePower, device_power


class DevicePowerSpec(eqx.Module):
    """A roofline workload (``flops``, ``bytes_moved``) on ``accel`` at ``clock_Hz`` and die temperature
    ``die_temperature_K`` (kelvin), under ``power_cap_W`` (default: no cap)."""

    accel: Accelerator
    flops: jax.Array = eqx.field(converter=as_float)
    bytes_moved: jax.Array = eqx.field(converter=as_float)
    clock_Hz: jax.Array = eqx.field(converter=as_float)
    die_temperature_K: jax.Array = eqx.field(converter=as_float, default=358.15)
    power_cap_W: jax.Array = eqx.field(converter=as_float, default=float("inf"))
    dtype: str = eqx.field(static=True, default="bf16")


DevicePowerMetrics = metrics_class("DevicePowerMetrics", DevicePower._fields, module=__name__,
                                   doc="Every :class:`DevicePower` field (``feasible``: within the power cap).")


def device_power_model(spec: DevicePowerSpec, *, temperature=0.0) -> DevicePowerMetrics:
    """Power, time, energy and EDP of the workload on the device (:func:`device_power`)."""
    p = device_power(spec.accel, spec.flops, spec.bytes_moved, dtype=spec.dtype, clock_Hz=spec.clock_Hz,
                     die_temperature_K=spec.die_temperature_K, temperature=temperature)
    return DevicePowerMetrics.from_values(p, feasible=p.power_W <= spec.power_cap_W,
                                          violation=relu(p.power_W / spec.power_cap_W - 1.0, temperature))
