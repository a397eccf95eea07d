"""Calibrated GEMM kernel-time model: tiles, waves, stream-K, weight streaming, L2 reuse, launch, fp8 quantization.

``y[m, n] = x[m, k] · W[n, k]ᵀ`` (a linear layer; ``batch`` independent problems in one launch) on an
:class:`~diffsys.hardware.Accelerator`. The effects that decide the time of a real cuBLAS/CUTLASS kernel, each with
its source (formulas and fitted constants in docs/roofline.md):

* **Output tiles and waves.** A kernel covers the ``m×n`` output with ``⌈m/T_m⌉·⌈n/T_n⌉`` CTA tiles; data-parallel
  kernels run them in waves of one tile per SM (``accel.num_cores``), so the main loop lasts ``⌈tiles / SMs⌉`` tile
  times (NVIDIA Deep Learning Performance Guide, "Matrix multiplication background: tile and wave quantization";
  CUTLASS, "Efficient GEMM in CUDA"). Candidate tiles: :data:`TILES`.
* **Stream-K / split-K.** The tiles' ``⌈k/64⌉`` main-loop iterations spread evenly over all SMs, the partial tiles
  fixed up through memory in fp32 (Osama et al., "Stream-K", PPoPP 2023); this is what keeps few-tile, long-k GEMMs
  (small ``m·n``) from running on a handful of SMs.
* **Main-loop iteration.** ``max`` of the math at the SM's share of the matrix peak times ``compute_efficiency``, the
  operand panels ``(T_m + T_n)·64·b`` bytes of every busy CTA through the L2 bandwidth (small tiles have less reuse;
  Volkov & Demmel, SC 2008), and ``k_iter_cycles`` of load latency (a multistage pipeline that cannot cover it);
  plus ``tile_cycles`` of prologue/epilogue per tile.
* **Main-memory traffic.** The weights are streamed from HBM (the measurements rotate weight copies so they are
  not L2 resident); the activations and the output are re-used call after call and stay in L2 while they fit in
  ``l2_resident_fraction`` of its capacity (a logistic capacity-miss curve in log size; Hill & Smith, IEEE TC 1989).
  The traffic moves at ``memory_efficiency`` of the HBM bandwidth (STREAM-like kernels reach 0.8–0.9 of the
  datasheet figure; McIntosh-Smith et al., BabelStream) after ``memory_ramp_latencies`` HBM latencies of pipeline
  fill (Little's law). For small ``m`` this is the binding term: the kernel streams the weights.
* **Candidate choice.** Each (tile, schedule) candidate's time is ``max(t_compute, t_memory)`` (the roofline of
  Williams et al., CACM 2009, per kernel); the library's heuristic picks the fastest — an exact ``min`` at
  temperature 0, a softmin above; ``epilogue_exposed`` of the output write trails the main loop.
* **Launch / fixed overhead** ``launch_s`` per kernel (launch, grid ramp-up and tail; the measured floor is ~2.5 µs
  for a tiny GEMM on H100 in CUDA-graph replays).
* **dtype.** The peak is ``accel.peak_flops(dtype)`` (fp8 on H100 is 2× bf16; on A100 fp8 falls back to bf16 and runs
  as a bf16 GEMM with the bf16 constants). An fp8 GEMM with *dynamic* per-tensor activation quantization
  (TensorRT-LLM's FP8 linear) first quantizes ``x``: an amax pass and a cast pass over the activations (read 2 B +
  read 2 B + write 1 B per element) plus their launches, ``quant_s`` (the measured fp8 floor is ~12 µs vs ~2.5 µs).

Calibrated constants: ``accel.kernel_constants("gemm", dtype)``, shipped in
``diffsys/hardware/calibration/gemm.json`` with provenance; :data:`GEMM_DEFAULT_CONSTANTS` (the H100 fit, the
portable set) for an accelerator without them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._checks import check_choice, check_range
from ..hardware import DTYPE_BYTES
from ..primitives import ceil_ste, relative_temperature, smooth_max, soft_argmin_weights, soft_ceil
from ._core import Roofline, serialized

#: Candidate CTA output tiles ``(T_m, T_n)`` (cuBLAS / CUTLASS Hopper and Ampere tile shapes; a larger set
#: (256×128, 64×128 added) changes the fitted error by < 0.2 points and costs evaluation speed).
TILES = ((128.0, 256.0), (128.0, 128.0), (64.0, 64.0))
#: Bytes per element moved by dynamic per-tensor fp8 quantization of the activations (amax read 2 B, cast read 2 B
#: and write 1 B).
QUANT_BYTES_PER_ELEMENT = 5.0
#: Bytes of one fp32 partial-sum element of split-K.
PARTIAL_BYTES = 4.0
#: Names of the calibrated constants.
GEMM_CONSTANT_NAMES = ("launch_s", "compute_efficiency", "memory_efficiency", "tile_cycles", "quant_s",
                       "epilogue_exposed", "k_iter_cycles", "splitk_cycles", "l2_resident_fraction",
                       "memory_ramp_latencies")
#: k elements per main-loop iteration (the CTA's k tile).
K_STEP = 64.0
#: Steepness of the L2-residency curve (dimensionless).
L2_SHARPNESS = 6.0
#: Constants of an accelerator that ships none: the H100 fit (bf16; ``quant_s`` from the fp8 fit), the same set as the
#: ``"*"`` entry of gemm.json (portable: fractions, HBM latencies and clock cycles; see docs/roofline.md).
GEMM_DEFAULT_CONSTANTS = {"launch_s": 1.19e-6, "compute_efficiency": 0.84, "memory_efficiency": 0.785,
                          "tile_cycles": 3180.0, "quant_s": 1.04e-5, "epilogue_exposed": 0.073,
                          "k_iter_cycles": 165.5, "splitk_cycles": 2560.0, "l2_resident_fraction": 0.51,
                          "memory_ramp_latencies": 2.9}
_LOW_PRECISION = ("fp8", "int8", "fp4")


def _float(x):
    return jnp.asarray(x, dtype=jnp.result_type(float, x))


#: Left shift of the relaxed ceiling, in temperatures: at an integer count ``n`` the relaxed value is
#: ``n + (1 - tanh(CEIL_SHIFT) / tanh(1/(2t))) / 2`` (soft_round of Agustsson & Theis 2020), ≤ n + 7e-4 for small t.
CEIL_SHIFT = 4.0


def _ceil(x, temperature):
    """Exact ceil with a straight-through gradient at temperature 0; above, :func:`soft_ceil` moved left by
    :data:`CEIL_SHIFT` temperatures (so that it converges to the ceiling at the integers too, where the tile and wave
    counts of power-of-two shapes sit), never below ``x`` nor below 1 (every argument is a positive count).

    The relaxed step is evaluated on the fractional part: ``⌊x⌋ + soft_ceil(x - ⌊x⌋ - shift)``, equal to
    ``soft_ceil(x - shift)`` because soft_round commutes with integer shifts, but ``x - ⌊x⌋`` is exact in floating
    point (Sterbenz's lemma), so a shift far below one ulp of ``x`` (tiny temperature, large count) still moves the
    step; ``⌊x⌋`` carries no gradient, the fractional part the identity's."""
    if _is_zero(temperature):
        return ceil_ste(x)
    x = _float(x)
    whole = jax.lax.stop_gradient(jnp.floor(x))
    step = soft_ceil(x - whole - CEIL_SHIFT * temperature, temperature)
    soft = jnp.maximum(jnp.maximum(whole + step, x), 1.0)  # counts: >= 1
    if isinstance(temperature, (int, float)):
        return soft
    return jnp.where(temperature > 0, soft, ceil_ste(x))


def _l2_hit(reused_B, resident_B):
    """Fraction of the reused bytes served by L2, ``1 / (1 + (reused / resident)^L2_SHARPNESS)``: ~1 while the
    footprint fits, ~0 beyond (a cyclic stream through an LRU-like cache thrashes once it exceeds the capacity;
    Hill & Smith, IEEE TC 1989), smoothed by the hashed set mapping and non-LRU replacement of GPU L2s."""
    # the logistic form of the same curve, in log space (a power of a byte ratio overflows float32 once XLA
    # distributes it over the quotient)
    return jax.nn.sigmoid(L2_SHARPNESS * (jnp.log(jnp.maximum(resident_B, 1.0)) - jnp.log(jnp.maximum(reused_B, 1.0))))


@jax.custom_jvp
def _min_last(x):
    """``min`` over the last axis; its derivative is the argmin's (the default rule compares the operand with the
    min, which XLA may recompute with other rounding in the backward pass, leaving no candidate selected)."""
    return jnp.min(x, axis=-1)


@_min_last.defjvp
def _min_last_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    idx = jnp.argmin(x, axis=-1)[..., None]
    return jnp.min(x, axis=-1), jnp.take_along_axis(dx, idx, axis=-1)[..., 0]


def _is_zero(temperature) -> bool:
    return isinstance(temperature, (int, float)) and temperature == 0


def _max3(a, b, c, temperature):
    rel = relative_temperature(temperature, a, b, c)
    return smooth_max(smooth_max(a, b, rel), c, rel)


def gemm_constants(accel, dtype="bf16", constants=None) -> dict:
    """The kernel constants used for ``dtype`` on ``accel``: ``constants`` (a dict overriding any subset), else the
    accelerator's calibration, else :data:`GEMM_DEFAULT_CONSTANTS`."""
    cal = accel.kernel_constants("gemm", dtype) or {}
    out = {name: cal.get(name, GEMM_DEFAULT_CONSTANTS[name]) for name in GEMM_CONSTANT_NAMES}
    if constants:
        for name in constants:
            check_choice("gemm constant", name, GEMM_CONSTANT_NAMES)
        out.update(constants)
    return {k: _float(v) for k, v in out.items()}


def gemm_time(m, n, k, accel, dtype="bf16", *, batch=1, temperature=0.0, constants=None,
              quantize_input=True) -> Roofline:
    """Kernel time of ``y[m,n] = x[m,k]·W[n,k]ᵀ`` (``batch`` of them in one launch) on ``accel`` (model: module doc).

    Args:
        m, n, k: GEMM sizes (floats, arrays or traced values; real-valued sizes are fine, the tile counts are
            ceilings of ``m/T_m`` and ``n/T_n``).
        accel: :class:`~diffsys.hardware.Accelerator`; uses the matrix peak for ``dtype``, ``num_cores``,
            ``frequency_Hz``, the main memory and the ``"l2"`` level (when present) and the calibrated constants.
        dtype: operand dtype (``"bf16"``, ``"fp16"``, ``"fp8"`` (with dynamic activation quantization), ...).
        batch: independent GEMMs of this shape in one launch (each with its own weight).
        temperature: 0 = exact ceilings, max and min over candidates; > 0 = smooth twins (dimensionless).
        quantize_input: a low-precision GEMM first quantises its activation operand (the dynamic per-tensor
            pass above); ``False`` when the caller's framework hands it an already quantised operand (Transformer
            Engine's fused quantisation, timed by the caller).
        constants: optional dict overriding calibrated constants (used by the fitting script).

    Returns a :class:`Roofline`: ``compute_time_s`` / ``memory_time_s`` are those of the chosen kernel (the
    quantization pass is in ``memory_time_s``), energy as :func:`op_time`.
    """
    check_range("temperature", temperature, 0.0, None)
    check_choice("dtype", dtype, DTYPE_BYTES)
    if isinstance(temperature, (int, float)):
        return _gemm_time(m, n, k, accel, dtype, batch, temperature, constants, quantize_input)
    # a traced temperature: the exact model where it is 0, the relaxed one (at a safe positive temperature, so that
    # no discarded branch leaks a non-finite gradient) where it is positive
    t = jnp.asarray(temperature)
    exact = _gemm_time(m, n, k, accel, dtype, batch, 0.0, constants, quantize_input)
    soft = _gemm_time(m, n, k, accel, dtype, batch, jnp.where(t > 0, t, 1.0), constants, quantize_input)
    return jax.tree_util.tree_map(lambda e, r: jnp.where(t > 0, r, e), exact, soft)


def _gemm_time(m, n, k, accel, dtype, batch, temperature, constants, quantize_input=True) -> Roofline:
    c = gemm_constants(accel, dtype, constants)
    runs_as = accel.matrix_dtype(dtype)
    b_in = float(DTYPE_BYTES[runs_as])
    b_out = 2.0 if b_in <= 2 else b_in  # low-precision GEMMs write bf16
    quantized = runs_as in _LOW_PRECISION and quantize_input
    m, n, k, batch = (_float(v) for v in (m, n, k, batch))
    peak = accel.peak_flops(runs_as)
    sms = accel.num_cores
    mem = accel.main_memory
    bw = mem.bandwidth_Bps * c["memory_efficiency"]
    l2 = accel.level("l2") if "l2" in accel.level_names else mem
    flops = 2.0 * batch * m * n * k

    cyc = 1.0 / accel.frequency_Hz
    tile_s = c["tile_cycles"] * cyc
    iters = _ceil(k / K_STEP, temperature)  # main-loop iterations per tile
    # main-memory traffic: weights are streamed; activations and outputs reused call after call stay in L2 when they
    # fit; plus the pipeline fill, ``memory_ramp_latencies`` loaded HBM latencies (Little's law: the bytes in
    # flight before the stream runs at full bandwidth)
    a_bytes = batch * m * k * b_in
    y_bytes = batch * m * n * b_out
    hit = _l2_hit(a_bytes + y_bytes, l2.capacity_B * c["l2_resident_fraction"])
    y_hbm = (1.0 - hit) * y_bytes
    t_mem = (batch * n * k * b_in + (1.0 - hit) * a_bytes + y_hbm) / bw + c["memory_ramp_latencies"] * mem.latency_s
    # the operand loads overlap the main loop (multistage pipeline); a fraction of the epilogue's writes trails it
    t_epi = c["epilogue_exposed"] * y_hbm / bw
    # one main-loop iteration of one CTA: math at the SM's share of the peak, the operand panels through the L2
    # shared by the busy CTAs, or the latency of its pipelined loads, whichever binds
    math_s = 2.0 * K_STEP * sms / (peak * c["compute_efficiency"])  # per output element of the tile
    feed_s = K_STEP * b_in / l2.bandwidth_Bps  # per operand row/column of the tile and busy CTA
    lat_s = c["k_iter_cycles"] * cyc
    sk_s = (c["tile_cycles"] + c["splitk_cycles"]) * cyc
    t_cands = []
    for tm, tn in TILES:
        tiles = batch * _ceil(m * (1.0 / tm), temperature) * _ceil(n * (1.0 / tn), temperature)
        waves = _ceil(tiles / sms, temperature)
        t_math = tm * tn * math_s
        # data-parallel: one CTA per output tile, in waves of one per SM
        t_iter = _max3(t_math, (tm + tn) * feed_s * jnp.minimum(tiles, sms), lat_s, temperature)
        t_dp = waves * (iters * t_iter + tile_s)
        t_cands.append(smooth_max(t_dp, t_mem, relative_temperature(temperature, t_dp, t_mem)))
        # stream-K (Osama et al., PPoPP 2023): the tiles' k iterations spread evenly over all SMs, the partial
        # tiles fixed up through memory (fp32, written and read back)
        t_iter = _max3(t_math, (tm + tn) * feed_s * sms, lat_s, temperature)
        t_sk = _ceil(tiles * iters / sms, temperature) * t_iter + waves * tile_s + sk_s
        t_msk = t_mem + jnp.minimum(tiles, sms) * (tm * tn * 2.0 * PARTIAL_BYTES / bw)
        t_cands.append(smooth_max(t_sk, t_msk, relative_temperature(temperature, t_sk, t_msk)))
    # the fastest candidate (cuBLAS heuristics pick near-optimal kernels): exact min, or softmin
    if _is_zero(temperature):  # one reduction: its consumers read it instead of re-fusing the candidate search
        t_kernel = _min_last(jnp.stack(jnp.broadcast_arrays(*t_cands), -1))
    else:
        cands = jnp.stack(jnp.broadcast_arrays(*t_cands), -1)
        w = soft_argmin_weights(cands, axis=-1, temperature=relative_temperature(
            temperature, _min_last(cands)[..., None]))  # argmin derivative: jnp.min's can be 0/0 under vmap
        t_kernel = jnp.sum(w * cands, axis=-1)
    t_kernel = t_kernel + t_epi
    # the two ceilings reported beside the kernel time: the tile-padded matrix work at the achievable peak and the
    # streaming time of the main-memory traffic
    t_c = 2.0 * batch * (ceil_ste(m * (1.0 / TILES[0][0])) * TILES[0][0]) * n * k / (peak * c["compute_efficiency"])
    t_m = t_mem + t_epi

    # an accelerator whose loads do not overlap its math (compute_memory_overlap < 1) pays the non-hidden part of
    # the shorter ceiling on top of the kernel time
    time = serialized(t_kernel, t_c, t_m, accel.compute_memory_overlap) + c["launch_s"]
    nbytes = batch * ((m * k + n * k) * b_in + m * n * b_out)
    if quantized:
        t_q = c["quant_s"] + (1.0 - hit) * batch * m * k * QUANT_BYTES_PER_ELEMENT / bw
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
