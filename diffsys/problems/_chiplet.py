"""Chiplet-package co-optimization: GA, MIQP and gradient search over :func:`diffsys.chiplet.mcm_space`.

Searches use :mod:`diffsys.optimize` (``genetic_search``, ``miqp_search``, ``gradient_search``) on the protocol model
of the package (:func:`diffsys.chiplet.package_metrics`); every result is re-evaluated by the exact model
(temperature 0) at the discretized design and compared with :func:`diffsys.chiplet.baseline` (the uniform partition
on a mesh without diagonal links, memory on the perimeter, the best single strategy for all groups).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._checks import check_choice
from ..chiplet import (
    STRATEGIES,
    ChipletPackage,
    MCMDesign,
    MCMMetrics,
    MCMModel,
    baseline,
    baseline_placement,
    design_from_point,
    mcm_space,
    memory_proximity,
    package_metrics,
)
from ..optimize import Problem, genetic_search, gradient_search, miqp_search

METHODS = ("ga", "miqp", "gradient", "ga+gradient")


def mcm_problem(model: MCMModel, package: ChipletPackage, parametrization: str = "affinity",
                objective: str = "edp_Js", fixed=None, **space_kwargs):
    """A :class:`diffsys.optimize.Problem` minimizing ``objective`` (default EdP) over :func:`mcm_space`
    (``fixed``: parameter values held constant and left out of the space)."""
    fixed = {k: float(v) for k, v in (fixed or {}).items()}
    space = mcm_space(model, parametrization, fixed=fixed, **space_kwargs)
    prox = memory_proximity(model)

    def evaluate(point, *, temperature=0.0):
        return package_metrics(model(design_from_point(model, point, parametrization, temperature, prox, fixed),
                                     package, temperature=temperature))

    return Problem(evaluate, space, objective=objective, log_objective=True, name=f"mcm-{model.workload.name}-{model.graph.rows}x{model.graph.cols}")


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


def optimize_mcm(model: MCMModel, package: ChipletPackage, method: str = "ga", *, key=None, budget: str = "default",
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
        res = genetic_search(problem, key=key, init=_baseline_points(model, problem.space), **kw)
        param, point, evaluations = "affinity", dict(res.point), int(res.evaluations)
        if method == "ga+gradient":
            fixed = {k: v for k, v in res.point.items() if not k.startswith("affinity.")}
    if method == "miqp":
        problem = mcm_problem(model, package, "affinity")
        kw = {"solver": "jax", "method": "fit", "radius": 1, "iterations": 3 if quick else 12}
        kw.update(kwargs)
        x0 = _baseline_point(model, problem.space, base_design)
        res = miqp_search(problem, key=key, x0=x0, **kw)
        param, point, evaluations = "affinity", dict(res.point), int(res.evaluations)
    if method in ("gradient", "ga+gradient"):
        if fixed is None:
            fixed = {k: v for k, v in _baseline_point(model, mcm_space(model, "full"), base_design).items()
                     if not k.startswith("logit.")}
        problem = mcm_problem(model, package, "full", fixed=fixed)
        kw = {"n_starts": 4, "steps": 60 if quick else 200, "learning_rate": 0.1, "temperature": (1.0, 0.02),
                  "model_temperature": (0.3, 0.003), "repair": False}
        kw.update(kwargs if method == "gradient" else {})
        res = gradient_search(problem, key=key, **kw)
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
