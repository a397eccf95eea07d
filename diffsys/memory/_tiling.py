"""Tiling-aware off-chip traffic of GEMM and convolution given an on-chip buffer of ``S`` bytes.

Lower bound. For ``C = A·B`` (``m×k`` by ``k×n``) with a fast memory of ``S`` words, every schedule of the classical
algorithm moves at least ``2·m·n·k/√S`` words between fast and slow memory (Smith, Lowery, Langou & van de Geijn,
"A tight I/O lower bound for matrix multiplication", arXiv 1702.02017, 2017/2022; the order ``mnk/√S`` is Hong &
Kung, STOC 1981, with constants by Irony, Toledo & Tiskin, JPDC 2004). Every operand must also cross once (the
compulsory traffic ``mk + kn + mn``), so the bound used here is ``max(2mnk/√S, mk + kn + mn)``.

Achievable. The output-stationary square-tile schedule keeps a ``t_m × t_n`` block of ``C`` on chip (``t_m·t_n ≤ S``,
``t = √S`` when the matrix is large) and streams ``A`` row-panels and ``B`` column-panels through it: ``A`` is read
``n/t_n`` times, ``B`` ``m/t_m`` times, ``C`` written once:
``Q = m·k·⌈n/t_n⌉ + k·n·⌈m/t_m⌉ + m·n`` words with ``t_m = min(√S, m)``, ``t_n = min(√S, n)``. Its leading term
equals the lower bound, i.e. the schedule is optimal up to lower-order terms (Smith et al. 2017). ``quantize=False``
(default) drops the ceilings, which makes the traffic smooth in ``S``; the ``min`` uses :func:`smooth_min` at
``temperature`` > 0. Either way, traffic never increases with ``S``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from ..primitives import ceil_ste, relative_temperature, smooth_max, smooth_min, soft_ceil


class Traffic(NamedTuple):
    """Off-chip traffic of a tiled kernel (bytes)."""

    bytes: jnp.ndarray  # total achievable traffic
    bytes_read: jnp.ndarray
    bytes_written: jnp.ndarray
    lower_bound_bytes: jnp.ndarray  # max(2mnk/√S, compulsory), in bytes
    compulsory_bytes: jnp.ndarray  # every operand once
    tile: jnp.ndarray  # chosen square tile edge (elements) before clipping to the matrix


def gemm_traffic_lower_bound(m, n, k, sram_B, bytes_per_element=2, temperature=0.0):
    """``max(2·m·n·k/√S, mk + kn + mn)`` words, returned in bytes (``S = sram_B / bytes_per_element`` words)."""
    words = sram_B / bytes_per_element
    comm = 2.0 * m * n * k / jnp.sqrt(words)
    comp = m * k + k * n + m * n
    return smooth_max(comm, comp, relative_temperature(temperature, comm, comp)) * bytes_per_element


def _passes(m, n, sram_B, bpe, buffers, quantize, temperature):
    """Square tile edge ``t`` and the number of passes over ``A`` (``n/t_n``) and ``B`` (``m/t_m``)."""
    t = jnp.sqrt(sram_B / (bpe * buffers))
    tm = smooth_min(t, m * 1.0, relative_temperature(temperature, t, m))
    tn = smooth_min(t, n * 1.0, relative_temperature(temperature, t, n))
    pa, pb = n / tn, m / tm
    if quantize:
        if isinstance(temperature, (int, float)) and temperature == 0:
            pa, pb = ceil_ste(pa), ceil_ste(pb)
        else:
            pa, pb = soft_ceil(pa, temperature), soft_ceil(pb, temperature)
    return t, pa, pb


def gemm_traffic(m, n, k, sram_B, bytes_per_element=2, *, batch=1, buffers=1, quantize=False,
                 temperature=0.0) -> Traffic:
    """Off-chip traffic of the output-stationary square-tile GEMM schedule with ``sram_B`` bytes of buffer.

    Args:
        m, n, k: GEMM sizes; ``batch`` independent GEMMs of that size.
        sram_B: on-chip capacity available to the kernel (bytes).
        buffers: 2 for double buffering (halves the usable capacity).
        quantize: whole passes (``⌈n/t_n⌉``; straight-through at temperature 0, soft ceil above) instead of
            fractional ones.
        temperature: smooths the ``min`` of tile and matrix size (and the ceilings when ``quantize``).
    """
    bpe = bytes_per_element
    t, pa, pb = _passes(m, n, sram_B, bpe, buffers, quantize, temperature)
    read = batch * (m * k * pa + k * n * pb) * bpe
    written = batch * m * n * bpe
    comp = batch * (m * k + k * n + m * n) * bpe
    lb = batch * gemm_traffic_lower_bound(m, n, k, sram_B / buffers, bpe, temperature)
    return Traffic(read + written, read, written, lb, comp, t)


def conv2d_traffic(batch, height, width, c_in, c_out, kernel, stride=1, sram_B=1 << 20, bytes_per_element=2, *,
                   buffers=1, quantize=False, temperature=0.0) -> Traffic:
    """Convolution as an implicit GEMM (``M = B·H_out·W_out``, ``N = C_out``, ``K = C_in·k²``; Chetlur et al.,
    "cuDNN", 2014), "same" padding. The im2col operand is never materialised: each pass over it reads the input
    tensor (``B·H·W·C_in`` elements), not the ``k²``-times larger im2col matrix. ``lower_bound_bytes`` is the
    compulsory traffic here (the convolution bounds of Demmel & Dinh, 2018, are not modelled).
    """
    bpe = bytes_per_element
    m = batch * (height / stride) * (width / stride)
    n, kk = c_out * 1.0, c_in * kernel * kernel
    t, pa, pb = _passes(m, n, sram_B, bpe, buffers, quantize, temperature)
    a_elems = batch * height * width * c_in
    read = (a_elems * pa + kk * n * pb) * bpe
    written = m * n * bpe
    comp = (a_elems + kk * n + m * n) * bpe
    return Traffic(read + written, read, written, comp, comp, t)
