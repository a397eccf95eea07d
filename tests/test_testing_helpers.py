"""diffsys.testing: the finite-difference check (jax.test_util.check_grads) and the retrace check (chex) catch
what they should."""

import jax
import jax.numpy as jnp
import pytest

from diffsys.testing import assert_grad_matches_fd, assert_no_retrace, float64


@jax.custom_vjp
def _wrong_grad(x):
    return jnp.sum(x ** 2)


_wrong_grad.defvjp(lambda x: (_wrong_grad(x), x), lambda x, g: (g * 3.0 * x,))  # should be 2x


def test_fd_check_passes_and_catches_a_wrong_gradient():
    with float64():
        x = jnp.array([1e9, 0.3, -2.0])  # relative steps across scales
        g = assert_grad_matches_fd(lambda v: jnp.sum(jnp.sin(v[1:]) * jnp.log(v[0])), x, rtol=1e-6)
        assert g.shape == (3,)
        with pytest.raises(AssertionError):
            assert_grad_matches_fd(_wrong_grad, jnp.array([0.5, 1.5]))
    with pytest.raises(AssertionError, match="float64"):
        assert_grad_matches_fd(lambda v: jnp.sum(v), jnp.ones(2, jnp.float32))


def test_retrace_check_isolated_and_catches_a_retrace():
    f = lambda x: jnp.sum(x * 2)
    for _ in range(2):  # repeated checks from one place do not add up
        out = assert_no_retrace(f, (jnp.ones(3),), (jnp.zeros(3),))
        assert float(out[0]) == 6.0
    with pytest.raises(AssertionError, match="traced > 1 times"):
        assert_no_retrace(f, (jnp.ones(3),), (jnp.ones(4),))  # a new shape retraces
