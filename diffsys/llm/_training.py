"""One training step of a transformer with TP/SP, PP (1F1B, interleaved), DP (ZeRO 0-3), CP and EP.

Formulas and sources:

- Per-layer matmul FLOPs: Narayanan et al., "Efficient large-scale language model training on GPU clusters using
  Megatron-LM", SC 2021 (Eq. 3: ``24 b s h² + 4 b s² h`` per layer forward, backward twice the forward), generalised
  to GQA/SwiGLU/MoE (see :mod:`._workloads`). Each GEMM is timed by the roofline op model of the accelerator
  (:func:`diffsys.roofline.op_time` of :func:`diffsys.roofline.gemm`, the calibrated GEMM kernel model; fused
  attention by :func:`diffsys.roofline.prefill_attention_time`) plus the cluster's per-kernel framework overhead; elementwise kernels
  (LayerNorm, dropout, residual, activation, softmax) are memory-bound ops of the same model, their traffic the
  activation accounting below times ``Cluster.elementwise_traffic``.
- Pipeline: 1F1B step ``(m + (p-1)/v) · (t_f + t_b)`` with ``m`` microbatches and ``v`` virtual stages; bubble
  fraction ``(p-1)/(v·m)`` (Narayanan et al. 2021, Sec. 2.2). Point-to-point activations ``b·s·h`` (``/t`` with the
  scatter-gather optimisation) per microbatch and direction on the critical path.
- Tensor parallelism: 2 all-reduces per layer in the forward and 2 in the backward of ``b·s·h`` elements
  (Shoeybi et al. 2019), or the equivalent reduce-scatter + all-gather pairs with sequence parallelism
  (Korthikanti et al., "Reducing activation recomputation in large transformer models", MLSys 2023); full
  recompute repeats the forward's. ``tp_overlap`` hides a fraction.
- Data parallelism: gradient all-reduce (ZeRO-1/2: reduce-scatter + parameter all-gather, same volume; ZeRO-3 adds a
  parameter all-gather per microbatch in forward and backward, 1.5× volume with one microbatch) — Rajbhandari et al.,
  "ZeRO: memory optimizations toward training trillion parameter models", SC 2020, Sec. 5-7. ``dp_overlap`` hides a
  fraction behind the last microbatch's backward.
- Every collective (and the pipeline's point-to-point) is timed by
  :func:`diffsys.topologies.hierarchical_collective_time` on ``cluster.network``, the group placed on the
  scale-up/scale-out dimensions by Megatron's rank order (:mod:`._comm`).
- Expert parallelism: token dispatch + combine all-to-all per MoE layer forward, twice in backward (Lepikhin et al.,
  "GShard", ICLR 2021). Context parallelism: ring exchange of K/V chunks overlapped with attention (Liu et al.,
  "Ring attention", 2023), load-balanced as Megatron-Core runs it (the sequence in 2·cp chunks, rank i holding
  chunks i and 2cp-1-i, one fused-attention call per chunk pair; Megatron-Core context-parallelism docs).
- Memory per GPU: weights 2 B/param, gradients ``grad_bytes`` B/param, Adam mixed-precision state 12 B/param (fp32
  master + two moments), ZeRO sharding by ``dp`` (Rajbhandari et al. 2020, Fig. 1); activations per layer
  ``s b h (34 + 5 a s / h)`` bytes split into TP-sharded and replicated parts, selective recompute dropping the
  ``5 a s² b`` term, full recompute keeping ``2 s b h`` per layer (Korthikanti et al. 2023, Eq. 1-6 and Table 2),
  times the in-flight microbatches of 1F1B (``p``, ``× (1 + (p-1)/(p v))`` interleaved, ibid. Sec. 4.2.3).
- Offload to a second memory tier: fraction of weights/activations/optimizer state moved there, the traffic
  streamed over its link concurrently with compute (Isaev et al., "Calculon", SC 2023, Sec. 3.5).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp

from .._pytree import concretely_zero, jit_when_eager
from ..memory import gradients_bytes, optimizer_state_bytes, weights_bytes
from ..power import scale_clock
from ..primitives import relative_temperature, relu, smooth_max, smooth_min
from . import _comm
from ..roofline import prefill_attention_time
from ._kernels import ACT_BYTES as _ACT_BYTES, gemm_s, memory_s
from ._parallel import Cluster, Parallelism, choice_weights
from ._workloads import Transformer
_OPT_TRAFFIC = 30.0  # Adam step traffic per local parameter: read p32,m,v,g32 (16), write p32,m,v (12), p16 (2)
_FWD_KERNELS = 14.0  # kernels per layer forward: 6 GEMMs + 8 fused elementwise/normalisation kernels


class TrainingMetrics(NamedTuple):
    """Metrics of one training step (per GPU where it says so; SI units)."""

    time_s: jnp.ndarray  # step time
    compute_fwd_s: jnp.ndarray  # forward compute, all microbatches, critical stage
    compute_bwd_s: jnp.ndarray  # backward compute
    recompute_s: jnp.ndarray  # activation recomputation
    tp_comm_s: jnp.ndarray  # exposed tensor-parallel communication (re-communication included)
    tp_recomm_s: jnp.ndarray  # the share of tp_comm_s that re-communicates (full recompute, seq_par_ag_redo)
    tp_comm_link_s: jnp.ndarray  # TP collectives on the link, hidden or not (re-communication excluded)
    tp_recomm_link_s: jnp.ndarray  # TP re-communication on the link
    cp_comm_s: jnp.ndarray  # exposed context-parallel communication
    ep_comm_s: jnp.ndarray  # exposed expert-parallel all-to-all
    pp_comm_s: jnp.ndarray  # pipeline point-to-point on the critical path
    bubble_s: jnp.ndarray  # pipeline fill/drain
    dp_comm_s: jnp.ndarray  # exposed data-parallel / ZeRO communication
    dp_comm_link_s: jnp.ndarray  # data-parallel / ZeRO collectives on the link, hidden or not
    optimizer_s: jnp.ndarray  # optimizer step
    offload_s: jnp.ndarray  # exposed second-tier traffic
    weights_B: jnp.ndarray  # per-GPU memory by kind
    gradients_B: jnp.ndarray
    optimizer_B: jnp.ndarray
    activations_B: jnp.ndarray
    embedding_B: jnp.ndarray  # share of weights/gradients/optimizer that belongs to the embedding tables
    logits_B: jnp.ndarray  # share of activations that is the last stage's fp32 logits
    memory_B: jnp.ndarray  # total per-GPU HBM requirement
    memory_capacity_B: jnp.ndarray
    offload_B: jnp.ndarray  # bytes held in the second tier per GPU
    memory_violation: jnp.ndarray  # relative excess over capacity (0 when it fits)
    divisibility_violation: jnp.ndarray  # sum of fractional remainders of the parallel degrees (0 when exact)
    divisible: jnp.ndarray  # bool
    fits: jnp.ndarray  # bool
    feasible: jnp.ndarray  # bool: divisible and fits
    n_microbatches: jnp.ndarray
    tokens_per_s: jnp.ndarray
    model_flops: jnp.ndarray  # per step, whole job (3 × forward)
    mfu: jnp.ndarray  # model FLOPs utilisation
    hfu: jnp.ndarray  # hardware FLOPs utilisation (recompute included)
    tflops_per_gpu: jnp.ndarray  # achieved model TFLOP/s per GPU
    power_W: jnp.ndarray  # whole job
    energy_J: jnp.ndarray  # per step, whole job
    cost_usd: jnp.ndarray  # per step, whole job


def _frac(x):
    """Distance of ``x`` to the nearest integer (0 when integral)."""
    return jnp.abs(x - jnp.round(x))


def _indicator_gt1(x, temperature):
    """``1`` when ``x >= 2`` and ``0`` at ``x = 1`` (``min(x - 1, 1)``, smooth at temperature > 0)."""
    return smooth_min(relu(x - 1.0), 1.0, temperature)


def layer_activation_bytes(model: Transformer, tokens, batch, seq_q, seq_kv, tp, sp, flash, ag_redo=1.0):
    """Korthikanti et al. (2023) per-layer activation bytes, generalised to GQA/MLA/SwiGLU/MoE.

    Returns ``(full, selective, checkpoint)``: the stored activations with no recompute, with selective recompute
    (the ``5 a s² b`` attention-core term dropped) and with full recompute (the layer input only).
    ``tokens = batch · seq_q`` are the local tokens; ``sp`` in [0, 1] selects sequence parallelism. ``ag_redo = 0``
    (with sequence parallelism) keeps the all-gathered QKV and fc1 inputs (``2·2h`` per token, unsharded) instead of
    redoing their all-gathers in the backward pass (Korthikanti et al. 2023, Sec. 4.2.2; Calculon's
    ``seq_par_ag_redo``).
    """
    h = model.hidden
    q_w, k_w, v_w, o_w = model.attention_widths
    fm = model.moe_fraction
    ffn_eff = (1 - fm) * model.ffn + fm * model.expert_width * (model.top_k * model.capacity_factor
                                                                 + model.n_shared_experts)
    act_in = (4.0 if model.mlp == "swiglu" else 2.0) * ffn_eff  # GeLU input (2f) or gate+up (4f)
    # Korthikanti Eq. 2: attention 11 sbh (+5 a s² b), MLP 19 sbh, LayerNorms 4 sbh; replicated without SP: 10 sbh.
    replicated = tokens * (4.0 * h + 2.0 * h + 2.0 * h + 2.0 * h)  # 2 LN in (4h), QKV in (2h), fc1 in (2h), masks 2h
    sharded = tokens * 2 * (q_w + k_w + v_w + o_w + 0.5 * act_in + ffn_eff)  # Q,K,V, proj in, act in, fc2 in
    if model.is_mla:  # the up-projections' inputs, the query and key/value latents, are whole on every rank
        sharded = sharded + tokens * 2 * (model.q_lora_rank + model.kv_lora_rank + model.qk_rope_head_dim) * tp
    scores = batch * model.n_heads * seq_q * seq_kv * 5.0 * (1 - flash)  # softmax out 2, mask 1, dropout out 2
    rep = sp / tp + (1 - sp)
    gathered = tokens * 4.0 * h * sp * (1 - ag_redo) * (1 - 1 / tp)  # the gathered QKV/fc1 inputs kept unsharded
    full = replicated * rep + sharded / tp + scores / tp + gathered
    selective = replicated * rep + sharded / tp + gathered
    checkpoint = tokens * 2.0 * h * rep
    return full, selective, checkpoint


def _quantization_s(model: Transformer, cluster: Cluster, tokens, tp, sp, mem):
    """Forward and backward time of one layer's quantisation kernels under an FP8/FP4 recipe (0 for BF16).

    Each low-precision GEMM reads its activation operand in the two layouts its GEMMs need (row-wise for the
    forward and dgrad GEMMs, column-wise for the wgrad GEMM; Hopper's FP8 tensor cores take only the TN layout),
    ``q = Cluster.low_precision_bytes`` per element each (NVIDIA Transformer Engine 1.x: ``LayerNormLinear`` /
    ``LayerNormMLP`` normalise, and the MLP activation and its gradient compute, straight into the low precision,
    then transpose; the other operands go through ``fp8_cast_transpose``; with sequence parallelism the output
    gradient of a row-parallel layer is cast on its ``1/t`` shard, gathered in the low precision and transposed):

    - a fused producer writes the row-wise copy in place of its BF16 output, and a transpose reads it and writes
      the column-wise one: ``2q`` bytes per element (the QKV and fc1 inputs, the fc2 input, fc1's output gradient);
    - a BF16 tensor is cast and transposed: ``2 + 2q`` bytes (the projection input, QKV's output gradient, and the
      output gradients of fc2 and of the projection without sequence parallelism; with it ``(2 + q)/t + 2q``).

    Per token: forward ``2q·(2h + f) + (2 + 2q)·a_q`` with ``f`` the MLP width per rank and ``a_q`` the query width
    per rank, four kernels; backward ``2q·(n-1)·f + c·2h + (2 + 2q)·a_qkv`` (``n`` MLP matrices, ``a_qkv`` the QKV
    output width per rank, ``c`` the row-parallel gradient's bytes above), four kernels. Weights are quantised once
    per step (their cached copies, :attr:`Cluster.weight_cache_bytes`), not modelled as time.
    """
    q = cluster.low_precision_bytes
    if q >= _ACT_BYTES:
        return 0.0, 0.0
    h, fm = model.hidden, model.moe_fraction
    routed = model.top_k * model.capacity_factor
    ffn = ((1 - fm) * model.ffn + fm * model.expert_width * (routed + model.n_shared_experts)) / tp
    fc1_in = h * ((1 - fm) + fm * (routed + model.n_shared_experts))
    q_w, k_w, v_w, o_w = model.attention_widths
    q_width = o_w / tp  # the projection's input
    qkv_out = (q_w + k_w + v_w) / tp
    fused, cast = 2 * q, _ACT_BYTES + 2 * q
    row_parallel_grad = sp * ((_ACT_BYTES + q) / tp + 2 * q) + (1 - sp) * cast
    fwd = tokens * (fused * (h + fc1_in + ffn) + cast * q_width)
    bwd = tokens * (fused * (model.mlp_matrices - 1) * ffn + row_parallel_grad * (h + fc1_in) + cast * qkv_out)
    return mem(fwd, 4.0), mem(bwd, 4.0)


def _at_sustained_clock(cluster: Cluster) -> Cluster:
    """``cluster`` with its accelerator at ``cluster.sustained_clock`` (:func:`diffsys.power.scale_clock`: matrix
    and vector peaks and on-chip memories scale with the clock; HBM, links and power spec do not)."""
    if concretely_zero(cluster.sustained_clock - 1.0):
        return cluster
    acc = cluster.accelerator
    return eqx.tree_at(lambda c: c.accelerator, cluster,
                       scale_clock(acc, acc.frequency_Hz * cluster.sustained_clock))


@jit_when_eager
def training_step(model: Transformer, cluster: Cluster, par: Parallelism, *, temperature=0.0) -> TrainingMetrics:
    """Step time, breakdown, per-GPU memory, feasibility, MFU/HFU, throughput, energy and cost of one step.

    Everything is float arithmetic on the spec leaves, so the function is ``jit``/``vmap``/``grad``-able; parallel
    degrees may be relaxed (non-integers) and ``temperature > 0`` smooths the few ``min``/``max``/one-hot choices.
    Use :func:`diffsys.llm.check_parallelism` to reject inconsistent concrete inputs with a clear message.
    Kernels are timed by :func:`diffsys.roofline.op_time` on ``cluster.accelerator``, collectives by
    :func:`diffsys.topologies.hierarchical_collective_time` on ``cluster.network``. The function is compiled on
    its first call (``equinox.filter_jit``: array leaves traced, everything else static), so a direct call costs
    one compilation instead of thousands of eager kernel dispatches. Inside ``jit``/``vmap``/``grad`` (any leaf a
    tracer) it is traced inline, so the leaves a sweep leaves at their base values stay concrete and the terms they
    weight by a structural zero (a CP group of 1, the unused attention path, a fused activation) are not traced at
    all (``diffsys._pytree.concretely_zero``, ``jit_when_eager``; the results are identical).
    """
    T = temperature
    h, L, V, s = model.hidden, model.n_layers, model.vocab, model.seq_len
    q_w, k_w, v_w, o_w = model.attention_widths
    nmat = float(model.mlp_matrices)
    fm = model.moe_fraction
    t, p, d, c, e = par.tp, par.pp, par.dp, par.cp, par.ep
    b, B, v = par.microbatch, par.global_batch, par.interleave
    sp, fl = par.sequence_parallel, par.flash_attention
    w_rc = choice_weights(par.recompute, 3, T)
    w_z = choice_weights(par.zero_stage, 4, T)
    zero_ge1, zero_ge2, zero3 = w_z[..., 1] + w_z[..., 2] + w_z[..., 3], w_z[..., 2] + w_z[..., 3], w_z[..., 3]

    peak = cluster.peak_flops  # nominal: MFU and HFU count against the datasheet peak
    cluster = _at_sustained_clock(cluster)
    net = cluster.network
    N = cluster.gpus_per_node

    def mem(bytes_, kernels):
        return memory_s(bytes_, cluster, kernels=kernels, temperature=T)

    m = B / (d * b)  # microbatches per pipeline per step
    sl = s / c  # local sequence (context parallel)
    Tl = b * sl  # local tokens per microbatch
    Ls = L / p  # layers per device
    # keys each query attends to: the sequence, or its own document when documents are packed (block-diagonal
    # attention, Krell et al. 2021): ``s / span`` causal squares of side ``span`` per sequence
    doc = par.document_length
    span = jnp.where(doc > 0, jnp.minimum(doc, s), s)

    # ---- per-layer forward compute (one microbatch, one GPU) -------------------------------------------------
    ffn_e = model.expert_width
    routed = model.top_k * model.capacity_factor
    heads_l = model.n_heads / t
    if model.is_mla:
        # MLA (DeepSeek-V2 Sec. 2.1; Megatron-Core's MLA layer): the query and key/value down-projections are
        # replicated on every TP rank, their up-projections column-parallel; after them every head has its own K/V
        # (an MHA core) of widths d_qk (scores) and d_v (values)
        d_qk, d_v = model.qk_nope_head_dim + model.qk_rope_head_dim, model.v_head_dim
        kv_heads_l = heads_l
        attn_in = [(Tl, model.kv_lora_rank + model.qk_rope_head_dim, h, 1.0),
                   (Tl, heads_l * (model.qk_nope_head_dim + d_v), model.kv_lora_rank, 1.0)]
        weights_in = [1.0]
        # a query latent of rank 0 is a direct projection (DeepSeek-V2-Lite); the path a concrete rank does not
        # take is not traced
        latent = jnp.where(model.q_lora_rank > 0, 1.0, 0.0)
        if not concretely_zero(latent):
            attn_in += [(Tl, model.q_lora_rank, h, 1.0), (Tl, heads_l * d_qk, model.q_lora_rank, 1.0)]
            weights_in += [latent, latent]
        if not concretely_zero(1.0 - latent):
            attn_in += [(Tl, heads_l * d_qk, h, 1.0)]
            weights_in += [1.0 - latent]
    else:
        d_qk = d_v = model.head_dim
        kv_heads_l = jnp.maximum(model.n_kv_heads / t, 1.0)  # K/V heads are replicated when tp exceeds their count
        attn_in, weights_in = [(Tl, q_w / t + 2 * kv_heads_l * model.head_dim, h, 1.0)], []
    # the GEMMs of the step (m, n, k, batch): QKV, QKᵀ, AV (batched over the b·a/t local heads), projection, MLP,
    # logits [, routed experts, shared experts, router]; one scalar call of the kernel model each. A stacked call
    # (the GEMMs on a new axis, one vectorized kernel model) traces 10x faster but runs 15-30x slower under vmap on
    # XLA:CPU (measured, benchmarks/bench_llm.py; BENCHMARKS.md): the stacked axis becomes the minor dimension of
    # every intermediate, so the loops no longer vectorize across design points
    shapes = [attn_in[0], (sl, span, d_qk, b * heads_l), (sl, d_v, span, b * heads_l), (Tl, h, o_w / t, 1.0),
              (Tl, model.ffn / t, h, 1.0), (Tl, V / t, h, 1.0)]
    if model.is_moe:
        shapes += [(Tl * routed, ffn_e / t, h, 1.0), (Tl * model.n_shared_experts, ffn_e / t, h, 1.0),
                   (Tl, model.n_experts, h, 1.0)]
    n_core = len(shapes)
    shapes += attn_in[1:]  # the further attention-input GEMMs of MLA
    # under an FP8/FP4 recipe only the linear layers run in the low precision; the attention-core GEMMs (1, 2) and
    # the output layer (5) stay in BF16 (precision_recipe)
    hi = cluster.attention_dtype
    unfused_attention = 1 - fl
    # the linear layers' operands arrive quantised by the recipe's own kernels (_quantization_s), so the GEMM
    # kernel model's dynamic quantisation pass is not charged a second time
    te_quantized = cluster.low_precision_bytes < _ACT_BYTES
    t_g = [0.0 if i in (1, 2) and concretely_zero(unfused_attention) else
           gemm_s(m_, n_, k_, cluster, batch=bt, temperature=T, dtype=hi if i in (1, 2, 5) else None,
                  quantize_input=not (te_quantized and i not in (1, 2, 5)))
           for i, (m_, n_, k_, bt) in enumerate(shapes)]
    t_qkv = t_g[0] + sum(w * tg for w, tg in zip(weights_in, t_g[n_core:]))
    t_proj, t_logits_gemm = t_g[3], t_g[5]
    # attention core: QKᵀ and AV as GEMMs, the scores going through HBM; fused (flash) attention is the calibrated
    # causal prefill-attention kernel (diffsys.roofline) over the ``s / span`` causal squares of side ``span``
    t_scores_unfused = t_g[1] + t_g[2]
    docs = b * s / span

    def fused_attention_s(n, side, causal, backward):
        return prefill_attention_time(n, side, heads_l, kv_heads_l, 0.5 * (d_qk + d_v), cluster.accelerator,
                                      cluster.attention_dtype, causal=causal, backward=backward,
                                      temperature=T).time_s

    def flash_s(backward):
        """One microbatch's fused-attention calls of one layer, forward or backward pass."""
        t_f = fused_attention_s(docs, span, True, backward) / c + cluster.kernel_overhead_s
        if concretely_zero(c - 1):
            return t_f
        # context parallelism, load-balanced (Megatron-Core / Transformer Engine P2P ring): each sequence is cut
        # into 2c chunks of ``span / 2c`` and rank i holds chunks i and 2c-1-i; over the c ring steps it runs one
        # fused call per chunk pair: its two diagonal squares causal, the other 2c-1 full (the same FLOPs as 1/c
        # of the causal square, on c-times-smaller kernels); blended in from c = 1 to 2
        side = span / (2 * c)
        t_cp = fused_attention_s(2 * docs, side, True, backward) \
            + fused_attention_s((2 * c - 1) * docs, side, False, backward) + 2 * c * cluster.kernel_overhead_s
        w_cp = _indicator_gt1(c, T)
        return (1 - w_cp) * t_f + w_cp * t_cp

    # the backward of an unfused core is two GEMMs per forward GEMM; the fused kernel's own backward pass
    # (roofline.prefill_attention_time(backward=True): 5 block GEMMs against the forward's 2, FlashAttention-2
    # Algorithm 2)
    t_flash_fwd, t_flash_bwd = (0.0, 0.0) if concretely_zero(fl) else (flash_s(False), flash_s(True))
    t_scores = unfused_attention * t_scores_unfused + fl * t_flash_fwd
    t_scores_bwd = unfused_attention * 2.0 * t_scores_unfused + fl * t_flash_bwd
    t_mlp_dense = nmat * t_g[4]
    if model.is_moe:
        t_mlp_moe = nmat * (t_g[6] + t_g[7]) + t_g[8]
        t_mlp = (1 - fm) * t_mlp_dense + fm * t_mlp_moe
    else:
        t_mlp = t_mlp_dense
    t_gemm_fwd = t_qkv + t_scores + t_proj + t_mlp

    act_full, act_sel, act_ckpt = layer_activation_bytes(model, Tl, b, sl, span, t, sp, fl, par.seq_par_ag_redo)
    # elementwise kernels: the layer's stored activations times the traffic each stored byte costs
    elem_bytes = act_full * cluster.elementwise_traffic
    score_bytes = b * heads_l * sl * span * 5.0 * (1 - fl)
    t_elem_fwd = mem(elem_bytes, _FWD_KERNELS - 6.0)
    # an unfused MLP activation is a memory-bound kernel of its own: forward reads its input ((nmat-1)·f per token)
    # and writes f; backward reads the input and the output gradient and writes the input gradient (PyTorch's
    # gelu_backward(grad, input); Calculon's ``fused_activation``, Isaev et al. 2023)
    ffn_tok = (1 - fm) * model.ffn + fm * ffn_e * (routed + model.n_shared_experts)
    unfused = 1 - par.fused_activation
    act_elems = Tl * ffn_tok / t * _ACT_BYTES
    if concretely_zero(unfused):
        t_act_fwd = t_act_bwd = 0.0
    else:
        t_act_fwd = unfused * mem(nmat * act_elems, 1.0)
        t_act_bwd = unfused * mem((2 * nmat - 1) * act_elems, 1.0)
    t_quant_fwd, t_quant_bwd = _quantization_s(model, cluster, Tl, t, sp, mem)
    t_layer_fwd = t_gemm_fwd + t_elem_fwd + t_act_fwd + t_quant_fwd
    t_layer_bwd = 2.0 * (t_gemm_fwd - t_scores) + t_scores_bwd + 2.0 * t_elem_fwd + t_act_bwd + t_quant_bwd
    t_layer_attn_core = t_scores + mem(score_bytes * cluster.elementwise_traffic, 2.0)

    # ---- parameters (for the data-parallel messages) --------------------------------------------------------
    dense_mlp = model.dense_mlp_params()
    moe_local = (model.n_experts / e + model.n_shared_experts) * model.expert_params() + h * model.n_experts
    attn_rep = model.attention_replicated_params()  # whole on every TP rank (MLA's down-projections)
    layer_local = (model.attention_params() - attn_rep + 4 * h + (1 - fm) * dense_mlp + fm * moe_local) / t \
        + attn_rep
    p1 = 1.0 - _indicator_gt1(p, T)  # 1 when a single stage holds both ends
    emb_local = V * h / t * (1.0 + (0.0 if model.tied_embeddings else 1.0) * p1)
    params_local = Ls * layer_local + emb_local
    grad_msg = params_local * _ACT_BYTES

    # ---- collectives (topologies model) -------------------------------------------------------------------
    act_msg = Tl * h * _ACT_BYTES
    kv_msg = b * sl * (k_w + v_w) / t * _ACT_BYTES * c  # all-gather of the K/V chunks (output buffer)
    dp_stride = t * c
    # TP all-reduce (Shoeybi et al. 2019); with sequence parallelism a reduce-scatter + all-gather pair of the same
    # buffer (Korthikanti et al. 2023), timed as the all-reduce it decomposes (NCCL's ring all-reduce is exactly
    # that pair: the same bytes and steps; Patarasuk & Yuan 2009). DP: the gradient all-reduce (ZeRO-1/2: its
    # reduce-scatter + parameter all-gather halves, the same); ZeRO-3 parameter all-gathers; CP K/V all-gather.
    tp_coll, dp_ar = _comm.collective_times("all_reduce", net, (act_msg, grad_msg), (t, d), (1.0, dp_stride), T,
                                            (par.tp_net, par.dp_net))
    # a CP group of one exchanges nothing (the collective model returns exactly 0 there)
    cp_coll = 0.0 if concretely_zero(c - 1) else _comm.collective_time("all_gather", kv_msg, net, c, t, T)
    dp_ag, tp_ag = _comm.collective_times("all_gather", net, (grad_msg, act_msg), (d, t), (dp_stride, 1.0), T,
                                          (par.dp_net, par.tp_net))
    # two collectives per pass, each may hide behind half of the layer's GEMMs (Wang et al., "Overlap
    # communication with dependent computation via decomposition", ASPLOS 2023)
    ov_tp = par.tp_overlap
    def tp_exposed_s(coll):
        return (1 - ov_tp) * coll + relu(ov_tp * coll - 0.5 * t_gemm_fwd, relative_temperature(T, t_gemm_fwd))

    # under an FP8/FP4 recipe every sequence-parallel all-gather moves the quantised tensor: forward the QKV and
    # fc1 inputs (Transformer Engine's LayerNormLinear / LayerNormMLP normalise straight into the low precision and
    # gather that), backward the row-parallel layers' output gradients (cast on the shard, then gathered); the
    # reduce-scatters stay in BF16
    q = cluster.low_precision_bytes
    if q != _ACT_BYTES:
        tp_ag_lp = _comm.collective_time("all_gather", act_msg * q / _ACT_BYTES, net, t, 1.0, T, par.tp_net)
        tp_coll = tp_coll - sp * (tp_ag - tp_ag_lp)
    else:
        tp_ag_lp = tp_ag
    tp_exposed = tp_exposed_s(tp_coll)
    tp_fwd, tp_bwd = 2 * tp_exposed, 2 * tp_exposed
    # sequence parallelism redoing the QKV and fc1 input all-gathers in the backward (Korthikanti et al. 2023,
    # Sec. 4.2.2); full recompute regathers them in its recomputed forward anyway
    tp_redo = sp * par.seq_par_ag_redo * 2 * tp_exposed_s(tp_ag_lp)

    a2a_msg = Tl * routed * h * _ACT_BYTES * (sp / t + (1 - sp))
    if model.is_moe:
        ep_coll = _comm.collective_time("all_to_all", a2a_msg, net, e, t * c, T) * _indicator_gt1(e, T)
    else:
        ep_coll = jnp.zeros_like(tp_coll)
    ep_fwd, ep_bwd = fm * 2 * ep_coll, fm * 4 * ep_coll

    cp_fwd = relu(cp_coll - t_scores, relative_temperature(T, t_layer_fwd))
    cp_bwd = relu(2 * cp_coll - t_scores_bwd, relative_temperature(T, t_layer_fwd))

    # ---- stage time per microbatch ---------------------------------------------------------------------------
    rc_none, rc_sel, rc_full = w_rc[..., 0], w_rc[..., 1], w_rc[..., 2]
    t_logits_fwd = t_logits_gemm + mem(Tl * V / t * 4.0 * 2, 1.0)  # logits GEMM + fp32 softmax traffic
    # a forward-only batch (training = 0) has no backward pass, recompute or re-communication
    tr = par.training
    f_comp = Ls * t_layer_fwd + t_logits_fwd
    b_comp = tr * (Ls * t_layer_bwd + 2 * t_logits_fwd)
    r_comp = tr * Ls * (rc_full * t_layer_fwd + rc_sel * t_layer_attn_core)
    recomm_tp = Ls * tr * (rc_full * tp_fwd + (1 - rc_full) * tp_redo)
    comm_tp = Ls * (tp_fwd + tr * tp_bwd) + recomm_tp
    # the same collectives before any overlap hides them (Calculon's ``*_link_time``)
    link_tp = Ls * (1 + tr) * 2 * tp_coll
    link_recomm = Ls * tr * (rc_full * 2 * tp_coll + (1 - rc_full) * sp * par.seq_par_ag_redo * 2 * tp_ag_lp)
    comm_ep = Ls * (ep_fwd + tr * (ep_bwd + rc_full * ep_fwd))
    comm_cp = Ls * (cp_fwd + tr * (cp_bwd + rc_full * cp_fwd))
    t_mb = f_comp + b_comp + r_comp + comm_tp + comm_ep + comm_cp  # one microbatch through one stage, fwd+bwd

    pp_on = _indicator_gt1(p, T)
    sg = sp + (1 - sp) * par.pp_scatter_gather  # scatter-gather (Narayanan et al. 2021, Sec. 4.1) or SP: split
    pp_msg = Tl * h * _ACT_BYTES * (sg / t + (1 - sg))
    pp_stride = t * c * d
    crosses = jnp.where(par.pp_net < -0.5, jnp.where(pp_stride * p > N, 1.0, 0.0),  # spans nodes: slowest hop
                        jnp.clip(par.pp_net, 0.0, 1.0))
    t_p2p = _comm.p2p_time(pp_msg, crosses, net)
    # activations forward, their gradients backward; an overlapped transfer (Megatron-Core's overlap_p2p_comm) is
    # waited for one model chunk later, so only what exceeds that chunk's compute stays exposed
    ov_pp = par.pp_overlap

    def p2p_exposed_s(window):
        return (1 - ov_pp) * t_p2p + relu(ov_pp * t_p2p - window, relative_temperature(T, window))

    pp_comm = pp_on * v * m * (p2p_exposed_s(f_comp / v) + tr * p2p_exposed_s(b_comp / v))
    bubble = (p - 1) / v * t_mb
    pipeline = m * t_mb + bubble + pp_comm

    # ---- data parallelism ------------------------------------------------------------------------------------
    dp_grad = dp_ar
    dp_gather3 = zero3 * 2.0 * m * dp_ag  # ZeRO-3 parameter all-gather per microbatch, forward and backward
    window_grad = Ls * t_layer_bwd  # last microbatch's backward
    window_gather = m * t_mb
    ov = par.dp_overlap
    dp_exposed = tr * ((1 - ov) * (dp_grad + dp_gather3)
                       + relu(ov * dp_grad - window_grad, relative_temperature(T, window_grad))
                       + relu(ov * dp_gather3 - window_gather, relative_temperature(T, window_grad)))

    # ---- optimizer step and offload --------------------------------------------------------------------------
    opt_params = params_local / (1 + zero_ge1 * (d - 1))
    x_w, x_a, x_o = par.weight_offload, par.activation_offload, par.optimizer_offload
    off_bw = cluster.offload_bandwidth_Bps
    optimizer = tr * (mem((1 - x_o) * opt_params * _OPT_TRAFFIC, 12.0)
                      + x_o * opt_params * (_OPT_TRAFFIC + 4.0) / off_bw)

    # ---- memory per GPU ---------------------------------------------------------------------------------------
    # bf16 weights plus the quantised copies of an FP8/FP4 recipe (precision_recipe; 0 B for bf16)
    weights_all = weights_bytes(params_local, _ACT_BYTES + cluster.weight_cache_bytes, shards=1 + zero3 * (d - 1))
    grads_all = tr * gradients_bytes(params_local, par.grad_bytes, shards=1 + zero_ge2 * (d - 1))
    optim_all = tr * optimizer_state_bytes(params_local, "adam", master_weights=True, shards=1 + zero_ge1 * (d - 1))
    in_flight = smooth_min(m, p, relative_temperature(T, p)) \
        * (1 + (p - 1) / (p * v) * smooth_min(relu(v - 1.0), 1.0, T))
    stored_layer = rc_none * act_full + rc_sel * act_sel + rc_full * act_ckpt
    # the first stage holds ``in_flight`` microbatches, the last one a single microbatch plus the fp32 logits
    # (b·s·V/t·4 B); both hold the working set of one recomputed layer and two activation-gradient buffers
    logits_B = Tl * V / t * 4.0
    common = rc_full * act_full + act_msg * 2.0
    acts_first = stored_layer * Ls * in_flight + common + p1 * logits_B
    acts_last = stored_layer * Ls + common + logits_B
    acts_train = smooth_max(acts_first, acts_last, relative_temperature(T, acts_first))
    # forward only: one layer's activations in flight, the stage's input/output buffers and the last logits
    acts_all = tr * acts_train + (1 - tr) * (act_full + act_msg * 2.0 + logits_B)
    weights_B, gradients_B = weights_all * (1 - x_w), grads_all
    optimizer_B, activations_B = optim_all * (1 - x_o), acts_all * (1 - x_a)
    offload_B = weights_all * x_w + optim_all * x_o + acts_all * x_a
    embedding_B = emb_local / params_local * (weights_B + gradients_B + optimizer_B)
    logits_share = jnp.where(acts_last >= acts_first, logits_B, p1 * logits_B) * (1 - x_a)
    memory_B = weights_B + gradients_B + optimizer_B + activations_B + cluster.memory_reserve_B
    capacity = cluster.hbm_capacity_B
    fits = (memory_B <= capacity) & (offload_B <= cluster.offload_capacity_B)
    memory_violation = relu(memory_B / capacity - 1.0, T) + relu(offload_B / cluster.offload_capacity_B - 1.0, T)

    # offload traffic per step (weights read each microbatch fwd+bwd; activations written and read back)
    off_traffic = m * (1.0 + tr) * weights_all * x_w + tr * m * 2.0 * stored_layer * Ls * x_a
    offload_exposed = relu(off_traffic / off_bw - pipeline, relative_temperature(T, pipeline))

    step = pipeline + dp_exposed + optimizer + offload_exposed

    # ---- feasibility: divisibility -----------------------------------------------------------------------------
    kv_frac = jnp.minimum(_frac(model.n_kv_heads / t), _frac(t / model.n_kv_heads))
    div = (_frac(L / (p * v)) + _frac(model.n_heads / t) + kv_frac + _frac(m) + _frac(s / c)
           + _frac(model.n_experts / e) + _frac(d * c / e) + _frac(cluster.n_gpus / (t * p * d * c))
           + relu(t * p * d * c / cluster.n_gpus - 1.0) + relu(v - 1.0) * (1 - pp_on))
    divisible = div < 1e-4
    feasible = divisible & fits

    # ---- throughput, utilisation, energy -----------------------------------------------------------------------
    gpus = t * p * d * c
    tokens = B * s
    fwd_flops = tokens * model.forward_flops_per_token(span)
    model_flops = (1.0 + 2.0 * tr) * fwd_flops  # the backward pass is twice the forward
    hw_flops = model_flops + tr * (rc_full * fwd_flops + rc_sel * tokens * 2.0 * L * span * (q_w + o_w))  # + recompute
    denom = step * gpus * peak
    mfu, hfu = model_flops / denom, hw_flops / denom
    busy = m * (f_comp + b_comp + r_comp) / step
    acc = cluster.accelerator.power
    power = gpus * (acc.idle_W + (acc.tdp_W - acc.idle_W) * jnp.clip(busy, 0.0, 1.0))
    return TrainingMetrics(
        time_s=step, compute_fwd_s=m * f_comp, compute_bwd_s=m * b_comp, recompute_s=m * r_comp,
        tp_comm_s=m * comm_tp, tp_recomm_s=m * recomm_tp, tp_comm_link_s=m * link_tp,
        tp_recomm_link_s=m * link_recomm, cp_comm_s=m * comm_cp, ep_comm_s=m * comm_ep, pp_comm_s=pp_comm, bubble_s=bubble,
        dp_comm_s=dp_exposed, dp_comm_link_s=tr * (dp_grad + dp_gather3), optimizer_s=optimizer, offload_s=offload_exposed,
        weights_B=weights_B, gradients_B=gradients_B, optimizer_B=optimizer_B, activations_B=activations_B,
        embedding_B=embedding_B, logits_B=logits_share,
        memory_B=memory_B, memory_capacity_B=capacity * jnp.ones_like(memory_B), offload_B=offload_B,
        memory_violation=memory_violation, divisibility_violation=div, divisible=divisible, fits=fits,
        feasible=feasible, n_microbatches=m, tokens_per_s=tokens / step, model_flops=model_flops,
        mfu=mfu, hfu=hfu, tflops_per_gpu=model_flops / (step * gpus) / 1e12, power_W=power,
        energy_J=power * step, cost_usd=gpus * cluster.gpu_hour_usd * step / 3600.0,
    )
