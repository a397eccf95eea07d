"""diffsys.primitives.increasing_root: value, feasible side, implicit gradient, vmap and jit."""

import jax
import jax.numpy as jnp
import numpy as np

from diffsys.primitives import increasing_root
from diffsys.testing import assert_grad_matches_fd, assert_jit_matches_eager, assert_vmap_matches_loop, float64


def _root(theta):
    u, _ = increasing_root(lambda u: jnp.exp(u) + u - theta, jnp.full_like(theta, -10.0),
                           jnp.full_like(theta, 10.0), 60)
    return u


def test_value_and_feasible_side():
    theta = jnp.asarray([0.5, 1.0, 3.0, 20.0])
    u, val = increasing_root(lambda u: jnp.exp(u) + u - theta, jnp.full_like(theta, -10.0),
                             jnp.full_like(theta, 10.0), 60)
    np.testing.assert_allclose(np.exp(u) + u, theta, rtol=1e-5)
    assert np.all(np.asarray(val) <= 0)  # the bracket's lower end: fn <= 0


def test_implicit_gradient_matches_analytic_and_finite_differences():
    with float64():
        theta = jnp.asarray(3.0)
        u = _root(theta)
        g = jax.grad(_root)(theta)
        np.testing.assert_allclose(g, 1.0 / (np.exp(float(u)) + 1.0), rtol=1e-10)  # du/dθ = 1/f'(u)
        assert_grad_matches_fd(_root, theta)


def test_jit_and_vmap():
    theta = jnp.asarray([0.5, 2.0, 7.0])
    assert_jit_matches_eager(_root, theta)
    assert_vmap_matches_loop(_root, theta)
