"""Training-step model: JAX contracts, physical invariants, memory formulas, clear errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from diffsys import llm, memory
from diffsys.testing import (
    TraceCounter,
    assert_grad_matches_fd,
    assert_jit_matches_eager,
    assert_vmap_matches_loop,
    float64,
)

GPT3 = llm.transformer_preset("gpt3_175b")
_step = jax.jit(llm.training_step)


def _cluster(n=1024, **kw):
    return llm.cluster_preset("hgx_h100", n, **kw)


def _par(**kw):
    base = dict(tp=8, pp=8, dp=16, microbatch=1, global_batch=1536, sequence_parallel=1, recompute="selective",
                zero_stage=1)
    base.update(kw)
    return llm.Parallelism(**base)


def test_breakdown_sums_to_step_time():
    r = llm.training_step(GPT3, _cluster(), _par(dp_overlap=0.0))
    parts = (r.compute_fwd_s + r.compute_bwd_s + r.recompute_s + r.tp_comm_s + r.cp_comm_s + r.ep_comm_s
             + r.pp_comm_s + r.bubble_s + r.dp_comm_s + r.optimizer_s + r.offload_s)
    np.testing.assert_allclose(float(parts), float(r.time_s), rtol=1e-5)
    assert float(r.memory_B) == pytest.approx(float(r.weights_B + r.gradients_B + r.optimizer_B + r.activations_B),
                                              rel=1e-6)
    assert 0.2 < float(r.mfu) < 0.8 and float(r.hfu) >= float(r.mfu)
    assert bool(r.feasible)


def test_model_flops_match_narayanan_eq3():
    # Narayanan et al. 2021 Eq. 3: F = 96 B s l h² (1 + s/(6h) + V/(16 l h)) counts recompute (4 passes);
    # model FLOPs (3 passes) are 3/4 of it.
    B, s, L, h, V = 1536, 2048, 96, 12288, 51200
    eq3 = 96 * B * s * L * h**2 * (1 + s / (6 * h) + V / (16 * L * h))
    r = llm.training_step(GPT3, _cluster(), _par(recompute="full"))
    assert float(r.model_flops) == pytest.approx(0.75 * eq3, rel=0.01)


def test_pipeline_bubble_fraction():
    # 1F1B bubble / ideal time = (p-1)/(v m) (Narayanan et al. 2021, Sec. 2.2)
    for v in (1, 2, 4):
        r = llm.training_step(GPT3, _cluster(), _par(interleave=v))
        ideal = r.compute_fwd_s + r.compute_bwd_s + r.recompute_s + r.tp_comm_s
        m = float(r.n_microbatches)
        assert float(r.bubble_s / ideal) == pytest.approx(7 / (v * m), rel=1e-4)


def test_activation_formula_reduces_to_korthikanti():
    # GPT shapes (MHA, GeLU, f = 4h): the generalised accounting equals diffsys.memory's Korthikanti formula
    s, b, h, a, t = 2048, 2, 12288, 96, 8
    for sp in (0.0, 1.0):
        full, sel, ckpt = llm.layer_activation_bytes(GPT3, b * s, b, s, s, t, sp, 0.0)
        for got, mode in ((full, "none"), (sel, "selective"), (ckpt, "full")):
            ref = memory.transformer_activation_bytes(s, b, h, a, 1, t, bool(sp), mode)
            assert float(got) == pytest.approx(ref, rel=1e-6), (sp, mode)


def test_zero_stages_memory_matches_rajbhandari():
    # one GPU, no activations to speak of: 16 Ψ (stage 0) ... 16 Ψ / N_d (stage 3) with grad_bytes = 2 (fp16)
    cl = _cluster(64)
    psi = None
    for stage, expect in ((0, lambda p, n: 16 * p), (1, lambda p, n: 4 * p + 12 * p / n),
                          (2, lambda p, n: 2 * p + 14 * p / n), (3, lambda p, n: 16 * p / n)):
        r = llm.training_step(GPT3, cl, llm.Parallelism(tp=8, pp=1, dp=8, microbatch=1, global_batch=8,
                                                        zero_stage=stage, grad_bytes=2))
        state = float(r.weights_B + r.gradients_B + r.optimizer_B)
        if psi is None:
            psi = float(r.weights_B) / 2
        assert state == pytest.approx(expect(psi, 8), rel=1e-5)


def test_jit_vmap_and_no_retrace():
    cl = _cluster()
    assert_jit_matches_eager(lambda p: llm.training_step(GPT3, cl, p), _par(), rtol=1e-5)
    tps = jnp.array([2.0, 8.0])
    batch = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (2,)), _par())
    batch = eqx.tree_at(lambda p: p.tp, batch, tps)
    batch = eqx.tree_at(lambda p: p.dp, batch, 128.0 / tps)
    assert_vmap_matches_loop(lambda p: llm.training_step(GPT3, cl, p), batch, rtol=1e-5)
    counted = TraceCounter(lambda p: llm.training_step(GPT3, cl, p).time_s)
    f = jax.jit(counted)
    f(_par())
    f(_par(microbatch=2))
    assert counted.count == 1


def _relaxed_time(x, cl, temperature):
    par = llm.Parallelism(tp=x[0], pp=x[1], dp=1024 / (x[0] * x[1]), microbatch=x[2], global_batch=1536,
                          interleave=x[3], sequence_parallel=1.0, recompute=1.0, zero_stage=1.0, dp_overlap=0.5)
    return llm.training_step(GPT3, cl, par, temperature=temperature).time_s


@pytest.mark.slow  # ~6 min to compile jit(vmap(grad)) of the full step on 2 cores; the kernels' vmapped gradients
# are checked in the default run (test_gemm_kernel, test_robustness)
def test_finite_grads_over_random_points():
    cl = _cluster()
    lo, hi = jnp.array([1.0, 1.0, 1.0, 1.0]), jnp.array([16.0, 32.0, 8.0, 4.0])
    xs = lo + (hi - lo) * jax.random.uniform(jax.random.PRNGKey(0), (6, 4))
    grads = jax.jit(jax.vmap(jax.grad(lambda z: _relaxed_time(z, cl, 0.1))))(xs)
    assert np.all(np.isfinite(np.asarray(grads))) and np.any(np.asarray(grads) != 0)


@pytest.mark.slow
def test_grad_matches_finite_differences():
    with float64():
        cl = _cluster()
        x = jnp.array([6.3, 7.1, 1.7, 1.6], dtype=jnp.float64)
        # a relative step of 1e-7: along tp and the microbatch the relaxed kernel model has transitions of width
        # ~1e-6 near this point, over which a central difference of 1e-6 averages (4e-4 off; at 1e-7 it agrees
        # to 4e-6 in every coordinate, at 1e-5 to only 20 %: the gradient is right, the point is curved)
        assert_grad_matches_fd(jax.jit(lambda z: _relaxed_time(z, cl, 0.1)), x, eps=1e-7, rtol=1e-4)


def test_temperature_zero_equals_exact():
    cl = _cluster()
    x = jnp.array([8.0, 8.0, 1.0, 2.0])
    a = _relaxed_time(x, cl, 0.0)
    b = _relaxed_time(x, cl, 1e-6)
    assert float(b) == pytest.approx(float(a), rel=1e-3)


# ---- properties ---------------------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(dp_exp=st.integers(0, 5), b=st.sampled_from([1, 2, 4]), tp=st.sampled_from([1, 2, 4, 8]),
       pp=st.sampled_from([1, 2, 4, 8]))
def test_more_gpus_fixed_per_gpu_batch_never_lowers_throughput_ideal_network(dp_exp, b, tp, pp):
    # ideal network: infinite bandwidth, zero latency -> doubling dp at fixed per-replica batch doubles tokens/step
    # without lengthening the step, so throughput never drops.
    m = 8
    model = llm.transformer_preset("megatron_22b")
    kw = {f"{side}_{f}": v for side in ("scaleup", "scaleout")
          for f, v in (("bandwidth_Bps", 1e30), ("latency_s", 0.0), ("overhead_s", 0.0), ("local_Bps", 1e30),
                       ("in_network_Bps", 1e30))}
    tps = []
    for dp in (2**dp_exp, 2 ** (dp_exp + 1)):
        cl = _cluster(tp * pp * dp, **kw)
        par = llm.Parallelism(tp=tp, pp=pp, dp=dp, microbatch=b, global_batch=b * m * dp, recompute="full")
        tps.append(float(_step(model, cl, par).tokens_per_s))
    assert tps[1] >= tps[0] * (1 - 1e-5)


def _max_feasible_microbatch(recompute, tp, pp):
    cl = _cluster(64)
    model = llm.transformer_preset("megatron_22b")
    best = 0
    for b in (1, 2, 4, 8, 16, 32, 64):
        par = llm.Parallelism(tp=tp, pp=pp, dp=64 // (tp * pp), microbatch=b, global_batch=b * 64, recompute=recompute)
        if bool(_step(model, cl, par).fits):
            best = b
    return best


@settings(max_examples=10, deadline=None)
@given(tp=st.sampled_from([1, 2, 4, 8]), pp=st.sampled_from([1, 2, 4]))
def test_recompute_never_lowers_memory_feasible_batch(tp, pp):
    none = _max_feasible_microbatch("none", tp, pp)
    sel = _max_feasible_microbatch("selective", tp, pp)
    full = _max_feasible_microbatch("full", tp, pp)
    assert none <= sel <= full


@settings(max_examples=25, deadline=None)
@given(bw=st.floats(10e9, 1000e9), factor=st.floats(1.01, 10.0))
def test_faster_network_never_slower(bw, factor):
    par = _par()
    slow = _step(GPT3, _cluster(scaleout_bandwidth_Bps=bw), par).time_s
    fast = _step(GPT3, _cluster(scaleout_bandwidth_Bps=bw * factor), par).time_s
    assert float(fast) <= float(slow) * (1 + 1e-6)


@settings(max_examples=25, deadline=None)
@given(ov=st.floats(0.0, 1.0))
def test_overlap_never_slower(ov):
    base = _step(GPT3, _cluster(), _par(tp_overlap=0.0, dp_overlap=0.0)).time_s
    over = _step(GPT3, _cluster(), _par(tp_overlap=ov, dp_overlap=ov)).time_s
    assert float(over) <= float(base) * (1 + 1e-6)


@settings(max_examples=20, deadline=None)
@given(ov=st.floats(0.0, 1.0), rc=st.sampled_from(["selective", "full"]), redo=st.sampled_from([0.0, 1.0]))
def test_link_times_bound_the_exposed_communication(ov, rc, redo):
    """The collectives on the link are what overlap can hide: without overlap the exposed TP and DP communication
    equals the link time; with it never exceeds it; the re-communication is the full recompute's forward TP
    collectives or the redone sequence-parallel all-gathers, and zero with neither."""
    kw = dict(recompute=rc, seq_par_ag_redo=redo)
    r0 = _step(GPT3, _cluster(), _par(tp_overlap=0.0, dp_overlap=0.0, **kw))
    r = _step(GPT3, _cluster(), _par(tp_overlap=ov, dp_overlap=ov, **kw))
    for x in (r0, r):
        assert float(x.tp_recomm_s) <= float(x.tp_comm_s) * (1 + 1e-6)
    np.testing.assert_allclose(float(r0.tp_comm_s - r0.tp_recomm_s), float(r0.tp_comm_link_s), rtol=1e-5)
    np.testing.assert_allclose(float(r0.tp_recomm_s), float(r0.tp_recomm_link_s), rtol=1e-5)
    np.testing.assert_allclose(float(r0.dp_comm_s), float(r0.dp_comm_link_s), rtol=1e-5)
    assert float(r.tp_comm_s - r.tp_recomm_s) <= float(r.tp_comm_link_s) * (1 + 1e-5)
    assert float(r.tp_recomm_s) <= float(r.tp_recomm_link_s) * (1 + 1e-5)
    assert float(r.dp_comm_s) <= float(r.dp_comm_link_s) * (1 + 1e-5)
    assert float(r.tp_comm_link_s) == pytest.approx(float(r0.tp_comm_link_s), rel=1e-6)  # overlap moves nothing
    if rc == "full":  # the forward's TP collectives once more: half the forward + backward link time
        np.testing.assert_allclose(float(r0.tp_recomm_link_s), 0.5 * float(r0.tp_comm_link_s), rtol=1e-5)
    elif redo == 0.0:
        assert float(r0.tp_recomm_link_s) == 0.0
    else:
        assert 0 < float(r0.tp_recomm_link_s) < 0.5 * float(r0.tp_comm_link_s)


def test_low_precision_quantization_traffic():
    """Under an FP8/FP4 recipe each linear layer's activation operands are quantised into two layouts: the fused
    producers' transposes (2q per element), the cast-transposes of the BF16 operands (2 + 2q), and with sequence
    parallelism the row-parallel output gradients cast on their shard and transposed once gathered
    ((2 + q)/t + 2q), exactly as the docstring counts them for a dense model; nothing for BF16; NVFP4 moves fewer
    bytes than FP8."""
    from diffsys.llm._training import _quantization_s

    model = llm.transformer_preset("llama2_7b")
    h, f, tokens = model.hidden, model.ffn, 4096.0
    count = lambda bytes_, kernels: bytes_  # the bytes the kernels move
    assert _quantization_s(model, llm.cluster_preset("hgx_h100", 8), tokens, 1.0, 0.0, count) == (0.0, 0.0)
    fp8 = llm.cluster_preset("hgx_h100", 8, dtype="fp8")
    for tp, sp in ((1.0, 0.0), (4.0, 0.0), (4.0, 1.0)):
        fwd, bwd = _quantization_s(model, fp8, tokens, tp, sp, count)
        row_parallel = (3 / tp + 2) if sp else 4
        assert fwd == pytest.approx(tokens * (2 * (2 * h + f / tp) + 4 * h / tp))
        assert bwd == pytest.approx(tokens * (2 * 2 * f / tp + row_parallel * 2 * h + 4 * 3 * h / tp))
    b200 = lambda dt: _quantization_s(model, llm.cluster_preset("dgx_b200", 8, dtype=dt), tokens, 1.0, 0.0, count)
    assert all(a < b for a, b in zip(b200("fp4"), b200("fp8")))


def test_low_precision_sequence_parallel_gathers():
    """FP8 runs the sequence-parallel all-gathers (the QKV / fc1 inputs forward, the row-parallel output gradients
    backward) in FP8: less TP time than BF16 with sequence parallelism, the same bytes (so the same TP time) without
    it."""
    model = llm.transformer_preset("llama2_70b")
    kw = dict(tp=4, pp=1, dp=2, microbatch=1, global_batch=8, recompute="none", tp_overlap=0.0, dp_overlap=1.0)
    step = {(dt, sp): _step(model, _cluster(8, dtype=dt), llm.Parallelism(sequence_parallel=sp, **kw))
            for dt in ("bf16", "fp8") for sp in (0.0, 1.0)}
    assert float(step["fp8", 1.0].tp_comm_s) < 0.95 * float(step["bf16", 1.0].tp_comm_s)
    assert float(step["fp8", 0.0].tp_comm_s) == pytest.approx(float(step["bf16", 0.0].tp_comm_s), rel=1e-6)


def test_quantization_kernels_are_in_every_layer(monkeypatch):
    """The quantisation kernels add their memory-bound time to every layer's forward and backward: the step with
    them minus the step without them is ``m · L`` times their time."""
    from diffsys.llm import _training
    from diffsys.llm._kernels import memory_s

    model, cl = llm.transformer_preset("llama2_70b"), _cluster(8, dtype="fp8")
    par = llm.Parallelism(tp=4, pp=1, dp=2, microbatch=1, global_batch=8, sequence_parallel=1, recompute="none")
    step = lambda: jax.jit(lambda c, p: llm.training_step(model, c, p))(cl, par)  # traced inline: a fresh trace
    with_q = step()
    q_fwd, q_bwd = _training._quantization_s(model, cl, model.seq_len, 4.0, 1.0,
                                             lambda b, k: memory_s(b, cl, kernels=k))
    monkeypatch.setattr(_training, "_quantization_s", lambda *a: (0.0, 0.0))
    without = step()
    m_L = 8 / 2 * float(model.n_layers)
    assert float(with_q.compute_fwd_s - without.compute_fwd_s) == pytest.approx(m_L * float(q_fwd), rel=1e-4)
    assert float(with_q.compute_bwd_s - without.compute_bwd_s) == pytest.approx(m_L * float(q_bwd), rel=1e-4)
    assert float(q_fwd) > 0 and float(q_bwd) > 0


def _mla(**kw):
    """A small MLA transformer (DeepSeek-V2-Lite-like sizes, 4 layers, dense MLP)."""
    base = dict(name="mla", hidden=2048, ffn=10944, n_layers=4, n_heads=16, n_kv_heads=16, head_dim=128,
                vocab=102400, seq_len=4096, max_seq_len=4096, mlp="swiglu", tied_embeddings=False, attention="mla",
                q_lora_rank=1536, kv_lora_rank=512, qk_rope_head_dim=64, qk_nope_head_dim=128, v_head_dim=128)
    return llm.Transformer(**{**base, **kw})


def test_mla_attention_counts():
    """Multi-head latent attention (DeepSeek-V2 Sec. 2.1): its weights are the down/up projections and the output
    projection (DeepSeek-V3: 671 B parameters, 37 B active per token); the score and value matmuls run over
    ``d_qk = 128 + 64`` and ``d_v = 128`` per head; the down-projections are whole on every TP rank (so TP 2 holds
    more than half of TP 1's weights, by exactly them)."""
    v3 = llm.model_arch("deepseek-ai/DeepSeek-V3").transformer
    assert v3.is_mla and float(v3.num_params()) / 1e9 == pytest.approx(671, rel=0.01)
    assert float(v3.active_params_per_token()) / 1e9 == pytest.approx(37, rel=0.03)
    m = _mla()
    a, s = 16, 4096
    assert float(m.forward_flops_per_token()) == pytest.approx(
        float(2 * m.active_params_per_token() + 2 * 4 * s * a * (192 + 128)), rel=1e-6)
    weights = {tp: float(_step(m, _cluster(8), llm.Parallelism(tp=tp, dp=8 // tp, global_batch=8 // tp,
                                                                 recompute="none")).weights_B) for tp in (1, 2)}
    replicated = 4 * 2048 * (1536 + 512 + 64) * 2.0  # bf16 bytes of the layers' down-projections
    assert 2 * weights[2] - weights[1] == pytest.approx(replicated, rel=1e-4)


@settings(max_examples=15, deadline=None)
@given(kv=st.floats(128, 2048), q=st.sampled_from([0.0, 768.0, 1536.0]), factor=st.floats(1.2, 3.0))
def test_mla_larger_latents_never_faster(kv, q, factor):
    """A larger key/value latent moves more bytes and FLOPs: never a faster step, never less memory; a direct query
    projection (rank 0) is a valid MLA too."""
    par = llm.Parallelism(tp=2, dp=4, global_batch=8, recompute="selective")
    a = _step(_mla(kv_lora_rank=kv, q_lora_rank=q), _cluster(8), par)
    b = _step(_mla(kv_lora_rank=kv * factor, q_lora_rank=q), _cluster(8), par)
    assert float(b.time_s) >= float(a.time_s) * (1 - 1e-6) and float(b.memory_B) >= float(a.memory_B)


def test_mla_step_jit_matches_eager():
    """jit == eager for a direct query projection (rank 0) and a latent: the eager step (every leaf traced) weights
    both paths, the inline one (concrete model) traces only the taken one."""
    cl, par = _cluster(8), llm.Parallelism(tp=2, dp=4, global_batch=8, recompute="selective")
    for q in (0.0, 1536.0):
        mq = _mla(q_lora_rank=q)
        inline = jax.jit(lambda p: llm.training_step(mq, cl, p))(par)
        assert float(inline.time_s) == pytest.approx(float(llm.training_step(mq, cl, par).time_s), rel=1e-6)


@pytest.mark.slow  # a gradient compile of the full MLA step (~15 s); the GQA step's are slow-marked above too
def test_mla_step_gradient_in_the_latent():
    m, cl = _mla(), _cluster(8)
    par = llm.Parallelism(tp=2, dp=4, global_batch=8, recompute="selective")
    g = jax.grad(lambda x: llm.training_step(eqx.tree_at(lambda t: t.kv_lora_rank, m, x), cl, par).time_s)(
        jnp.asarray(512.0))
    assert np.isfinite(float(g)) and float(g) > 0


def test_offload_trades_memory_for_time():
    a = llm.training_step(GPT3, _cluster(), _par())
    b = llm.training_step(GPT3, _cluster(), _par(optimizer_offload=1.0, weight_offload=0.5))
    assert float(b.memory_B) < float(a.memory_B)
    assert float(b.offload_B) > 0 and float(b.time_s) >= float(a.time_s)


def test_forward_only_step_is_the_forward_pass():
    """``training = 0``: the breakdown has no backward, recompute, DP or optimizer time, the pipeline sends go one
    way, the model FLOPs are a third of a training step's, memory holds no gradients or optimizer state; the relaxed
    value in between is monotone (a training step is never cheaper than its forward pass)."""
    train = llm.training_step(GPT3, _cluster(), _par())
    fwd = llm.training_step(GPT3, _cluster(), _par(training=0.0))
    for k in ("compute_bwd_s", "recompute_s", "dp_comm_s", "optimizer_s", "gradients_B", "optimizer_B"):
        assert float(getattr(fwd, k)) == 0.0, k
    assert float(fwd.compute_fwd_s) == pytest.approx(float(train.compute_fwd_s), rel=1e-6)
    assert float(fwd.pp_comm_s) == pytest.approx(0.5 * float(train.pp_comm_s), rel=1e-6)
    assert float(fwd.model_flops) == pytest.approx(float(train.model_flops) / 3, rel=1e-6)
    assert float(fwd.memory_B) < float(train.memory_B) and float(fwd.activations_B) < float(train.activations_B)
    times = [float(_step(GPT3, _cluster(), _par(training=w)).time_s) for w in (0.0, 0.25, 0.5, 1.0)]
    assert times == sorted(times) and times[-1] > 2.5 * times[0]


def test_packed_documents_attend_within_their_own():
    """``document_length``: 0, the sequence length and anything longer are one document per sequence (identical
    steps); shorter documents shrink only the attention core: its model FLOPs by exactly ``4 L (s - span) a d``
    per token and pass (Narayanan Eq. 3 with the span in place of ``s``), never a slower step, and with unfused
    attention smaller ``s²`` activations. One compiled, vmapped call over the points."""
    model = llm.transformer_preset("llama2_7b")
    s = float(model.seq_len)
    docs = jnp.array([0.0, s, 2 * s, s / 2, 512.0, 128.0] * 2)
    flash = jnp.array([1.0] * 6 + [0.0] * 6)
    cl = _cluster(8)

    def one(doc, fl):
        par = llm.Parallelism(tp=1, pp=1, dp=8, microbatch=1, global_batch=128, zero_stage=1, dp_overlap=1.0,
                              flash_attention=fl, document_length=doc)
        return llm.training_step(model, cl, par)

    r = jax.jit(jax.vmap(one))(docs, flash)
    time, flops, acts = (np.asarray(x, dtype=float) for x in (r.time_s, r.model_flops, r.activations_B))
    for g in (slice(0, 6), slice(6, 12)):
        ti, fi = time[g], flops[g]
        np.testing.assert_allclose(ti[1:3], ti[0], rtol=1e-6)
        np.testing.assert_allclose(fi[1:3], fi[0], rtol=1e-6)
        assert np.all(np.diff(ti[2:]) < 0), ti  # s, s/2, 512, 128: every shorter span is faster
        span = np.minimum(np.where(np.asarray(docs[g]) > 0, np.asarray(docs[g]), s), s)
        tokens = 128 * s
        attn = 3 * tokens * 4 * float(model.n_layers) * (s - span) * float(model.q_width)
        np.testing.assert_allclose(fi[0] - fi, attn, rtol=1e-5, atol=1e-3 * fi[0] * 1e-6)
    assert acts[11] < 0.5 * acts[6] and acts[5] == pytest.approx(acts[0], rel=1e-6)  # flash stores no s² scores
    with pytest.raises(ValueError, match="document_length"):
        llm.Parallelism(document_length=-1.0)


@pytest.mark.parametrize("cp, tp, seq, flash, fused", [(1, 1, 1024, 0.0, 1.0), (2, 8, 4096, 1.0, 0.0)])
def test_skipped_structural_zeros_change_nothing(cp, tp, seq, flash, fused):
    """Inside a trace, leaves left at concrete values skip the terms they weight by a structural zero (a CP group of
    one, the unused attention path, a fused activation); an eager call traces every leaf and skips nothing. Both
    agree on every metric (float32 rounding), and a term whose weight is not zero is still paid for (Llama-2 7B at
    4k tokens, TP 8: the CP pair spans two nodes, so its K/V exchange over InfiniBand is not hidden behind the
    attention)."""
    model = llm.transformer_preset("llama2_7b", seq_len=seq)
    cl = _cluster(64)
    par = llm.Parallelism(tp=tp, pp=2, dp=32 // (cp * tp), cp=cp, microbatch=1, global_batch=64, zero_stage=1,
                          flash_attention=flash, fused_activation=fused)
    mbs = jnp.array([1.0, 2.0])
    with_mb = lambda mb: eqx.tree_at(lambda p: p.microbatch, par, mb)  # noqa: E731
    inline = jax.jit(jax.vmap(lambda mb: llm.training_step(model, cl, with_mb(mb))))(mbs)
    for i, mb in enumerate((1.0, 2.0)):
        eager = llm.training_step(model, cl, with_mb(jnp.asarray(mb)))
        for k, v in eager._asdict().items():
            np.testing.assert_allclose(np.asarray(getattr(inline, k))[i], np.asarray(v), rtol=2e-6, err_msg=k)
        assert (float(getattr(inline, "cp_comm_s")[i]) > 1e-3) == (cp > 1)


def test_moe_expert_parallel_all_to_all_and_memory():
    model = llm.transformer_preset("mixtral_8x7b")
    cl = _cluster(64)
    r1 = llm.training_step(model, cl, llm.Parallelism(tp=2, pp=1, dp=32, ep=1, microbatch=1, global_batch=256,
                                                       recompute="full"))
    r8 = llm.training_step(model, cl, llm.Parallelism(tp=2, pp=1, dp=32, ep=8, microbatch=1, global_batch=256,
                                                       recompute="full"))
    assert float(r1.ep_comm_s) == 0.0 and float(r8.ep_comm_s) > 0.0
    assert float(r8.weights_B) < float(r1.weights_B)


def test_context_parallel_splits_activations():
    model = llm.transformer_preset("llama3_8b", seq_len=65536)
    cl = _cluster(64)
    r1 = llm.training_step(model, cl, llm.Parallelism(tp=8, cp=1, dp=8, microbatch=1, global_batch=64,
                                                       sequence_parallel=1, recompute="full"))
    r4 = llm.training_step(model, cl, llm.Parallelism(tp=8, cp=4, dp=2, microbatch=1, global_batch=64,
                                                       sequence_parallel=1, recompute="full"))
    assert float(r4.activations_B) < float(r1.activations_B)


def test_context_parallel_attention_runs_the_load_balanced_chunks(monkeypatch):
    """With CP c the fused attention is the load-balanced ring's 2 causal and 2c-1 full calls on chunks of s/2c
    (their FLOPs are 1/c of the causal square: the same model FLOPs), each a launch; c = 1 keeps the one causal call;
    a relaxed c between 1 and 2 blends the two continuously."""
    from diffsys.llm import _training
    from diffsys.roofline import prefill_attention_time

    model, cl = llm.transformer_preset("llama3_8b"), _cluster(8)
    calls = []

    def spy(batch, seq, *args, causal=True, **kw):  # records the sizes each fused call runs at
        jax.debug.callback(lambda b, q: calls.append((float(b), float(q), causal)), batch, seq)
        return prefill_attention_time(batch, seq, *args, causal=causal, **kw)

    monkeypatch.setattr(_training, "prefill_attention_time", spy)
    par = lambda c: llm.Parallelism(tp=1, cp=c, dp=8 / c, microbatch=1, global_batch=8, recompute="none")
    step = lambda c: jax.block_until_ready(jax.jit(lambda p: llm.training_step(model, cl, p))(par(c)))
    calls.clear()
    r2 = step(2.0)
    assert (2.0, 8192 / 4, True) in calls and (3.0, 8192 / 4, False) in calls
    r1 = step(1.0)
    assert float(r2.model_flops) == pytest.approx(float(r1.model_flops), rel=1e-6)
    eager = [float(llm.training_step(model, cl, par(c)).time_s) for c in (1.0, 1.5, 2.0)]
    assert eager[0] == pytest.approx(float(r1.time_s), rel=1e-5) and eager[2] == pytest.approx(float(r2.time_s),
                                                                                              rel=1e-5)
    assert min(eager[0], eager[2]) * 0.5 < eager[1] < max(eager[0], eager[2]) * 2


# ---- infeasible points are flagged, never raise --------------------------------------------------------------------
def test_infeasible_points_flagged_in_batch():
    cl = _cluster()
    batch = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (3,)), _par())
    batch = eqx.tree_at(lambda p: p.tp, batch, jnp.array([8.0, 3.0, 1.0]))  # 3 divides nothing; tp=1 OOM
    batch = eqx.tree_at(lambda p: p.dp, batch, jnp.array([16.0, 16.0, 128.0]))
    batch = eqx.tree_at(lambda p: p.recompute, batch, jnp.array([1.0, 1.0, 0.0]))
    r = jax.vmap(lambda p: llm.training_step(GPT3, cl, p))(batch)
    assert np.all(np.isfinite(np.asarray(r.time_s)))
    assert list(np.asarray(r.divisible)) == [True, False, True]
    assert list(np.asarray(r.fits)) == [True, True, False]
    assert list(np.asarray(r.feasible)) == [True, False, False]
    assert float(r.memory_violation[2]) > 0 and float(r.divisibility_violation[1]) > 0


# ---- clear errors on bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, field", [
    (dict(tp=3, dp=128 * 8 / 3 // 1), "n_gpus"),
    (dict(tp=64, pp=8, dp=2), "tp"),
    (dict(pp=7, dp=16), "n_gpus"),
    (dict(interleave=5), "pp"),
    (dict(global_batch=1000), "dp"),
])
def test_non_dividing_degrees_raise(kw, field):
    with pytest.raises(ValueError, match=field):
        llm.check_parallelism(GPT3, _cluster(), _par(**kw))


def test_heads_not_divisible_names_tp():
    with pytest.raises(ValueError, match="Parallelism.tp=5 must divide the attention heads"):
        llm.check_parallelism(GPT3, _cluster(5 * 8 * 16), _par(tp=5))


def test_bad_inputs_raise_with_field_names():
    with pytest.raises(ValueError, match="n_gpus"):
        llm.cluster_preset("hgx_h100", 0)
    with pytest.raises(ValueError, match="Parallelism.recompute"):
        llm.Parallelism(recompute="sometimes")
    with pytest.raises(ValueError, match="Parallelism.tp_overlap"):
        llm.Parallelism(tp_overlap=1.5)
    with pytest.raises(ValueError, match="seq_len"):
        llm.transformer_preset("gpt3_175b", seq_len=4096, max_seq_len=2048)
    with pytest.raises(ValueError, match="seq_len"):
        llm.check_sequence(GPT3, 8192)
    with pytest.raises(ValueError, match="unknown transformer preset"):
        llm.transformer_preset("gpt5")
    with pytest.raises(ValueError, match="n_kv_heads"):
        llm.Transformer(name="x", hidden=64, ffn=256, n_layers=2, n_heads=4, n_kv_heads=8, head_dim=16, vocab=100,
                        seq_len=16, max_seq_len=16)


def test_presets_parameter_counts():
    # published sizes (billions): tolerance 3% (biases, norms and vocab padding differ between reports)
    expect = {"gpt3_175b": 175, "llama2_7b": 6.74, "llama2_13b": 13.0, "llama2_70b": 69.0, "llama3_8b": 8.03,
              "llama3_70b": 70.6, "llama3_405b": 405.9, "mixtral_8x7b": 46.7, "megatron_530b": 530,
              "megatron_1t": 1008, "deepseek_moe_16b": 16.4}
    for name, b in expect.items():
        assert float(llm.transformer_preset(name).num_params()) / 1e9 == pytest.approx(b, rel=0.03), name
    assert float(llm.transformer_preset("mixtral_8x7b").active_params_per_token()) / 1e9 == pytest.approx(12.9,
                                                                                                          rel=0.03)


def _dp_only(cluster, dp, tp=1):
    model = llm.transformer_preset("gpt3_13b")
    par = llm.Parallelism(tp=tp, pp=1, dp=dp, microbatch=1, global_batch=dp, recompute="full", zero_stage=0,
                          dp_overlap=0.0)
    return llm.training_step(model, cluster, par)


@pytest.mark.parametrize("nodes, tp", [(1, 1), (4, 8)])
def test_dp_step_includes_the_full_gradient_all_reduce(nodes, tp):
    # data parallelism alone: the step must contain the whole gradient all-reduce, at least the ring's bandwidth
    # term 2(n-1)/n · S / B (Patarasuk & Yuan 2009; no NVLS on DGX A100, so no algorithm moves less), written out
    # here independently of the model, and exactly the topologies model's time for the group's placement
    from diffsys import topologies

    cl = llm.cluster_preset("dgx_a100", 8 * nodes)
    dp = 8 * nodes // tp
    r = _dp_only(cl, dp, tp)
    S = float(r.weights_B)  # ZeRO-0, no offload: the bf16 weights = the bf16 gradient buffer
    # tp = 1: the 8 ranks of a node on NVLink; tp = 8: one rank per node on the 12.5 GB/s-per-GPU scale-out links
    dim = cl.network.dims[0] if tp == 1 else cl.network.dims[1]
    beta = float(dim.bandwidth_Bps * dim.efficiency)
    ring_floor = 2 * (dp - 1) / dp * S / beta
    assert float(r.dp_comm_s) >= ring_floor * (1 - 1e-6)
    up, out = cl.network.dims
    dims = (up.replace(size=1.0 * (8 // tp)), out.replace(size=1.0 * nodes)) if tp == 1 else \
        (up.replace(size=1.0), out.replace(size=1.0 * dp))
    ref = topologies.hierarchical_collective_time("all_reduce", S, dims).time_s
    assert float(r.dp_comm_s) == pytest.approx(float(ref), rel=1e-5)
    # and it is on the critical path (no overlap): the step holds the compute and the whole all-reduce
    assert float(r.time_s) >= float(r.compute_fwd_s + r.compute_bwd_s + r.recompute_s) + ring_floor


def test_collectives_are_the_topologies_model():
    # TP all-reduce of one layer (sequence parallelism off) is the topologies hierarchical all-reduce on the node
    from diffsys import topologies

    cl = _cluster(64)
    par = _par(tp=8, pp=1, dp=8, global_batch=64, sequence_parallel=0, tp_overlap=0.0)
    r = llm.training_step(GPT3, cl, par)
    up, out = cl.network.dims
    msg = 2048 * GPT3.hidden * 2.0
    ar = topologies.hierarchical_collective_time("all_reduce", msg, (up.replace(size=8.0), out.replace(size=1.0)))
    m = float(r.n_microbatches)
    layers = float(GPT3.n_layers)
    # 2 all-reduces forward + 2 backward per layer, no recompute of the forward (selective)
    assert float(r.tp_comm_s) == pytest.approx(m * layers * 4 * float(ar.time_s), rel=1e-5)
    # the NVLink calibration is the topologies preset's (one calibration in the library)
    ref = topologies.system_preset("hgx_h100").dims[0]
    for f in ("bandwidth_Bps", "latency_s", "efficiency", "overhead_s", "local_Bps"):
        assert float(getattr(up, f)) == float(getattr(ref, f)), f


def test_no_gemm_efficiency_of_its_own():
    # every GEMM is timed by the roofline op model (diffsys.roofline); the cluster has no efficiency knob for it
    assert not hasattr(_cluster(), "gemm_efficiency")
    with pytest.raises(ValueError, match="gemm_efficiency"):
        _cluster(gemm_efficiency=0.5)


def test_recipe_quantisation_is_charged_once():
    """Under an FP8 recipe the linear layers' GEMMs take operands the recipe's own kernels quantised
    (_quantization_s), so the GEMM kernel model's dynamic quantisation pass (an amax and a cast of the input) is not
    charged as well; a BF16 GEMM has no such pass either way."""
    from diffsys.llm._kernels import gemm_s

    fp8, bf16 = _cluster(8, dtype="fp8"), _cluster(8)
    shape = (4096.0, 4096.0, 4096.0)
    assert float(gemm_s(*shape, fp8, quantize_input=False)) < float(gemm_s(*shape, fp8))
    assert float(gemm_s(*shape, bf16, quantize_input=False)) == pytest.approx(float(gemm_s(*shape, bf16)), rel=1e-6)


@settings(max_examples=15, deadline=None)
@given(ov=st.floats(0.0, 1.0))
def test_pp_overlap_never_slower_and_zero_is_blocking(ov):
    par = dict(interleave=4)
    blocking = _step(GPT3, _cluster(), _par(**par))
    base = _step(GPT3, _cluster(), _par(pp_overlap=0.0, **par))
    over = _step(GPT3, _cluster(), _par(pp_overlap=ov, **par))
    assert float(base.time_s) == float(blocking.time_s)
    assert float(over.time_s) <= float(base.time_s) * (1 + 1e-6)
    assert float(over.pp_comm_s) <= float(base.pp_comm_s) * (1 + 1e-6)
    assert float(base.pp_comm_s) > 0.0
    # a transfer shorter than one chunk's compute hides entirely
    full = _step(GPT3, _cluster(), _par(pp_overlap=1.0, **par))
    assert float(full.pp_comm_s) < 1e-3 * float(base.pp_comm_s)


def test_sustained_clock_scales_compute_not_mfu_denominator():
    par = _par()
    nominal = _step(GPT3, _cluster(sustained_clock=1.0), par)
    slow = _step(GPT3, _cluster(sustained_clock=0.8), par)
    slower = _step(GPT3, _cluster(sustained_clock=0.6), par)
    assert float(nominal.time_s) < float(slow.time_s) < float(slower.time_s)
    # compute-bound parts scale at most with 1/clock (HBM traffic keeps its clock)
    r = float(slow.compute_fwd_s / nominal.compute_fwd_s)
    assert 1.05 < r <= 1 / 0.8 * (1 + 1e-5), r
    # MFU counts against the nominal peak: it falls in proportion to the step time
    np.testing.assert_allclose(float(slow.mfu * slow.time_s), float(nominal.mfu * nominal.time_s), rtol=1e-5)
    assert llm.cluster_preset("hgx_h100", 8).sustained_clock < 1.0 == float(
        llm.cluster_preset("dgx_a100", 8).sustained_clock)
    with pytest.raises(ValueError, match="sustained_clock"):
        _cluster(sustained_clock=1.2)


def test_sustained_clock_gradient_matches_finite_differences():
    par = _par()
    with float64():
        f = lambda c: llm.training_step(GPT3, _cluster(sustained_clock=c), par).time_s
        c0 = jnp.float64(0.8)
        g = jax.grad(f)(c0)
        fd = (f(c0 + 1e-5) - f(c0 - 1e-5)) / 2e-5
    assert float(g) < 0.0
    np.testing.assert_allclose(float(g), float(fd), rtol=1e-4)
