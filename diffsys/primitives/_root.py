"""Elementwise root of an increasing function by bisection, with the implicit-function gradient.

For ``fn`` increasing in ``u`` on ``[lo, hi]`` (elementwise), ``n_steps`` halvings keep ``fn(a) <= 0 < fn(b)`` and
return ``a``, the largest bracketed point with ``fn <= 0`` (a constraint's feasible side). The bisection runs
outside the gradient; one implicit-function step on top gives the value ``a`` and the derivative
``du/dθ = -(∂fn/∂θ)/(∂fn/∂u)`` w.r.t. anything ``fn`` closes over (implicit function theorem; a zero or
non-finite slope contributes no gradient). Every element takes the same number of steps, so the solve is cheap
under ``vmap`` and needs no linear solve or host callback. A root outside the bracket ends at its edge.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def increasing_root(fn: Callable, lo, hi, n_steps: int):
    """``(u, fn(u))``: the root of the increasing ``fn`` in ``[lo, hi]`` after ``n_steps`` bisection halvings (the
    bracket's lower end), differentiable through the implicit function theorem (module doc)."""

    def bisect(_, state):
        a, b = state
        mid = 0.5 * (a + b)
        below = jax.lax.stop_gradient(fn(mid)) <= 0
        return jnp.where(below, mid, a), jnp.where(below, b, mid)

    a, _ = jax.lax.fori_loop(0, n_steps, bisect, (jax.lax.stop_gradient(lo), jax.lax.stop_gradient(hi)))
    u0 = jax.lax.stop_gradient(a)
    val, slope = jax.jvp(fn, (u0,), (jnp.ones_like(u0),))
    slope = jax.lax.stop_gradient(jnp.where(jnp.isfinite(slope) & (slope != 0), slope, 1.0))
    return u0 - (val - jax.lax.stop_gradient(val)) / slope, val
