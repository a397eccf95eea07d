"""LLM inference: prefill and decode with a KV cache on a TP/PP/EP replica, and continuous-batching steady state.

Sources:
- Prefill/decode costs and the KV cache (``2·b·s·L·h_kv·d`` elements): Pope et al., "Efficiently scaling
  transformer inference", MLSys 2023, Sec. 2-3. Every GEMM is timed by the roofline op model of the accelerator
  (:func:`diffsys.roofline.op_time`, the calibrated GEMM kernel model), the attention core by the calibrated
  attention kernels (:func:`diffsys.roofline.prefill_attention_time`, :func:`~diffsys.roofline.decode_attention_time`),
  so small-batch decode is bound by reading weights and KV cache from HBM and large-batch prefill by the matrix
  units.
- KV-cache quantisation and eviction/compression as continuous knobs: ``kv_bits`` (e.g. KIVI, Liu et al. 2024) and
  ``kv_keep_ratio`` — the fraction of cached tokens kept (H2O, Zhang et al. 2023; SnapKV, Li et al. 2024) — scale
  the cache size and its read traffic; their accuracy cost is outside this model.
- Continuous batching (Yu et al., "Orca", OSDI 2022; Agrawal et al., "Sarathi-Serve", OSDI 2024): at concurrency
  ``B`` with ``D`` output tokens per request, each iteration decodes ``B`` tokens and admits ``B/D`` new requests,
  whose prefill is amortised over the iteration: ``t_iter = t_decode + (B/D)·t_prefill(1 request)``.
- Collectives (TP all-reduce, EP all-to-all, PP send/recv) use :func:`diffsys.topologies.hierarchical_collective_time`
  on the cluster's network (NCCL algorithms and protocols; the low-latency tree/LL path dominates decode's small
  messages).
- MoE decode reads the distinct experts the batch activates, ``E·(1 - (1 - k/E)^B)`` per layer (uniform routing).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp

from .._checks import check_range
from .._pytree import as_float
from ..memory import kv_cache_bytes
from ..power import device_power
from ..primitives import relu
from . import _comm
from ..roofline import decode_attention_time, prefill_attention_time
from ._kernels import ACT_BYTES as _ACT_BYTES, gemm_roofline, gemm_s, memory_s
from ._parallel import Cluster, Parallelism
from ._workloads import Transformer


class Serving(eqx.Module):
    """A serving workload: ``batch`` concurrent sequences with ``prompt_len`` input and ``decode_len`` output tokens.

    ``kv_bits``: bits per cached K/V element (16 = bf16, 8, 4, ...). ``kv_keep_ratio``: fraction of the context kept
    in the cache after eviction/compression (1 = full cache). ``weight_bits``: bits per weight (16, 8, 4).
    ``prefill_chunk``: tokens per prefill chunk (chunked prefill bounds the activation working set).
    """

    batch: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    prompt_len: jnp.ndarray = eqx.field(converter=as_float, default=1024.0)
    decode_len: jnp.ndarray = eqx.field(converter=as_float, default=256.0)
    kv_bits: jnp.ndarray = eqx.field(converter=as_float, default=16.0)
    kv_keep_ratio: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    weight_bits: jnp.ndarray = eqx.field(converter=as_float, default=16.0)
    prefill_chunk: jnp.ndarray = eqx.field(converter=as_float, default=8192.0)

    def __check_init__(self):
        check_range("Serving.batch", self.batch, 1.0, None)
        check_range("Serving.prompt_len", self.prompt_len, 1.0, None)
        check_range("Serving.decode_len", self.decode_len, 1.0, None)
        check_range("Serving.kv_bits", self.kv_bits, 1.0, 32.0)
        check_range("Serving.kv_keep_ratio", self.kv_keep_ratio, 0.0, 1.0, lo_open=True)
        check_range("Serving.weight_bits", self.weight_bits, 1.0, 32.0)
        check_range("Serving.prefill_chunk", self.prefill_chunk, 1.0, None)


class InferenceMetrics(NamedTuple):
    """Serving metrics of one replica (``tp·pp`` GPUs; SI units)."""

    ttft_s: jnp.ndarray  # time to first token: prefill of the whole batch
    tpot_s: jnp.ndarray  # time per output token at mid-generation context
    prefill_s: jnp.ndarray
    decode_step_s: jnp.ndarray
    request_latency_s: jnp.ndarray  # ttft + decode_len · tpot (static batching)
    throughput_tokens_per_s: jnp.ndarray  # output tokens/s, static batching
    cb_iteration_s: jnp.ndarray  # continuous batching: one iteration (B decoded tokens + amortised prefill)
    cb_tokens_per_s: jnp.ndarray  # continuous-batching output tokens/s (steady state)
    cb_requests_per_s: jnp.ndarray
    weights_B: jnp.ndarray  # per GPU
    kv_cache_B: jnp.ndarray
    activations_B: jnp.ndarray
    memory_B: jnp.ndarray
    memory_capacity_B: jnp.ndarray
    fits: jnp.ndarray
    feasible: jnp.ndarray
    kv_read_fraction: jnp.ndarray  # share of decode HBM traffic that is the KV cache
    attention_time_fraction: jnp.ndarray  # share of decode time in the attention core
    decode_memory_bound: jnp.ndarray  # bool: decode GEMMs limited by HBM bandwidth
    mbu: jnp.ndarray  # decode memory-bandwidth utilisation (bytes moved / (time · peak bandwidth))
    power_W: jnp.ndarray  # replica
    energy_per_token_J: jnp.ndarray  # continuous batching steady state


def _layer(model: Transformer, cl: Cluster, par: Parallelism, tokens, batch, q_len, ctx, kv_bytes, keep, w_bytes,
           T, moe_experts_read, prefill: bool):
    """Time of one layer on one GPU for ``tokens = batch·q_len`` new tokens attending ``ctx`` cached positions
    (``prefill``: the ``q_len`` prompt tokens attend each other causally; else one decode step).

    Returns ``(time, attention_time, kv_bytes_read, weight_bytes_read, memory_bound_gemms)``."""
    h, qw, kvw = model.hidden, model.q_width, model.kv_width
    t, e = par.tp, par.ep
    net = cl.network
    fm = model.moe_fraction
    nmat = float(model.mlp_matrices)

    def gemm(m_, n_, k_, batch_=1.0):
        return gemm_roofline(m_, n_, k_, cl, batch=batch_, temperature=T, weight_bytes=w_bytes)

    ko = cl.kernel_overhead_s
    # projections (weights read once per step)
    r_qkv, r_o = gemm(tokens, (qw + 2 * kvw) / t, h), gemm(tokens, h, qw / t)
    t_attn_proj = r_qkv.time_s + r_o.time_s + 2 * ko
    w_attn = h * (qw + 2 * kvw) / t + qw * h / t
    r_dense = gemm(tokens, model.ffn / t, h)
    t_dense = nmat * (r_dense.time_s + ko)
    w_dense = nmat * h * model.ffn / t
    if model.is_moe:
        w_exp = nmat * h * model.expert_width / t
        routed = model.top_k * model.capacity_factor + model.n_shared_experts
        active = moe_experts_read / e + model.n_shared_experts  # distinct local experts whose weights are read
        w_read = w_exp * active
        r_moe = gemm(tokens * routed / active, model.expert_width / t, h, active)
        t_moe = nmat * (r_moe.time_s + ko)
        a2a = _comm.collective_time("all_to_all", tokens * model.top_k * h * _ACT_BYTES, net, e, t, T)
        t_mlp = (1 - fm) * t_dense + fm * (t_moe + 2 * a2a * jnp.minimum(relu(e - 1.0), 1.0))
        w_mlp_read = (1 - fm) * w_dense + fm * w_read
    else:
        t_mlp, w_mlp_read = t_dense, w_dense
    # attention core on the calibrated attention-kernel models (diffsys.roofline): a causal prefill of the fresh
    # prompts, or one decode step against the cache of ``ctx·keep`` tokens (eviction) at ``kv_bytes`` per element
    # (continuous KV precision: changes the bytes streamed, not the kernel's work split)
    heads = model.n_heads / t
    kv_heads = jnp.maximum(model.n_kv_heads / t, 1.0)  # K/V heads are replicated when tp exceeds their count
    kv_read = batch * ctx * keep * 2 * kvw / t * kv_bytes
    if prefill:
        core = prefill_attention_time(batch, q_len, heads, kv_heads, model.head_dim, cl.accelerator, cl.dtype,
                                      causal=True, temperature=T)
    else:
        core = decode_attention_time(batch, ctx * keep, heads, kv_heads, model.head_dim, cl.accelerator, cl.dtype,
                                     kv_bytes_per_element=kv_bytes, temperature=T)
    t_core = core.time_s + ko
    # tensor-parallel all-reduces (2 per layer)
    t_tp = 2 * _comm.collective_time("all_reduce", tokens * h * _ACT_BYTES, net, t, 1.0, T, par.tp_net)
    # elementwise: norms, residuals, activation (read+write of the token activations)
    t_elem = memory_s(_ACT_BYTES * tokens * (8 * h + 3 * model.ffn / t), cl, kernels=6.0, temperature=T)
    total = t_attn_proj + t_mlp + t_core + t_tp + t_elem
    mem_bound = ~r_qkv.compute_bound & ~r_dense.compute_bound
    return total, t_core, kv_read, w_bytes * (w_attn + w_mlp_read), mem_bound


@eqx.filter_jit
def inference_step(model: Transformer, cluster: Cluster, par: Parallelism, serving: Serving, *,
                   temperature=0.0) -> InferenceMetrics:
    """Prefill (TTFT), decode (TPOT), memory, throughput and energy of a ``tp·pp`` (``ep``) serving replica.

    ``jit``/``vmap``/``grad``-able in every numeric leaf, including the continuous KV knobs ``kv_bits`` and
    ``kv_keep_ratio``. Use :func:`diffsys.llm.check_sequence` (``prompt_len + decode_len``) to reject contexts
    beyond the model's ``max_seq_len`` with a clear message; memory overflow is a metric (``fits``), not an error.
    Compiled on its first call (``equinox.filter_jit``), like :func:`diffsys.llm.training_step`.
    """
    T = temperature
    L, h, V = model.n_layers, model.hidden, model.vocab
    t, p = par.tp, par.pp
    B, P, D = serving.batch, serving.prompt_len, serving.decode_len
    kv_b, keep, w_b = serving.kv_bits / 8.0, serving.kv_keep_ratio, serving.weight_bits / 8.0
    net = cluster.network
    bw = cluster.hbm_bandwidth_Bps
    E, k = model.n_experts, model.top_k

    def logits(tokens):  # last token of each sequence only
        return gemm_s(tokens, V / t, h, cluster, temperature=T, weight_bytes=w_b)

    def experts_read(tokens):
        return E * (1.0 - (1.0 - k / E) ** tokens)

    # ---- prefill: B·P tokens, causal attention over P/2 positions on average --------------------------------
    pre_layer, _, _, _, _ = _layer(model, cluster, par, B * P, B, P, 0.5 * P, _ACT_BYTES, 1.0, w_b, T,
                                   experts_read(B * P), True)
    logits_pre = logits(B)
    crosses = jnp.where(t * p > cluster.gpus_per_node, 1.0, 0.0)
    p2p_pre = _comm.p2p_time(B * P * h * _ACT_BYTES, crosses, net)
    prefill = L * pre_layer + logits_pre + (p - 1) * p2p_pre

    # ---- decode: B tokens at mid-generation context P + D/2 ------------------------------------------------
    ctx = P + 0.5 * D
    dec_layer, dec_core, kv_read, w_read, mem_bound = _layer(model, cluster, par, B, B, 1.0, ctx, kv_b, keep, w_b,
                                                             T, experts_read(B), False)
    logits_dec = logits(B)
    p2p_dec = _comm.p2p_time(B * h * _ACT_BYTES, crosses, net)
    decode = L * dec_layer + logits_dec + (p - 1) * p2p_dec

    # one request's prefill (for continuous batching admission)
    one_layer = _layer(model, cluster, par, P, 1.0, P, 0.5 * P, _ACT_BYTES, 1.0, w_b, T, experts_read(P), True)[0]
    prefill_one = L * one_layer + logits_pre + (p - 1) * p2p_pre
    cb_iter = decode + B / D * prefill_one

    # ---- memory per GPU ----------------------------------------------------------------------------------------
    fm = model.moe_fraction
    layer_params = (model.attention_params() + 4 * h + (1 - fm) * model.dense_mlp_params()
                    + fm * ((E / par.ep + model.n_shared_experts) * model.expert_params() + h * E)) / t
    emb = V * h / t * (1.0 if model.tied_embeddings else 2.0)
    weights_B = (L / p * layer_params + emb) * w_b
    kv_B = kv_cache_bytes(B, (P + D) * keep, L / p, model.n_kv_heads, model.head_dim, kv_b, tp=t)
    chunk = jnp.minimum(B * P, serving.prefill_chunk)
    acts_B = chunk * (4 * h + 2 * model.ffn / t) * _ACT_BYTES + B * V / t * 4.0  # prefill working set + logits
    memory_B = weights_B + kv_B + acts_B + cluster.memory_reserve_B
    cap = cluster.hbm_capacity_B
    fits = memory_B <= cap
    kv_frac_div = jnp.abs(model.n_kv_heads / t - jnp.round(model.n_kv_heads / t))
    divisible = (jnp.abs(model.n_heads / t - jnp.round(model.n_heads / t)) < 1e-4) \
        & (jnp.minimum(kv_frac_div, jnp.abs(t / model.n_kv_heads - jnp.round(t / model.n_kv_heads))) < 1e-4) \
        & (jnp.abs(L / p - jnp.round(L / p)) < 1e-4)

    # ---- derived -------------------------------------------------------------------------------------------------
    # all GPUs move L·(kv + w) bytes per step; p stages run in sequence for one batch
    mbu = L * (kv_read + w_read) / (p * decode * bw)
    # power: diffsys.power.device_power (the one device-power model) on the FLOPs and bytes one GPU runs in a
    # continuous-batching iteration (one decode step + B/D prefills), over the iteration time timed above
    flops_gpu = (B * model.forward_flops_per_token(ctx * keep)
                 + B / D * P * model.forward_flops_per_token(0.5 * P)) / (t * p)  # fwd FLOPs over the sequence
    bytes_gpu = L / p * (kv_read + w_read) + V * h / t * w_b + B / D * weights_B  # prefill reads the weights once
    power = t * p * device_power(cluster.accelerator, flops_gpu, bytes_gpu, dtype=cluster.dtype, time_s=cb_iter,
                                 temperature=T).power_W
    tput = B * D / (prefill + D * decode)
    cb_tput = B / cb_iter
    return InferenceMetrics(
        ttft_s=prefill, tpot_s=decode, prefill_s=prefill, decode_step_s=decode,
        request_latency_s=prefill + D * decode, throughput_tokens_per_s=tput, cb_iteration_s=cb_iter,
        cb_tokens_per_s=cb_tput, cb_requests_per_s=cb_tput / D, weights_B=weights_B, kv_cache_B=kv_B,
        activations_B=acts_B, memory_B=memory_B, memory_capacity_B=cap * jnp.ones_like(memory_B), fits=fits,
        feasible=fits & divisible, kv_read_fraction=kv_read / (kv_read + w_read),
        attention_time_fraction=L * dec_core / decode, decode_memory_bound=mem_bound, mbu=mbu, power_W=power,
        energy_per_token_J=power * cb_iter / B,
    )
