"""Protocol entry point of the memory family: off-chip traffic of a tiled GEMM, ``gemm_traffic_model(spec, *,
temperature=0.0)``.

The model is :func:`gemm_traffic` (output-stationary square tiles in ``sram_B`` bytes, never below the Hong–Kung
bound ``2mnk/√S``; Hong & Kung, STOC 1981). A tiling is always feasible.
"""

from __future__ import annotations

import equinox as eqx
import jax

from .._pytree import as_float
from ..primitives import metrics_class
from ._tiling import Traffic, gemm_traffic


class GemmTrafficSpec(eqx.Module):
    """A ``batch`` of ``m×k · k×n`` GEMMs with ``sram_B`` bytes of on-chip buffer and ``bytes_per_element``."""

    m: jax.Array = eqx.field(converter=as_float)
    n: jax.Array = eqx.field(converter=as_float)
    k: jax.Array = eqx.field(converter=as_float)
    sram_B: jax.Array = eqx.field(converter=as_float)
    bytes_per_element: jax.Array = eqx.field(converter=as_float, default=2.0)
    batch: jax.Array = eqx.field(converter=as_float, default=1.0)


TrafficMetrics = metrics_class("TrafficMetrics", Traffic._fields, module=__name__,
                               doc="Every :class:`Traffic` field of one tiled GEMM (bytes).")


def gemm_traffic_model(spec: GemmTrafficSpec, *, temperature=0.0) -> TrafficMetrics:
    """Achievable, lower-bound and compulsory traffic of the GEMM (:func:`gemm_traffic`)."""
    return TrafficMetrics.from_values(gemm_traffic(spec.m, spec.n, spec.k, spec.sram_B, spec.bytes_per_element,
                                                   batch=spec.batch, temperature=temperature))
