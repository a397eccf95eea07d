"""Genetic algorithm and CMA-ES: optimality on an enumerable space, determinism, constraints, errors."""

import jax
import numpy as np
import pytest

from diffsys.optimize import NoFeasiblePointError, sweep
from diffsys.optimize._evolution import cma_es, evolutionary_search, genetic_search
from diffsys.problems import toy_problem


@pytest.fixture(scope="module")
def toy():
    return toy_problem()


@pytest.fixture(scope="module")
def toy_best(toy):
    res = sweep(toy, top_k=1, progress=False, chunk_size=toy.space.size)
    return float(res.top_objective[0])


def test_ga_reaches_enumerated_optimum_and_is_feasible(toy, toy_best):
    r = genetic_search(toy, key=jax.random.key(0), population=32, generations=25)
    assert r.feasible and r.evaluations == 32 * 26
    assert r.objective <= toy_best * 1.01
    assert r.point["x"] + np.log2(r.point["y"]) <= 10 + 1e-6
    assert r.point["x"] == int(r.point["x"])  # exact lattice values
    best = r.trajectory["best"]
    assert np.all(np.diff(best[np.isfinite(best)]) <= 1e-7)  # elitism: never gets worse


def test_cma_es_continuous_subspace_improves_fixed_design(toy):
    x0 = {"x": 5.0, "y": 8.0, "z": 0.2, "c": 1.0}
    r = cma_es(toy, key=jax.random.key(1), x0=x0, names=["z"], sigma0=0.2, generations=30)
    # only z moved; its optimum is z = 1 (log z = 0)
    assert r.point["x"] == 5.0 and r.point["y"] == 8.0 and r.point["c"] == 1.0
    assert abs(np.log(r.point["z"])) < 0.05
    assert r.objective < float(toy.evaluate({k: np.float32(v) for k, v in x0.items()}).objective)


def test_cma_es_all_dimensions_and_evolutionary(toy, toy_best):
    r = cma_es(toy, key=jax.random.key(2), generations=40)
    assert r.feasible and r.objective <= toy_best * 1.05
    e = evolutionary_search(toy, key=jax.random.key(2), population=32, generations=25, cma_generations=15)
    assert e.feasible and e.objective <= toy_best * 1.01 and e.method == "evolutionary"


def test_deterministic_given_seed(toy):
    a = genetic_search(toy, key=jax.random.key(5), population=16, generations=5)
    b = genetic_search(toy, key=jax.random.key(5), population=16, generations=5)
    assert a.point == b.point and a.objective == b.objective
    c = cma_es(toy, key=jax.random.key(5), generations=5)
    d = cma_es(toy, key=jax.random.key(5), generations=5)
    assert c.point == d.point


def test_infeasible_and_bad_arguments():
    bad = toy_problem(budget=-1.0)
    with pytest.raises(NoFeasiblePointError, match="no feasible design"):
        genetic_search(bad, key=jax.random.key(0), population=8, generations=2)
    with pytest.raises(NoFeasiblePointError, match="no feasible design"):
        cma_es(bad, key=jax.random.key(0), generations=2)
    with pytest.raises(ValueError, match="population"):
        genetic_search(bad, key=jax.random.key(0), population=2)
    with pytest.raises(ValueError, match="crossover_rate"):
        genetic_search(bad, key=jax.random.key(0), crossover_rate=1.5)
    with pytest.raises(ValueError, match="unknown parameter 'w'"):
        cma_es(bad, key=jax.random.key(0), names=["w"])
