"""Smooth twins of non-smooth operations.

Every function takes a ``temperature`` (a Python float or a traced scalar). ``temperature == 0`` returns the exact
operation (bit-for-bit the ``jnp`` result); ``temperature > 0`` returns a smooth relaxation that converges to the exact
value as the temperature goes to zero. Temperatures are in the *units of the inputs* unless stated otherwise, so a
model that works in seconds should scale its temperature by a characteristic time (see ``relative_temperature``).

Gradients are finite everywhere, including at the kinks, because the smooth branch is evaluated with a safe
temperature (``jnp.where`` never sees a NaN on the branch it discards).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

_TINY = 1e-30
_MIN_TEMPERATURE = 1e-37  # above float32's smallest normal number


def _is_exact(temperature) -> bool | None:
    """``True``/``False`` when the temperature is a concrete Python number, ``None`` when it is traced."""
    if isinstance(temperature, (int, float)):
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        return temperature == 0
    return None


def _blend(exact_fn, soft_fn, temperature):
    """Exact when the temperature is 0, soft otherwise; works for Python and traced temperatures."""
    flag = _is_exact(temperature)
    if flag is True:
        return exact_fn()
    if flag is False:  # floored so a tiny positive temperature cannot underflow to 0 in float32
        return soft_fn(jnp.maximum(jnp.asarray(temperature, dtype=jnp.result_type(float)), _MIN_TEMPERATURE))
    t = jnp.asarray(temperature)
    safe_t = jnp.where(t > 0, jnp.maximum(t, _MIN_TEMPERATURE), 1.0)
    return jnp.where(t > 0, soft_fn(safe_t), exact_fn())


def relative_temperature(temperature, *scales):
    """Turn a dimensionless temperature into one in the units of ``scales`` (their mean absolute value)."""
    if _is_exact(temperature):  # keep a concrete 0 concrete, so the exact branch alone is traced
        return 0.0
    scale = sum(jnp.abs(s) for s in scales) / max(len(scales), 1)
    return temperature * (scale + _TINY)


def smooth_max(a, b, temperature=0.0):
    """max(a, b); soft: ``t·log(exp(a/t) + exp(b/t))`` (overestimates by at most ``t·log 2``)."""
    def soft(t):  # max + t·log1p(exp(-|a-b|/t)): never overflows, even for tiny t
        return jnp.maximum(a, b) + t * jnp.log1p(jnp.exp(-jnp.abs(a - b) / t))

    return _blend(lambda: jnp.maximum(a, b), soft, temperature)


def smooth_min(a, b, temperature=0.0):
    """min(a, b); soft: ``-t·log(exp(-a/t) + exp(-b/t))``."""
    return -smooth_max(-jnp.asarray(a), -jnp.asarray(b), temperature)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def tie_safe_max(x, axis=None):
    """``jnp.max(x, axis)`` whose derivative is the mean of the tangents at the maximal elements, as ``jnp.max``'s,
    with the tie count floored at 1: where a compiled program recomputes ``x`` with another rounding than its max
    (XLA:CPU at low optimisation levels), no element equals the max and ``jnp.max``'s derivative is 0/0; here it is
    0 there."""
    return jnp.max(x, axis=axis)


@tie_safe_max.defjvp
def _tie_safe_max_jvp(axis, primals, tangents):
    (x,), (dx,) = primals, tangents
    ans = jnp.max(x, axis=axis)
    at_max = (x == jnp.expand_dims(ans, axis) if axis is not None else x == ans).astype(x.dtype)
    count = jnp.maximum(jnp.sum(at_max, axis=axis), 1.0)
    return ans, jnp.sum(at_max * dx, axis=axis) / count


def logsumexp_max(x, axis=-1, temperature=0.0):
    """max over ``axis``; soft: ``t·logsumexp(x/t)``."""
    x = jnp.asarray(x)
    axis = axis % x.ndim

    def soft(t):  # shifted by the max, so x/t never overflows
        m = jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
        return jnp.squeeze(m, axis) + t * jax.nn.logsumexp((x - m) / t, axis=axis)

    return _blend(lambda: tie_safe_max(x, axis), soft, temperature)


def logsumexp_min(x, axis=-1, temperature=0.0):
    """min over ``axis``; soft: ``-t·logsumexp(-x/t)``."""
    return -logsumexp_max(-jnp.asarray(x), axis=axis, temperature=temperature)


def relu(x, temperature=0.0):
    """max(x, 0); soft: ``t·softplus(x/t)`` (the hinge penalty's smooth twin)."""
    return smooth_max(x, jnp.zeros_like(jnp.asarray(x, dtype=float)), temperature)


def clamp(x, lo, hi, temperature=0.0):
    """Clip ``x`` to ``[lo, hi]``; soft: smooth max/min composition (stays within ``[lo - t·log2, hi + t·log2]``)."""
    return smooth_min(smooth_max(x, lo, temperature), hi, temperature)


def safe_divide(num, den, default=0.0):
    """``num / den`` where ``den != 0`` else ``default``; gradients are finite (the denominator is patched)."""
    num = jnp.asarray(num)
    den = jnp.asarray(den)
    ok = den != 0
    safe_den = jnp.where(ok, den, 1.0)
    return jnp.where(ok, num / safe_den, default)


def round_ste(x):
    """Round to nearest with a straight-through gradient (value exact, gradient of the identity).

    Bengio, Léonard & Courville (2013), "Estimating or propagating gradients through stochastic neurons".
    """
    x = jnp.asarray(x)
    return x + jax.lax.stop_gradient(jnp.round(x) - x)


def ceil_ste(x):
    """Ceil with a straight-through gradient."""
    x = jnp.asarray(x)
    return x + jax.lax.stop_gradient(jnp.ceil(x) - x)


def floor_ste(x):
    """Floor with a straight-through gradient."""
    x = jnp.asarray(x)
    return x + jax.lax.stop_gradient(jnp.floor(x) - x)


def soft_round(x, temperature=0.0):
    """Round to nearest; soft: Agustsson & Theis (2020) ``m + tanh(r/t) / (2 tanh(1/(2t)))``, ``m = ⌊x⌋ + 1/2``.

    Temperature is in units of the integer lattice (dimensionless). As ``t → 0`` it tends to ``round``; as ``t → ∞`` to
    the identity. Agustsson & Theis, "Universally quantized neural compression", NeurIPS 2020.
    """
    x = jnp.asarray(x, dtype=jnp.result_type(float, x))

    def soft(t):
        m = jnp.floor(x) + 0.5
        r = x - m
        return m + jnp.tanh(r / t) / (2.0 * jnp.tanh(0.5 / t))

    return _blend(lambda: jnp.round(x), soft, temperature)


def soft_ceil(x, temperature=0.0):
    """Ceil; soft: ``soft_round(x + 1/2, t)`` (steps moved onto the integers; value ``n + 1/2`` at ``x = n``)."""
    x = jnp.asarray(x, dtype=jnp.result_type(float, x))
    return _blend(lambda: jnp.ceil(x), lambda t: soft_round(x + 0.5, t), temperature)


def soft_floor(x, temperature=0.0):
    """Floor; soft: ``soft_round(x - 1/2, t)`` (steps moved onto the integers; value ``n - 1/2`` at ``x = n``)."""
    x = jnp.asarray(x, dtype=jnp.result_type(float, x))
    return _blend(lambda: jnp.floor(x), lambda t: soft_round(x - 0.5, t), temperature)


def soft_argmin_weights(costs, axis=-1, temperature=0.0):
    """Selection weights among K alternatives: one-hot argmin when exact, ``softmax(-costs/t)`` when soft.

    Ties in the exact case go to the first minimum (``jnp.argmin``).
    """
    costs = jnp.asarray(costs)
    k = costs.shape[axis]

    def exact():
        idx = jnp.argmin(costs, axis=axis)
        return jax.nn.one_hot(idx, k, axis=axis, dtype=costs.dtype)

    def soft(t):
        shifted = costs - jax.lax.stop_gradient(jnp.min(costs, axis=axis, keepdims=True))
        return jax.nn.softmax(-shifted / t, axis=axis)

    return _blend(exact, soft, temperature)


def choice_weights(x, n: int, temperature=0.0):
    """Weights over options ``0..n-1`` for an encoded categorical value ``x`` (one-hot at temperature 0)."""
    x = jnp.asarray(x, dtype=jnp.result_type(float, x))
    opts = jnp.arange(n, dtype=x.dtype)
    if isinstance(temperature, (int, float)) and temperature == 0:
        return (jnp.round(x)[..., None] == opts).astype(x.dtype)
    return soft_argmin_weights(jnp.abs(x[..., None] - opts), temperature=temperature)


def soft_select(values, costs, axis=-1, temperature=0.0):
    """Value of the alternative with the smallest cost (exact) or the softmax-weighted mixture (soft)."""
    w = soft_argmin_weights(costs, axis=axis, temperature=temperature)
    return jnp.sum(w * jnp.asarray(values), axis=axis)


def one_hot_select(values, index, axis=-1):
    """Pick ``values[..., index]`` with a one-hot product so it stays vmap/grad friendly for integer indices."""
    values = jnp.asarray(values)
    w = jax.nn.one_hot(index, values.shape[axis], axis=axis, dtype=values.dtype)
    return jnp.sum(w * values, axis=axis)


def hinge_penalty(violation, temperature=0.0):
    """Penalty for ``violation > 0`` (a constraint ``g <= 0`` written as ``violation = g``): ``max(g, 0)``."""
    return relu(violation, temperature)


def squared_hinge_penalty(violation, temperature=0.0):
    """``max(g, 0)²`` (soft: squared softplus); the usual quadratic penalty of constrained optimisation."""
    return relu(violation, temperature) ** 2
