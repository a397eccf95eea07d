import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffsys.primitives as P
from diffsys.testing import assert_grad_matches_fd, assert_jit_matches_eager, float64

XS = np.linspace(-3.0, 3.0, 61)  # includes the integers and half-integers (kinks of round/ceil/floor)


@pytest.mark.parametrize(
    "soft, exact",
    [
        (lambda x, t: P.smooth_max(x, 0.5, t), lambda x: np.maximum(x, 0.5)),
        (lambda x, t: P.smooth_min(x, 0.5, t), lambda x: np.minimum(x, 0.5)),
        (lambda x, t: P.relu(x, t), lambda x: np.maximum(x, 0)),
        (lambda x, t: P.clamp(x, -1.0, 2.0, t), lambda x: np.clip(x, -1, 2)),
        (lambda x, t: P.soft_round(x, t), np.round),
        (lambda x, t: P.soft_ceil(x, t), np.ceil),
        (lambda x, t: P.soft_floor(x, t), np.floor),
        (lambda x, t: P.logsumexp_max(jnp.stack([x, 1 - x, 0 * x], -1), temperature=t),
         lambda x: np.max(np.stack([x, 1 - x, 0 * x], -1), -1)),
        (lambda x, t: P.squared_hinge_penalty(x, t), lambda x: np.maximum(x, 0) ** 2),
    ],
)
def test_exact_at_zero_temperature_and_convergent(soft, exact):
    x = jnp.asarray(XS)
    want = exact(XS.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(soft(x, 0.0)), want)
    # traced temperature 0 gives the exact value as well
    np.testing.assert_array_equal(np.asarray(jax.jit(soft)(x, jnp.asarray(0.0))), want)
    # away from the kinks the error shrinks monotonically as the temperature goes to zero
    away = np.abs(XS - np.round(XS * 2) / 2) > 0.05
    errs = [np.max(np.abs(np.asarray(soft(x, t)) - exact(XS))[away]) for t in (1.0, 0.3, 0.1, 0.03, 0.01)]
    assert all(b <= a + 1e-6 for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 0.05


@pytest.mark.parametrize("fn", [
    lambda x, t: P.smooth_max(x, 0.0, t), lambda x, t: P.soft_round(x, t), lambda x, t: P.soft_ceil(x, t),
    lambda x, t: P.clamp(x, -1.0, 1.0, t), lambda x, t: P.relu(x, t),
])
@pytest.mark.parametrize("t", [0.0, 0.1, 1.0])
def test_gradients_finite_everywhere_including_kinks(fn, t):
    g = jax.vmap(jax.grad(lambda x: fn(x, t)))(jnp.asarray(XS))
    assert np.all(np.isfinite(np.asarray(g)))
    # with a traced temperature as well (the discarded branch must not leak NaNs)
    g2 = jax.vmap(jax.grad(lambda x, tt: fn(x, tt)), in_axes=(0, None))(jnp.asarray(XS), jnp.asarray(t))
    assert np.all(np.isfinite(np.asarray(g2)))


def test_straight_through_estimators():
    x = jnp.asarray([0.2, 1.5, 2.7])
    np.testing.assert_array_equal(P.round_ste(x), jnp.round(x))
    np.testing.assert_array_equal(P.ceil_ste(x), jnp.ceil(x))
    np.testing.assert_array_equal(P.floor_ste(x), jnp.floor(x))
    for f in (P.round_ste, P.ceil_ste, P.floor_ste):
        np.testing.assert_allclose(jax.grad(lambda v: jnp.sum(f(v)))(x), np.ones(3))


def test_safe_divide_and_selection():
    assert float(P.safe_divide(1.0, 0.0, default=7.0)) == 7.0
    g = jax.grad(lambda d: P.safe_divide(1.0, d))(0.0)
    assert np.isfinite(float(g))
    costs = jnp.asarray([3.0, 1.0, 2.0])
    np.testing.assert_array_equal(P.soft_argmin_weights(costs), [0.0, 1.0, 0.0])
    w = P.soft_argmin_weights(costs, temperature=1.0)
    assert abs(float(jnp.sum(w)) - 1) < 1e-6 and int(jnp.argmax(w)) == 1
    assert float(P.soft_select(jnp.asarray([10.0, 20.0, 30.0]), costs)) == 20.0
    assert float(P.one_hot_select(jnp.asarray([10.0, 20.0, 30.0]), 2)) == 30.0


def test_negative_temperature_rejected():
    with pytest.raises(ValueError, match="temperature"):
        P.smooth_max(1.0, 2.0, -0.1)


def test_queueing_formulas_and_saturation():
    s = 2.0
    np.testing.assert_allclose(P.mm1_wait(0.5, s).wait_s, 0.5 / 0.5 * s, rtol=1e-6)
    np.testing.assert_allclose(P.md1_wait(0.5, s).wait_s, 0.5 / (2 * 0.5) * s, rtol=1e-6)
    assert float(P.md1_wait(0.0, s).wait_s) == 0.0  # zero load -> zero queueing
    rho = jnp.linspace(0.0, 1.5, 301)
    d = P.md1_wait(rho, s)
    w = np.asarray(d.wait_s)
    assert np.all(np.isfinite(w)) and np.all(np.diff(w) >= 0)  # finite and monotone through saturation
    assert bool(d.saturated[-1]) and not bool(d.saturated[0])
    g = jax.vmap(jax.grad(lambda r: P.md1_wait(r, s).wait_s))(rho)
    assert np.all(np.isfinite(np.asarray(g))) and np.all(np.asarray(g) > 0)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.0, 0.98), st.floats(0.0, 0.98))
def test_queueing_monotone_in_load(a, b):
    lo, hi = min(a, b), max(a, b)
    assert float(P.mg1_wait(lo, 1.0, scv=0.5).wait_s) <= float(P.mg1_wait(hi, 1.0, scv=0.5).wait_s) + 1e-7


def test_float64_finite_difference_gradients():
    with float64():
        x = jnp.asarray([0.3, -0.7, 1.2, 2.5])
        assert_grad_matches_fd(lambda v: jnp.sum(P.smooth_max(v, 0.1, 0.3) + P.soft_round(v, 0.2)), x)
        assert_grad_matches_fd(lambda v: jnp.sum(P.md1_wait(jnp.abs(v) / 3, 1.5).wait_s), x)
        assert_grad_matches_fd(lambda v: jnp.sum(P.clamp(v, -0.5, 1.0, 0.1)), x)


def test_jit_matches_eager():
    assert_jit_matches_eager(lambda x: P.soft_ceil(x, 0.2) + P.smooth_min(x, 1.0, 0.5), jnp.asarray(XS))


@pytest.mark.parametrize("t", [1e-160, 1e-30, 1e-8])
def test_tiny_temperatures_do_not_overflow(t):
    x = jnp.asarray([1e10, -3.0, 0.5])
    np.testing.assert_allclose(P.smooth_max(x, 0.5, t), np.maximum(np.asarray(x), 0.5), rtol=1e-6)
    np.testing.assert_allclose(P.logsumexp_max(x, temperature=t), 1e10, rtol=1e-6)
    np.testing.assert_array_equal(P.soft_argmin_weights(x, temperature=t), [0.0, 1.0, 0.0])
    assert np.all(np.isfinite(np.asarray(jax.grad(lambda v: jnp.sum(P.smooth_max(v, 0.5, t)))(x))))


@pytest.mark.parametrize("axis", [None, -1, 0])
def test_tie_safe_max_is_jnp_max_with_its_derivative(axis):
    """Same value as ``jnp.max`` and the same derivative (the mean over tied maxima), under jit too; the tie count
    is floored at 1, so a compiled program that recomputes its operand gets 0 instead of 0/0 (the chiplet model's
    relaxed gradients were NaN at XLA:CPU's -O0 without it)."""
    x = jnp.array([[1.0, 3.0, 3.0], [2.0, 0.5, 2.0]])
    np.testing.assert_array_equal(P.tie_safe_max(x, axis), jnp.max(x, axis=axis))
    w = jnp.arange(1.0, 1.0 + (x.size if axis is None else x.shape[1 - axis % 2]))
    loss = lambda f: lambda z: jnp.sum(jnp.atleast_1d(f(z)) * w[: jnp.atleast_1d(f(z)).shape[0]])
    ours = jax.jit(jax.grad(loss(lambda z: P.tie_safe_max(z, axis))))(x)
    ref = jax.grad(loss(lambda z: jnp.max(z, axis=axis)))(x)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    assert_jit_matches_eager(lambda z: P.tie_safe_max(z, axis), x)
