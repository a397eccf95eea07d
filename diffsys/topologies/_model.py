"""Protocol entry point of the network family: a collective on a system, ``collective_model(spec, *,
temperature=0.0)``.

The spec is a :class:`System` (named network dimensions), a buffer size and the collective (static); the model is
the dimension-wise alpha-beta schedule of :func:`hierarchical_collective_time` (NCCL's algorithms and protocols per
dimension, see docs/network.md). A collective is always feasible.
"""

from __future__ import annotations

import equinox as eqx
import jax

from .._pytree import as_float
from ..primitives import metrics_class
from ._hierarchical import HierarchicalCollectiveTime, hierarchical_collective_time
from ._systems import System


class CollectiveSpec(eqx.Module):
    """``op`` (static, e.g. ``"all_reduce"``) of ``size_B`` bytes (nccl-tests convention) over every rank of
    ``system``."""

    system: System
    size_B: jax.Array = eqx.field(converter=as_float)
    op: str = eqx.field(static=True, default="all_reduce")


CollectiveMetrics = metrics_class("CollectiveMetrics", HierarchicalCollectiveTime._fields, module=__name__,
                                  doc="Every :class:`HierarchicalCollectiveTime` field of one collective.")


def collective_model(spec: CollectiveSpec, *, temperature=0.0) -> CollectiveMetrics:
    """Time and bus bandwidth of ``spec.op`` on ``spec.system`` (:func:`hierarchical_collective_time`)."""
    return CollectiveMetrics.from_values(hierarchical_collective_time(spec.op, spec.size_B, spec.system.dims,
                                                                      temperature=temperature))
