"""Helpers for specs stored as ``equinox.Module`` pytrees."""

from __future__ import annotations

import jax.numpy as jnp


def as_float(x):
    """Array converter for numeric spec fields: weak-typed floats become the default float dtype."""
    return jnp.asarray(x, dtype=jnp.result_type(float, x))
