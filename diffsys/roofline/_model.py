"""Protocol entry point of the roofline family: an op on an accelerator, ``op_model(spec, *, temperature=0.0)``.

The spec bundles the op's work (:class:`OpCost`: FLOPs, bytes, matrix share) with the device
(:class:`~diffsys.hardware.Accelerator`); the model is :func:`op_time` (Williams et al., CACM 2009, with the
size-dependent efficiencies of :func:`default_efficiency`). A single op is always feasible.
"""

from __future__ import annotations

import equinox as eqx
import jax

from .._pytree import as_float
from ..hardware import Accelerator
from ..primitives import metrics_class
from ._core import Roofline
from ._ops import OpCost
from ._optime import op_time


class OpSpec(eqx.Module):
    """An op's work and traffic (the fields of :class:`OpCost`, flat so a design space can vary them by name:
    ``"flops"``, ``"bytes_read"``) on an accelerator, in the data type ``dtype`` (static). ``gemm`` holds the op's
    GEMM kernels when it has them (timed by the calibrated kernel model). :meth:`of` builds one from an
    :class:`OpCost` (e.g. :func:`gemm`)."""

    flops: jax.Array = eqx.field(converter=as_float)
    bytes_read: jax.Array = eqx.field(converter=as_float)
    bytes_written: jax.Array = eqx.field(converter=as_float)
    accel: Accelerator
    matrix: jax.Array = eqx.field(converter=as_float, default=1.0)
    gemm: jax.Array | None = None
    dtype: str = eqx.field(static=True, default="bf16")

    @classmethod
    def of(cls, op: OpCost, accel: Accelerator, dtype: str = "bf16") -> "OpSpec":
        return cls(op.flops, op.bytes_read, op.bytes_written, accel, op.matrix, op.gemm, dtype)

    @property
    def op(self) -> OpCost:
        return OpCost(self.flops, self.bytes_read, self.bytes_written, self.matrix, self.gemm)


OpMetrics = metrics_class("OpMetrics", Roofline._fields, module=__name__,
                          doc="Every :class:`Roofline` field of one op on one accelerator.")


def op_model(spec: OpSpec, *, temperature=0.0) -> OpMetrics:
    """Roofline time, bound and energy of ``spec.op`` on ``spec.accel`` (:func:`op_time`)."""
    return OpMetrics.from_values(op_time(spec.op, spec.accel, spec.dtype, temperature=temperature))
