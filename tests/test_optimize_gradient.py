"""Gradient search: optimality on enumerable spaces, determinism, constraints, annealing hygiene, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffsys.optimize import NoFeasiblePointError, gradient_search, sweep
from diffsys.problems import edge_soc_problem, toy_problem


def exhaustive(problem):
    """The exact optimum by enumerating every grid point (the sweep engine)."""
    res = sweep(problem, top_k=1, progress=False, chunk_size=min(problem.space.size, 65536))
    return float(res.top_objective[0]), res.n_evaluated


@pytest.fixture(scope="module")
def toy():
    return toy_problem()


@pytest.fixture(scope="module")
def toy_best(toy):
    return exhaustive(toy)[0]


@pytest.mark.parametrize("relaxation", ["soft", "ste", "gumbel"])
def test_toy_reaches_enumerated_optimum(toy, toy_best, relaxation):
    r = gradient_search(toy, key=jax.random.key(0), n_starts=4, steps=60, relaxation=relaxation)
    assert r.feasible
    assert r.objective <= toy_best * (1 + 1e-3)
    # the returned design is exact: on the lattice and satisfying the constraints
    pt = {k: jnp.float32(v) for k, v in r.point.items()}
    disc = toy.space.discretize(pt)
    for k in ["x", "y", "c"]:
        assert float(disc[k]) == pytest.approx(r.point[k])
    assert bool(toy.space.feasible(pt))
    np.testing.assert_allclose(float(toy.evaluate(pt).objective), r.objective, rtol=1e-6)
    # annealing never produced NaNs
    for name in ("loss", "violation", "objective"):
        assert np.all(np.isfinite(r.trajectory[name])), name


def test_augmented_lagrangian_satisfies_constraint(toy, toy_best):
    r = gradient_search(toy, key=jax.random.key(3), n_starts=4, steps=60, constraint="augmented_lagrangian",
                        repair=False)
    assert r.feasible
    assert r.point["x"] + np.log2(r.point["y"]) <= 10 + 1e-6


def test_deterministic_given_seed(toy):
    a = gradient_search(toy, key=jax.random.key(7), n_starts=3, steps=30, relaxation="gumbel")
    b = gradient_search(toy, key=jax.random.key(7), n_starts=3, steps=30, relaxation="gumbel")
    assert a.point == b.point and a.objective == b.objective and a.evaluations == b.evaluations
    np.testing.assert_array_equal(a.trajectory["loss"], b.trajectory["loss"])


def test_no_feasible_point_raises_clear_error():
    bad = toy_problem(budget=-1.0)  # x >= 0 and log2(y) >= 0: nothing satisfies x + log2(y) <= -1
    with pytest.raises(NoFeasiblePointError, match=r"no feasible design.*x\+log2\(y\)<=budget"):
        gradient_search(bad, key=jax.random.key(0), n_starts=2, steps=10)
    r = gradient_search(bad, key=jax.random.key(0), n_starts=2, steps=10, raise_on_infeasible=False)
    assert not r.feasible and r.status == 1 and r.violation > 0


def test_bad_arguments_name_the_field(toy):
    with pytest.raises(ValueError, match="relaxation"):
        gradient_search(toy, key=jax.random.key(0), relaxation="nope")
    with pytest.raises(ValueError, match="constraint"):
        gradient_search(toy, key=jax.random.key(0), constraint="barrier")
    with pytest.raises(ValueError, match="temperature"):
        gradient_search(toy, key=jax.random.key(0), temperature=(1.0, 0.0))


def test_default_problem_within_1pct_using_1pct_of_evaluations():
    """Acceptance: the default problem (387k points), gradient search vs the exhaustive sweep."""
    problem = edge_soc_problem()
    best, n = exhaustive(problem)
    r = gradient_search(problem, key=jax.random.key(0))
    assert r.feasible
    assert r.objective <= best * 1.01
    assert r.evaluations <= 0.01 * n
