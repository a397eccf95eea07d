"""Co-optimization: exact re-evaluation of searched designs, MIQP against enumeration on a small instance."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffsys import chiplet as C
from diffsys import optimize as opt
from diffsys import problems as P
from diffsys.problems._chiplet import _baseline_point


@functools.cache
def _setup():
    w = C.transformer(layers=1, batch=2)
    graph = C.D2DGraph.build(2, 2, placements=["west", "west_east"])
    model = C.MCMModel(w, graph)
    return model, C.ChipletPackage.split(4, "organic")


def _fixed_affinity(model):
    """Uniform fractions; the attention and projection groups keep the channel strategy (a 72-design space)."""
    return {**{f"affinity.{g}": 0.0 for g in model.workload.group_names},
            "strategy.attention": 1.0, "strategy.proj": 1.0}


def test_miqp_matches_enumeration_on_a_small_instance():
    """All-discrete instance (strategy per group × diagonal pattern × memory placement, uniform fractions):
    the sequential MIQP from the baseline reaches the optimum found by enumerating every design with the exact model,
    and its two sub-problem solvers (JAX enumeration + ADMM, SCIP branch-and-bound) agree on the quadratic model."""
    model, pk = _setup()
    fixed = _fixed_affinity(model)
    problem = P.mcm_problem(model, pk, "affinity", fixed=fixed)
    space = problem.space
    grids = [np.asarray(d.values, float) for d in space.params.values()]
    combos = np.array(list(itertools.product(*grids)))
    pts = {n: jnp.asarray(combos[:, i]) for i, n in enumerate(space.names)}
    evs = jax.jit(jax.vmap(problem.evaluate))(pts)
    obj = np.where(np.asarray(evs.feasible), np.asarray(evs.objective), np.inf)
    best = float(obj.min())
    assert len(combos) == 3**2 * 4 * 2

    base_design, _ = C.baseline(model, pk)
    x0 = {n: v for n, v in _baseline_point(model, space, base_design).items()}
    res = opt.miqp_search(problem, key=jax.random.PRNGKey(0), x0=x0, solver="jax", method="fit", radius=3,
                          iterations=4, max_radius=3)
    assert res.feasible
    assert res.objective == pytest.approx(best, rel=1e-5)
    # the reported objective is the exact model at the returned lattice point
    again = float(problem.evaluate({k: jnp.asarray(v) for k, v in res.point.items()}).objective)
    assert again == pytest.approx(res.objective, rel=1e-6)

    # the quadratic sub-problem: enumeration and SCIP return the same optimum
    pytest.importorskip("pyscipopt")
    from diffsys.optimize._miqp import _coords, trust_region_miqp

    y0 = np.asarray(_coords(space, {k: jnp.asarray(v, float) for k, v in x0.items()}), float)
    Q, q, c0, A, b, _ = opt.quadratic_model(problem, y0, method="fit", key=jax.random.PRNGKey(1), radius=3)
    sub = trust_region_miqp(space, Q, q, c0, A, b, y0, 3, 0.25)
    a, s = opt.solve_miqp_enumerate(sub), opt.solve_miqp_scip(sub)
    assert a.feasible and s.feasible
    assert a.objective == pytest.approx(s.objective, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("method,kwargs", [("ga", {"population": 8, "generations": 3}),
                                           ("gradient", {"n_starts": 2, "steps": 10})])
def test_searched_designs_are_reevaluated_exactly_and_never_worse_than_baseline(method, kwargs):
    model, pk = _setup()
    res = P.optimize_mcm(model, pk, method, key=jax.random.PRNGKey(1), budget="quick", **kwargs)
    exact = model(res.design, pk)  # temperature 0 at the discretized design
    assert bool(exact.feasible)
    assert res.edp == pytest.approx(float(exact.edp_Js), rel=1e-6)
    assert res.improvement == pytest.approx(res.baseline_edp / res.edp, rel=1e-9)
    # categorical choices of the returned design sit on the lattice
    assert float(res.design.diagonals) == round(float(res.design.diagonals))
    assert np.all(np.asarray(res.design.strategy) == np.round(np.asarray(res.design.strategy)))
    if method == "ga":  # elitist GA seeded with the baseline designs never returns anything worse
        assert res.improvement >= 1.0 - 1e-6


def test_space_and_method_errors():
    model, pk = _setup()
    with pytest.raises(ValueError, match="parametrization"):
        C.mcm_space(model, "polar")
    with pytest.raises(ValueError, match="method"):
        P.optimize_mcm(model, pk, "annealing")
    with pytest.raises(ValueError, match="fixed parameter"):
        C.mcm_space(model, fixed={"nonexistent": 1.0})
    s = C.mcm_space(model, "full")
    assert len(s.names) == model.num_groups * 4 + model.num_groups + 2
