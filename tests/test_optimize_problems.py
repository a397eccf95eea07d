"""The embedded optimization problems: model invariants every diffsys model must satisfy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from diffsys.problems import EdgeSoCDesign, SystolicDesign, edge_soc_model, edge_soc_space, problem, systolic_model
from diffsys.problems import systolic_space
from diffsys.testing import (
    TraceCounter,
    assert_grad_matches_fd,
    assert_jit_matches_eager,
    assert_vmap_matches_loop,
    float64,
)

_edge = jax.jit(lambda p: edge_soc_model(EdgeSoCDesign(**p)))
_systolic = jax.jit(lambda p: systolic_model(SystolicDesign(**p)))

CASES = [(edge_soc_model, edge_soc_space, "energy_per_token_J"), (systolic_model, systolic_space, "edp_Js")]


@pytest.mark.parametrize("model,space_fn,objective", CASES)
def test_jit_vmap_and_retrace(model, space_fn, objective):
    space = space_fn()
    pts = jax.vmap(space.apply)(space.sample(jax.random.key(0), 3))
    one = jax.tree_util.tree_map(lambda x: x[0], pts)
    assert_jit_matches_eager(model, one)
    assert_vmap_matches_loop(model, pts)
    counter = TraceCounter(model)
    f = jax.jit(counter)
    f(one)
    f(jax.tree_util.tree_map(lambda x: x[1], pts))
    assert counter.count == 1


@pytest.mark.parametrize("model,space_fn,objective", CASES)
def test_relaxed_gradients_finite_and_match_fd(model, space_fn, objective):
    space = space_fn()
    pts = space.sample(jax.random.key(1), 5)
    names = space.names

    spec_type = type(space.base)

    def loss(x, t):
        m = model(spec_type(**{n: x[i] for i, n in enumerate(names)}), temperature=t)
        return jnp.log(getattr(m, objective)) + m.violation

    xs = space.to_vector(pts)
    for t in (1.0, 0.3, 0.01):
        g = jax.jit(jax.vmap(jax.grad(loss), in_axes=(0, None)))(xs, t)
        assert np.all(np.isfinite(np.asarray(g))), f"non-finite gradient at temperature {t}"
    with float64():
        x = jnp.asarray(np.asarray(xs[0]), jnp.float64)
        f = jax.jit(lambda v: loss(v, 0.3))
        assert_grad_matches_fd(f, x, eps=1e-6, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("model,space_fn,objective", CASES)
def test_temperature_zero_is_exact_and_small_temperature_is_close(model, space_fn, objective):
    space = space_fn()
    pts = jax.vmap(space.apply)(space.sample(jax.random.key(2), 64))
    exact = jax.vmap(model)(pts)
    soft = jax.vmap(lambda p: model(p, temperature=1e-4))(pts)
    e, s = np.asarray(getattr(exact, objective)), np.asarray(getattr(soft, objective))
    # soft ceilings overestimate by at most t/2 of a step; smooth maxima by t*log2 relative
    np.testing.assert_allclose(s, e, rtol=5e-3)
    assert np.all(np.isfinite(e))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 15), st.integers(0, 6), st.integers(0, 8))
def test_edge_soc_invariants(cores_i, l2_i, batch_i):
    """More cores never slow a step down; more L2 never adds DRAM passes; larger batches raise throughput."""
    space = edge_soc_space()
    base = {n: d.grid_value(0) for n, d in space.params.items()}
    base.update(num_cores=space.params["num_cores"].grid_value(cores_i), l2_B=space.params["l2_B"].grid_value(l2_i),
                batch=space.params["batch"].grid_value(batch_i), dram_channels=jnp.float32(4.0),
                weight_bytes=jnp.float32(1.0))
    m = _edge(base)
    more_cores = _edge({**base, "num_cores": base["num_cores"] + 4})
    assert float(more_cores.step_time_s) <= float(m.step_time_s) * (1 + 1e-6)
    assert float(more_cores.area_mm2) > float(m.area_mm2)
    bigger = _edge({**base, "batch": base["batch"] * 2})
    assert float(bigger.tokens_per_s) >= float(m.tokens_per_s) * (1 - 1e-6)
    assert float(m.energy_per_token_J) > 0 and float(m.power_W) > 0


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 5), st.integers(0, 5), st.integers(0, 8), st.integers(0, 2))
def test_systolic_invariants(r_i, c_i, s_i, df):
    """Utilization is a fraction; more HBM stacks never slow the layer; more SRAM never adds DRAM traffic time."""
    space = systolic_space()
    p = {n: d.grid_value(0) for n, d in space.params.items()}
    p.update(array_rows=space.params["array_rows"].grid_value(r_i),
             array_cols=space.params["array_cols"].grid_value(c_i),
             sram_B=space.params["sram_B"].grid_value(s_i), dataflow=jnp.float32(df))
    m = _systolic(p)
    assert 0 < float(m.utilization) <= 1.0 + 1e-5
    assert float(_systolic({**p, "hbm_stacks": p["hbm_stacks"] + 1}).time_s) <= float(m.time_s) * (1 + 1e-6)
    assert float(_systolic({**p, "sram_B": p["sram_B"] * 2}).time_s) <= float(m.time_s) * (1 + 1e-6)


def test_problem_lookup_errors():
    with pytest.raises(ValueError, match="unknown problem 'nope'"):
        problem("nope")
    assert problem("default").name == "edge_soc"
