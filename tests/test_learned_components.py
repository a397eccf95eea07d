"""Learned residuals/surrogates, the flax adapter and NAS helpers."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffsys
from diffsys.learned import (
    FlaxModule,
    Residual,
    derive_architecture,
    expected_cost,
    fit,
    from_flax,
    latency_penalty,
    mixed_op_weights,
    mlp,
    op_latency,
    surrogate,
)
from diffsys.roofline import roofline
from diffsys.testing import assert_finite_grads, assert_jit_matches_eager, assert_vmap_matches_loop

PEAK, BW = 989e12, 3.35e12


def base_time(x):
    return roofline(10 ** x[0], 10 ** x[1], PEAK, BW).time_s


def features(x):
    return jnp.stack([x[0] - 9.0, x[1] - 7.0, x[0] - x[1] - 2.0])  # log10 flops, bytes, intensity (centred)


@pytest.fixture(scope="module")
def measured():
    """'Measurements' with a systematic, intensity-dependent inefficiency the roofline lacks, plus 2 % noise."""
    rng = np.random.default_rng(0)
    n = 800
    x = np.stack([rng.uniform(6, 12, n), rng.uniform(4, 10, n)], 1)
    t = np.asarray(jax.vmap(base_time)(jnp.asarray(x)))
    ai = x[:, 0] - x[:, 1]
    slowdown = 1.0 + 0.6 * np.exp(-((ai - 2.5) ** 2))  # worst near the ridge point (log10 AI ≈ 2.5)
    y = t * slowdown * np.exp(0.02 * rng.normal(size=n))
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


def test_residual_improves_held_out_error_and_stays_differentiable(measured):
    x, y = measured
    res = Residual(mlp(3, width=32, depth=2, key=jax.random.key(0)), base_time, features)
    # zero-initialised head: the residual starts as the analytical model
    np.testing.assert_allclose(np.asarray(jax.vmap(res)(x[:5])), np.asarray(jax.vmap(base_time)(x[:5])), rtol=1e-6)
    base_ape = np.abs(np.asarray(jax.vmap(base_time)(x)) - np.asarray(y)) / np.asarray(y)
    out = fit(res, x, y, key=jax.random.key(1), steps=600, learning_rate=6e-3)
    assert out.holdout_mape < 0.5 * base_ape.mean()  # learned correction halves the error on unseen rows
    model = out.module
    assert_jit_matches_eager(lambda v: model(v), x[0])
    assert_vmap_matches_loop(lambda v: model(v), x[:4])
    assert_finite_grads(lambda v: jnp.log(model(v)), x[0])  # gradient w.r.t. the design (for search)
    grads = eqx.filter_grad(lambda m: jnp.log(m(x[0])))(model)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(grads))
    with pytest.raises(ValueError, match="Residual.mode"):
        Residual(mlp(3, key=jax.random.key(0)), base_time, features, mode="bogus")


def test_surrogate_of_an_analytical_model_generalises():
    from diffsys.optimize._objective import to_unit
    from diffsys.problems import systolic_model, systolic_space

    space = systolic_space()
    pts = space.sample(jax.random.key(0), 1500)
    y = jax.jit(jax.vmap(lambda p: systolic_model(space.apply(p))))(pts).time_s
    x = to_unit(space, pts)
    s = surrogate(x, y, key=jax.random.key(1), width=64, depth=2)
    out = fit(s, x, y, key=jax.random.key(2), steps=800, learning_rate=5e-3)
    assert out.holdout_mape < 0.15
    assert out.train_mape <= out.holdout_mape * 1.5 + 0.02
    with pytest.raises(ValueError, match="targets"):
        surrogate(x, -y, key=jax.random.key(0))


class _FakeFlaxDense:
    """An object with flax's init/apply protocol (a linear layer), to test the adapter without flax."""

    def init(self, key, x):
        return {"params": {"w": jax.random.normal(key, (x.shape[-1],)) * 0.1, "b": jnp.zeros(())}}

    def apply(self, variables, x):
        p = variables["params"]
        return jnp.dot(x, p["w"]) + p["b"]


def test_flax_adapter_protocol_and_training(measured):
    x, y = measured
    head = from_flax(_FakeFlaxDense(), jax.random.key(0), jnp.zeros(3))
    assert isinstance(head, FlaxModule)
    res = Residual(head, base_time, features)
    out = fit(res, x, y, key=jax.random.key(1), steps=300, learning_rate=1e-2)
    assert np.isfinite(out.holdout_mape)
    assert out.history[-1] < out.history[0]


def test_real_flax_module_if_installed(measured):
    nn = pytest.importorskip("flax.linen")

    class Head(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(nn.gelu(nn.Dense(16)(x)))

    head = from_flax(Head(), jax.random.key(0), jnp.zeros(3))
    res = Residual(head, base_time, features)
    assert np.isfinite(float(eqx.filter_jit(lambda m, v: m(v))(res, measured[0][0])))


def test_nas_helpers():
    alpha = jnp.array([[0.1, 2.0, -1.0], [0.0, 0.0, 3.0]])
    w = mixed_op_weights(alpha, 0.5)
    np.testing.assert_allclose(np.asarray(w.sum(-1)), 1.0, rtol=1e-6)
    hard = mixed_op_weights(alpha, 1.0, key=jax.random.key(0), hard=True)
    assert set(np.unique(np.asarray(hard)).tolist()) <= {0.0, 1.0}
    np.testing.assert_array_equal(np.asarray(derive_architecture(alpha)), [1, 2])
    acc = diffsys.hardware.preset("jetson_orin")
    flops = jnp.array([0.0, 1e8, 1e9])
    lat = op_latency(flops, jnp.array([0.0, 1e6, 1e7]), acc)
    assert float(lat[0]) == 0.0 and 0 < float(lat[1]) < float(lat[2])
    costs = jnp.broadcast_to(lat, (2, 3))
    g = jax.grad(lambda a: expected_cost(mixed_op_weights(a), costs))(alpha)
    # raising the logit of the costliest op raises the expected cost
    assert float(g[0, 2]) > 0 and float(g[0, 0]) < 0
    assert float(latency_penalty(1e-3, 10.0, budget=2e-3)) == 0.0
    assert float(latency_penalty(3e-3, 10.0, budget=2e-3)) == pytest.approx(5.0)
