"""Serving knobs: KV quantization and eviction, XQuant rematerialization, speculative decoding and
compute-communication overlap — exact formulas, invariants, gradients, transformations, errors."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffsys.llm import _serving as sv
from diffsys.testing import TraceCounter, assert_grad_matches_fd, float64

MODEL = jax.jit(lambda s: sv.serving_model(s))  # one compilation per spec structure; knobs are traced leaves


def _spec(model="meta-llama/Llama-3.1-8B", **kw):
    args = dict(system="h100", backend="trtllm", precision="fp8", tp=1, isl=8192, osl=512, concurrency=32)
    args.update(kw)
    return sv.serving_spec(model, **args)


def _at(spec, **values):
    for name, v in values.items():
        spec = eqx.tree_at(lambda s: getattr(s, name), spec, jnp.asarray(v, dtype=float),
                           is_leaf=lambda x: x is None)
    return spec


def _run(spec, **values):
    return MODEL(_at(spec, **values))


def test_tokens_per_step_is_the_geometric_series():
    s = _spec()
    assert float(s.tokens_per_step) == pytest.approx(1.0)
    for gamma, alpha in ((4, 0.8), (2, 0.5), (7, 0.9)):
        expected = sum(alpha**i for i in range(gamma + 1))  # Leviathan et al. 2023, Eq. 1
        assert float(_at(s, spec_tokens=gamma, spec_acceptance=alpha).tokens_per_step) == pytest.approx(expected)
    assert float(_at(s, spec_tokens=4, spec_acceptance=0.0).tokens_per_step) == pytest.approx(1.0)
    with float64():
        f = lambda v: _at(s, spec_tokens=v[0], spec_acceptance=v[1]).tokens_per_step  # noqa: E731
        assert_grad_matches_fd(f, jnp.asarray([3.5, 0.7]), rtol=1e-6, atol=1e-9)


def test_speculation_trades_draft_and_verify_work_for_tokens_per_step():
    s = _spec()
    base = _run(s)
    # the verify pass of γ + 1 queries emits tokens_per_step tokens per sequence: TPOT = iteration / that
    m = _run(s, spec_tokens=4, spec_acceptance=0.7, draft_cost=0.05)
    # one iteration (verify + 4 draft steps) is longer than a plain step, but emits (1 - 0.7^5)/0.3 = 2.77 tokens
    assert float(m.decode_step_s) > float(base.decode_step_s)
    assert float(m.tpot_s) < 0.7 * float(base.tpot_s)
    # nothing accepted: the draft and the wider verify pass are pure cost
    assert float(_run(s, spec_tokens=4, spec_acceptance=0.0, draft_cost=0.05).tpot_s) > float(base.tpot_s)
    # the verify pass streams the cache once: its attention grows far less than 5x
    assert float(m.decode_attention_s) < 1.5 * float(base.decode_attention_s)
    # TPOT falls with the acceptance rate and rises with the draft cost
    tp = [float(_run(s, spec_tokens=4, spec_acceptance=a, draft_cost=0.05).tpot_s) for a in (0.2, 0.5, 0.8, 0.95)]
    assert all(b < a for a, b in zip(tp, tp[1:])), tp
    tc = [float(_run(s, spec_tokens=4, spec_acceptance=0.7, draft_cost=c).tpot_s) for c in (0.0, 0.1, 0.3)]
    assert all(b > a for a, b in zip(tc, tc[1:])), tc


def test_eviction_and_kv_bits_scale_the_cache():
    s = _spec()
    base = _run(s)
    half = _run(s, kv_keep=0.5)
    assert float(half.kv_capacity_requests) >= 2 * float(base.kv_capacity_requests) - 1
    assert float(half.decode_attention_s) < float(base.decode_attention_s)
    assert float(half.tpot_s) <= float(base.tpot_s)
    # bits per cached element: capacity inversely proportional (fp8 cache = 8 bits)
    four = _run(s, kv_bits=4.0)
    assert float(four.kv_capacity_requests) >= 2 * float(base.kv_capacity_requests) - 1
    assert float(four.tpot_s) <= float(base.tpot_s) * (1 + 1e-6)
    bits = [float(_run(s, kv_bits=b).tpot_s) for b in (16.0, 8.0, 4.0, 2.0)]
    assert all(b <= a * (1 + 1e-6) for a, b in zip(bits, bits[1:])), bits
    # the disaggregated KV transfer carries only the kept cache
    dis = _spec(mode="disagg", prefill_workers=1, decode_workers=1)
    t_full, t_half = (float(sv.serving_kernels(_at(dis, kv_keep=k)).kv_transfer_s) for k in (1.0, 0.5))
    net = dis.system.dims[-1]
    assert t_half - float(net.latency_s) == pytest.approx(0.5 * (t_full - float(net.latency_s)), rel=1e-5)


def test_xquant_caches_the_layer_input():
    s = _spec()
    arch = s.arch
    kv = float(arch.kv_elements_per_token_layer(1.0))  # 2·8·128 = 2048 for Llama-3.1-8B
    h = float(arch.transformer.hidden)
    per_tok = lambda spec, tp=1.0: float(sv._kv_bytes_per_token(arch, spec, tp))  # noqa: E731
    assert per_tok(_at(s, kv_remat=1.0)) == pytest.approx(per_tok(s) * h / kv)
    assert per_tok(_at(s, kv_remat=0.5)) == pytest.approx(per_tok(s) * (0.5 + 0.5 * h / kv))
    # X is replicated on every TP rank, K/V heads are split: under TP 8 the X cache is 8x larger per GPU than KV's
    assert per_tok(_at(s, kv_remat=1.0), 8.0) / per_tok(s, 8.0) == pytest.approx(h / float(
        arch.kv_elements_per_token_layer(8.0)))
    # 2-bit X instead of an 8-bit cache: half the bytes, twice the requests, but the rematerialization costs compute
    x2 = _run(s, kv_remat=1.0, kv_bits=2.0)
    base = _run(s)
    assert float(x2.kv_capacity_requests) >= 2 * float(base.kv_capacity_requests) - 1
    # rematerializing K/V for the whole context each step: 2·ctx·h·kv FLOPs per sequence and layer
    assert float(x2.decode_attention_s) > float(_run(s, kv_bits=2.0).decode_attention_s)
    assert float(x2.tpot_s) > float(base.tpot_s)


def test_overlap_hides_communication_and_never_slows():
    s = _spec(model="meta-llama/Llama-3.1-70B", tp=4, isl=2048, osl=256, concurrency=64)
    ms = [_run(s, comm_overlap=o) for o in (0.0, 0.25, 0.5, 1.0)]
    tp = [float(m.tpot_s) for m in ms]
    assert all(b <= a * (1 + 1e-6) for a, b in zip(tp, tp[1:])), tp
    assert tp[-1] < tp[0]
    full = ms[-1]
    compute = s.decode_scale * (full.decode_gemm_s + full.decode_attention_s)
    assert float(full.decode_comm_s) < float(compute)  # at this batch all of it fits under the compute
    # the exposed part: (1 - o)·c + max(o·c - compute, 0)
    ex = sv._exposed_comm
    assert float(ex(2.0, 5.0, 0.0)) == 2.0 and float(ex(2.0, 5.0, 1.0)) == 0.0
    assert float(ex(2.0, 5.0, 0.5)) == pytest.approx(1.0) and float(ex(8.0, 5.0, 1.0)) == pytest.approx(3.0)
    assert float(ex(8.0, 5.0, 0.5)) == pytest.approx(4.0)
    # with every collective hidden, the step is what it would be on an infinitely fast network
    kern = sv.serving_kernels(s)
    fast = eqx.tree_at(lambda x: (x.decode_comm_s, x.prefill_comm_s), kern, (jnp.zeros(2), jnp.zeros(())))
    assert float(kern.prefill_comm_s) < float(kern.prefill_gemm_s)
    no_comm = sv.serving_loop(s, fast)
    assert float(full.tpot_s) == pytest.approx(float(no_comm.tpot_s), rel=1e-4)
    # single GPU: nothing to overlap
    one = _spec()
    assert float(_run(one, comm_overlap=1.0).tpot_s) == pytest.approx(float(_run(one).tpot_s))


def test_gradients_signs_vmap_and_no_retrace():
    s = _spec(model="meta-llama/Llama-3.1-70B", tp=4, isl=2048, osl=256, concurrency=64)
    # the cache knobs act in the kernel stage: the whole model, exact (temperature 0)
    g = jax.jit(jax.grad(lambda v: sv.serving_model(_at(s, kv_keep=v[0], kv_remat=v[1])).tpot_s * 1e3))(
        jnp.asarray([0.6, 0.2]))
    assert np.all(np.isfinite(np.asarray(g))) and float(g[0]) > 0 and float(g[1]) > 0, g
    # the loop knobs, relaxed (temperature 0.1), on the serving stage
    kern = sv.serving_kernels(s)
    loop_knobs = ("spec_tokens", "spec_acceptance", "draft_cost", "comm_overlap")

    def tpot(v, temperature=0.1):
        return sv.serving_loop(_at(s, **dict(zip(loop_knobs, v))), kern, temperature=temperature).tpot_s * 1e3

    v0 = jnp.asarray([3.0, 0.6, 0.05, 0.5])
    d = dict(zip(loop_knobs, np.asarray(jax.jit(jax.grad(tpot))(v0))))
    assert all(np.isfinite(x) for x in d.values()), d
    assert d["spec_acceptance"] < 0 and d["draft_cost"] > 0 and d["comm_overlap"] < 0, d
    with float64():
        assert_grad_matches_fd(lambda v: tpot(v, 0.0), jnp.asarray(v0, jnp.float64), rtol=1e-4, atol=1e-8)
    # vmap over a knob equals the loop; a second call with new values does not retrace
    vals = jnp.asarray([0.0, 0.5, 1.0])
    one = jax.jit(lambda o: sv.serving_loop(_at(s, comm_overlap=o), kern).tpot_s)
    np.testing.assert_allclose(np.asarray(jax.vmap(one)(vals)), [float(one(o)) for o in vals], rtol=1e-5)
    counter = TraceCounter(lambda o: sv.serving_loop(_at(s, comm_overlap=o), kern).tpot_s)
    f = jax.jit(counter)
    f(0.1)
    f(0.9)
    assert counter.count == 1


@pytest.mark.parametrize("kw, field", [
    (dict(kv_keep=0.0), "kv_keep"), (dict(kv_bits=0.5), "kv_bits"), (dict(kv_remat=1.5), "kv_remat"),
    (dict(spec_acceptance=1.0), "spec_acceptance"), (dict(spec_tokens=-1), "spec_tokens"),
    (dict(draft_cost=2.0), "draft_cost"), (dict(comm_overlap=-0.1), "comm_overlap"),
])
def test_bad_knobs_name_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        _spec(**kw)


def test_cli_flags(capsys):
    from diffsys.cli import main

    cmd = ["serve", "--model", "meta-llama/Llama-3.1-8B", "--isl", "4096", "--osl", "256", "--concurrency", "16",
           "--json"]

    def run(*extra):
        assert main(cmd + list(extra)) == 0
        return json.loads(capsys.readouterr().out)

    base = run()
    spec = run("--spec-tokens", "3", "--spec-acceptance", "0.8", "--draft-cost", "0.05", "--kv-keep", "0.5")
    assert spec["tpot_ms"] < base["tpot_ms"] and spec["kv_capacity_requests"] > base["kv_capacity_requests"]
    assert main(cmd + ["--kv-keep", "0"]) == 2
    err = capsys.readouterr().err
    assert "--kv-keep" in err and "Traceback" not in err
