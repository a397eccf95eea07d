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
  into chunks processed in parallel and reduced at the end (TensorRT-LLM's "multi-block mode").
- [L2] NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022) and A100 whitepaper (2020): 50 MB / 40 MB L2
  shared by all SMs; data re-read by concurrently running CTAs is served from L2 (``accel`` memory level above
  main memory: capacity and bandwidth).
- [GQA] J. Ainslie et al., "GQA: Training generalized multi-query transformer models", EMNLP 2023: the q heads of a
  group share one K/V head, so a group-aware decode kernel reads each K/V head once for all its q heads.
- [XQA] NVIDIA TensorRT-LLM (Apache-2.0), ``cpp/tensorrt_llm/kernels/decoderMaskedMultiheadAttention/``: the XQA
  decode kernel's eligibility (``decoderXQAImplJIT/kernelUtils.cpp``, ``supportConfigHMMA``: head group 2..32, no
  vanilla MHA), its use threshold (``decoderXQAImplJIT.cpp``, ``mayHavePerfGain``) and its multi-block split count
  (``decoderXQAImplCommon.h``, ``computeMultiBlockCount``; constants in ``decoderXQAConstants.h``); the op falls back
  to MMHA otherwise (``common/attentionOp.cpp``, ``enqueueGeneration``).
- [MMHA] same repository, ``decoderMaskedMultiheadAttentionLaunch.h`` (``mmha_launch_kernel_ex``,
  ``multi_block_grid_setup``) and ``AttentionOp::getMaxNumSeqLenTile``: the masked multi-head attention kernel, one
  CTA per (q head, sequence, split), its CTA size tuned to occupancy and its split count.
- [CUDA] NVIDIA CUDA C++ Programming Guide, "Arithmetic instructions" throughput table: 16 results per clock per
  SM for the special-function (exp2, rcp) instructions on compute capability 8.x and 9.0.
- [FA2-bwd] the same paper, Algorithm 2 (backward pass): per ``Tq × Tkv`` block the kernel recomputes the scores
  ``S = QKᵀ`` and ``P = exp(S − LSE)`` and runs four more products (``dV += PᵀdO``, ``dP = dO·Vᵀ``,
  ``dQ += dS·K``, ``dK += dSᵀQ``): 5 block GEMMs against the forward's 2 (the 2.5× FLOP ratio FlashAttention's
  own benchmarks count), one exponential per score as in the forward, and ``dS = P∘(dP − D)`` on the vector
  units; it reads ``Q, K, V, O, dO`` and writes ``dQ`` (accumulated in fp32), ``dK``, ``dV``.
- [FA3] Shah et al., "FlashAttention-3: Fast and Accurate Attention with Asynchrony and Low-precision" (2024),
  Figs. 5 and 7 (H100 SXM5, BF16, head dim 128, not causal): the cuDNN kernels run the backward pass at 465, 499,
  518, 516 TFLOP/s at 2k, 4k, 8k, 16k tokens against 617, 609, 600, 595 TFLOP/s forward (FlashAttention-3:
  501-561 against 625-648), a backward-to-forward tensor-core efficiency ratio of 0.75-0.87, 0.83 on average
  (the backward's five dependent products and its fp32 ``dQ`` atomics pipeline worse than the forward's two).
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
from ..primitives import (clamp, relative_temperature, relu, safe_divide, smooth_max, smooth_min, soft_ceil,
                          soft_floor, soft_round)

#: Special-function (exp) results per clock per core [CUDA]; [FA3] Sec. 3 for H100.
SFU_OPS_PER_CYCLE_PER_CORE = 16.0
#: Vector (CUDA-core) FLOPs per score besides the exponential: scale, running max, subtract, row sum [FA2 Alg. 1].
SOFTMAX_VECTOR_FLOPS_PER_SCORE = 4.0
#: Block GEMMs of the backward pass: S recomputed, dV, dP, dQ, dK [FA2-bwd] (the forward runs 2: S and PV).
BACKWARD_MATMULS_PER_BLOCK = 5.0
#: Extra vector FLOPs per score in the backward pass: ``dS = P∘(dP − D)`` and its scale [FA2-bwd].
BACKWARD_VECTOR_FLOPS_PER_SCORE = 3.0
#: Tensor-core efficiency of the backward kernel relative to the forward's (cuDNN, H100, head dim 128, 2k-16k
#: tokens, mean of four ratios) [FA3].
BACKWARD_MMA_EFFICIENCY_RATIO = 0.83

#: Documented defaults, used when an accelerator carries no ``attention`` calibration (the portable ``"*"`` fit of
#: ``attention.json`` on A100 + H100 rows, rounded; see docs/roofline.md). Times of a CTA are in clock cycles so
#: they scale with the clock; the launch floor is in seconds.
DEFAULT_ATTENTION_CONSTANTS = {
    # prefill
    "prefill_launch_s": 1.15e-5,            # launch + RoPE/KV-append pre-pass floor of the op
    "prefill_mma_efficiency": 0.70,         # achieved fraction of the per-core matrix peak inside a tile
    "prefill_prologue_cycles": 3.0e3,       # per-CTA prologue (Q tile load, pipeline fill, epilogue)
    "prefill_memory_efficiency": 1.18,      # effective fraction of HBM bandwidth of the Q/K/V/O passes (> 1:
                                            # part of that traffic is served by L2)
    "prefill_tile_q": 64.0,                 # query rows per CTA (Tq)
    "prefill_tile_kv": 64.0,                # keys per inner-loop tile (Tkv)
    # decode: two TensorRT-LLM kernels [XQA], [MMHA]; the path and the KV split follow the library's heuristics
    "decode_xqa_launch_s": 5.9e-6,          # XQA path floor: launch + the separate RoPE/KV-append kernel
    "decode_mmha_launch_s": 3.4e-6,         # MMHA path floor: launch (RoPE/KV append fused in the kernel)
    "decode_xqa_cta_cycles": 6.8e3,         # per-CTA prologue/epilogue of the XQA kernel
    "decode_xqa_head_cycles": 139.0,        # per q head of the group, per CTA (Q load, softmax rows, O store)
    "decode_xqa_tile_cycles": 1.44e3,       # one KV tile (decode_page_tokens) walked serially by an XQA CTA
    "decode_xqa_reduce_cycles": 194.0,      # per sub-sequence merged by the last CTA of a split sequence
    "decode_mmha_cta_cycles": 1.09e4,       # per-CTA prologue/epilogue of the MMHA kernel
    "decode_mmha_token_cycles": 29.0,       # one cached token processed by an MMHA CTA (any CTA size)
    "decode_xqa_bw_efficiency": 1.17,       # effective fraction of the HBM bandwidth, XQA (K/V read once per group)
    "decode_mmha_bw_efficiency": 0.87,      # effective fraction of the HBM bandwidth, MMHA
    "decode_l2_bw_efficiency": 0.62,        # achieved fraction of the L2 bandwidth (MMHA re-reads K/V per q head)
    "decode_l2_resident_fraction": 0.0013,  # share of the L2 capacity that keeps the KV cache between steps
    "decode_xqa_ctas_per_core": 1.0,        # XQA CTAs resident per core (shared-memory bound)
    "decode_mmha_blocks_per_core": 4.0,     # 256-thread MMHA CTAs resident per core (register bound)
    "decode_xqa_sqrt_cap": 1.0,             # 1: split count capped at round(sqrt(8·n)) (newer releases); 0: not
    "decode_page_tokens": 64.0,             # tokens per XQA KV tile / KV-cache page
}

PREFILL_FITTED = ("prefill_launch_s", "prefill_mma_efficiency", "prefill_prologue_cycles",
                  "prefill_memory_efficiency")
DECODE_FITTED = ("decode_xqa_launch_s", "decode_mmha_launch_s", "decode_xqa_cta_cycles", "decode_xqa_head_cycles",
                 "decode_xqa_tile_cycles", "decode_xqa_reduce_cycles", "decode_mmha_cta_cycles",
                 "decode_mmha_token_cycles", "decode_xqa_bw_efficiency", "decode_mmha_bw_efficiency",
                 "decode_l2_bw_efficiency", "decode_l2_resident_fraction")
#: Discrete (structural) decode constants, chosen by the fit among a few candidates (benchmarks/calibrate_attention.py).
DECODE_STRUCTURAL = ("decode_xqa_ctas_per_core", "decode_mmha_blocks_per_core", "decode_xqa_sqrt_cap")

#: TensorRT-LLM heuristic constants [XQA] (``decoderXQAConstants.h``) and [MMHA] (launch template).
XQA_MIN_HISTORY_TOKENS_PER_BLOCK = 128.0   # kMinHistoryTokensPerBlock: smallest KV chunk of an XQA sub-sequence
XQA_ENABLE_MIN_BLOCK_FACTOR = 4.0          # kEnableMinBlockFactor: XQA only if 4·CTAs >= cores
XQA_TARGET_WAVE_FACTOR = 8.0               # kTargetWaveFactor: splits shrink to keep <= 8 waves
XQA_MAX_NUM_SUB_SEQ = 6000.0               # reserved multi-block workspace, sub-sequences per launch
XQA_MAX_GROUP = 32.0                       # head-group size * beam <= 32 for the XQA kernels
MMHA_BASE_THREADS = 256.0                  # THDS_PER_BLOCK of the MMHA launch
MMHA_MAX_THREADS = 1024.0
MMHA_THREADS_PER_VALUE = 16.0              # Dh 128, 16-byte loads of bf16: 128·2/16 threads per V row
MMHA_KV_LOOP_UNROLL = 8.0                  # each CTA processes at least one unrolled KV loop


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
                           causal: bool = True, backward: bool = False, temperature=0.0,
                           constants: dict | None = None) -> AttentionKernelTime:
    """Latency of a prefill attention op: ``batch`` fresh prompts of ``seq_len`` tokens (fused MHA kernel + the
    op's Q/K/V passes), or with ``backward=True`` the training backward pass of the same fused kernel [FA2-bwd].

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
    * ``backward`` [FA2-bwd]: the same tiles, waves and constants (fitted on forward kernels only) with
      ``2.5×`` the block's matrix work (5 GEMMs instead of 2) at ``0.83×`` the forward's tensor-core efficiency
      (:data:`BACKWARD_MMA_EFFICIENCY_RATIO`, measured cuDNN kernels [FA3]), the same exponentials, vector work
      ``4 + 3`` per score (the forward's plus ``dS = P∘(dP − D)``), and memory passes
      ``b·s·(5·hq + 4·hk)·d·bytes`` (read Q, O, dO, K, V; write dQ in fp32, dK, dV). The launch floor counts
      twice (the ``D = rowsum(dO∘O)`` pre-kernel). Reported ``flops`` are the executed matrix FLOPs.

    Args:
        batch, seq_len, num_q_heads, num_kv_heads, head_dim: sizes (per device: heads already divided by TP).
        accel: :class:`diffsys.hardware.Accelerator`.
        dtype: activation dtype (peak and bytes per element).
        causal: causal mask (static).
        backward: the backward pass of training instead of the forward (static).
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

    blk_flops = (BACKWARD_MATMULS_PER_BLOCK if backward else 2.0) * 2.0 * tq * tk * d
    vec_per_score = SOFTMAX_VECTOR_FLOPS_PER_SCORE + (BACKWARD_VECTOR_FLOPS_PER_SCORE if backward else 0.0)
    mma_eff = c["prefill_mma_efficiency"] * (BACKWARD_MMA_EFFICIENCY_RATIO if backward else 1.0)
    t_mma = blk_flops / (accel.peak_flops(dtype) / cores * mma_eff)
    t_exp = tq * tk / (SFU_OPS_PER_CYCLE_PER_CORE * clock)
    t_vec = vec_per_score * tq * tk / (accel.peak_flops("fp32", matrix=False) / cores)
    t_blk = t_mma + t_exp + t_vec
    t_pro = c["prefill_prologue_cycles"] / clock

    ctas = b * hq * nq
    waves = _waves(ctas, cores, temperature)
    mean_cta = t_pro + safe_divide(pairs, nq) * t_blk
    longest = (t_pro + nk * t_blk) * clamp(ctas, 0.0, 1.0, temperature)  # 0 when there is no CTA at all
    t_waves = waves * mean_cta
    t_kernel = smooth_max(t_waves, longest, relative_temperature(temperature, t_waves, longest))

    passes = (5.0 * hq + 4.0 * hk) if backward else (4.0 * hq + 6.0 * hk)
    bytes_moved = b * s * passes * d * bpe
    t_mem = bytes_moved / (accel.main_memory.bandwidth_Bps * c["prefill_memory_efficiency"])
    floor = (2.0 if backward else 1.0) * c["prefill_launch_s"] * jnp.ones_like(t_kernel)
    t = floor + t_kernel + t_mem
    flops = b * hq * pairs * blk_flops
    return AttentionKernelTime(t, floor, t_kernel, t_mem, flops, bytes_moved, ctas, waves,
                               safe_divide(flops, t), safe_divide(bytes_moved, t))


def _last_level_cache(accel):
    """The memory level just above main memory (L2 on a GPU), or ``None`` when main memory is the first level."""
    i = accel.main_memory_index
    return accel.memory[i - 1] if i > 0 else None


def _step(x, temperature):
    """``1`` where the integer-valued ``x >= 1``, ``0`` where ``x <= 0`` (a clamp ramp, exact on integers)."""
    return clamp(x, 0.0, 1.0, temperature)


def xqa_use_and_splits(batch, kv_len, num_kv_heads, group, cores, sqrt_cap=1.0, temperature=0.0):
    """Whether TensorRT-LLM runs its XQA kernel for a decode step, and the sub-sequences (KV splits) it uses [XQA].

    * eligible [XQA ``supportConfigHMMA``]: a true head group, ``2 <= g <= 32`` (vanilla MHA and groups above 32
      go to MMHA);
    * worth it [XQA ``mayHavePerfGain``]: ``4 · hk · b · max(1, ⌊L/128⌋) >= N`` (``L``: tokens attended, the cache
      plus the new token);
    * splits [XQA ``computeMultiBlockCount``]: ``n = ⌊L/128⌋``, capped at ``round(√(8n))`` (``sqrt_cap``: the
      cap of newer releases, "the final reduction may dominate"), at least 1, then at most ``⌊8N/(b·hk)⌋`` (no more
      than 8 waves) and ``⌊6000/b⌋`` (reserved workspace), at least 1.

    Exact on integer sizes at temperature 0 (floors/rounds/min/max replaced by their smooth twins otherwise).
    Returns ``(use_weight, splits)``.
    """
    t = temperature
    eligible = _step(group - 1.0, t) * _step(XQA_MAX_GROUP + 1.0 - group, t)
    hist = soft_floor(kv_len / XQA_MIN_HISTORY_TOKENS_PER_BLOCK, t)
    blocks = num_kv_heads * batch * smooth_max(hist, 1.0, t)
    gain = _step(XQA_ENABLE_MIN_BLOCK_FACTOR * blocks - cores + 1.0, t)
    capped = smooth_min(hist, soft_round(jnp.sqrt(8.0 * smooth_max(hist, 1.0, t)), t), t)
    n = smooth_max(sqrt_cap * capped + (1.0 - sqrt_cap) * hist, 1.0, t)
    rows = batch * num_kv_heads
    n = smooth_min(n, soft_floor(safe_divide(XQA_TARGET_WAVE_FACTOR * cores, rows, 1e9), t), t)
    n = smooth_max(n, 1.0, t)
    n = smooth_max(smooth_min(n, soft_floor(safe_divide(XQA_MAX_NUM_SUB_SEQ, batch, 1e9), t), t), 1.0, t)
    return eligible * gain, n


def mmha_threads_and_splits(batch, kv_len, num_q_heads, cores, blocks_per_core, temperature=0.0):
    """CTA size and KV splits of TensorRT-LLM's masked multi-head attention (MMHA) decode kernel [MMHA].

    One CTA per (q head, sequence, split). ``b·hq`` CTAs fill ``N·k`` slots (``k`` 256-thread CTAs per core,
    register bound): the CTA grows to ``256·min(⌈N·k/(b·hq)⌉, k)`` threads, rounded down to 256, 512 or 1024
    (``T``); multi-block mode splits the cache only while ``b·hq < N`` (``max_seq_len_tile = ⌈N/(b·hq)⌉``), each
    split at least one unrolled KV loop (``(T/16)·8`` tokens): ``splits = max(1, min(⌈N/(b·hq)⌉, ⌈L/(T/2)⌉))``; ``L`` counts the tokens attended (the
    cache plus the new token). Returns ``(threads, splits)``.
    """
    t = temperature
    rows = batch * num_q_heads
    factor = smooth_min(soft_ceil(safe_divide(cores * blocks_per_core, rows, 1e9), t), blocks_per_core, t)
    # the launcher only instantiates 256, 512 and 1024 threads: a request in between falls to the size below
    most = jnp.log2(MMHA_MAX_THREADS / MMHA_BASE_THREADS)
    doublings = clamp(soft_floor(jnp.log2(smooth_max(factor, 1.0, t)), t), 0.0, most, t)
    threads = MMHA_BASE_THREADS * 2.0 ** doublings
    per_loop = threads / MMHA_THREADS_PER_VALUE * MMHA_KV_LOOP_UNROLL
    tiles = smooth_min(soft_ceil(safe_divide(cores, rows, 1e9), t), soft_ceil(kv_len / per_loop, t), t)
    return threads, smooth_max(tiles, 1.0, t)


def _stream_time(hbm_bytes, l2_bytes, ctas, accel, hbm_eff, c, temperature):
    """Time to stream the KV cache: HBM bytes at ``B·η`` and L2 bytes at ``B_L2·η_L2``, on the fraction
    ``u = min(1, ctas/N)`` of the cores that has work (a partly idle device streams proportionally slower)."""
    util = clamp(ctas / accel.num_cores, 0.0, 1.0, temperature)
    t_hbm = safe_divide(hbm_bytes, accel.main_memory.bandwidth_Bps * hbm_eff * util)
    l2 = _last_level_cache(accel)
    if l2 is None:
        return t_hbm
    t_l2 = safe_divide(l2_bytes, l2.bandwidth_Bps * c["decode_l2_bw_efficiency"] * util)
    return smooth_max(t_hbm, t_l2, relative_temperature(temperature, t_hbm, t_l2))


def _hbm_kv_bytes(unique_bytes, accel, c, temperature):
    """KV bytes that come from HBM: the unique KV cache less what stays resident in L2 between decode steps (a
    share ``decode_l2_resident_fraction`` of the L2 capacity; CUDA-graph replays touch the same cache every step)."""
    l2 = _last_level_cache(accel)
    if l2 is None:
        return unique_bytes
    resident = c["decode_l2_resident_fraction"] * l2.capacity_B
    return relu(unique_bytes - resident, relative_temperature(temperature, unique_bytes, resident))


def decode_attention_time(batch, kv_len, num_q_heads, num_kv_heads, head_dim, accel, dtype: str = "bf16", *,
                          kv_dtype: str | None = None, kv_bytes_per_element=None, temperature=0.0,
                          constants: dict | None = None
                          ) -> AttentionKernelTime:
    """Latency of one decode step of attention: ``batch`` sequences, one new token each, against ``kv_len`` cached
    tokens (paged KV cache), as TensorRT-LLM's attention op runs it.

    The op picks one of two kernels and its KV split with the library's own heuristics (exact at temperature 0;
    the path weight is a clamp ramp, exact on integer sizes):

    * XQA [XQA] (group-aware, :func:`xqa_use_and_splits`): one CTA per (sequence, kv head, sub-sequence); the group's
      ``g`` q heads share each K/V tile [GQA], so HBM sees the unique cache ``2·b·L·hk·d·bytes_kv`` once. A CTA walks
      ``⌈L/(n·64)⌉`` tiles: ``t_cta = (c_cta + g·c_head + tiles·c_tile + [n > 1]·n·c_red)/f``; CTAs run
      ``decode_xqa_ctas_per_core`` per core in waves [Wave].
    * MMHA [MMHA] (per q head, :func:`mmha_threads_and_splits`): one CTA per (sequence, q head, split) of ``T``
      threads: ``t_cta = (c_cta + ⌈L/splits⌉ · c_token)/f`` (a token costs the same whatever the CTA size: the
      measured rows show no speed-up from larger CTAs, only from more splits), ``k·256/T`` CTAs per core. Each q head
      reads its K/V head again; the ``g`` q heads of a group are neighbouring CTAs, so the re-reads hit L2: HBM
      bytes are the unique cache, L2 bytes ``g×`` that.
    * streaming: HBM bytes (less the L2-resident share, :func:`_hbm_kv_bytes`) at ``B·η`` and L2 bytes at
      ``B_L2·η_L2`` on the busy fraction of the cores; ``t_k = max(waves·t_cta, t_stream)``.
    * ``time = w·(launch_xqa + t_xqa) + (1 − w)·(launch_mmha + t_mmha)``.

    Args:
        batch, kv_len, num_q_heads, num_kv_heads, head_dim: sizes (per device).
        accel: :class:`diffsys.hardware.Accelerator`.
        dtype: activation dtype (selects the calibrated constants; bytes of Q/O).
        kv_dtype: KV-cache dtype (bytes per cached element); ``None`` = ``dtype``.
        kv_bytes_per_element: bytes per cached element as a number (continuous, e.g. 1.5 for a 12-bit cache);
            overrides ``kv_dtype``. It changes the bytes streamed, never the kernel's work split.
        temperature: 0 exact; > 0 smooth.
        constants: overrides of the calibrated constants.
    """
    _check_sizes(batch=batch, kv_len=kv_len, num_q_heads=num_q_heads, num_kv_heads=num_kv_heads,
                 head_dim=head_dim)
    c = attention_constants(accel, dtype, constants)
    b, L, hq, hk, d = (as_float(x) for x in (batch, kv_len, num_q_heads, num_kv_heads, head_dim))
    bpe = _bpe("dtype", dtype)
    kv_bpe = bpe if kv_dtype is None else _bpe("kv_dtype", kv_dtype)
    if kv_bytes_per_element is not None:
        kv_bpe = as_float(kv_bytes_per_element)
    t = temperature
    span = L + 1.0  # tokens attended: the cache plus the new token, whose K/V the op appends first
    cores, clock = accel.num_cores, accel.frequency_Hz
    group = safe_divide(hq, hk, 1.0)
    qo_bytes = 2.0 * b * hq * d * bpe
    unique_kv = 2.0 * b * L * hk * d * kv_bpe
    hbm_kv = _hbm_kv_bytes(unique_kv, accel, c, t)
    nonzero = clamp(b * L * hq, 0.0, 1.0, t)  # 0 when there is no work at all

    # XQA
    w_x, n_x = xqa_use_and_splits(b, span, hk, group, cores, c["decode_xqa_sqrt_cap"], t)
    ctas_x = b * hk * n_x
    slots_x = cores * c["decode_xqa_ctas_per_core"]
    waves_x = soft_ceil(ctas_x / slots_x, t)
    tiles_x = soft_ceil(span / (n_x * c["decode_page_tokens"]), t)
    cta_x = (c["decode_xqa_cta_cycles"] + group * c["decode_xqa_head_cycles"] + tiles_x * c["decode_xqa_tile_cycles"]
             + _step(n_x - 1.0, t) * n_x * c["decode_xqa_reduce_cycles"]) / clock
    issue_x = waves_x * cta_x * nonzero
    stream_x = _stream_time(hbm_kv + qo_bytes, unique_kv, ctas_x, accel, c["decode_xqa_bw_efficiency"], c, t)
    t_x = smooth_max(issue_x, stream_x, relative_temperature(t, issue_x, stream_x))

    # MMHA
    k_m = c["decode_mmha_blocks_per_core"]
    threads, n_m = mmha_threads_and_splits(b, span, hq, cores, k_m, t)
    ctas_m = b * hq * n_m
    slots_m = cores * smooth_max(k_m * MMHA_BASE_THREADS / threads, 1.0, t)
    waves_m = soft_ceil(ctas_m / slots_m, t)
    cta_m = (c["decode_mmha_cta_cycles"]
             + soft_ceil(span / n_m, t) * c["decode_mmha_token_cycles"]) / clock
    issue_m = waves_m * cta_m * nonzero
    stream_m = _stream_time(hbm_kv + qo_bytes, unique_kv * group, ctas_m, accel, c["decode_mmha_bw_efficiency"], c, t)
    t_m = smooth_max(issue_m, stream_m, relative_temperature(t, issue_m, stream_m))

    floor = (w_x * c["decode_xqa_launch_s"] + (1.0 - w_x) * c["decode_mmha_launch_s"]) * jnp.ones_like(t_x)
    t_kernel = w_x * t_x + (1.0 - w_x) * t_m
    time = floor + t_kernel
    bytes_moved = unique_kv + qo_bytes
    bw_eff = w_x * c["decode_xqa_bw_efficiency"] + (1.0 - w_x) * c["decode_mmha_bw_efficiency"]
    t_mem = unique_kv / (accel.main_memory.bandwidth_Bps * bw_eff)
    flops = 4.0 * b * L * hq * d
    return AttentionKernelTime(time, floor, t_kernel, t_mem, flops, bytes_moved,
                               w_x * ctas_x + (1.0 - w_x) * ctas_m, w_x * waves_x + (1.0 - w_x) * waves_m,
                               safe_divide(flops, time), safe_divide(bytes_moved, time))
