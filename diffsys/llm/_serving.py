"""LLM inference serving: per-iteration decode and prefill time, closed-loop concurrency, TTFT/TPOT, KV capacity,
aggregated and disaggregated deployments, latency percentiles under Poisson arrivals.

One engine instance (``agg``) or a set of prefill and decode workers (``disagg``) serves fixed-length requests
(``isl`` prompt tokens, ``osl`` output tokens) from ``concurrency`` clients that each keep one request in flight.

Kernels (all calibrated elsewhere in the library and called directly):

* GEMMs: :func:`diffsys.roofline.gemm_time` (TensorRT-LLM GEMMs incl. fp8 activation quantization) for every
  projection, per TP/EP rank. MoE experts run as one grouped GEMM over the experts a rank actually touches: with
  ``T`` tokens routed top-``k`` over ``E`` experts uniformly, a rank holding ``E/ep`` experts touches
  ``E/ep · (1 - (1 - k/E)^T)`` of them in expectation (balls into bins; Fedus et al., "Switch Transformers",
  JMLR 2022 for the routing; the uniform-load assumption is that of the auxiliary load-balancing loss), each
  processing ``T·k/ep / touched`` tokens, so a decode step streams only the touched experts' weights.
* Attention: :func:`diffsys.roofline.decode_attention_time` over the KV cache (mean context ``isl + osl/2``;
  sliding-window layers see ``min(context, window)``) and :func:`diffsys.roofline.prefill_attention_time`
  (causal). MLA (DeepSeek-V2, arXiv 2405.04434, Sec. 2.1) decodes in the weight-absorbed form: one latent
  "KV head" of ``kv_lora_rank + qk_rope_head_dim`` shared by all query heads (an MQA kernel), with the absorbed
  ``W_UK``/``W_UV`` as per-head batched GEMMs; prefill runs the expanded MHA form (head dim ``nope + rope``).
* Communication: the system's NCCL-faithful collectives (:meth:`diffsys.topologies.System.collective_time`).
  Tensor parallelism all-reduces the ``tokens × hidden`` activations twice per layer (Shoeybi et al.,
  "Megatron-LM", 2019, Sec. 3); expert parallelism with attention data parallelism dispatches and combines tokens
  with two all-to-alls per MoE layer (Lepikhin et al., "GShard", ICLR 2021); disaggregated serving moves the
  prompt's KV cache from the prefill to the decode worker over the scale-out network (Zhong et al.,
  "DistServe", OSDI 2024; Patel et al., "Splitwise", ISCA 2024).

Serving loop (continuous batching; Yu et al., "Orca", OSDI 2022; Kwon et al., "vLLM/PagedAttention", SOSP 2023):

* Closed loop. ``C`` clients, each waiting for its request to finish before sending the next, form a closed
  queueing network of a prefill station (the engine's prefill work, or the prefill workers) and a delay station
  (the ``osl - 1`` decode iterations). Its mean values are solved by Schweitzer's approximate mean-value analysis
  (Schweitzer 1979; Lazowska et al., "Quantitative System Performance", 1984, Ch. 7, Eq. 7.3):
  ``R_p = S_p·(1 + Q_p·(C-1)/C)``, ``X = C/(R_p + Z)``, ``Q_p = X·R_p``, whose fixed point for one station is
  the positive root of ``R_p² + (Z - S_p·C)·R_p - S_p·Z = 0``. The running decode batch is ``B = X·Z`` (Little's
  law), capped by the KV-cache capacity; requests beyond it wait (preemption/queueing) — that wait is added to the
  TTFT through ``C = X·(TTFT + Z)``. ``Z`` holds the TPOT, which depends on ``B`` and ``ρ`` (below): the TPOT is
  the root of ``log TPOT = log(t_step(B)/(1 - ρ))``, increasing in ``log TPOT``, found by bisection with the
  implicit-function gradient.
* Aggregated mode: prefills interleave the decode iterations (chunked / mixed batches), so each decode
  iteration is stretched by the engine's prefill utilization ``ρ = X·t_prefill``: ``TPOT = t_step(B)/(1 - ρ)``.
  TTFT = the prompt's first-token latency + the wait behind the prompts of the clients that return in step
  (below); the engine batches the prompts it holds, so no queue of single-prompt services forms in front of it.
* Disaggregated mode: ``W_p`` prefill workers form a multi-server prefill station (service ``t_prefill/W_p``);
  ``W_d`` decode workers share the running requests; TPOT = one decode worker's step at ``B/W_d``; TTFT adds
  the prefill station's AMVA queue and the KV transfer.
* KV-cache capacity: HBM × ``hbm_fraction`` minus the weights per GPU and an activation reserve, over the KV
  bytes per token per GPU (:meth:`ModelArch.kv_elements_per_token_layer`); the instance holds ``⌊cap/(isl+osl/2)⌋``
  requests at their mean context ``isl + osl/2``
  (paged allocation; exact floor at temperature 0, smooth above).
* Percentiles under Poisson arrivals at the same request rate: the prefill station as an M/G/1 queue
  (:func:`diffsys.primitives.mg1_wait`, Pollaczek–Khinchine mean) with the exponential tail approximation
  ``P(W > t) ≈ ρ·exp(-ρ·t/W̄)`` (Tijms, "A First Course in Stochastic Models", 2003, Sec. 9.3), so the
  ``p``-quantile of the wait is ``(W̄/ρ)·ln(ρ/(1-p))`` when ``ρ > 1-p`` (else 0).
* Backend: a few fitted constants per serving framework (``serving_backends.json``, :data:`BACKEND_CONSTANT_NAMES`):
  ``iter_s`` (scheduler + launch per decode iteration), ``req_s`` (per running request per iteration: sampling,
  detokenization, bookkeeping), ``decode_scale`` (time of the framework's decode kernels relative to the
  TensorRT-LLM kernels the roofline is calibrated on), ``prefill_scale`` and ``prefill_s`` (the prompt's latency to
  its first token: ``prefill_scale ×`` its kernel time ``+ prefill_s``; the framework runs the prompt interleaved
  with decode iterations, chunked, and returns the token after them, so the latency exceeds the GPU time the prompt
  takes from the engine, which stays the kernel time in ``ρ``) and ``burst_fraction`` (the fraction of the clients
  that stay in step: a benchmark starts all ``C`` clients at once and, with fixed ``isl``/``osl``, requests tend to
  finish and return together, so a returning request waits on average behind ``burst_fraction·(C-1)/2`` other
  prompts' prefill work).

Every max/min/floor on the gradient path has its smooth twin selected by ``temperature`` (0 = exact).
"""

from __future__ import annotations

import json
import os

import equinox as eqx
import jax
import jax.numpy as jnp

from .._checks import check_choice, check_range
from .._pytree import as_float, as_optional_float, concretely_zero
from ..hardware import DTYPE_BYTES
from ..primitives import (
    Metrics,
    clamp,
    floor_ste,
    increasing_root,
    mg1_wait,
    relative_temperature,
    smooth_max,
    smooth_min,
    soft_floor,
)
from ..roofline import decode_attention_time, gemm_constants, gemm_time, prefill_attention_time
from ._catalog import ModelArch

BACKENDS = ("trtllm", "vllm", "sglang")
PRECISIONS = ("bf16", "fp8", "fp4")
MODES = ("agg", "disagg")
BACKEND_CONSTANT_NAMES = ("iter_s", "req_s", "prefill_s", "decode_scale", "prefill_scale", "burst_fraction")
#: documented defaults (used when serving.json has no entry for a backend)
DEFAULT_BACKEND_CONSTANTS = {"iter_s": 2e-3, "req_s": 2e-5, "prefill_s": 5e-3, "decode_scale": 1.0,
                             "prefill_scale": 1.0, "burst_fraction": 0.5}
#: activation / workspace memory kept free per GPU (CUDA graphs, NCCL buffers, activations), bytes
ACTIVATION_RESERVE_B = 4.0 * 2**30
#: largest prefill share of the engine's time in agg mode (a saturated engine still decodes 1 - RHO_MAX of the time)
RHO_MAX = 0.98
#: bracket of the closed-loop TPOT solve, seconds (a step is far above 0.1 µs and far below 10⁴ s)
TPOT_BRACKET_S = (1e-7, 1e4)
#: bisection steps of the TPOT solve (the bracket's 25 e-folds down to 1e-13 in log TPOT)
LOOP_BISECTIONS = 48
_CAL_PATH = os.path.join(os.path.dirname(__file__), "serving_backends.json")


def backend_constants(backend: str) -> dict:
    """Fitted constants of ``backend`` from ``diffsys/llm/serving_backends.json`` (defaults otherwise)."""
    check_choice("backend", backend, BACKENDS)
    out = dict(DEFAULT_BACKEND_CONSTANTS)
    if os.path.exists(_CAL_PATH):  # {"devices": {"*": {backend: {name: value}}}} (the calibration-file layout)
        with open(_CAL_PATH, encoding="utf-8") as f:
            out.update(json.load(f).get("devices", {}).get("*", {}).get(backend, {}))
    return {k: float(out[k]) for k in BACKEND_CONSTANT_NAMES}


class ServingSpec(eqx.Module):
    """A serving deployment (design leaves are floats so sweeps and gradients reach them).

    Attributes:
        arch: the model (:class:`ModelArch`).
        accel: the GPU (:class:`~diffsys.hardware.Accelerator`).
        system: the node/cluster network (:class:`~diffsys.topologies.System`).
        tp, pp, adp, ep: the agg engine's (or each decode worker's) tensor, pipeline, attention-data and expert
            parallel degrees; GPUs per engine ``tp·pp·adp``; MoE tensor parallelism ``tp·adp/ep``.
        prefill_tp, prefill_adp, prefill_ep: each prefill worker's degrees (disagg).
        prefill_workers, decode_workers: worker counts (disagg).
        disagg: 0 = aggregated, 1 = disaggregated (a float leaf: the two are blended for relaxed search).
        isl, osl: prompt and output tokens; concurrency: clients with one request in flight each.
        hbm_fraction: fraction of HBM the engine may use (weights + KV cache + reserve).
        iter_s ... burst_fraction: the backend constants (see module doc).
        kv_bits: bits per cached element (continuous, e.g. 2-4 for ThinKV-style quantization); ``None`` = the
            width of ``kv_dtype``.
        kv_keep: fraction of each request's context kept in the KV cache after eviction, in (0, 1] (H2O, SnapKV,
            ThinKV's thought-adaptive eviction); decode attends to and stores ``kv_keep·context`` tokens.
        kv_remat: fraction of the layers that cache their input ``X`` (``hidden`` elements per token, replicated
            on every TP rank) instead of K and V, and rematerialize K/V from it each step (XQuant), in [0, 1].
        spec_tokens: draft tokens per step ``γ`` (speculative decoding; 0 = none); spec_acceptance: the chance
            ``α`` in [0, 1) that the target accepts a draft token; draft_cost: one draft step's time over one
            target step's.
        comm_overlap: fraction of each pass's TP all-reduce / EP all-to-all that may hide behind the pass's
            compute (TokenWeave's split batches; Comet for MoE), in [0, 1].
        precision: GEMM/weight dtype (static); kv_dtype: KV-cache dtype (static).
    """

    arch: ModelArch
    accel: object
    system: object
    tp: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    pp: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    adp: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    ep: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    prefill_tp: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    prefill_adp: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    prefill_ep: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    prefill_workers: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    decode_workers: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    disagg: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    isl: jnp.ndarray = eqx.field(converter=as_float, default=1024.0)
    osl: jnp.ndarray = eqx.field(converter=as_float, default=1024.0)
    concurrency: jnp.ndarray = eqx.field(converter=as_float, default=32.0)
    hbm_fraction: jnp.ndarray = eqx.field(converter=as_float, default=0.9)
    iter_s: jnp.ndarray = eqx.field(converter=as_float, default=DEFAULT_BACKEND_CONSTANTS["iter_s"])
    req_s: jnp.ndarray = eqx.field(converter=as_float, default=DEFAULT_BACKEND_CONSTANTS["req_s"])
    prefill_s: jnp.ndarray = eqx.field(converter=as_float, default=DEFAULT_BACKEND_CONSTANTS["prefill_s"])
    decode_scale: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    prefill_scale: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    burst_fraction: jnp.ndarray = eqx.field(converter=as_float, default=0.5)
    kv_bits: jnp.ndarray | None = eqx.field(converter=as_optional_float, default=None)
    kv_keep: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    kv_remat: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    spec_tokens: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    spec_acceptance: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    draft_cost: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    comm_overlap: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    precision: str = eqx.field(static=True, default="bf16")
    kv_dtype: str = eqx.field(static=True, default="bf16")

    def __check_init__(self):
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("kv_dtype", self.kv_dtype, ("bf16", "fp16", "fp8"))
        if self.kv_bits is not None:
            check_range("kv_bits", self.kv_bits, 1.0, 32.0)
        check_range("kv_keep", self.kv_keep, 0.0, 1.0, lo_open=True)
        for name in ("kv_remat", "draft_cost", "comm_overlap"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        check_range("spec_tokens", self.spec_tokens, 0.0, 64.0)
        check_range("spec_acceptance", self.spec_acceptance, 0.0, 1.0, hi_open=True)

    @property
    def kv_bytes_per_element(self):
        """Bytes per cached element: ``kv_bits/8``, or the width of ``kv_dtype``."""
        return DTYPE_BYTES[self.kv_dtype] if self.kv_bits is None else self.kv_bits / 8.0

    @property
    def tokens_per_step(self):
        """Expected tokens a decode step emits per sequence: ``(1 - α^(γ+1))/(1 - α)`` (Leviathan et al., "Fast
        inference from transformers via speculative decoding", ICML 2023, Eq. 1); 1 without speculation."""
        a = self.spec_acceptance
        return (1.0 - a ** (self.spec_tokens + 1.0)) / (1.0 - a)

    @property
    def gpus(self):
        """GPUs of the deployment: one agg engine, or all prefill and decode workers."""
        agg = self.tp * self.pp * self.adp
        dis = self.prefill_workers * self.prefill_tp * self.prefill_adp + self.decode_workers * agg
        return agg + self.disagg * (dis - agg)


class ServingMetrics(Metrics):
    """Serving metrics (seconds, bytes, tokens/s); ``time_s`` = TPOT (the protocol's default objective)."""

    time_s: jax.Array
    ttft_s: jax.Array
    tpot_s: jax.Array
    tokens_per_s: jax.Array
    tokens_per_s_per_gpu: jax.Array
    tokens_per_s_per_user: jax.Array
    requests_per_s: jax.Array
    batch: jax.Array
    kv_cache_B: jax.Array
    kv_capacity_requests: jax.Array
    weights_B_per_gpu: jax.Array
    gpus: jax.Array
    decode_step_s: jax.Array
    decode_gemm_s: jax.Array
    decode_attention_s: jax.Array
    decode_comm_s: jax.Array
    decode_overhead_s: jax.Array
    prefill_s: jax.Array
    prefill_gemm_s: jax.Array
    prefill_attention_s: jax.Array
    prefill_comm_s: jax.Array
    queue_s: jax.Array
    kv_transfer_s: jax.Array
    ttft_p50_s: jax.Array
    ttft_p90_s: jax.Array
    ttft_p99_s: jax.Array


# ---------------------------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------------------------
def _smax(a, b, t):
    return smooth_max(a, b, relative_temperature(t, a, b))


def _smin(a, b, t):
    return smooth_min(a, b, relative_temperature(t, a, b))


def _on(n, t):
    """1 for a parallel degree > 1, 0 for 1 (a ramp between; exact at the integers)."""
    return clamp(n - 1.0, 0.0, 1.0, t)


def _gemm(m, n, k, spec, t, batch=1.0, dtype=None):
    return gemm_time(m, n, k, spec.accel, dtype or spec.precision, batch=batch, temperature=t).time_s


def _collective(spec, op, size_B, ranks, t):
    """A collective over ``ranks`` GPUs of the system (NVLink inside a node, scale-out across nodes), 0 for one."""
    per_node = spec.system.dims[0].size
    # dimension sizes are counts >= 1 (the smooth min dips below its arguments by up to t·log 2)
    sizes = (jnp.maximum(_smin(ranks, per_node, t), 1.0),) + (
        (jnp.maximum(_smax(ranks / per_node, 1.0, t), 1.0),) if len(spec.system.dims) > 1 else ())
    sys = spec.system.with_sizes(*sizes)
    return _on(ranks, t) * sys.collective_time(op, size_B, temperature=t).time_s


def _weight_bytes(arch: ModelArch, spec, tp, adp, ep):
    """Weight bytes per GPU: attention and dense MLP split over TP (replicated over attention-DP groups), experts
    over all ``tp·adp`` ranks (EP × MoE-TP), embeddings and LM head in bf16 split over TP."""
    tr = arch.transformer
    b = DTYPE_BYTES[spec.precision]
    f = tr.moe_fraction
    L = tr.n_layers
    attn = arch.attention_params() / tp
    dense = (1 - f) * tr.dense_mlp_params() / tp
    experts = f * (tr.n_experts * tr.expert_params() / (tp * adp) + tr.n_shared_experts * tr.expert_params() / tp)
    emb = tr.vocab * tr.hidden * 2.0 / tp
    return L * (attn + dense + experts) * b + emb * 2.0


def _kv_elements_per_token_layer(spec, tp):
    """Cached elements of one token in one layer on one GPU: K/V (:meth:`ModelArch.kv_elements_per_token_layer`)
    or, in the ``kv_remat`` share of the layers, the layer input ``X`` (``hidden`` elements, which every TP rank
    needs whole to rematerialize its own K/V heads; Tomar et al., "XQuant: breaking the memory wall for LLM
    inference with KV cache rematerialization", 2025)."""
    kv = spec.arch.kv_elements_per_token_layer(tp)
    return kv + spec.kv_remat * (spec.arch.transformer.hidden - kv)


def _kv_bytes_per_token(arch: ModelArch, spec, tp):
    """KV-cache bytes one token holds on one GPU, all layers."""
    return arch.transformer.n_layers * _kv_elements_per_token_layer(spec, tp) * spec.kv_bytes_per_element


def _pass_time(spec, tokens, kv_len, tp, adp, ep, phase, t):
    """One forward pass of all layers over ``tokens`` tokens per attention-DP group (``adp`` groups at once).

    ``phase`` is ``"decode"`` (``tokens`` sequences at context ``kv_len``, each with ``γ + 1`` query tokens: the
    new one and, when speculating, the ``γ`` draft tokens the target verifies in the same pass) or ``"prefill"``
    (one prompt of ``tokens`` tokens). Returns ``(gemm_s, attention_s, comm_s)`` for the pass.
    """
    arch = spec.arch
    tr = arch.transformer
    h, L = tr.hidden, tr.n_layers
    hq = tr.n_heads / tp
    f = tr.moe_fraction
    queries = spec.spec_tokens + 1.0 if phase == "decode" else 1.0
    m = tokens * queries
    kv_bpe = spec.kv_bytes_per_element
    g = lambda mm, n, k, **kw: _gemm(mm, n, k, spec, t, **kw)  # noqa: E731

    # attention projections and kernel
    if arch.is_mla:
        qk = arch.qk_nope_head_dim + arch.qk_rope_head_dim
        lat = arch.kv_lora_rank + arch.qk_rope_head_dim
        proj = g(m, arch.q_lora_rank, h) + g(m, hq * qk, arch.q_lora_rank) + g(m, lat, h) \
            + g(m, h, hq * arch.v_head_dim)
        if phase == "decode":  # absorbed W_UK / W_UV: per-head batched GEMMs, the kernel over the latent cache
            proj = proj + g(m, arch.kv_lora_rank, arch.qk_nope_head_dim, batch=hq) \
                + g(m, arch.v_head_dim, arch.kv_lora_rank, batch=hq)
            attn = decode_attention_time(tokens, kv_len, hq, 1.0, lat, spec.accel, "bf16",
                                         kv_bytes_per_element=kv_bpe * _remat_stream(spec, lat),
                                         temperature=t).time_s + _remat_s(spec, tokens, kv_len, lat, h, t) \
                + _draft_queries_s(spec, tokens, kv_len, hq, lat)
        else:  # expanded K/V (kv_b projection) and an MHA kernel of head dim nope + rope
            proj = proj + g(m, hq * (arch.qk_nope_head_dim + arch.v_head_dim), arch.kv_lora_rank)
            attn = prefill_attention_time(1.0, m, hq, hq, qk, spec.accel, "bf16", temperature=t).time_s
    else:
        hk = jnp.maximum(tr.n_kv_heads / tp, 1.0)
        hd = tr.head_dim
        proj = g(m, (hq + 2 * hk) * hd, h) + g(m, h, hq * hd)
        if phase == "decode":
            kv_w = 2.0 * hk * hd
            kw = dict(kv_bytes_per_element=kv_bpe * _remat_stream(spec, kv_w), temperature=t)

            def decode(span):
                return decode_attention_time(tokens, span, hq, hk, hd, spec.accel, "bf16", **kw).time_s \
                    + _remat_s(spec, tokens, span, kv_w, h, t) + _draft_queries_s(spec, tokens, span, hq, hd)

            full = decode(kv_len)
            swa = lambda: decode(_smin(kv_len, jnp.maximum(arch.sliding_window, 1.0), t))  # noqa: E731
        else:
            full = prefill_attention_time(1.0, m, hq, hk, hd, spec.accel, "bf16", temperature=t).time_s
            # a sliding window of w keys costs about w/s of the causal kernel's s/2 keys per query (s > 2w)
            swa = lambda: full * _smin(2.0 * arch.sliding_window / jnp.maximum(m, 1.0), 1.0, t)  # noqa: E731
        # the windowed layers' kernel is only traced when the model has any
        attn = full if concretely_zero(arch.sliding_fraction) else full + arch.sliding_fraction * (swa() - full)

    # MLP: dense layers over TP; MoE layers over the tp·adp ranks (EP × MoE-TP)
    mats = 2.0 if tr.mlp == "swiglu" else 1.0  # gate+up fused into one GEMM
    dense = g(m, mats * tr.ffn / tp, h) + g(m, h, tr.ffn / tp)
    act_B = m * h * 2.0
    ar = _collective(spec, "all_reduce", act_B, tp, t)
    lm_tokens = m if phase == "decode" else 1.0
    lm = g(lm_tokens, tr.vocab / tp, h, dtype="bf16")
    if not tr.is_moe:  # a dense model: the MoE terms below are weighted by a structural zero, not traced
        return L * (proj + dense) + lm, L * attn, L * 2.0 * ar
    T = m * adp  # tokens of all attention-DP groups meet in the MoE layer
    E, k = tr.n_experts, tr.top_k
    ranks = tp * adp
    moe_tp = jnp.maximum(ranks / ep, 1.0)
    fe = tr.expert_width / moe_tp
    touched = E / ep * (1.0 - jnp.exp(T * jnp.log1p(-jnp.minimum(k / E, 1.0 - 1e-6))))
    touched = jnp.maximum(touched, 1.0)
    per_expert = T * k / ep / touched
    moe = g(per_expert, mats * fe, h, batch=touched) + g(per_expert, h, fe, batch=touched) \
        + g(m, E, h, dtype="bf16")  # router
    shared_w = tr.n_shared_experts * tr.expert_width / tp
    moe = moe + jnp.where(tr.n_shared_experts > 0, g(m, mats * jnp.maximum(shared_w, 1.0), h)
                          + g(m, h, jnp.maximum(shared_w, 1.0)), 0.0)
    mlp = dense + f * (moe - dense)

    # communication: TP all-reduce after attention and after a dense MLP; after MoE either the same all-reduce
    # (attention TP, adp = 1) or dispatch + combine all-to-alls over all ranks (attention DP)
    a2a = 2.0 * _collective(spec, "all_to_all", T * k * h * 2.0 / ranks, ranks, t)  # per-rank buffer
    dp_share = _on(adp, t)
    comm_moe = ar + dp_share * (a2a - ar)
    comm = ar + (1 - f) * ar + f * comm_moe
    return L * (proj + mlp) + lm, L * attn, L * comm


def _remat_stream(spec, kv_width):
    """Cache bytes a fused XQuant decode kernel streams per K/V element: the ``X`` of the ``kv_remat`` layers
    (``hidden`` elements per token instead of ``kv_width``), the K/V of the others."""
    return 1.0 + spec.kv_remat * (spec.arch.transformer.hidden / kv_width - 1.0)


def _draft_queries_s(spec, sequences, kv_len, heads, head_dim):
    """The verify pass's ``γ`` draft queries per sequence against its cache: the cache is streamed once for all
    ``γ + 1`` queries (the decode kernel's time), each extra query adds its ``QKᵀ`` and ``PV`` work,
    ``4·heads·kv_len·head_dim`` FLOPs, at the matrix units' achievable bf16 rate (the tree-attention / multi-query
    decode kernels of speculative decoding; Miao et al., "SpecInfer", ASPLOS 2024)."""
    peak = spec.accel.peak_flops("bf16") * gemm_constants(spec.accel, "bf16")["compute_efficiency"]
    return spec.spec_tokens * 4.0 * sequences * heads * kv_len * head_dim / peak


def _remat_s(spec, sequences, kv_len, kv_width, hidden, t):
    """Rematerializing K/V from the cached ``X`` (``kv_remat`` share of the layers): the ``(seq·L × h)·(h × kv_w)``
    GEMM's compute time (its ``X`` stream is in the attention kernel's, fused as in XQuant)."""
    if concretely_zero(spec.kv_remat):
        return 0.0
    r = gemm_time(sequences * kv_len, kv_width, hidden, spec.accel, "bf16", temperature=t)
    return spec.kv_remat * r.compute_time_s


def _kv_capacity(spec, tp, adp, ep, t):
    """(KV bytes per GPU available, requests the engine holds, weights per GPU)."""
    w = _weight_bytes(spec.arch, spec, tp, adp, ep)
    free = spec.accel.main_memory.capacity_B * spec.hbm_fraction - w - ACTIVATION_RESERVE_B
    kv_free = jnp.maximum(free, 0.0)
    # paged KV cache (vLLM / TensorRT-LLM / SGLang allocate pages as tokens arrive): a running request holds its
    # mean context, isl + osl/2 tokens
    per_req = _kv_bytes_per_token(spec.arch, spec, tp) * spec.kv_keep * (spec.isl + spec.osl / 2.0)
    cap = adp * spec.pp * kv_free / per_req
    cap = floor_ste(cap) if isinstance(t, (int, float)) and t == 0 else soft_floor(cap, t)
    return kv_free, cap, w, free


def _exposed_comm(comm_s, compute_s, overlap):
    """Communication left on the critical path when the fraction ``overlap`` of it may run under the pass's
    compute (two token halves, one's all-reduce under the other's GEMMs: Gond et al., "TokenWeave", 2025; MoE
    all-to-all under the expert GEMMs: Zhang et al., "Comet", MLSys 2025): ``(1-o)·c + max(o·c - compute, 0)``."""
    hidden = overlap * comm_s
    return comm_s - hidden + jnp.maximum(hidden - compute_s, 0.0)


def _quantile_wait(mean_wait, rho, p):
    """``p``-quantile of the M/G/1 wait with the exponential tail ``P(W>t) ≈ ρ·exp(-ρt/W̄)`` (Tijms 2003 §9.3)."""
    rho = jnp.clip(rho, 1e-6, 0.999)
    return jnp.maximum(mean_wait / rho * jnp.log(rho / (1.0 - p)), 0.0)


class ServingKernels(eqx.Module):
    """The kernel stage of :func:`serving_model`: everything that does not depend on the backend constants.

    ``decode_*`` have a leading axis of 2: the running batch at its upper bound ``b_hi`` and at ``b_hi/2`` (the
    closed-loop solver interpolates linearly between them).
    """

    b_hi: jax.Array
    decode_gemm_s: jax.Array
    decode_attention_s: jax.Array
    decode_comm_s: jax.Array
    prefill_gemm_s: jax.Array
    prefill_attention_s: jax.Array
    prefill_comm_s: jax.Array
    kv_capacity_requests: jax.Array
    kv_transfer_s: jax.Array
    kv_bytes_per_token: jax.Array
    weights_B_per_gpu: jax.Array
    free_B: jax.Array
    prefill_servers: jax.Array
    workers: jax.Array


def serving_kernels(spec: ServingSpec, *, temperature=0.0) -> ServingKernels:
    """Kernel, communication and capacity terms of a deployment (no backend constants)."""
    t = temperature
    dis = spec.disagg
    C = jnp.maximum(spec.concurrency, 1.0)
    kv_len = spec.kv_keep * (spec.isl + spec.osl / 2.0)  # the tokens the cache keeps (eviction)
    _, cap, w_dec, free = _kv_capacity(spec, spec.tp, spec.adp, spec.ep, t)
    workers = 1.0 + dis * (spec.decode_workers - 1.0)
    p_tp = spec.tp + dis * (spec.prefill_tp - spec.tp)
    p_adp = spec.adp + dis * (spec.prefill_adp - spec.adp)
    p_ep = spec.ep + dis * (spec.prefill_ep - spec.ep)
    pf = _pass_time(spec, spec.isl, spec.isl, p_tp, p_adp, p_ep, "prefill", t)
    b_hi = _smax(_smin(C / workers, cap, t), 1.0, t)
    # PP stages run batch/pp micro-batches each through all layers: the token interval is that of batch/pp
    per_group = jnp.stack([b_hi, 0.5 * b_hi]) / (spec.adp * spec.pp)
    dec = jax.vmap(lambda bb: _pass_time(spec, bb, kv_len, spec.tp, spec.adp, spec.ep, "decode", t))(
        jnp.maximum(per_group, 1e-3))
    # KV transfer (disagg): the prompt's cache over the scale-out links of the prefill worker's GPUs
    net = spec.system.dims[-1]
    kv_prompt_B = _kv_bytes_per_token(spec.arch, spec, 1.0) * spec.kv_keep * spec.isl
    t_kv = dis * (kv_prompt_B / (net.bandwidth_Bps * p_tp) + net.latency_s)
    return ServingKernels(b_hi, *dec, *pf, cap, t_kv, _kv_bytes_per_token(spec.arch, spec, spec.tp), w_dec, free,
                          p_adp * (1.0 + dis * (spec.prefill_workers - 1.0)), workers)


def serving_loop(spec: ServingSpec, kern: ServingKernels, *, temperature=0.0) -> ServingMetrics:
    """The serving stage of :func:`serving_model`: backend constants, closed loop, capacity, percentiles."""
    t = temperature
    C = jnp.maximum(spec.concurrency, 1.0)
    osl1 = jnp.maximum(spec.osl - 1.0, 0.0)
    kv_len = spec.isl + spec.osl / 2.0
    dis = spec.disagg
    cap, workers, t_kv, b_hi = kern.kv_capacity_requests, kern.workers, kern.kv_transfer_s, kern.b_hi
    pf_kernels = kern.prefill_gemm_s + kern.prefill_attention_s
    pf_work = pf_kernels + _exposed_comm(kern.prefill_comm_s, pf_kernels, spec.comm_overlap)
    # the GPU time a prompt takes from the engine, and the latency to its first token: the framework runs the
    # prompt interleaved with decode iterations and returns its token after them (prefill_scale, prefill_s)
    pf_latency = spec.prefill_scale * pf_kernels
    t_pf = pf_latency + _exposed_comm(kern.prefill_comm_s, pf_latency, spec.comm_overlap) + spec.prefill_s
    s_pf = pf_work / kern.prefill_servers  # prefill station's service time per request
    batches = jnp.stack([b_hi, 0.5 * b_hi])
    overhead = spec.iter_s + spec.req_s * batches / spec.adp
    dec_compute = spec.decode_scale * (kern.decode_gemm_s + kern.decode_attention_s)
    # one iteration: the target's (verify) pass and, when speculating, γ draft steps; it emits tokens_per_step
    # tokens per sequence, so the loop below runs on the time per output token
    iteration = (dec_compute + _exposed_comm(kern.decode_comm_s, dec_compute, spec.comm_overlap) + overhead) \
        * (1.0 + spec.spec_tokens * spec.draft_cost)
    emitted = spec.tokens_per_step
    steps = iteration / emitted
    step_hi, step_lo = steps[0], steps[1]
    slope = (step_hi - step_lo) / jnp.maximum(0.5 * b_hi, 1e-9)

    burst = s_pf * spec.burst_fraction * (C - 1.0) / 2.0
    lag = t_pf - s_pf  # first-token latency beyond the prompt's GPU time

    def loop_at(tpot):
        """The closed loop at a given TPOT: the prefill station's residence (Schweitzer's AMVA fixed point
        ``R = S·(1 + Q·(C-1)/C)``, ``Q = X·R``, ``X = C/(R + A)`` in closed form: the positive root of
        ``R² + (A - S·C)·R - S·A = 0``), the request rate, the engine's prefill share, the batch and the step."""
        z = osl1 * tpot
        a = lag + burst + t_kv + z  # the rest of a client's cycle
        r = 0.5 * ((s_pf * C - a) + jnp.sqrt((a - s_pf * C) ** 2 + 4.0 * s_pf * a))
        x = C / (r + a + 1e-12)
        # the in-step clients reorder who waits for the prefill station, not how much work it does: the engine's
        # prefill share follows the AMVA rate; the clients' cycle (Little's law) includes the burst wait
        rho = jnp.clip(C / (r + lag + t_kv + z + 1e-12) * s_pf * (1.0 - dis), 0.0, RHO_MAX)
        b = _smin(x * z / workers, cap, t)
        step = jnp.maximum(step_hi + slope * (b - b_hi), 1e-9)
        return r + burst, z, x, rho, b, step

    def excess(u):  # log TPOT minus the log of the TPOT the loop implies (increasing in u)
        _, _, _, rho, _, step = loop_at(jnp.exp(u))
        return u - jnp.log(step / (1.0 - rho))

    # a root outside the bracket would end at its edge: TPOT_BRACKET_S holds every TPOT a decode step of
    # 0.1 µs-200 s implies (the prefill share stretches a step by at most 1/(1 - RHO_MAX))
    u, _ = increasing_root(excess, jnp.log(jnp.full_like(step_hi, TPOT_BRACKET_S[0])),
                           jnp.log(jnp.full_like(step_hi, TPOT_BRACKET_S[1])), LOOP_BISECTIONS)
    tpot = jnp.exp(u)
    r_pf, z, x_loop, rho, b, step = loop_at(tpot)
    # KV-capacity limit: at most cap·workers requests decode at once; the others wait before their prefill
    x_cap = cap * workers / jnp.maximum(z + r_pf + lag + t_kv, 1e-12)
    x = _smin(x_loop, jnp.maximum(x_cap, 1e-9), t)
    queue_cap = C / x - (r_pf + lag + t_kv + z)
    # the prompt's latency and the wait behind the prompts of the in-step clients (r_pf includes it); in agg mode
    # the engine batches the prompts it has, so no queue of single-prompt services forms; disagg adds the prefill
    # workers' AMVA queue
    ttft = t_pf + burst + (r_pf - burst - s_pf) * dis + t_kv + jnp.maximum(queue_cap, 0.0)

    tokens_per_s = x * spec.osl
    gpus = spec.gpus
    # Poisson arrivals at the same request rate: M/G/1 prefill station (deterministic prompts: scv = 0)
    rho_open = jnp.clip(x * s_pf, 0.0, None)
    w_mean = mg1_wait(rho_open, s_pf, scv=0.0).wait_s
    base = t_pf + t_kv + 0.5 * step * emitted * (1.0 - dis)
    qs = [base + _quantile_wait(w_mean, rho_open, p) for p in (0.5, 0.9, 0.99)]

    kv_used = jnp.minimum(b, cap) * kern.kv_bytes_per_token * spec.kv_keep * kv_len / (spec.adp * spec.pp)
    feasible = (kern.free_B > 0) & (cap >= 1.0)
    violation = jnp.maximum(-kern.free_B, 0.0) / spec.accel.main_memory.capacity_B + jnp.maximum(1.0 - cap, 0.0)
    return ServingMetrics(
        time_s=tpot, ttft_s=ttft, tpot_s=tpot, tokens_per_s=tokens_per_s,
        tokens_per_s_per_gpu=tokens_per_s / gpus, tokens_per_s_per_user=1.0 / tpot, requests_per_s=x,
        batch=b, kv_cache_B=kv_used, kv_capacity_requests=cap, weights_B_per_gpu=kern.weights_B_per_gpu, gpus=gpus,
        decode_step_s=step * emitted, decode_gemm_s=kern.decode_gemm_s[0], decode_attention_s=kern.decode_attention_s[0],
        decode_comm_s=kern.decode_comm_s[0], decode_overhead_s=overhead[0], prefill_s=t_pf,
        prefill_gemm_s=kern.prefill_gemm_s, prefill_attention_s=kern.prefill_attention_s,
        prefill_comm_s=kern.prefill_comm_s, queue_s=ttft - t_pf - t_kv, kv_transfer_s=t_kv,
        ttft_p50_s=qs[0], ttft_p90_s=qs[1], ttft_p99_s=qs[2], feasible=feasible, violation=violation)


def serving_model(spec: ServingSpec, *, temperature=0.0) -> ServingMetrics:
    """Serving metrics of a deployment (model: module doc). ``temperature``: 0 = exact, > 0 smooth twins."""
    return serving_loop(spec, serving_kernels(spec, temperature=temperature), temperature=temperature)


SYSTEMS = {"h100": ("h100_sxm", "hgx_h100"), "h200": ("h200", "hgx_h200"), "b200": ("b200", "hgx_b200")}


def _check_count(name, value, lo=1, hi=1 << 20):
    if isinstance(value, bool) or float(value) != int(value) or not lo <= int(value) <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value}")


def serving_spec(model, *, system="h100", backend="trtllm", precision="fp8", kv_dtype=None, tp=1, pp=1,
                 attention_dp=1, ep=1, isl=1024, osl=1024, concurrency=32, mode="agg", prefill_workers=1,
                 prefill_tp=None, prefill_attention_dp=1, prefill_ep=None, decode_workers=1,
                 decode_tp=None, kv_bits=None, kv_keep=1.0, kv_remat=0.0, spec_tokens=0, spec_acceptance=0.0,
                 draft_cost=0.0, comm_overlap=0.0) -> ServingSpec:
    """A checked :class:`ServingSpec` from user-level choices (the ``diffsys serve`` flags).

    ``model``: a Hugging Face id of the catalogue, a ``config.json`` path, or a :class:`ModelArch`. In disagg mode
    ``decode_tp`` (default ``tp``) sets the decode workers' TP and ``prefill_tp`` (default ``tp``) the prefill
    workers'. Bad input raises ``ValueError`` naming the field: TP not dividing the attention heads, EP not
    dividing the experts, ``isl + osl`` beyond the model's context window, counts below 1. ``kv_bits`` ...
    ``comm_overlap``: the KV-compression, speculative-decoding and overlap knobs of :class:`ServingSpec`.
    """
    from ..hardware import preset
    from ..topologies import system_preset
    from ._catalog import model_arch

    arch = model if isinstance(model, ModelArch) else model_arch(model)
    check_choice("system", system, tuple(SYSTEMS))
    check_choice("backend", backend, BACKENDS)
    check_choice("precision", precision, PRECISIONS)
    check_choice("mode", mode, MODES)
    dis = mode == "disagg"
    tp = decode_tp if dis and decode_tp is not None else tp
    prefill_tp = tp if prefill_tp is None else prefill_tp
    prefill_ep = ep if prefill_ep is None else prefill_ep
    counts = dict(tp=tp, pp=pp, attention_dp=attention_dp, ep=ep, isl=isl, osl=osl, concurrency=concurrency,
                  prefill_workers=prefill_workers, prefill_tp=prefill_tp, prefill_attention_dp=prefill_attention_dp,
                  prefill_ep=prefill_ep, decode_workers=decode_workers)
    for name, v in counts.items():
        _check_count(name, v)
    tr = arch.transformer
    heads, experts, layers = int(tr.n_heads), int(tr.n_experts), int(tr.n_layers)
    for name, v in (("tp", tp), ("prefill_tp", prefill_tp)):
        if heads % int(v):
            raise ValueError(f"{name} ({v}) must divide the attention heads of {arch.hf_id} ({heads})")
    for name, v in (("ep", ep), ("prefill_ep", prefill_ep)):
        if int(v) > 1 and (experts <= 1 or experts % int(v)):
            raise ValueError(f"{name} ({v}) must divide the routed experts of {arch.hf_id} ({experts})")
    if layers % int(pp):
        raise ValueError(f"pp ({pp}) must divide the layers of {arch.hf_id} ({layers})")
    ctx = int(tr.max_seq_len)
    if int(isl) + int(osl) > ctx:
        raise ValueError(f"isl + osl ({int(isl) + int(osl)}) exceeds the context window of {arch.hf_id} ({ctx})")
    accel_name, system_name = SYSTEMS[system]
    gpus = int(tp) * int(pp) * int(attention_dp)
    nodes = max(1, -(-max(gpus, int(prefill_tp) * int(prefill_attention_dp)) // 8))
    kv = kv_dtype or ("fp8" if precision in ("fp8", "fp4") and backend == "trtllm" else "bf16")
    return ServingSpec(arch=arch, accel=preset(accel_name), system=system_preset(system_name, nodes=nodes),
                       tp=tp, pp=pp, adp=attention_dp, ep=ep, prefill_tp=prefill_tp,
                       prefill_adp=prefill_attention_dp, prefill_ep=prefill_ep, prefill_workers=prefill_workers,
                       decode_workers=decode_workers, disagg=1.0 if dis else 0.0, isl=isl, osl=osl,
                       concurrency=concurrency, precision=precision, kv_dtype=kv, kv_bits=kv_bits, kv_keep=kv_keep,
                       kv_remat=kv_remat, spec_tokens=spec_tokens, spec_acceptance=spec_acceptance,
                       draft_cost=draft_cost, comm_overlap=comm_overlap, **backend_constants(backend))
