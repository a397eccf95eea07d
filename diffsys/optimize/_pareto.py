"""Pareto-front extraction with fixed shapes (usable inside ``jit`` and inside the sweep engine's chunks).

All objectives are minimized. Points with a non-finite objective are never on the front.

- :func:`pareto_mask` — exact non-dominated mask by pairwise comparison, O(n²); for small sets and tests.
- :func:`pareto_front_2d` — exact front of two objectives in O(n log n) (sort by the first objective, keep points
  whose second objective beats the running minimum; Kung, Luccio & Preparata, JACM 1975), thinned evenly to a
  fixed capacity.
- :func:`pareto_front` — exact front of a small set for any number of objectives, thinned to a capacity.
- :func:`pareto_candidates` — reduces a large set (a sweep chunk) to a fixed number of candidates without sorting:
  an ε-box archive for two objectives, Chebyshev scalarizations for three (Miettinen, *Nonlinear Multiobjective
  Optimization*, 1999, §3.4).
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


def _box_candidates(v, finite, n_bins):
    """For each objective axis ``a``: bin the points along ``a`` (log bins when positive) and keep, per bin, the
    point with the smallest other objective. Returns ``(2·n_bins,)`` indices (``n`` marks an empty bin)."""
    n = v.shape[0]
    out = []
    for a in (0, 1):
        x, y = v[:, a], v[:, 1 - a]
        lo = jnp.min(jnp.where(finite, x, jnp.inf))
        hi = jnp.max(jnp.where(finite, x, -jnp.inf))
        positive = lo > 0
        span_log = jnp.log(jnp.where(positive & (hi > lo), hi / jnp.where(positive, lo, 1.0), 2.0))
        pos_log = jnp.log(jnp.where(positive & finite, x / jnp.where(positive, lo, 1.0), 1.0)) / span_log
        pos_lin = jnp.where(finite, x - lo, 0.0) / jnp.where(hi > lo, hi - lo, 1.0)
        pos = jnp.where(positive, pos_log, pos_lin)
        b = jnp.where(finite, jnp.clip(jnp.floor(pos * n_bins), 0, n_bins - 1).astype(jnp.int32), n_bins)
        y_min = jnp.full(n_bins + 1, jnp.inf, v.dtype).at[b].min(jnp.where(finite, y, jnp.inf))
        is_min = finite & (y == y_min[b])
        idx = jnp.full(n_bins + 1, n, jnp.int32).at[b].min(jnp.where(is_min, jnp.arange(n, dtype=jnp.int32), n))
        out.append(idx[:n_bins])
    return jnp.concatenate(out)


def _chebyshev_candidates(v, finite, per_weight, per_axis):
    """Indices of the ``per_weight`` best points of each Chebyshev scalarization, plus each objective's minimum."""
    n, m = v.shape
    lo = jnp.min(jnp.where(finite[:, None], v, jnp.inf), axis=0)
    hi = jnp.max(jnp.where(finite[:, None], v, -jnp.inf), axis=0)
    scale = jnp.where(hi > lo, hi - lo, 1.0)
    z = jnp.where(finite[:, None], (v - lo) / scale, jnp.inf)
    w = jnp.asarray(chebyshev_weights(m, per_axis), v.dtype)
    cheb = jnp.max(z[None, :, :] * w[:, None, :], axis=-1)  # (W, n)
    _, idx = jax.lax.top_k(-cheb, min(per_weight, n))
    extremes = jnp.argmin(jnp.where(finite[:, None], v, jnp.inf), axis=0)
    return jnp.concatenate([idx.ravel(), extremes]).astype(jnp.int32)


def pareto_candidates(values, n_bins: int = 1024, per_weight: int = 16, per_axis: int = 5):
    """A fixed-size set of indices that contains (an ε-approximation of) the front of a large ``values`` array,
    without sorting it (sorting is slow on accelerators' and XLA's CPU backends).

    - Two objectives: an ε-box archive in the spirit of Laumanns, Thiele, Deb & Zitzler, "Combining convergence and
      diversity in evolutionary multiobjective optimization", Evol. Comput. 10(3), 2002: along each objective the
      range is cut into ``n_bins`` (log-spaced) boxes and the best point of the other objective in each box is kept,
      so every front point is matched by a candidate within one box width.
    - Three objectives: the ``per_weight`` best points of each weighted Chebyshev scalarization on a simplex lattice
      (every Pareto point minimizes some Chebyshev scalarization; Miettinen 1999, Thm. 3.4.5) and the extremes.

    Returns indices into ``values``; an index equal to ``len(values)`` marks an empty slot.
    """
    v = jnp.asarray(values)
    finite = jnp.all(jnp.isfinite(v), axis=-1)
    if v.shape[-1] == 2:
        return _box_candidates(v, finite, n_bins)
    idx = _chebyshev_candidates(v, finite, per_weight, per_axis)
    return jnp.where(finite[idx], idx, v.shape[0])


def pareto_front(values, capacity: int):
    """Exact front of a (small) ``values`` array ``(n, m)``, at most ``capacity`` points spread evenly along it.

    Two objectives in O(n log n) (:func:`pareto_front_2d`), more by the O(n²) pairwise filter. Returns
    ``(indices, valid)``. For large arrays, reduce with :func:`pareto_candidates` first.
    """
    v = jnp.asarray(values)
    m = v.shape[-1]
    if m == 2:
        return pareto_front_2d(v, capacity)
    if m >= 3:
        mask = pareto_mask(v)
        lo = jnp.min(jnp.where(mask[:, None], v, jnp.inf), axis=0)
        return _thin(mask, capacity, jnp.sum(jnp.where(mask[:, None], v - lo, 0.0), axis=-1))
    raise ValueError(f"a Pareto front needs at least 2 objectives, got {m}")
