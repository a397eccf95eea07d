"""Co-optimization of a chiplet package: partitioning, strategies, diagonal links and memory placement.

The design space mixes discrete genes (a partition strategy per layer group, the diagonal-link pattern, the
off-package memory placement) with continuous partition variables in one of two parametrizations:

- ``"affinity"`` (compact, for GA / MIQP): one skew ``θ_g`` per group, ``logits_gi = θ_g · proximity_i`` where
  ``proximity`` is the (centred, unit-range) closeness of chiplet ``i`` to the memory interfaces of the chosen
  placement: ``θ > 0`` gives more work to dies near memory, ``θ < 0`` to dies far from it, ``θ = 0`` is uniform;
- ``"full"`` (for gradient search): free softmax logits for every group and chiplet.

Searches use :mod:`diffsys.optimize` (``genetic_search``, ``miqp_search``, ``gradient_search``); every result is
re-evaluated by the exact model (temperature 0) at the discretized design. The baseline is the uniform partition on
a mesh without diagonal links, with memory on the package perimeter and the best single strategy for all groups.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice
from ..space import Categorical, Continuous, DesignSpace
from ._model import STRATEGIES, MCMDesign, MCMMetrics, MCMModel
from ._package import ChipletPackage

PARAMETRIZATIONS = ("affinity", "full")
METHODS = ("ga", "miqp", "gradient", "ga+gradient")


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


def mcm_problem(model: MCMModel, package: ChipletPackage, parametrization: str = "affinity",
                objective: str = "edp_Js", fixed=None, **space_kwargs):
    """A :class:`diffsys.optimize.Problem` minimizing ``objective`` (default EdP) over :func:`mcm_space`
    (``fixed``: parameter values held constant and left out of the space)."""
    from ..optimize import Problem

    fixed = {k: float(v) for k, v in (fixed or {}).items()}
    space = mcm_space(model, parametrization, fixed=fixed, **space_kwargs)
    prox = memory_proximity(model)

    def evaluate(point, temperature=0.0):
        return model(design_from_point(model, point, parametrization, temperature, prox, fixed), package,
                     temperature=temperature)

    return Problem(evaluate, space, objective=objective, feasible="feasible", violation="violation",
                   log_objective=True, name=f"mcm-{model.workload.name}-{model.graph.rows}x{model.graph.cols}")


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


class MCMResult(NamedTuple):
    """One optimization: the exact design and metrics at it, the baseline, evaluations and wall time."""

    method: str
    design: MCMDesign
    metrics: MCMMetrics
    edp: float
    baseline_edp: float
    improvement: float
    evaluations: int
    seconds: float
    point: dict
    label: dict


def optimize(model: MCMModel, package: ChipletPackage, method: str = "ga", *, key=None, budget: str = "default",
             **kwargs) -> MCMResult:
    """Run one search method and re-evaluate its design with the exact model.

    ``method``:

    - ``"ga"``: genetic search over strategies, diagonal pattern, memory placement and affinity skews, seeded with
      the uniform mesh-only designs;
    - ``"miqp"``: sequential trust-region MIQP (quadratic model least-squares fitted to exact evaluations in the
      trust region, JAX enumeration + ADMM solver) from the baseline over the same space;
    - ``"gradient"``: annealed gradient search over the full relaxed partition logits, with the baseline's discrete
      choices held fixed (the value of non-uniform partitions alone). Its random starts can end in relaxed local
      minima worse than the uniform baseline; the result is reported as found (``improvement < 1``), see
      ``docs/chiplet.md``;
    - ``"ga+gradient"``: the GA's discrete choices, then gradient search over the full partition logits.

    ``budget``: ``"quick"`` (a few seconds per search) or ``"default"``. Extra keywords go to the search function.
    """
    from .. import optimize as opt

    check_choice("method", method, METHODS)
    check_choice("budget", budget, ("quick", "default"))
    key = jax.random.PRNGKey(0) if key is None else key
    quick = budget == "quick"
    base_design, base_metrics = baseline(model, package)
    t0 = time.perf_counter()
    evaluations = 0
    fixed = None
    if method in ("ga", "ga+gradient"):
        problem = mcm_problem(model, package, "affinity")
        kw = {"population": 32, "generations": 12} if quick else {"population": 64, "generations": 30}
        kw.update(kwargs if method == "ga" else {})
        res = opt.genetic_search(problem, key=key, init=_baseline_points(model, problem.space), **kw)
        param, point, evaluations = "affinity", dict(res.point), int(res.evaluations)
        if method == "ga+gradient":
            fixed = {k: v for k, v in res.point.items() if not k.startswith("affinity.")}
    if method == "miqp":
        problem = mcm_problem(model, package, "affinity")
        kw = {"solver": "jax", "method": "fit", "radius": 1, "iterations": 3 if quick else 12}
        kw.update(kwargs)
        x0 = _baseline_point(model, problem.space, base_design)
        res = opt.miqp_search(problem, key=key, x0=x0, **kw)
        param, point, evaluations = "affinity", dict(res.point), int(res.evaluations)
    if method in ("gradient", "ga+gradient"):
        if fixed is None:
            fixed = {k: v for k, v in _baseline_point(model, mcm_space(model, "full"), base_design).items()
                     if not k.startswith("logit.")}
        problem = mcm_problem(model, package, "full", fixed=fixed)
        kw = {"n_starts": 4, "steps": 60 if quick else 200, "learning_rate": 0.1, "temperature": (1.0, 0.02),
                  "model_temperature": (0.3, 0.003), "repair": False}
        kw.update(kwargs if method == "gradient" else {})
        res = opt.gradient_search(problem, key=key, **kw)
        refined = {k: float(v) for k, v in {**fixed, **res.point}.items()}
        evaluations += int(res.evaluations)
        if method == "gradient" or float(res.objective) < _exact(model, package, point, param):
            param, point = "full", refined  # the refinement is kept only if the exact model says it is better
    seconds = time.perf_counter() - t0
    point = {k: float(v) for k, v in point.items()}
    design = design_from_point(model, point, param)
    metrics = jax.jit(lambda d: model(d, package))(design)  # exact re-evaluation at the discretized design
    edp = float(metrics.edp_Js) if bool(metrics.feasible) else float("inf")
    b = float(base_metrics.edp_Js)
    return MCMResult(method, design, metrics, edp, b, b / edp, evaluations, seconds, point,
                     mcm_space(model, param).label(point))


def _exact(model, package, point, param):
    m = model(design_from_point(model, {k: float(v) for k, v in point.items()}, param), package)
    return float(m.edp_Js) if bool(m.feasible) else float("inf")


def _baseline_point(model, space, design):
    groups = model.workload.group_names
    pt = {}
    for n in space.names:
        if n.startswith(("affinity.", "logit.")):
            pt[n] = 0.0
    for i, g in enumerate(groups):
        pt[f"strategy.{g}"] = float(design.strategy[i])
    pt["diagonals"] = float(design.diagonals)
    pt["memory"] = float(design.memory)
    return {k: v for k, v in pt.items() if k in space.names}


def _baseline_points(model, space):
    """The three uniform mesh-only perimeter designs (one per strategy), as a batched initial population."""
    pts = [_baseline_point(model, space, model.uniform_design(s, "none", baseline_placement(model)))
           for s in STRATEGIES]
    return {n: jnp.asarray([p[n] for p in pts]) for n in space.names}
