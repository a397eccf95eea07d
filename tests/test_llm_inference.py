"""Inference model (prefill/decode, KV cache, continuous batching): contracts, invariants, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from diffsys import llm
from diffsys.testing import (
    TraceCounter,
    assert_grad_matches_fd,
    assert_jit_matches_eager,
    assert_vmap_matches_loop,
    float64,
)

MODEL = llm.transformer_preset("llama3_70b")
CL = llm.cluster_preset("hgx_h100", 8)
PAR = llm.Parallelism(tp=8)
_step = jax.jit(llm.inference_step)


def _serve(**kw):
    base = dict(batch=8, prompt_len=4096, decode_len=256)
    base.update(kw)
    return llm.Serving(**base)


def test_basic_values_and_kv_cache_size():
    r = llm.inference_step(MODEL, CL, PAR, _serve())
    # KV cache: 2 · b · s · L · h_kv · d · 2 B / tp (Pope et al. 2023)
    kv = 2 * 8 * (4096 + 256) * 80 * 8 * 128 * 2 / 8
    assert float(r.kv_cache_B) == pytest.approx(kv, rel=1e-5)
    # decode at batch 8 reads ~140 GB of weights per token over 8 GPUs: TPOT >= weights / (8 · HBM bandwidth)
    assert float(r.tpot_s) >= 140e9 / (8 * 3.35e12)
    assert float(r.ttft_s) > float(r.tpot_s) and bool(r.decode_memory_bound)
    assert 0 < float(r.mbu) <= 1 and bool(r.feasible)


def test_jit_vmap_no_retrace():
    assert_jit_matches_eager(lambda s: llm.inference_step(MODEL, CL, PAR, s), _serve(), rtol=1e-5)
    batch = llm.Serving(batch=jnp.array([1.0, 32.0]), prompt_len=jnp.array([1024.0, 65536.0]),
                        decode_len=jnp.array([128.0, 512.0]), kv_bits=jnp.array([16.0, 4.0]),
                        kv_keep_ratio=jnp.array([1.0, 0.3]), weight_bits=jnp.array([16.0, 8.0]),
                        prefill_chunk=jnp.array([8192.0, 8192.0]))
    assert_vmap_matches_loop(lambda s: llm.inference_step(MODEL, CL, PAR, s), batch, rtol=1e-5)
    counted = TraceCounter(lambda s: llm.inference_step(MODEL, CL, PAR, s).tpot_s)
    f = jax.jit(counted)
    f(_serve())
    f(_serve(batch=64, kv_bits=8))
    assert counted.count == 1


def _objective(x):
    s = llm.Serving(batch=x[0], prompt_len=x[1], decode_len=256.0, kv_bits=x[2], kv_keep_ratio=x[3])
    par = llm.Parallelism(tp=x[4])
    r = llm.inference_step(MODEL, CL, par, s, temperature=0.05)
    return r.energy_per_token_J + r.tpot_s


@pytest.mark.slow
def test_finite_and_fd_gradients():
    xs = jnp.array([[8.0, 4096.0, 16.0, 1.0, 8.0], [3.3, 30000.0, 5.5, 0.4, 4.0]])
    grads = np.asarray(jax.jit(jax.vmap(jax.grad(_objective)))(xs))
    assert np.all(np.isfinite(grads)) and np.all(grads[:, 2] > 0)  # more KV bits never help
    # the finite-difference point keeps the TP group inside its 8-GPU node: at tp = 8 exactly a relaxed group of
    # 8 + ε spills onto the scale-out network (a real step of the placement, +0.27 in this objective), which a
    # central difference straddles
    with float64():
        assert_grad_matches_fd(jax.jit(_objective), jnp.array([8.0, 8192.0, 8.0, 0.5, 4.0]), eps=1e-6, rtol=2e-4)


#: largest relative TPOT step the decode-attention kernel heuristics may cause when the cache grows or shrinks
#: (1.26 % found: Llama-3 70B, TP 8, a 1,024-token prompt at 2 KV bits keeping 37.5 % of the cache)
HEURISTIC_STEP = 0.015


@settings(max_examples=25, deadline=None)
@given(ctx=st.floats(512, 60000), factor=st.floats(1.1, 4.0), bits=st.sampled_from([4.0, 8.0, 16.0]))
def test_longer_context_never_faster_and_kv_share_grows(ctx, factor, bits):
    a = _step(MODEL, CL, PAR, _serve(prompt_len=ctx, kv_bits=bits))
    b = _step(MODEL, CL, PAR, _serve(prompt_len=ctx * factor, kv_bits=bits))
    # the decode-attention kernel's split/kernel heuristics (TensorRT-LLM XQA/MMHA, roofline._attention_kernels)
    # step at thresholds like the real kernels do, so a longer cache may be faster by such a step (< 1 % here)
    assert float(b.tpot_s) >= float(a.tpot_s) * (1 - HEURISTIC_STEP) and float(b.ttft_s) >= float(a.ttft_s)
    assert float(b.kv_read_fraction) >= float(a.kv_read_fraction)
    assert float(b.memory_B) >= float(a.memory_B)


@settings(max_examples=25, deadline=None)
@given(bits=st.floats(2.0, 16.0), keep=st.floats(0.05, 1.0), ctx=st.floats(1024, 100000))
@example(bits=2.0, keep=0.375, ctx=1024.0)
def test_kv_compression_never_hurts_speed_or_memory(bits, keep, ctx):
    full = _step(MODEL, CL, PAR, _serve(prompt_len=ctx))
    comp = _step(MODEL, CL, PAR, _serve(prompt_len=ctx, kv_bits=bits, kv_keep_ratio=keep))
    assert float(comp.tpot_s) <= float(full.tpot_s) * (1 + HEURISTIC_STEP)  # kernel-heuristic steps, see above
    assert float(comp.kv_cache_B) <= float(full.kv_cache_B) * (1 + 1e-6)


@settings(max_examples=25, deadline=None)
@given(b=st.floats(1.0, 64.0), factor=st.floats(1.1, 4.0))
def test_decode_tokens_per_step_time_grow_with_batch(b, factor):
    # decode is weight-bandwidth bound at small batch: more sequences per step never lower tokens/s of decode
    a = _step(MODEL, CL, PAR, _serve(batch=b, prompt_len=1024))
    c = _step(MODEL, CL, PAR, _serve(batch=b * factor, prompt_len=1024))
    assert float(b * factor / c.tpot_s) >= float(b / a.tpot_s) * (1 - 1e-5)


def test_continuous_batching_between_decode_only_and_static():
    r = llm.inference_step(MODEL, CL, PAR, _serve(batch=32, prompt_len=2048, decode_len=512))
    decode_only = 32 / float(r.tpot_s)
    assert float(r.cb_tokens_per_s) < decode_only
    assert float(r.cb_requests_per_s) == pytest.approx(float(r.cb_tokens_per_s) / 512, rel=1e-6)


def test_moe_expert_parallel_decode_reads_fewer_weights_per_gpu():
    m = llm.transformer_preset("mixtral_8x7b")
    cl = llm.cluster_preset("hgx_h100", 8)
    r1 = llm.inference_step(m, cl, llm.Parallelism(tp=2, ep=1), _serve(batch=1))
    r4 = llm.inference_step(m, cl, llm.Parallelism(tp=2, ep=4), _serve(batch=1))
    assert float(r4.weights_B) < float(r1.weights_B)


def test_oom_flagged_not_raised():
    r = llm.inference_step(MODEL, llm.cluster_preset("hgx_h100", 1), llm.Parallelism(tp=1), _serve())
    assert not bool(r.fits) and not bool(r.feasible) and np.isfinite(float(r.tpot_s))


@pytest.mark.parametrize("kw, field", [
    (dict(kv_keep_ratio=0.0), "Serving.kv_keep_ratio"),
    (dict(kv_bits=0.5), "Serving.kv_bits"),
    (dict(batch=0), "Serving.batch"),
    (dict(prompt_len=-1), "Serving.prompt_len"),
])
def test_bad_serving_inputs(kw, field):
    with pytest.raises(ValueError, match=field):
        _serve(**kw)


def test_prompt_longer_than_model_allows():
    with pytest.raises(ValueError, match="max_seq_len"):
        llm.check_sequence(llm.transformer_preset("llama2_7b"), 8192)
