"""Hypervolume indicator of a set of points (all objectives minimized) with respect to a reference point.

The hypervolume is the Lebesgue measure of the region dominated by the set and bounded by the reference point
(Zitzler & Thiele, "Multiobjective optimization using evolutionary algorithms — a comparative case study", PPSN
1998). It is the standard single number for comparing Pareto fronts from different searches: larger is better,
and only a front that is not dominated scores the maximum.

Backends (``backend=``):

- ``"moocore"`` (the default when the optional ``moocore`` package is installed, ``pip install diffsys[moo]``): the
  C implementations of López-Ibáñez et al.'s moocore — the dimension-sweep algorithms of Fonseca, Paquete &
  López-Ibáñez (IEEE CEC 2006; O(n log n) in 3-D) and, for more objectives, Lacour, Klamroth & Fonseca's
  box-decomposition algorithm (Computers & OR 2017); contributions by the HV3D+/HV4D+ update algorithms (Guerreiro &
  Fonseca, IEEE TEC 2018).
- ``"python"`` (the fallback, and the tests' reference): a sort-and-sweep for two objectives (O(n log n)), and
  "hypervolume by slicing objectives" (HSO, While et al., IEEE TEC 2006) for three or more (exponential in the number
  of objectives: 3-D, 256 points takes about a second; contributions are ``n + 1`` such solves).

Host-side NumPy: fronts are small, the sweep engine produces them.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "moocore", "python")
_FALLBACK_LOGGED = False


def _moocore():
    """The ``moocore`` module, or None (logged once at INFO) when it is not installed."""
    global _FALLBACK_LOGGED
    try:
        import moocore
    except ImportError:
        if not _FALLBACK_LOGGED:
            logger.info("moocore is not installed (pip install diffsys[moo]); exact hypervolume falls back to the "
                        "pure-Python algorithms (slow beyond ~100 points in 3+ objectives)")
            _FALLBACK_LOGGED = True
        return None
    return moocore


def _resolve(backend: str):
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "python":
        return None
    mc = _moocore()
    if mc is None and backend == "moocore":
        raise ValueError("backend='moocore' needs the moocore package (pip install diffsys[moo])")
    return mc


def _clean(points, reference):
    """Validated ``(p, ref, keep)``: ``keep`` marks the finite rows that strictly dominate the reference."""
    p = np.asarray(points, float)
    ref = np.asarray(reference, float)
    if p.ndim != 2 or ref.shape != (p.shape[1],):
        raise ValueError(f"points must be (n, m) and reference (m,), got {p.shape} and {ref.shape}")
    if not np.all(np.isfinite(ref)):
        raise ValueError(f"reference must be finite, got {ref}")
    keep = np.all(np.isfinite(p), axis=1) & np.all(p < ref, axis=1)
    return p, ref, keep


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


def hypervolume(points, reference, *, backend: str = "auto") -> float:
    """Exact hypervolume of ``points`` (``(n, m)``, minimized) w.r.t. ``reference`` (``(m,)``).

    Points that do not strictly dominate the reference (any coordinate ``>= reference``) contribute nothing;
    non-finite rows are ignored. ``backend``: ``"auto"`` (moocore when installed, else Python), ``"moocore"`` or
    ``"python"`` (module docstring).
    """
    p, ref, keep = _clean(points, reference)
    mc = _resolve(backend)
    p = p[keep]
    if len(p) == 0:
        return 0.0
    if mc is not None and p.shape[1] >= 2:  # moocore needs two or more objectives; one is a minimum
        return float(mc.hypervolume(p, ref=ref))
    return float(_hv(_nondominated(p), ref))


def hypervolume_contributions(points, reference, *, backend: str = "auto") -> np.ndarray:
    """Exclusive contribution of each point: ``HV(all) - HV(all but i)`` (0 for dominated, duplicated, non-finite
    points and points outside the reference box). A dominated point still counts when its dominator is removed
    (moocore's ``ignore_dominated=False``)."""
    p, ref, keep = _clean(points, reference)
    mc = _resolve(backend)
    out = np.zeros(len(p))
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return out
    q = p[idx]
    if mc is not None and p.shape[1] >= 2:
        out[idx] = mc.hv_contributions(q, ref=ref, ignore_dominated=False)
        return out
    total = hypervolume(q, ref, backend="python")
    for j, i in enumerate(idx):
        out[i] = total - hypervolume(np.delete(q, j, axis=0), ref, backend="python")
    return out


def reference_point(points, margin: float = 0.1) -> np.ndarray:
    """A reference point ``max + margin·(max - min)`` per objective (the usual nadir-based choice)."""
    p = np.asarray(points, float)
    p = p[np.all(np.isfinite(p), axis=1)]
    hi, lo = p.max(0), p.min(0)
    return hi + margin * np.maximum(hi - lo, np.abs(hi) * 1e-12 + 1e-300)
