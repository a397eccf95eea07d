"""Helpers for specs stored as ``equinox.Module`` pytrees."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def as_float(x):
    """Array converter for numeric spec fields: weak-typed floats become the default float dtype. A value that is not
    numeric (a string, ``None``, a mapping) raises ``ValueError``, as every other bad spec value does."""
    try:
        out = jnp.asarray(x, dtype=jnp.result_type(float, x))
    except TypeError:
        raise ValueError(f"a numeric spec field must be a number or an array of numbers, got {x!r:.80} "
                         f"({type(x).__name__})") from None
    except OverflowError:
        raise ValueError(f"{x!r:.40} is too large for a numeric spec field") from None
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):  # host-side, trace-safe
        with np.errstate(over="ignore"):
            if not np.isfinite(np.asarray(x, dtype=out.dtype)):
                raise ValueError(f"{x!r} overflows {out.dtype} (largest {float(np.finfo(out.dtype).max):.3g})")
    return out


def as_optional_float(x):
    """:func:`as_float`, keeping ``None`` (an optional numeric field left unset)."""
    return None if x is None else as_float(x)


def concretely_zero(x) -> bool:
    """``True`` when ``x`` is a concrete all-zero value (a structural zero a model may skip at trace time);
    ``False`` for anything traced or nonzero, so skipping never changes a result."""
    if isinstance(x, jax.core.Tracer):
        return False
    return not np.any(np.asarray(x))


def jit_when_eager(fn):
    """``fn`` compiled by ``equinox.filter_jit`` when called directly (one compilation instead of thousands of eager
    dispatches), traced inline when any argument leaf is a tracer (inside ``jit``/``vmap``/``grad``): there the
    leaves a caller keeps concrete stay concrete, so :func:`concretely_zero` can skip what they zero out, where a
    nested ``filter_jit`` would turn every leaf into a tracer."""
    import functools

    import equinox as eqx

    compiled = eqx.filter_jit(fn)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves((args, kwargs))):
            return fn(*args, **kwargs)
        return compiled(*args, **kwargs)

    return call
