"""Synthetic traffic patterns of k-ary n-cube networks as row-stochastic traffic matrices.

``T[s, d]`` is the fraction of the packets injected at node ``s`` destined to node ``d`` (rows sum to 1). Node ids
follow BookSim: ``id = Σ_i c_i·k^i`` with ``c_0`` the x coordinate. Definitions follow Dally & Towles, *Principles
and Practices of Interconnection Networks* (2004), §3.2 (Table 3.1), as implemented in BookSim2 ``traffic.cpp``
(Jiang et al., "A detailed and flexible cycle-accurate network-on-chip simulator", ISPASS 2013):

- uniform: every node (the source included) with probability ``1/N``;
- transpose: ``d = (s_{n/2..n-1}, s_{0..n/2-1})`` on the bits of the id (``(x, y) -> (y, x)`` for 2-D);
- bitcomp: ``d = ~s``; bitrev: ``d`` = the bits of ``s`` reversed; shuffle: ``d`` = ``s`` rotated left by one bit
  (bit patterns need ``N`` a power of two);
- tornado: ``d_i = s_i + ⌈k/2⌉ - 1 (mod k)`` in every dimension; neighbor: ``d_i = s_i + 1 (mod k)``;
- hotspot: a fraction ``hotspot_fraction`` of all traffic to ``hotspot_nodes`` (evenly), the rest uniform.

Arbitrary matrices are accepted anywhere a pattern is (:func:`as_traffic_matrix`).
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import check_choice, check_range

PATTERNS = ("uniform", "transpose", "bitcomp", "bitrev", "shuffle", "tornado", "neighbor", "hotspot")


def _coords(k: int, n: int) -> np.ndarray:
    ids = np.arange(k**n)
    return np.stack([(ids // k**i) % k for i in range(n)], axis=1)


def _ids(coords: np.ndarray, k: int) -> np.ndarray:
    return sum(coords[:, i] * k**i for i in range(coords.shape[1]))


def _bits(N: int, pattern: str) -> int:
    b = round(math.log2(N))
    if 2**b != N:
        raise ValueError(f"traffic {pattern!r} needs a power-of-two node count, got {N} nodes")
    return b


def permutation(pattern: str, k: int, n: int) -> np.ndarray:
    """Destination of each source for a permutation pattern (``(N,)`` int array)."""
    N = k**n
    s = np.arange(N)
    c = _coords(k, n)
    if pattern == "transpose":
        b = _bits(N, pattern)
        if b % 2:
            raise ValueError(f"traffic 'transpose' needs an even number of address bits, got {b}")
        h = b // 2
        lo, hi = s & ((1 << h) - 1), s >> h
        return (lo << h) | hi
    if pattern == "bitcomp":
        b = _bits(N, pattern)
        return ~s & ((1 << b) - 1)
    if pattern == "bitrev":
        b = _bits(N, pattern)
        return np.array([int(format(x, f"0{b}b")[::-1], 2) for x in s])
    if pattern == "shuffle":
        b = _bits(N, pattern)
        return ((s << 1) & ((1 << b) - 1)) | (s >> (b - 1))
    if pattern == "tornado":
        return _ids((c + (math.ceil(k / 2) - 1)) % k, k)
    if pattern == "neighbor":
        return _ids((c + 1) % k, k)
    raise ValueError(f"{pattern!r} is not a permutation pattern")


def traffic_matrix(pattern: str, k: int, n: int, *, hotspot_nodes=(0,), hotspot_fraction=0.1) -> np.ndarray:
    """Row-stochastic ``(k^n, k^n)`` traffic matrix of a named pattern (see module docstring)."""
    check_choice("traffic", pattern, PATTERNS)
    check_range("k", k, 2, None)
    check_range("n", n, 1, None)
    N = k**n
    if pattern == "uniform":
        return np.full((N, N), 1.0 / N)
    if pattern == "hotspot":
        check_range("hotspot_fraction", hotspot_fraction, 0.0, 1.0)
        nodes = list(hotspot_nodes)
        for h in nodes:
            check_range("hotspot_nodes", h, 0, N - 1)
        T = np.full((N, N), (1.0 - hotspot_fraction) / N)
        T[:, nodes] += hotspot_fraction / len(nodes)
        return T
    dest = permutation(pattern, k, n)
    T = np.zeros((N, N))
    T[np.arange(N), dest] = 1.0
    return T


def as_traffic_matrix(traffic, k: int, n: int, **kw):
    """A pattern name or an ``(N, N)`` matrix (rows normalized to sum to 1; all-zero rows stay zero)."""
    if isinstance(traffic, str):
        return traffic_matrix(traffic, k, n, **kw)
    import jax.numpy as jnp

    T = jnp.asarray(traffic, dtype=jnp.result_type(float))
    N = k**n
    if T.shape != (N, N):
        raise ValueError(f"traffic matrix must have shape ({N}, {N}) for k={k}, n={n}, got {T.shape}")
    try:
        values = np.asarray(T)
    except Exception:  # noqa: BLE001 -- traced inside jit/vmap/grad: nothing to check eagerly
        values = None
    if values is not None and np.any(values < 0):
        raise ValueError("traffic matrix entries must be >= 0")
    rows = jnp.sum(T, axis=1, keepdims=True)
    return jnp.where(rows > 0, T / jnp.where(rows > 0, rows, 1.0), 0.0)
