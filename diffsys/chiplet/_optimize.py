"""Co-optimization of a chiplet package: partitioning, strategies, diagonal links and memory placement.

The design space mixes discrete genes (a partition strategy per layer group, the diagonal-link pattern, the
off-package memory placement) with continuous partition variables in one of two parametrizations:

- ``"affinity"`` (compact, for GA / MIQP): one skew ``θ_g`` per group, ``logits_gi = θ_g · proximity_i`` where
  ``proximity`` is the (centred, unit-range) closeness of chiplet ``i`` to the memory interfaces of the chosen
  placement: ``θ > 0`` gives more work to dies near memory, ``θ < 0`` to dies far from it, ``θ = 0`` is uniform;
- ``"full"`` (for gradient search): free softmax logits for every group and chiplet.

The baseline is the uniform partition on a mesh without diagonal links, with memory on the package perimeter and
the best single strategy for all groups. The searches over this space (GA, MIQP, gradient) live above the optimizers,
in :func:`diffsys.problems.optimize_mcm` (the layering: ``chiplet`` <- ``optimize`` <- ``problems``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice
from ..space import Categorical, Continuous, DesignSpace
from ._model import STRATEGIES, MCMDesign, MCMModel
from ._package import ChipletPackage

PARAMETRIZATIONS = ("affinity", "full")


def memory_proximity(model: MCMModel) -> np.ndarray:
    """``(P, n)`` closeness of every chiplet to each placement's memory interfaces, centred, in [-0.5, 0.5]."""
    g = model.graph
    rc = np.array([divmod(i, g.cols) for i in range(g.n)])
    hops = np.abs(rc[:, None, :] - rc[None, :, :]).sum(-1)  # mesh hops
    # mean hops from the memory interfaces (weighted by their bandwidth share) to each chiplet
    dist = np.einsum("pm,mi->pi", g.mem_share, hops)
    prox = -dist
    prox = prox - prox.mean(1, keepdims=True)
    span = prox.max(1, keepdims=True) - prox.min(1, keepdims=True)
    return prox / np.where(span > 0, span, 1.0)


def mcm_space(model: MCMModel, parametrization: str = "affinity", logit_range: float = 4.0,
              affinity_range: float = 6.0, fixed=None) -> DesignSpace:
    """The design space of ``model`` (parameter names ``strategy.<group>``, ``diagonals``, ``memory`` and
    ``affinity.<group>`` or ``logit.<group>.<chiplet>``); names in ``fixed`` are left out (held constant)."""
    check_choice("parametrization", parametrization, PARAMETRIZATIONS)
    groups = model.workload.group_names
    params = {}
    if parametrization == "affinity":
        for gname in groups:
            params[f"affinity.{gname}"] = Continuous(-affinity_range, affinity_range, grid=9)
    else:
        for gname in groups:
            for i in range(model.num_chiplets):
                params[f"logit.{gname}.{i}"] = Continuous(-logit_range, logit_range, grid=5)
    for gname in groups:
        params[f"strategy.{gname}"] = Categorical(STRATEGIES)
    params["diagonals"] = Categorical(model.graph.pattern_names)
    params["memory"] = Categorical(model.graph.placement_names)
    for name in fixed or {}:
        if name not in params:
            raise ValueError(f"fixed parameter {name!r} is not in the space; parameters: {list(params)}")
        params.pop(name)
    return DesignSpace(params)


def design_from_point(model: MCMModel, point: dict, parametrization: str = "affinity", temperature=0.0,
                      proximity=None, fixed=None) -> MCMDesign:
    """The :class:`MCMDesign` of a point of :func:`mcm_space` (works on traced values); ``fixed`` supplies the
    values of parameters left out of the space."""
    if fixed:
        point = {**fixed, **point}
    groups = model.workload.group_names
    strategy = jnp.stack([jnp.asarray(point[f"strategy.{g}"], float) for g in groups])
    memory = jnp.asarray(point["memory"], float)
    if parametrization == "affinity":
        prox = jnp.asarray(memory_proximity(model) if proximity is None else proximity, jnp.float32)
        prox_sel = model._select(prox, memory, temperature)  # (n,)
        theta = jnp.stack([jnp.asarray(point[f"affinity.{g}"], float) for g in groups])
        logits = theta[:, None] * prox_sel[None, :]
    else:
        logits = jnp.stack([jnp.stack([jnp.asarray(point[f"logit.{g}.{i}"], float)
                                       for i in range(model.num_chiplets)]) for g in groups])
    return MCMDesign(partition_logits=logits, strategy=strategy, diagonals=jnp.asarray(point["diagonals"], float),
                     memory=memory)




def baseline_placement(model: MCMModel) -> str:
    names = model.graph.placement_names
    for cand in ("perimeter", "west_east", names[0]):
        if cand in names:
            return cand
    return names[0]


def baseline(model: MCMModel, package: ChipletPackage):
    """Uniform partition, mesh only, memory on the perimeter, the best single strategy for every group.

    Returns ``(design, metrics)``."""
    best = None
    f = jax.jit(lambda d: model(d, package))
    for s in STRATEGIES:
        d = model.uniform_design(s, "none", baseline_placement(model))
        m = f(d)
        if best is None or float(m.edp_Js) < float(best[1].edp_Js):
            best = (d, m)
    return best
