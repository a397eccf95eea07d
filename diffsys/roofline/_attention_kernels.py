"""Calibrated latency of the attention kernels of LLM inference: prefill (fused multi-head attention) and decode.

Both models count the work of a tiled IO-aware kernel, place its thread blocks (CTAs) on the device's cores in
waves and price each wave from the datasheet (``accel.peak_flops``, ``accel.main_memory.bandwidth_Bps``,
``accel.num_cores``, ``accel.frequency_Hz``). A handful of per-device constants (achievable fractions of the
ceilings, a per-CTA prologue in clock cycles, the launch floor) are fitted to measured TensorRT-LLM attention-op
latencies and shipped in ``diffsys/hardware/calibration/attention.json``; see ``docs/roofline.md``, section
"Attention kernels", and ``benchmarks/calibrate_attention.py``.

Sources:
- [FA2] T. Dao, "FlashAttention-2: Faster attention with better parallelism and work partitioning", ICLR 2024
  (arXiv 2307.08691): Q tiles of ``Tq`` rows per CTA, the loop over ``Tkv``-key tiles, parallelism over
  batch × heads × ⌈s/Tq⌉, causal blocks above the diagonal skipped, diagonal blocks computed in full and masked.
- [FA3] J. Shah et al., "FlashAttention-3: Fast and accurate attention with asynchrony and low-precision",
  NeurIPS 2024 (arXiv 2407.08608), Sec. 3: the exponential runs on the multi-function units, 16 per clock per SM
  on H100 (3.9 TFLOP/s of special functions vs 989 TFLOP/s of matrix work), so softmax is priced apart.
- [FD] T. Dao, D. Haziza, F. Massa, G. Sizov, "Flash-Decoding for long-context inference" (PyTorch blog, 2023):
  one query token per sequence leaves batch × kv-heads CTAs, too few for the device, so the KV sequence is split
  into chunks processed in parallel and reduced at the end.
- [GQA] J. Ainslie et al., "GQA: Training generalized multi-query transformer models", EMNLP 2023: the q heads of a
  group share one K/V head, so a group-aware decode kernel reads each K/V head once for all its q heads.
- [CUDA] NVIDIA CUDA C++ Programming Guide, "Arithmetic instructions" throughput table: 16 results per clock per
  SM for the special-function (exp2, rcp) instructions on compute capability 8.x and 9.0.
- [Wave] NVIDIA Deep Learning Performance Guide, "Matrix multiplication background": tiles execute in waves of
  one CTA per SM; a partial last wave costs a full wave (wave quantization).

Every ``ceil``/``max``/``min``/``clamp`` has its smooth twin from :mod:`diffsys.primitives`, chosen by
``temperature`` (0 = exact). Sizes may be Python numbers, arrays or traced values; the structural choice
``causal`` is static.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from .._checks import check_range
from .._pytree import as_float
from ..hardware import DTYPE_BYTES
from ..primitives import clamp, relative_temperature, safe_divide, smooth_max, smooth_min, soft_ceil

#: Special-function (exp) results per clock per core [CUDA]; [FA3] Sec. 3 for H100.
SFU_OPS_PER_CYCLE_PER_CORE = 16.0
#: Vector (CUDA-core) FLOPs per score besides the exponential: scale, running max, subtract, row sum [FA2 Alg. 1].
SOFTMAX_VECTOR_FLOPS_PER_SCORE = 4.0

#: Documented defaults, used when an accelerator carries no ``attention`` calibration (the portable ``"*"`` fit of
#: ``attention.json`` on A100 + H100 rows; see docs/roofline.md). Times of a CTA are in clock cycles so they scale
#: with the clock; the launch floor is in seconds.
DEFAULT_ATTENTION_CONSTANTS = {
    # prefill
    "prefill_launch_s": 1.15e-5,            # launch + RoPE/KV-append pre-pass floor of the op
    "prefill_mma_efficiency": 0.70,         # achieved fraction of the per-core matrix peak inside a tile
    "prefill_prologue_cycles": 3.0e3,       # per-CTA prologue (Q tile load, pipeline fill, epilogue)
    "prefill_memory_efficiency": 1.18,      # effective fraction of HBM bandwidth of the Q/K/V/O passes (> 1:
                                            # part of that traffic is served by L2)
    "prefill_tile_q": 64.0,                 # query rows per CTA (Tq)
    "prefill_tile_kv": 64.0,                # keys per inner-loop tile (Tkv)
    # decode
    "decode_launch_s": 6.3e-6,              # launch + KV-append floor of the op
    "decode_grouped_cta_cycles": 6.5e3,     # per-CTA cost of the group-aware kernel (one CTA per kv head)
    "decode_grouped_head_cycles": 125.0,    # extra per q head of the group in that CTA
    "decode_head_cta_cycles": 1.55e3,       # per-CTA cost of the per-q-head kernel (MHA, very large groups)
    "decode_grouped_bw_efficiency": 1.13,   # achieved HBM fraction, group-aware kernel
    "decode_mha_bw_efficiency": 0.84,       # achieved HBM fraction, per-head kernel, MHA (group 1)
    "decode_fallback_bw_efficiency": 1.85,  # per-head kernel on groups > max_group (K/V re-read per q head,
                                            # partly from L2, hence > 1 of the HBM figure)
    "decode_tile_cycles": 1.3e3,            # one KV page (decode_page_tokens) processed serially by a CTA
    "decode_split_tokens": 128.0,           # smallest KV chunk of a split [FD], group-aware kernel
    "decode_head_split_tokens": 512.0,      # smallest KV chunk of a split, per-head kernel
    "decode_split_ctas_per_core": 8.0,      # CTAs per core the split aims for (fills the device several deep)
    "decode_page_tokens": 64.0,             # tokens per KV-cache page / inner tile
    "decode_max_group": 32.0,               # largest q-heads-per-kv-head group of the group-aware kernel
}

PREFILL_FITTED = ("prefill_launch_s", "prefill_mma_efficiency", "prefill_prologue_cycles",
                  "prefill_memory_efficiency")
DECODE_FITTED = ("decode_launch_s", "decode_grouped_cta_cycles", "decode_grouped_head_cycles",
                 "decode_head_cta_cycles", "decode_tile_cycles", "decode_grouped_bw_efficiency",
                 "decode_mha_bw_efficiency", "decode_fallback_bw_efficiency")


class AttentionKernelTime(NamedTuple):
    """Latency of one attention op and its breakdown (SI units).

    Attributes:
        time_s: predicted op latency.
        floor_s: launch / fixed part of the op (what a zero-size op costs).
        kernel_s: the attention kernel (waves of CTAs; compute or KV streaming).
        memory_s: prefill: the Q/K/V/O passes of the op at HBM bandwidth; decode: the KV-cache stream alone.
        flops: matrix FLOPs executed (prefill: padded tiles; decode: ``4·b·L·hq·d``).
        bytes: main-memory bytes of the op (prefill: Q/K/V/O passes; decode: KV cache + Q/O).
        ctas: thread blocks of the attention kernel.
        waves: ``ctas / num_cores`` rounded up.
        achieved_flops: ``flops / time_s``.
        achieved_Bps: ``bytes / time_s``.
    """

    time_s: jnp.ndarray
    floor_s: jnp.ndarray
    kernel_s: jnp.ndarray
    memory_s: jnp.ndarray
    flops: jnp.ndarray
    bytes: jnp.ndarray
    ctas: jnp.ndarray
    waves: jnp.ndarray
    achieved_flops: jnp.ndarray
    achieved_Bps: jnp.ndarray


def attention_constants(accel, dtype: str = "bf16", constants: dict | None = None) -> dict:
    """The attention constants used for ``accel``: its calibration (``accel.kernel_constants("attention", dtype)``)
    over :data:`DEFAULT_ATTENTION_CONSTANTS`, then ``constants`` (explicit overrides, e.g. while fitting)."""
    out = dict(DEFAULT_ATTENTION_CONSTANTS)
    cal = accel.kernel_constants("attention", dtype)
    if cal:
        out.update(cal)
    if constants:
        unknown = set(constants) - set(DEFAULT_ATTENTION_CONSTANTS)
        if unknown:
            raise ValueError(f"unknown attention constants {sorted(unknown)}; known: "
                             f"{sorted(DEFAULT_ATTENTION_CONSTANTS)}")
        out.update(constants)
    return out


def _check_sizes(**sizes):
    for name, value in sizes.items():
        check_range(name, value, 0.0, None)


def _bpe(name, dtype):
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"{name} must be one of {sorted(DTYPE_BYTES)}, got {dtype!r}")
    return float(DTYPE_BYTES[dtype])


def _waves(ctas, cores, temperature):
    """Waves of one CTA per core, a partial last wave counted whole [Wave]."""
    return soft_ceil(ctas / cores, temperature)


def causal_tile_pairs(seq_len, tile_q, tile_kv, causal=True, temperature=0.0):
    """(query-tile, key-tile) blocks one head computes [FA2]: ``nq = ⌈s/Tq⌉``, ``nk = ⌈s/Tkv⌉``.

    Causal: q tile ``i`` reaches key tiles ``0 .. min((i+1)·Tq/Tkv, nk) - 1`` (diagonal blocks in full, masked), so
    with ``r = Tq/Tkv`` the count is ``r·nq(nq-1)/2 + nk`` (exact when ``Tq`` is a multiple of ``Tkv``). Not causal:
    ``nq·nk``. Returns ``(pairs, nq, nk)``.
    """
    nq = soft_ceil(seq_len / tile_q, temperature)
    nk = soft_ceil(seq_len / tile_kv, temperature)
    if not causal:
        return nq * nk, nq, nk
    r = tile_q / tile_kv
    return r * nq * (nq - 1.0) / 2.0 + nk, nq, nk


def prefill_attention_time(batch, seq_len, num_q_heads, num_kv_heads, head_dim, accel, dtype: str = "bf16", *,
                           causal: bool = True, temperature=0.0, constants: dict | None = None
                           ) -> AttentionKernelTime:
    """Latency of a prefill attention op: ``batch`` fresh prompts of ``seq_len`` tokens (fused MHA kernel + the
    op's Q/K/V passes).

    Model (constants ``c`` from :func:`attention_constants`; ``N`` cores, clock ``f``):

    * tiles [FA2]: ``pairs`` blocks of ``Tq × Tkv`` per head (:func:`causal_tile_pairs`); executed matrix FLOPs
      ``4·Tq·Tkv·d`` per block (QKᵀ and PV, masked parts of diagonal blocks included).
    * one block on one core:
      ``t_blk = 4·Tq·Tkv·d / (P_mat/N · η_mma) + Tq·Tkv / (16·f) + 4·Tq·Tkv / (P_vec/N)``
      — matrix work, exponentials on the special-function units [FA3, CUDA], other softmax work on the vector
      units (fp32).
    * CTAs ``b·hq·nq`` in waves of ``N`` [Wave]: ``t_kernel = max(waves·(t_pro + pairs/nq · t_blk),
      t_pro + nk·t_blk)`` — the mean CTA per wave, or the longest (last-q-tile) CTA when there are few;
      ``t_pro = prologue_cycles / f``.
    * the op's memory passes: ``b·s·(4·hq + 6·hk)·d·bytes`` at ``B·η_mem`` (RoPE/append reads Q,K,V and writes Q
      and the K/V cache; the kernel reads Q,K,V and writes O).
    * ``time = launch + t_kernel + t_mem``.

    Args:
        batch, seq_len, num_q_heads, num_kv_heads, head_dim: sizes (per device: heads already divided by TP).
        accel: :class:`diffsys.hardware.Accelerator`.
        dtype: activation dtype (peak and bytes per element).
        causal: causal mask (static).
        temperature: 0 exact; > 0 smooth ceilings and maxima.
        constants: overrides of the calibrated constants (names as in :data:`DEFAULT_ATTENTION_CONSTANTS`).
    """
    _check_sizes(batch=batch, seq_len=seq_len, num_q_heads=num_q_heads, num_kv_heads=num_kv_heads,
                 head_dim=head_dim)
    c = attention_constants(accel, dtype, constants)
    b, s, hq, hk, d = (as_float(x) for x in (batch, seq_len, num_q_heads, num_kv_heads, head_dim))
    bpe = _bpe("dtype", dtype)
    cores, clock = accel.num_cores, accel.frequency_Hz
    tq, tk = c["prefill_tile_q"], c["prefill_tile_kv"]
    pairs, nq, nk = causal_tile_pairs(s, tq, tk, causal, temperature)

    blk_flops = 4.0 * tq * tk * d
    t_mma = blk_flops / (accel.peak_flops(dtype) / cores * c["prefill_mma_efficiency"])
    t_exp = tq * tk / (SFU_OPS_PER_CYCLE_PER_CORE * clock)
    t_vec = SOFTMAX_VECTOR_FLOPS_PER_SCORE * tq * tk / (accel.peak_flops("fp32", matrix=False) / cores)
    t_blk = t_mma + t_exp + t_vec
    t_pro = c["prefill_prologue_cycles"] / clock

    ctas = b * hq * nq
    waves = _waves(ctas, cores, temperature)
    mean_cta = t_pro + safe_divide(pairs, nq) * t_blk
    longest = (t_pro + nk * t_blk) * clamp(ctas, 0.0, 1.0, temperature)  # 0 when there is no CTA at all
    t_waves = waves * mean_cta
    t_kernel = smooth_max(t_waves, longest, relative_temperature(temperature, t_waves, longest))

    bytes_moved = b * s * (4.0 * hq + 6.0 * hk) * d * bpe
    t_mem = bytes_moved / (accel.main_memory.bandwidth_Bps * c["prefill_memory_efficiency"])
    floor = c["prefill_launch_s"] * jnp.ones_like(t_kernel)
    t = floor + t_kernel + t_mem
    flops = b * hq * pairs * blk_flops
    return AttentionKernelTime(t, floor, t_kernel, t_mem, flops, bytes_moved, ctas, waves,
                               safe_divide(flops, t), safe_divide(bytes_moved, t))


def _decode_kernel(b, kv_len, heads, kv_bytes, qo_bytes, cta_s, bw_eff, split_tokens, c, accel, temperature):
    """One decode kernel with one CTA per (sequence, ``heads`` head, KV split) [FD]: ``(time, ctas, waves)``.

    ``splits = min(⌈k·N/(b·heads)⌉, max(1, L/L_chunk))``: split only to fill the device ``k`` CTAs deep
    (``k = decode_split_ctas_per_core``), each split at least
    ``L_chunk`` tokens (``decode_split_tokens`` for the group-aware kernel, ``decode_head_split_tokens`` for the
    per-head one); the count is kept continuous (an average over the heuristic's integer choices), so a longer
    cache is never faster;
    a CTA walks its ``⌈L/(splits·page)⌉`` KV pages one after the other, each page a dependent load plus
    QKᵀ/softmax/PV, so its latency is ``t_cta + pages·t_page``. The kernel is issue-bound or stream-bound:
    ``time = max(waves·(t_cta + pages·t_page), KV/(B·η·u) + QO/(B·η) + t_cta)`` with ``u = min(1, ctas/N)`` the
    fraction of cores streaming the cache.
    """
    cores, clock = accel.num_cores, accel.frequency_Hz
    rows = b * heads
    fill = soft_ceil(safe_divide(c["decode_split_ctas_per_core"] * cores, rows, 1.0), temperature)
    chunks = smooth_max(kv_len / split_tokens, 1.0, temperature)
    splits = smooth_min(fill, chunks, temperature)
    ctas = rows * splits
    waves = _waves(ctas, cores, temperature)
    util = clamp(ctas / cores, 0.0, 1.0, temperature)
    pages = soft_ceil(kv_len / (splits * c["decode_page_tokens"]), temperature)
    t_issue = waves * (cta_s + pages * c["decode_tile_cycles"] / clock)
    bw = accel.main_memory.bandwidth_Bps * bw_eff
    t_stream = safe_divide(kv_bytes, bw * util) + (qo_bytes / bw + cta_s) * clamp(ctas, 0.0, 1.0, temperature)
    return smooth_max(t_issue, t_stream, relative_temperature(temperature, t_issue, t_stream)), ctas, waves


def decode_attention_time(batch, kv_len, num_q_heads, num_kv_heads, head_dim, accel, dtype: str = "bf16", *,
                          kv_dtype: str | None = None, temperature=0.0, constants: dict | None = None
                          ) -> AttentionKernelTime:
    """Latency of one decode step of attention: ``batch`` sequences, one new token each, against ``kv_len`` cached
    tokens (paged KV cache).

    Model (constants ``c``; ``g = hq/hk`` q heads per kv head, ``N`` cores, clock ``f``):

    * KV-cache bytes ``2·b·L·h·d·bytes_kv`` streamed at ``B·η`` (+ Q in and O out, ``2·b·hq·d·bytes``).
    * two kernels, chosen by the group size (exact for integer ``g``; a clamp ramp between integers, smoothed by
      ``temperature``):
      - group-aware (GQA [GQA], ``2 ≤ g ≤ max_group``): one CTA per (sequence, kv head, split), K/V read once for
        the whole group (``h = hk``), per-CTA cost ``(cta_cycles + g·head_cycles)/f``, efficiency
        ``grouped_bw_efficiency``;
      - per-head (``g = 1`` MHA, and ``g > max_group``): one CTA per (sequence, q head, split), K/V read per q head
        (``h = hq``), per-CTA cost ``head_cta_cycles/f``, efficiency ``mha_bw_efficiency`` (g = 1) or
        ``fallback_bw_efficiency`` (large groups, whose K/V re-reads partly hit L2).
    * each kernel: :func:`_decode_kernel` (flash-decoding splits, waves, pages walked per CTA, partial-device
      streaming).
    * ``time = launch + Σ_k w_k · t_k``.

    Args:
        batch, kv_len, num_q_heads, num_kv_heads, head_dim: sizes (per device).
        accel: :class:`diffsys.hardware.Accelerator`.
        dtype: activation dtype (selects the calibrated constants; bytes of Q/O).
        kv_dtype: KV-cache dtype (bytes per cached element); ``None`` = ``dtype``.
        temperature: 0 exact; > 0 smooth.
        constants: overrides of the calibrated constants.
    """
    _check_sizes(batch=batch, kv_len=kv_len, num_q_heads=num_q_heads, num_kv_heads=num_kv_heads,
                 head_dim=head_dim)
    c = attention_constants(accel, dtype, constants)
    b, L, hq, hk, d = (as_float(x) for x in (batch, kv_len, num_q_heads, num_kv_heads, head_dim))
    bpe = _bpe("dtype", dtype)
    kv_bpe = bpe if kv_dtype is None else _bpe("kv_dtype", kv_dtype)
    clock = accel.frequency_Hz
    group = safe_divide(hq, hk, 1.0)
    w_mha = clamp(2.0 - group, 0.0, 1.0, temperature)
    w_fallback = clamp(group - c["decode_max_group"], 0.0, 1.0, temperature)
    w_grouped = 1.0 - w_mha - w_fallback

    qo_bytes = 2.0 * b * hq * d * bpe
    kv_grouped = 2.0 * b * L * hk * d * kv_bpe
    kv_per_head = 2.0 * b * L * hq * d * kv_bpe
    t_g, ctas_g, waves_g = _decode_kernel(
        b, L, hk, kv_grouped, qo_bytes,
        (c["decode_grouped_cta_cycles"] + group * c["decode_grouped_head_cycles"]) / clock,
        c["decode_grouped_bw_efficiency"], c["decode_split_tokens"], c, accel, temperature)
    per_head_eff = (w_mha * c["decode_mha_bw_efficiency"] + w_fallback * c["decode_fallback_bw_efficiency"]
                    + w_grouped * c["decode_mha_bw_efficiency"])  # the last term only keeps the branch finite
    t_h, ctas_h, waves_h = _decode_kernel(b, L, hq, kv_per_head, qo_bytes, c["decode_head_cta_cycles"] / clock,
                                          per_head_eff, c["decode_head_split_tokens"], c, accel, temperature)
    w_h = w_mha + w_fallback
    t_kernel = w_grouped * t_g + w_h * t_h
    floor = c["decode_launch_s"] * jnp.ones_like(t_kernel)
    t = floor + t_kernel
    kv_bytes = w_grouped * kv_grouped + w_h * kv_per_head
    bytes_moved = kv_bytes + qo_bytes
    bw_eff = w_grouped * c["decode_grouped_bw_efficiency"] + w_h * per_head_eff
    t_mem = kv_bytes / (accel.main_memory.bandwidth_Bps * bw_eff)
    flops = 4.0 * b * L * hq * d
    return AttentionKernelTime(t, floor, t_kernel, t_mem, flops, bytes_moved,
                               w_grouped * ctas_g + w_h * ctas_h, w_grouped * waves_g + w_h * waves_h,
                               safe_divide(flops, t), safe_divide(bytes_moved, t))
