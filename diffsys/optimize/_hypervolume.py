"""Hypervolume indicator of a set of points (all objectives minimized) with respect to a reference point.

The hypervolume is the Lebesgue measure of the region dominated by the set and bounded by the reference point
(Zitzler & Thiele, "Multiobjective optimization using evolutionary algorithms — a comparative case study", PPSN
1998). It is the standard single number for comparing Pareto fronts from different searches: larger is better,
and only a front that is not dominated scores the maximum.

Exact algorithms: a sort-and-sweep for two objectives (O(n log n)), and "hypervolume by slicing objectives" (HSO,
While et al., IEEE TEC 2006) for three or more (exponential in the number of objectives; fine for fronts of a few
hundred points in 3-4 objectives). Host-side NumPy: fronts are small, the sweep engine produces them.
"""

from __future__ import annotations

import numpy as np


def _nondominated(p: np.ndarray) -> np.ndarray:
    keep = np.ones(len(p), bool)
    for i in range(len(p)):
        if keep[i]:
            dom = np.all(p[i] <= p, axis=1) & np.any(p[i] < p, axis=1)
            keep &= ~dom
    # drop exact duplicates
    _, first = np.unique(p[keep], axis=0, return_index=True)
    return p[keep][np.sort(first)]


def _hv2(p: np.ndarray, ref: np.ndarray) -> float:
    p = p[np.argsort(p[:, 0], kind="stable")]
    hv, best_y = 0.0, ref[1]
    for x, y in p:
        if y < best_y:
            hv += (ref[0] - x) * (best_y - y)
            best_y = y
    return hv


def _hv(p: np.ndarray, ref: np.ndarray) -> float:
    if len(p) == 0:
        return 0.0
    m = p.shape[1]
    if m == 1:
        return float(ref[0] - p[:, 0].min())
    if m == 2:
        return _hv2(p, ref)
    # slice along the last objective
    p = p[np.argsort(p[:, -1], kind="stable")]
    hv = 0.0
    for i in range(len(p)):
        upper = p[i + 1, -1] if i + 1 < len(p) else ref[-1]
        depth = upper - p[i, -1]
        if depth > 0:
            hv += depth * _hv(_nondominated(p[: i + 1, :-1]), ref[:-1])
    return hv


def hypervolume(points, reference) -> float:
    """Exact hypervolume of ``points`` (``(n, m)``, minimized) w.r.t. ``reference`` (``(m,)``).

    Points that do not strictly dominate the reference (any coordinate ``>= reference``) contribute nothing;
    non-finite rows are ignored.
    """
    p = np.asarray(points, float)
    ref = np.asarray(reference, float)
    if p.ndim != 2 or ref.shape != (p.shape[1],):
        raise ValueError(f"points must be (n, m) and reference (m,), got {p.shape} and {ref.shape}")
    if not np.all(np.isfinite(ref)):
        raise ValueError(f"reference must be finite, got {ref}")
    p = p[np.all(np.isfinite(p), axis=1) & np.all(p < ref, axis=1)]
    if len(p) == 0:
        return 0.0
    return float(_hv(_nondominated(p), ref))


def hypervolume_contributions(points, reference) -> np.ndarray:
    """Exclusive contribution of each point: ``HV(all) - HV(all but i)`` (0 for dominated points)."""
    p = np.asarray(points, float)
    total = hypervolume(p, reference)
    out = np.zeros(len(p))
    for i in range(len(p)):
        out[i] = total - hypervolume(np.delete(p, i, axis=0), reference)
    return out


def reference_point(points, margin: float = 0.1) -> np.ndarray:
    """A reference point ``max + margin·(max - min)`` per objective (the usual nadir-based choice)."""
    p = np.asarray(points, float)
    p = p[np.all(np.isfinite(p), axis=1)]
    hi, lo = p.max(0), p.min(0)
    return hi + margin * np.maximum(hi - lo, np.abs(hi) * 1e-12 + 1e-300)
