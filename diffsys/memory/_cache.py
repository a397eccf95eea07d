"""Average memory access time and miss-ratio curves.

- AMAT: ``t₁ + m₁·(t₂ + m₂·(t₃ + … + m_{L-1}·t_mem))`` with *local* miss ratios ``m_i`` (Hennessy & Patterson,
  "Computer Architecture: A Quantitative Approach", 6th ed., §2.1/B.2).
- Power-law miss-ratio curve: ``m(C) = m₀ · (C/C₀)^(-α)``, α ≈ 0.5 — the "√2 rule" (doubling the cache divides the
  miss ratio by √2; Hartstein, Srinivasan, Puzak & Emma, "Cache miss behavior: is it √2?", Computing Frontiers 2006),
  clipped to at most 1.
- Miss-ratio curve from a reuse-distance (LRU stack-distance) histogram: in a fully associative LRU cache of ``C``
  lines an access misses iff its stack distance is ≥ ``C`` (Mattson, Gecsei, Slutz & Traiger, "Evaluation
  techniques for storage hierarchies", IBM Systems Journal 1970); cold (first) accesses always miss. The step is
  replaced by a logistic in ``log(d/(C - ½))`` at ``temperature > 0`` (distances are integers).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..primitives import smooth_min


def amat(hit_times_s, miss_ratios, memory_latency_s):
    """Average memory access time (s) of a hierarchy.

    Args:
        hit_times_s: ``(..., L)`` hit latency of each cache level, fastest first.
        miss_ratios: ``(..., L)`` local miss ratio of each level (misses / accesses reaching that level).
        memory_latency_s: latency of the backing memory (reached after a miss in the last level).
    """
    t = jnp.asarray(hit_times_s)
    m = jnp.asarray(miss_ratios)
    # evaluate from the last level inwards: a_L = t_L + m_L·t_mem; a_i = t_i + m_i·a_{i+1}
    acc = jnp.asarray(memory_latency_s, dtype=jnp.result_type(float, t))
    for i in range(t.shape[-1] - 1, -1, -1):
        acc = t[..., i] + m[..., i] * acc
    return acc


def global_miss_ratios(miss_ratios):
    """Fraction of all accesses that miss in each level: cumulative product of the local miss ratios."""
    return jnp.cumprod(jnp.asarray(miss_ratios), axis=-1)


def power_law_miss_ratio(capacity_B, base_capacity_B, base_miss_ratio, alpha=0.5, temperature=0.0):
    """``min(1, m₀·(C/C₀)^(-α))`` — Hartstein et al. 2006 (α = 0.5 is the √2 rule; measured α ranges 0.3–0.7)."""
    m = base_miss_ratio * (capacity_B / base_capacity_B) ** (-alpha)
    return smooth_min(m, jnp.ones_like(m), temperature)


def miss_ratio_from_reuse_histogram(capacity_lines, distances, counts, cold_misses=0.0, temperature=0.0):
    """Miss ratio of a fully associative LRU cache of ``capacity_lines`` lines.

    Args:
        capacity_lines: cache capacity in lines (may be an array of capacities: a miss-ratio curve).
        distances: ``(K,)`` reuse (stack) distances of the histogram bins (distinct lines touched in between).
        counts: ``(K,)`` number of accesses with that reuse distance.
        cold_misses: first-touch accesses (infinite reuse distance).
        temperature: 0 = exact step ``d ≥ C``; > 0 = logistic in ``log(d/(C - ½))`` of that width.
    """
    d = jnp.asarray(distances, dtype=jnp.result_type(float, distances))
    c = jnp.asarray(counts, dtype=d.dtype)
    cap = jnp.asarray(capacity_lines, dtype=d.dtype)[..., None]
    if isinstance(temperature, (int, float)) and temperature == 0:
        miss = (d >= cap).astype(d.dtype)
    else:
        t = jnp.maximum(jnp.asarray(temperature, dtype=d.dtype), 1e-12)
        # stack distances are integers: centre the step between C - 1 (hit) and C (miss)
        miss = jax.nn.sigmoid((jnp.log(jnp.maximum(d, 1e-12)) - jnp.log(jnp.maximum(cap - 0.5, 1e-12))) / t)
        if not isinstance(temperature, (int, float)):
            miss = jnp.where(jnp.asarray(temperature) > 0, miss, (d >= cap).astype(d.dtype))
    total = jnp.sum(c) + cold_misses
    return (jnp.sum(c * miss, axis=-1) + cold_misses) / total


def reuse_histogram(trace, max_distance=None):
    """Reuse-distance histogram of an address trace (NumPy, host-side helper for building MRC inputs).

    Returns ``(distances, counts, cold_misses)`` with distances ``0..D`` (D = the largest seen, or
    ``max_distance``: larger distances are lumped into the last bin). O(N·D); for traces up to ~10⁵ accesses.
    """
    import numpy as np

    stack: list = []
    dist = []
    cold = 0
    for a in trace:
        try:
            i = len(stack) - 1 - stack[::-1].index(a)
        except ValueError:
            cold += 1
            stack.append(a)
            continue
        dist.append(len(stack) - 1 - i)
        stack.pop(i)
        stack.append(a)
    dmax = max(dist, default=0) if max_distance is None else max_distance
    counts = np.bincount(np.minimum(np.asarray(dist, dtype=int), dmax), minlength=dmax + 1).astype(float)
    return np.arange(dmax + 1, dtype=float), counts, float(cold)
