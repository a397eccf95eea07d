"""Pareto-front extraction with fixed shapes (usable inside ``jit`` and inside the sweep engine's chunks).

All objectives are minimized. Points with a non-finite objective are never on the front.

- :func:`pareto_mask` — exact non-dominated mask by pairwise comparison, O(n²); for small sets and tests.
- :func:`pareto_front_2d` — exact front of two objectives in O(n log n) (sort by the first objective, keep points
  whose second objective beats the running minimum; Kung, Luccio & Preparata, JACM 1975), thinned evenly to a
  fixed capacity.
- :func:`pareto_front_nd` — three or more objectives: a candidate set from Chebyshev scalarizations (every Pareto
  point minimizes some weighted Chebyshev distance; Miettinen, *Nonlinear Multiobjective Optimization*, 1999, §3.4)
  then the exact pairwise filter on the candidates. Approximate when the front has more points than the candidates.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np


def pareto_mask(values):
    """Boolean mask of the non-dominated rows of ``values`` (``(n, m)``, minimized). Duplicates keep the first."""
    v = jnp.asarray(values)
    finite = jnp.all(jnp.isfinite(v), axis=-1)
    le = jnp.all(v[:, None, :] <= v[None, :, :], axis=-1)  # le[i, j]: i weakly better than j everywhere
    lt = jnp.any(v[:, None, :] < v[None, :, :], axis=-1)
    dominates = le & lt & finite[:, None]
    n = v.shape[0]
    earlier_equal = jnp.all(v[:, None, :] == v[None, :, :], axis=-1) & (jnp.arange(n)[:, None] < jnp.arange(n)[None, :])
    dominated = jnp.any(dominates | (earlier_equal & finite[:, None]), axis=0)
    return finite & ~dominated


def _thin(mask, capacity, order_key):
    """Indices (``capacity``,) of at most ``capacity`` rows of ``mask`` spread evenly along ``order_key``,
    plus a validity flag per slot."""
    n = mask.shape[0]
    order = jnp.argsort(jnp.where(mask, order_key, jnp.inf))
    sorted_mask = mask[order]
    count = jnp.sum(sorted_mask)
    slots = jnp.arange(capacity)
    # rank of the row each slot takes: all of them when they fit, else evenly spaced (ends included)
    spread = jnp.round(slots * (jnp.maximum(count, 1) - 1) / jnp.maximum(capacity - 1, 1)).astype(jnp.int32)
    rank = jnp.where(count <= capacity, slots, spread)
    valid = slots < count
    pos = jnp.clip(rank, 0, n - 1)
    return order[pos], valid


def pareto_front_2d(values, capacity: int):
    """Exact two-objective front of ``values`` (``(n, 2)``), at most ``capacity`` points.

    Returns ``(indices, valid)``: indices into ``values`` and a mask of the slots that hold a front point.
    """
    v = jnp.asarray(values)
    finite = jnp.all(jnp.isfinite(v), axis=-1)
    big = jnp.finfo(v.dtype).max
    a = jnp.where(finite, v[:, 0], big)
    b = jnp.where(finite, v[:, 1], big)
    order = jnp.lexsort((b, a))  # by a, then b
    b_sorted = b[order]
    prev_min = jnp.concatenate([jnp.full((1,), jnp.inf, v.dtype), jax.lax.cummin(b_sorted)[:-1]])
    keep_sorted = (b_sorted < prev_min) & finite[order]
    mask = jnp.zeros_like(finite).at[order].set(keep_sorted)
    return _thin(mask, capacity, a)


def chebyshev_weights(m: int, per_axis: int = 5) -> np.ndarray:
    """A simplex lattice of weight vectors for ``m`` objectives (``per_axis`` levels per axis, zeros allowed)."""
    levels = range(per_axis + 1)
    w = np.array([c for c in itertools.product(levels, repeat=m) if sum(c) == per_axis], float) / per_axis
    return np.maximum(w, 1e-3)


def pareto_front_nd(values, capacity: int, candidates_per_weight: int = 16, per_axis: int = 5):
    """Approximate front of ``values`` (``(n, m)``, ``m >= 2``) with at most ``capacity`` points."""
    v = jnp.asarray(values)
    n, m = v.shape
    finite = jnp.all(jnp.isfinite(v), axis=-1)
    lo = jnp.min(jnp.where(finite[:, None], v, jnp.inf), axis=0)
    hi = jnp.max(jnp.where(finite[:, None], v, -jnp.inf), axis=0)
    scale = jnp.where(hi > lo, hi - lo, 1.0)
    z = jnp.where(finite[:, None], (v - lo) / scale, jnp.inf)
    w = jnp.asarray(chebyshev_weights(m, per_axis), v.dtype)
    cheb = jnp.max(z[None, :, :] * w[:, None, :], axis=-1)  # (W, n)
    t = min(candidates_per_weight, n)
    _, idx = jax.lax.top_k(-cheb, t)  # (W, t)
    # plus the extremes of each objective, so the ends of the front are always candidates
    extremes = jnp.argmin(jnp.where(finite[:, None], v, jnp.inf), axis=0)
    cand = jnp.concatenate([idx.ravel(), extremes])
    cv = v[cand]
    # duplicates of one index would dominate-by-equality each other; pareto_mask keeps the first copy
    keep = pareto_mask(cv)
    sel, valid = _thin(keep, capacity, jnp.sum((cv - lo) / scale, axis=-1))
    return cand[sel], valid


def pareto_front(values, capacity: int):
    """Front of ``values`` (``(n, m)``): exact for ``m == 2``, Chebyshev-candidate approximation for ``m >= 3``."""
    m = jnp.shape(values)[-1]
    if m == 2:
        return pareto_front_2d(values, capacity)
    if m >= 3:
        return pareto_front_nd(values, capacity)
    raise ValueError(f"a Pareto front needs at least 2 objectives, got {m}")
