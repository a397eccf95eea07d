"""MIQP: SCIP and the JAX-native enumeration agree and match brute force; sequential MIQP on a toy problem."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffsys.optimize._miqp import MIQP, miqp_search, psd_project, solve_miqp_enumerate, solve_miqp_scip
from diffsys.problems import toy_problem

pytest.importorskip("pyscipopt")


def random_instance(rng, n_disc, n_cont, n_cons=2):
    n = n_disc + n_cont
    M = rng.normal(size=(n, n))
    Q = psd_project(M @ M.T / n + 0.1 * np.eye(n))
    q = rng.normal(size=n) * 2
    A = rng.normal(size=(n_cons, n))
    x_feas = rng.uniform(-1, 1, size=n)
    values = []
    for i in range(n):
        if i < n_disc:
            vals = np.sort(rng.choice(np.arange(-3, 4), size=4, replace=False)).astype(float)
            x_feas[i] = vals[0]
            values.append(tuple(vals))
        else:
            values.append(None)
    b = A @ x_feas + rng.uniform(0.5, 2.0, size=n_cons)  # the instance has a feasible point
    lo = np.full(n, -3.0)
    hi = np.full(n, 3.0)
    return MIQP(Q, q, 0.3, A, b, lo, hi, tuple(values))


def brute_force(m: MIQP, grid=None):
    axes = [np.array(v) if v is not None else grid for v in m.values]
    best = np.inf
    for y in itertools.product(*axes):
        y = np.array(y)
        if np.all(m.A @ y <= m.b + 1e-9):
            best = min(best, 0.5 * y @ m.Q @ y + m.q @ y + m.c0)
    return best


@pytest.mark.parametrize("seed", range(4))
def test_pure_integer_instances_match_enumeration(seed):
    m = random_instance(np.random.default_rng(seed), 3, 0)
    exact = brute_force(m)
    a, b = solve_miqp_enumerate(m), solve_miqp_scip(m)
    assert a.feasible and b.feasible
    np.testing.assert_allclose(a.objective, exact, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(b.objective, exact, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_mixed_instances_scip_and_jax_agree(seed):
    m = random_instance(np.random.default_rng(100 + seed), 2, 2)
    a, b = solve_miqp_enumerate(m), solve_miqp_scip(m)
    assert a.feasible and b.feasible
    np.testing.assert_allclose(a.objective, b.objective, rtol=2e-3, atol=2e-3)
    # both are at least as good as a fine grid over the continuous part (a grid can only be worse)
    grid_best = brute_force(m, np.linspace(-3, 3, 41))
    assert b.objective <= grid_best + 1e-6
    assert a.objective <= grid_best + 2e-3
    # the returned points satisfy the constraints and lie on the discrete sets
    for sol in (a, b):
        assert np.all(m.A @ sol.y <= m.b + 1e-3)
        for i, v in enumerate(m.values):
            if v is not None:
                assert np.min(np.abs(np.array(v) - sol.y[i])) < 1e-6


def test_infeasible_instance_reported_not_raised():
    m = random_instance(np.random.default_rng(0), 2, 1)
    m = m._replace(b=np.full_like(m.b, -100.0), A=np.ones_like(m.A))  # sum(y) <= -100 with |y| <= 3
    assert not solve_miqp_enumerate(m).feasible
    assert not solve_miqp_scip(m).feasible


def test_enumeration_guard_names_the_limit():
    m = random_instance(np.random.default_rng(0), 3, 0)
    with pytest.raises(ValueError, match="max_assignments"):
        solve_miqp_enumerate(m, max_assignments=10)


@pytest.mark.parametrize("solver", ["jax", "scip"])
def test_sequential_miqp_on_toy(solver):
    toy = toy_problem()
    x0 = {"x": 2.0, "y": 2.0, "z": 5.0, "c": 2.0}
    start = float(toy.evaluate({k: jnp.float32(v) for k, v in x0.items()}).objective)
    r = miqp_search(toy, key=jax.random.key(0), x0=x0, solver=solver)
    assert r.feasible and r.objective < 0.8 * start
    # the reported objective is the true model's, re-evaluated at the exact returned design
    pt = {k: jnp.float32(v) for k, v in r.point.items()}
    np.testing.assert_allclose(float(toy.evaluate(pt).objective), r.objective, rtol=1e-6)
    assert r.point["x"] + np.log2(r.point["y"]) <= 10 + 1e-6


def test_trust_region_is_the_named_local_heuristic():
    from diffsys.optimize import trust_region_search
    from diffsys.optimize import miqp_search as public

    assert trust_region_search is public is miqp_search


def test_sequential_miqp_same_result_with_both_solvers_and_errors():
    toy = toy_problem()
    a = miqp_search(toy, key=jax.random.key(1), solver="jax", iterations=6)
    b = miqp_search(toy, key=jax.random.key(1), solver="scip", iterations=6)
    assert a.objective == pytest.approx(b.objective, rel=1e-3)
    with pytest.raises(ValueError, match="solver"):
        miqp_search(toy, key=jax.random.key(0), solver="gurobi")
    with pytest.raises(ValueError, match="radius"):
        miqp_search(toy, key=jax.random.key(0), radius=0)
