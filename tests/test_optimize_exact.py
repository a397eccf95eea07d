"""Exact MIQP (:func:`diffsys.optimize.exact_search`): enumeration, interval branch-and-bound and the SCIP
tabulated-term MILP all reach the exhaustive optimum with gap 0; bounds are valid (bound <= incumbent, every box's
enclosure below the box's true minimum); a wrong bound is caught."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffsys._pytree import as_float
from diffsys.optimize import ExactResult, Problem, exact_search, sweep
from diffsys.optimize import _exact
from diffsys.primitives import Metrics
from diffsys.problems import EdgeSoCDesign, SystolicDesign, edge_soc_model, systolic_model, toy_problem
from diffsys.space import Categorical, Continuous, DesignSpace, Integer, PowerOfTwo

MiB = 2.0**20


def exhaustive_best(problem):
    return float(sweep(problem, top_k=1, progress=False, chunk_size=65536).top_objective[0])


def small_edge_soc():
    """6,000 designs of the edge SoC problem around its optimum (cores, clock, L2, channels, batch, precision)."""
    space = DesignSpace({"num_cores": Integer(16, 48, step=8), "frequency_Hz": Continuous(0.5e9, 1.0e9, grid=4),
                         "l2_B": PowerOfTwo(2 * MiB, 16 * MiB), "dram_channels": Integer(4, 8),
                         "batch": PowerOfTwo(16, 256), "weight_bytes": Categorical((0.5, 1.0, 2.0))},
                        base=EdgeSoCDesign())
    return Problem(edge_soc_model, space, objective="energy_per_token_J", name="edge_soc_small")


def small_systolic():
    """2,592 designs of the systolic problem (rows, cols, arrays, SRAM, stacks, clock, dataflow)."""
    space = DesignSpace({"array_rows": PowerOfTwo(64, 256), "array_cols": PowerOfTwo(64, 256),
                         "num_arrays": PowerOfTwo(2, 8), "sram_B": PowerOfTwo(4 * MiB, 16 * MiB),
                         "hbm_stacks": Integer(2, 3), "frequency_Hz": Continuous(1.2e9, 1.8e9, grid=4),
                         "dataflow": Categorical(("weight_stationary", "output_stationary", "input_stationary"))},
                        base=SystolicDesign())
    return Problem(systolic_model, space, objective="edp_Js", name="systolic_small")


BNB = {"leaf_size": 16, "leaf_batch": 64, "batch": 32}  # one set of kernel shapes for every test (no recompiles)


@pytest.fixture(scope="module")
def edge():
    pb = small_edge_soc()
    ref = exact_search(pb, solver="enumerate")  # exhaustive enumeration (checked against sweep on the toy)
    assert ref.optimal and ref.evaluations == pb.space.size
    return pb, ref.objective


def check_result(r: ExactResult, best):
    assert r.feasible and r.optimal and r.gap == 0.0 and r.status == 0
    assert r.bound <= r.objective
    np.testing.assert_allclose(r.objective, best, rtol=1e-6)


def test_toy_every_solver_matches_exhaustive():
    toy = toy_problem()
    best = exhaustive_best(toy)
    scip = __import__("importlib").util.find_spec("pyscipopt") is not None
    for solver in ("enumerate", "bnb") + (("scip",) if scip else ()):
        r = exact_search(toy, solver=solver, **(BNB if solver == "bnb" else {}))
        check_result(r, best)
        assert r.solver == solver and r.proof
        assert r.point["x"] + np.log2(r.point["y"]) <= 10 + 1e-6
    assert exact_search(toy).solver == "enumerate"  # auto: small spaces are enumerated


def test_branch_and_bound_prunes_and_matches_enumeration(edge):
    pb, best = edge
    r = exact_search(pb, solver="bnb", **BNB)
    check_result(r, best)
    assert r.pruned_points > 0 and r.evaluations < pb.space.size + 1024  # the bounds did prune
    s = r.summary()
    assert s["bound"] == r.bound and s["gap_percent_proven"] == 0.0 and s["solver"] == "bnb"


def _random_boxes(space, n, rng):
    a = np.stack([rng.integers(0, k, n) for k in space.radices], 1)
    b = np.minimum(a + rng.integers(0, 2, a.shape), np.array(space.radices) - 1)  # at most 2^6 points each
    return a, b


def _unsound(lower, true_min, rtol=1e-5):
    """Boxes whose claimed lower bound exceeds the true (enumerated) minimum."""
    return int(np.sum(lower > true_min + rtol * np.abs(true_min)))


def test_interval_bounds_are_valid_and_a_wrong_bound_is_caught(edge):
    pb, _ = edge
    exact_search(pb, solver="bnb", max_nodes=1, **BNB)  # compiles (or reuses) the kernels of this problem
    bound = _exact.cached(("exact_bound", pb), None)
    leaf = _exact.cached(("exact_leaf", pb, BNB["leaf_size"]), None)
    a, b = _random_boxes(pb.space, 2 * BNB["batch"], np.random.default_rng(0))
    lower = np.asarray(bound(jnp.asarray(a, jnp.int32), jnp.asarray(b, jnp.int32)), float)
    true_min = np.asarray(leaf(jnp.asarray(a, jnp.int32), jnp.asarray(b, jnp.int32))[0], float)
    assert np.isfinite(true_min).sum() > 10 and np.isfinite(lower).sum() >= np.isfinite(true_min).sum()
    assert _unsound(lower, true_min) == 0
    assert _unsound(lower * 1.5, true_min) > 0  # mutation: a bound 50 % too high is detected
    # and a box proven infeasible (bound +inf) never holds a feasible point
    assert not np.any(np.isinf(lower) & np.isfinite(true_min))


def test_wrong_bound_makes_bnb_miss_the_optimum(monkeypatch):
    toy = toy_problem()
    best = exact_search(toy, solver="enumerate").objective
    real = _exact.box_bound_function

    def inflated(problem):
        f = real(problem)
        return lambda lo, hi: (lambda o, fe: (o * 1.5, fe))(*f(lo, hi))

    monkeypatch.setattr(_exact, "box_bound_function", inflated)
    fresh = Problem(toy.model, toy.space, objective=toy.objective, feasible=None, name="mutated")  # new kernels
    r = exact_search(fresh, solver="bnb", n_init=2, **BNB)
    assert r.objective > best * (1 + 1e-6)  # the mutated bound pruned the optimum: the comparison catches it


def test_limits_report_the_bound_and_status(edge):
    pb, best = edge
    r = exact_search(pb, solver="bnb", max_nodes=2, n_init=64, **BNB)
    assert r.status != 0 and r.bound <= best * (1 + 1e-4) and r.bound <= r.objective and r.gap >= 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["edge_soc", "systolic"])
def test_embedded_problems_exact_equals_sweep(name):
    from diffsys.problems import problem

    pb = problem(name)
    best = exhaustive_best(pb)
    check_result(exact_search(pb), best)
    check_result(exact_search(pb, solver="bnb"), best)


@pytest.mark.slow
def test_systolic_subspace_bnb_matches_exhaustive():
    pb = small_systolic()
    check_result(exact_search(pb, solver="bnb", **BNB), exhaustive_best(pb))


# -- SCIP: a small problem with a max epigraph, a two-parameter term, a categorical and a linear constraint ------
class SmallDesign(eqx.Module):
    a: jax.Array = eqx.field(converter=as_float, default=1.0)
    b: jax.Array = eqx.field(converter=as_float, default=1.0)
    c: jax.Array = eqx.field(converter=as_float, default=0.0)
    d: jax.Array = eqx.field(converter=as_float, default=1.0)


class SmallMetrics(Metrics):
    time_s: jax.Array


def small_model(s: SmallDesign, *, temperature=0.0):
    cat = jnp.array([0.3, 0.0, 0.7])[jnp.round(s.c).astype(jnp.int32)]
    t = jnp.maximum(8.0 / s.a, 6.0 / s.b) + 0.05 * s.a * s.b + cat + 0.2 * (jnp.log2(s.d) - 2.3) ** 2
    return SmallMetrics(t, feasible=s.a + s.b <= 9.0)


def small_problem():
    space = DesignSpace({"a": Integer(1, 8), "b": Integer(1, 8), "c": Categorical(("x", "y", "z")),
                         "d": PowerOfTwo(1, 32)}, base=SmallDesign())
    return Problem(small_model, space, objective="time_s", name="small")


def test_scip_max_epigraph_pair_term_matches_enumeration():
    pytest.importorskip("pyscipopt")
    pb = small_problem()
    best = exhaustive_best(pb)
    r = exact_search(pb, solver="scip")
    check_result(r, best)
    assert "SCIP optimal" in r.proof
    check_result(exact_search(pb, solver="bnb", **BNB), best)
    # SCIP's tolerances are absolute: an objective of order 1e-7 (J·s) must still be resolved exactly
    tiny = Problem(small_model, pb.space, objective=lambda m: 1e-7 * m.time_s, name="small_tiny")
    check_result(exact_search(tiny, solver="scip"), 1e-7 * best)


def test_scip_refuses_models_that_do_not_split_and_bad_input():
    pytest.importorskip("pyscipopt")
    with pytest.raises(ValueError, match="num_cores"):
        exact_search(small_edge_soc(), solver="scip", scip_options={"max_table": 1000})
    with pytest.raises(ValueError, match="solver"):
        exact_search(toy_problem(), solver="gurobi")
    with pytest.raises(ValueError, match="rtol"):
        exact_search(toy_problem(), rtol=2.0)


def test_refined_continuous_grid_and_continuous_bound():
    toy = toy_problem()
    coarse = exact_search(toy, solver="bnb", **BNB)
    fine = exact_search(toy, solver="bnb", continuous_grid=57, **BNB)
    ref = exact_search(toy, solver="enumerate", continuous_grid=57)
    check_result(fine, ref.objective)
    assert ref.evaluations == 3528 // 8 * 57
    assert fine.objective <= coarse.objective  # the finer grid holds the coarse one's z values (57 = 7·8 + 1)
    # the continuous bound bounds the problem with z free in [0.1, 10]: here z = 1 is optimal, cost 1.329...
    assert coarse.trajectory["continuous_bound"] <= 1.3290 <= fine.objective
    with pytest.raises(ValueError, match="continuous_grid"):
        exact_search(toy, continuous_grid=1)
