"""Calibrated GEMM kernel-time model: tiles, waves, split-K, weight streaming, launch and fp8 quantization.

``y[m, n] = x[m, k] · W[n, k]ᵀ`` (a linear layer; ``batch`` independent problems in one launch) on an
:class:`~diffsys.hardware.Accelerator`. The effects that decide the time of a real cuBLAS/CUTLASS kernel, each with
its source:

* **Output tiles and waves.** A kernel covers the ``m×n`` output with ``⌈m/T_m⌉·⌈n/T_n⌉`` CTA tiles; the tiles run
  in waves of one tile per SM (``accel.num_cores``), so the main loop lasts ``⌈tiles / SMs⌉`` tile times (NVIDIA
  Deep Learning Performance Guide, "Matrix multiplication background: tile and wave quantization"; CUTLASS
  documentation, "Efficient GEMM in CUDA"). Candidate tiles are cuBLAS/CUTLASS shapes (:data:`TILES`).
* **Per-tile time.** A tile's main loop is ``2·T_m·T_n·k`` FLOPs at the per-SM share of the matrix peak times an
  achievable fraction ``compute_efficiency``, but no faster than its operand panels ``(T_m + T_n)·k·b`` bytes can be
  fed from L2 at the per-SM share of the L2 bandwidth (the tile's arithmetic intensity ``2·T_m·T_n/((T_m+T_n)·b)``
  is why small tiles are slower; Volkov & Demmel, SC 2008; CUTLASS "Efficient GEMM"); plus a fixed prologue /
  epilogue of ``tile_cycles`` clock cycles per tile (pipeline fill of the multistage smem buffers, accumulator
  write-out; CUTLASS "Efficient GEMM", software pipelining).
* **Split-K.** When ``m·n`` has too few tiles to fill the SMs and ``k`` is long, the ``k`` loop is split ``s`` ways
  (``s·tiles`` CTAs, ``k/s`` each) and the fp32 partial tiles are reduced through memory (CUTLASS "split-K /
  serial reduction"; Osama et al., "Stream-K", PPoPP 2023). Candidates ``s`` ∈ :data:`SPLITS`.
* **Main-memory traffic.** Each operand is read once and the output written once (weights are not L2 resident in
  the measurements: the data set rotates weight copies); operand panels re-read by other tile rows/columns stay in
  L2 when the panels of one wave fit in ``accel.level("l2")`` and come from HBM otherwise. The traffic moves at
  ``memory_efficiency`` of the HBM bandwidth (STREAM-like kernels reach 0.8–0.9 of the datasheet figure;
  McIntosh-Smith et al., BabelStream). For small ``m`` this is the binding term: the kernel streams the weights.
* **Candidate choice.** Each (tile, split) candidate's time is ``max(t_compute, t_memory)`` (the roofline of
  Williams et al., CACM 2009, per kernel); the library's heuristic picks the fastest — an exact ``min`` at
  temperature 0, a smooth min (log-sum-exp) above.
* **Launch / fixed overhead** ``launch_s`` per kernel (launch, grid ramp-up and tail; ~2.5 µs for a tiny GEMM on H100
  in CUDA-graph replays, the floor of the measured data).
* **dtype.** The peak is ``accel.peak_flops(dtype)`` (fp8 on H100 is 2× bf16; on A100 fp8 falls back to bf16 and runs
  as a bf16 GEMM). An fp8 GEMM with *dynamic* per-tensor activation quantization (TensorRT-LLM's FP8 linear)
  first quantizes ``x``: an amax pass and a cast pass over the activations (read 2 B + read 2 B + write 1 B per
  element) plus their launches, a fixed ``quant_s`` (the measured fp8 floor is ~12 µs vs ~2.5 µs for bf16).

Calibrated constants (``accel.kernel_constants("gemm", dtype)``, shipped in
``diffsys/hardware/calibration/gemm.json`` with provenance; :data:`GEMM_DEFAULT_CONSTANTS` otherwise):
``launch_s`` (s), ``compute_efficiency``, ``memory_efficiency`` (dimensionless fractions), ``tile_cycles``
(clock cycles), ``quant_s`` (s, fp8 only).
"""

from __future__ import annotations

import jax.numpy as jnp

from .._checks import check_choice, check_range
from .._pytree import as_float
from ..hardware import DTYPE_BYTES
from ..primitives import ceil_ste, relative_temperature, smooth_max, soft_argmin_weights, soft_ceil
from ._core import Roofline

#: Candidate CTA output tiles ``(T_m, T_n)`` (cuBLAS / CUTLASS Hopper and Ampere tile shapes).
TILES = ((128.0, 256.0), (128.0, 128.0), (64.0, 128.0), (64.0, 64.0))
#: Candidate split-K factors.
SPLITS = (1.0, 2.0, 4.0, 8.0, 16.0)
#: Bytes per element moved by dynamic per-tensor fp8 quantization of the activations (amax read 2 B, cast read 2 B
#: and write 1 B).
QUANT_BYTES_PER_ELEMENT = 5.0
#: Bytes of one fp32 partial-sum element of split-K.
PARTIAL_BYTES = 4.0
#: Names of the calibrated constants.
GEMM_CONSTANT_NAMES = ("launch_s", "compute_efficiency", "memory_efficiency", "tile_cycles", "quant_s")
#: Model defaults where a preset ships no constants (portable values, see docs/roofline.md).
GEMM_DEFAULT_CONSTANTS = {"launch_s": 2.5e-6, "compute_efficiency": 0.85, "memory_efficiency": 0.85,
                     "tile_cycles": 2000.0, "quant_s": 8.0e-6}
_LOW_PRECISION = ("fp8", "int8", "fp4")


def _ceil(x, temperature):
    """Exact ceil with a straight-through gradient at temperature 0; above, :func:`soft_ceil` moved left by two
    temperatures (so that it converges to the ceiling at the integers too, where the tile and wave counts of
    power-of-two shapes sit) and never below ``x``."""
    if isinstance(temperature, (int, float)) and temperature == 0:
        return ceil_ste(x)
    soft = jnp.maximum(soft_ceil(x - 2.0 * temperature, temperature), x)
    if isinstance(temperature, (int, float)):
        return soft
    return jnp.where(temperature > 0, soft, ceil_ste(x))


def gemm_constants(accel, dtype="bf16", constants=None) -> dict:
    """The kernel constants used for ``dtype`` on ``accel``: ``constants`` (a dict overriding any subset), else the
    accelerator's calibration, else :data:`GEMM_DEFAULT_CONSTANTS`."""
    cal = accel.kernel_constants("gemm", dtype) or {}
    out = {name: cal.get(name, GEMM_DEFAULT_CONSTANTS[name]) for name in GEMM_CONSTANT_NAMES}
    if constants:
        for name in constants:
            check_choice("gemm constant", name, GEMM_CONSTANT_NAMES)
        out.update(constants)
    return {k: as_float(v) for k, v in out.items()}


def gemm_time(m, n, k, accel, dtype="bf16", *, batch=1, temperature=0.0, constants=None) -> Roofline:
    """Kernel time of ``y[m,n] = x[m,k]·W[n,k]ᵀ`` (``batch`` of them in one launch) on ``accel`` (model: module doc).

    Args:
        m, n, k: GEMM sizes (floats, arrays or traced values; real-valued sizes are fine, the tile counts are
            ceilings of ``m/T_m`` and ``n/T_n``).
        accel: :class:`~diffsys.hardware.Accelerator`; uses the matrix peak for ``dtype``, ``num_cores``,
            ``frequency_Hz``, the main memory and the ``"l2"`` level (when present) and the calibrated constants.
        dtype: operand dtype (``"bf16"``, ``"fp16"``, ``"fp8"`` (with dynamic activation quantization), ...).
        batch: independent GEMMs of this shape in one launch (each with its own weight).
        temperature: 0 = exact ceilings, max and min over candidates; > 0 = smooth twins (dimensionless).
        constants: optional dict overriding calibrated constants (used by the fitting script).

    Returns a :class:`Roofline`: ``compute_time_s`` / ``memory_time_s`` are those of the chosen kernel (the
    quantization pass is in ``memory_time_s``), energy as :func:`op_time`.
    """
    check_range("temperature", temperature, 0.0, None)
    check_choice("dtype", dtype, DTYPE_BYTES)
    c = gemm_constants(accel, dtype, constants)
    runs_as = accel.matrix_dtype(dtype)
    b_in = float(DTYPE_BYTES[runs_as])
    b_out = 2.0 if b_in <= 2 else b_in  # low-precision GEMMs write bf16
    quantized = runs_as in _LOW_PRECISION
    m, n, k, batch = (as_float(v) for v in (m, n, k, batch))
    peak = accel.peak_flops(runs_as)
    sms = accel.num_cores
    mem = accel.main_memory
    bw = mem.bandwidth_Bps * c["memory_efficiency"]
    l2 = accel.level("l2") if "l2" in accel.level_names else mem
    flops = 2.0 * batch * m * n * k

    # candidate axis: (tiles x splits) flattened, trailing
    tm = jnp.asarray([t[0] for t in TILES for _ in SPLITS])
    tn = jnp.asarray([t[1] for t in TILES for _ in SPLITS])
    s = jnp.asarray([sp for _ in TILES for sp in SPLITS])
    me, ne, ke, be = (x[..., None] for x in (m, n, k, batch))
    rows = _ceil(me / tm, temperature)
    cols = _ceil(ne / tn, temperature)
    ctas = be * rows * cols * s
    waves = _ceil(ctas / sms, temperature)
    k_cta = ke / s
    t_math = 2.0 * tm * tn * k_cta / (peak / sms * c["compute_efficiency"])
    t_feed = (tm + tn) * k_cta * b_in / (l2.bandwidth_Bps / sms)
    t_tile = smooth_max(t_math, t_feed, relative_temperature(temperature, t_math, t_feed)) \
        + c["tile_cycles"] / accel.frequency_Hz
    t_comp = waves * t_tile

    a_bytes = be * me * ke * b_in
    w_bytes = be * ne * ke * b_in
    partial = be * me * ne * PARTIAL_BYTES * 2.0 * (s - 1.0)  # write and read back s-1 extra fp32 partials
    traffic = a_bytes + w_bytes + be * me * ne * b_out + partial
    t_mem = traffic / bw
    t_cand = smooth_max(t_comp, t_mem, relative_temperature(temperature, t_comp, t_mem))
    # the fastest candidate (cuBLAS heuristics pick near-optimal kernels); soft: softmin weights of the candidates
    w = soft_argmin_weights(t_cand, axis=-1,
                            temperature=relative_temperature(temperature, jnp.min(t_cand, -1, keepdims=True)))
    t_kernel = jnp.sum(w * t_cand, axis=-1)
    t_c = jnp.sum(w * t_comp, axis=-1)
    t_m = jnp.sum(w * t_mem, axis=-1)

    time = t_kernel + c["launch_s"]
    nbytes = batch * ((m * k + n * k) * b_in + m * n * b_out)
    if quantized:
        t_q = c["quant_s"] + batch * m * k * QUANT_BYTES_PER_ELEMENT / bw
        time = time + t_q
        t_m = t_m + t_q
        nbytes = nbytes + batch * m * k * QUANT_BYTES_PER_ELEMENT
    return Roofline(
        time_s=time,
        compute_time_s=t_c,
        memory_time_s=t_m,
        compute_bound=t_c >= t_m,
        achieved_flops=flops / time,
        arithmetic_intensity=flops / nbytes,
        energy_J=flops * accel.energy_J_per_flop + nbytes * mem.energy_J_per_B,
        compute_energy_J=flops * accel.energy_J_per_flop,
        memory_energy_J=nbytes * mem.energy_J_per_B,
    )
