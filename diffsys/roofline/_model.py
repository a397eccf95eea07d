"""Protocol entry point of the roofline family: an op on an accelerator, ``op_model(spec, *, temperature=0.0)``.

The spec bundles the op's work (:class:`OpCost`: FLOPs, bytes, matrix share) with the device
(:class:`~diffsys.hardware.Accelerator`); the model is :func:`op_time` (Williams et al., CACM 2009, with the
size-dependent efficiencies of :func:`default_efficiency`). A single op is always feasible.
"""

from __future__ import annotations

import equinox as eqx

from .._pytree import as_float
from ..hardware import Accelerator
from ..primitives import metrics_class
from ._core import Roofline
from ._ops import OpCost
from ._optime import op_time


def _as_op(op) -> OpCost:
    return OpCost(*(as_float(x) for x in op))


class OpSpec(eqx.Module):
    """An op (:class:`OpCost`) on an accelerator, in the data type ``dtype`` (static)."""

    op: OpCost = eqx.field(converter=_as_op)
    accel: Accelerator
    dtype: str = eqx.field(static=True, default="bf16")


OpMetrics = metrics_class("OpMetrics", Roofline._fields, module=__name__,
                          doc="Every :class:`Roofline` field of one op on one accelerator.")


def op_model(spec: OpSpec, *, temperature=0.0) -> OpMetrics:
    """Roofline time, bound and energy of ``spec.op`` on ``spec.accel`` (:func:`op_time`)."""
    return OpMetrics.from_values(op_time(spec.op, spec.accel, spec.dtype, temperature=temperature))
