"""Attention-kernel latency models (prefill FMHA, decode): measured TensorRT-LLM rows, physics and JAX contracts."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffsys.hardware as H
import diffsys.roofline as R
from diffsys.hardware import calibration_provenance
from diffsys.testing import (TraceCounter, assert_grad_matches_fd, assert_jit_matches_eager, assert_vmap_matches_loop,
                             float64)

A100, H100 = H.preset("a100_80gb"), H.preset("h100_sxm")
GPUS = {"a100_sxm": A100, "h100_sxm": H100}
FUNCS = {"context": R.prefill_attention_time, "generation": R.decode_attention_time}


@jax.jit
def _prefill(x, accel):
    return R.prefill_attention_time(x[..., 0], x[..., 1], x[..., 2], x[..., 3], x[..., 4], accel).time_s


@jax.jit
def _decode(x, accel):
    return R.decode_attention_time(x[..., 0], x[..., 1], x[..., 2], x[..., 3], x[..., 4], accel).time_s


EVAL = {"context": _prefill, "generation": _decode}


def _rows(validation_dir, kind, tag, step=6):
    """Held-out (odd, file order) rows of one file, every ``step``-th of them: inputs and latency in seconds."""
    path = validation_dir / "attention" / f"{kind}_attention_{tag}_bf16_hd128.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    held = data[1::2][::step]
    return jnp.asarray(held[:, :5], dtype=jnp.float32), held[:, 5] * 1e-6


def _rel(pred, meas):
    return np.abs(np.asarray(pred, dtype=float) / meas - 1.0)


# Held-out MAPE of the shipped constants on the sub-sampled rows (full held-out figures: docs/roofline.md).
# Bounds are the achieved values rounded up by about one point.
BOUNDS = {("context", "a100_sxm"): 0.075, ("context", "h100_sxm"): 0.06,
          ("generation", "a100_sxm"): 0.095, ("generation", "h100_sxm"): 0.08}


@pytest.mark.parametrize("kind, tag", list(BOUNDS))
def test_held_out_error_against_measured_trtllm_rows(validation_dir, kind, tag):
    x, meas = _rows(validation_dir, kind, tag)
    rel = _rel(EVAL[kind](x, GPUS[tag]), meas)
    assert rel.mean() < BOUNDS[kind, tag], f"MAPE {rel.mean():.3f}"
    assert np.percentile(rel, 90) < 2.5 * BOUNDS[kind, tag]
    assert np.all(np.isfinite(rel))


@pytest.mark.parametrize("tag", list(GPUS))
def test_bandwidth_bound_decode_rows_track_the_kv_cache_bytes(validation_dir, tag):
    """Rows whose KV cache alone needs > 60 % of the measured time at datasheet bandwidth: the KV-bytes term."""
    x, meas = _rows(validation_dir, "generation", tag, step=1)
    b, L, hq, hk, d = (np.asarray(x[:, i], dtype=float) for i in range(5))
    kv_s = 2 * b * L * hk * d * 2 / float(GPUS[tag].main_memory.bandwidth_Bps)
    group = hq / hk
    sel = (kv_s > 0.6 * meas) & (group >= 2) & (group <= 32)
    assert sel.sum() > 50
    rel = _rel(_decode(x[sel], GPUS[tag]), meas[sel])
    # A100's group-aware rows imply more than the datasheet HBM bandwidth (see docs), hence its looser bound
    bound = {"a100_sxm": 0.10, "h100_sxm": 0.08}[tag]
    assert rel.mean() < bound, f"MAPE {rel.mean():.3f} on {sel.sum()} bandwidth-bound rows"


@pytest.mark.parametrize("tag", list(GPUS))
def test_large_group_rows_track_the_l2_rereads(validation_dir, tag):
    """Groups above 32 run MMHA, one CTA per q head: long caches are bound by the g-fold K/V re-reads from L2."""
    x, meas = _rows(validation_dir, "generation", tag, step=1)
    b, L, hq, hk = (np.asarray(x[:, i], dtype=float) for i in range(4))
    sel = (hq / hk > 32) & (L >= 4095)
    assert sel.sum() > 20
    rel = _rel(_decode(x[sel], GPUS[tag]), meas[sel])
    assert rel.mean() < 0.25, f"MAPE {rel.mean():.3f} on {sel.sum()} large-group rows"


@pytest.mark.parametrize("tag", list(GPUS))
def test_long_prefill_rows_track_the_tile_flops(validation_dir, tag):
    """Prefill of >= 4k tokens is matrix-bound: the tile-FLOP term alone must carry it."""
    x, meas = _rows(validation_dir, "context", tag, step=1)
    sel = np.asarray(x[:, 1]) >= 4096
    rel = _rel(_prefill(x[sel], GPUS[tag]), meas[sel])
    assert rel.mean() < 0.06, f"MAPE {rel.mean():.3f}"


def test_shipped_constants_and_provenance():
    prov = calibration_provenance("attention")
    for key in ("data", "fit", "split", "script", "date"):
        assert prov[key]
    assert prov["date"] == "2026-12-02"
    for accel in (A100, H100, H.preset("h200"), H.preset("b200")):
        c = accel.kernel_constants("attention", "bf16")
        assert c is not None and set(c) >= set(R.DEFAULT_ATTENTION_CONSTANTS) - {"decode_page_tokens"}
    # the A100 and H100 fits differ from each other and from the portable entry
    a, h = A100.kernel_constants("attention"), H100.kernel_constants("attention")
    assert float(a["prefill_mma_efficiency"]) != float(h["prefill_mma_efficiency"])
    assert float(H.preset("h200").kernel_constants("attention")["decode_xqa_launch_s"]) not in (
        float(a["decode_xqa_launch_s"]), float(h["decode_xqa_launch_s"]))


def test_datasheet_arithmetic_of_the_bandwidth_and_compute_limits():
    # decode far into the bandwidth regime: time -> KV bytes / (B·η)
    c = H100.kernel_constants("attention")
    r = R.decode_attention_time(256, 65536, 32, 8, 128, H100)
    kv = 2 * 256 * 65536 * 8 * 128 * 2
    assert float(r.bytes) == pytest.approx(kv + 2 * 256 * 32 * 128 * 2, rel=1e-6)
    bw = float(H100.main_memory.bandwidth_Bps) * float(c["decode_xqa_bw_efficiency"])
    resident = float(c["decode_l2_resident_fraction"]) * float(H100.level("l2").capacity_B)
    assert float(r.time_s) == pytest.approx((kv - resident) / bw, rel=0.02)
    # fp8 KV cache halves the stream (the per-tile issue cost is fitted on bf16 rows only, so the step can become
    # issue bound: faster, but not twice as fast)
    r8 = R.decode_attention_time(256, 65536, 32, 8, 128, H100, kv_dtype="fp8")
    assert float(r8.memory_s) == pytest.approx(0.5 * float(r.memory_s), rel=1e-3)
    assert 0.5 * float(r.time_s) * (1 - 1e-3) <= float(r8.time_s) < float(r.time_s)
    # long causal prefill: padded causal tiles at the per-core matrix peak
    p = R.prefill_attention_time(4, 16384, 32, 8, 128, H100)
    tq, tk = float(c["prefill_tile_q"]), float(c["prefill_tile_kv"])
    nq, nk = 16384 / tq, 16384 / tk
    assert float(p.flops) == pytest.approx(4 * 32 * (tq / tk * nq * (nq - 1) / 2 + nk) * 4 * tq * tk * 128)
    assert float(p.flops) == pytest.approx(4 * 4 * 32 * 16384 ** 2 * 128 / 2, rel=0.01)  # ≈ causal half
    assert 0.3 < float(p.achieved_flops) / 989.4e12 < 0.8


def test_causal_tile_pairs_match_an_explicit_block_mask():
    for s, tq, tk in [(1, 64, 64), (100, 64, 64), (1000, 128, 64), (4096, 128, 128), (300, 128, 64)]:
        q_end = np.minimum((np.arange(int(np.ceil(s / tq))) + 1) * tq, s)  # last query row (exclusive) per q tile
        blocks = sum(int(np.ceil(e / tk)) for e in q_end)  # key tiles 0 .. ceil(end/Tkv)-1
        pairs, nq, nk = R.causal_tile_pairs(s, tq, tk)
        assert float(pairs) == blocks
        full, _, _ = R.causal_tile_pairs(s, tq, tk, causal=False)
        assert float(full) == np.ceil(s / tq) * np.ceil(s / tk)


def test_zero_size_costs_the_launch_floor():
    for accel in (A100, H100):
        c = accel.kernel_constants("attention")
        assert float(R.prefill_attention_time(0, 4096, 32, 8, 128, accel).time_s) == pytest.approx(
            float(c["prefill_launch_s"]))
        assert float(R.prefill_attention_time(8, 0, 32, 8, 128, accel).time_s) == pytest.approx(
            float(c["prefill_launch_s"]))
        assert float(R.decode_attention_time(0, 4096, 32, 8, 128, accel).time_s) == pytest.approx(
            float(c["decode_mmha_launch_s"]))  # no CTA: below XQA's use threshold, the MMHA path's floor


def _scaled(accel, bw=1.0, peak=1.0):
    out = eqx.tree_at(lambda a: a.memory[a.main_memory_index].bandwidth_Bps, accel,
                      accel.main_memory.bandwidth_Bps * bw)
    return eqx.tree_at(lambda a: (a.matrix_flops, a.vector_flops), out,
                       ({k: v * peak for k, v in accel.matrix_flops.items()},
                        {k: v * peak for k, v in accel.vector_flops.items()}))


_sizes = st.tuples(st.sampled_from([1, 3, 16, 64, 256]), st.integers(1, 40000), st.sampled_from([1, 8, 32, 64]),
                   st.sampled_from([1, 2, 8]), st.sampled_from([64, 128]))


@settings(max_examples=30, deadline=None)
@given(_sizes, st.floats(1.0, 4.0), st.floats(1.0, 4.0), st.sampled_from(["context", "generation"]))
def test_more_bandwidth_or_peak_is_never_slower(size, bw, peak, kind):
    x = jnp.asarray(size, dtype=jnp.float32)
    base = float(EVAL[kind](x, H100))
    assert float(EVAL[kind](x, _scaled(H100, bw=bw))) <= base * (1 + 1e-6)
    assert float(EVAL[kind](x, _scaled(H100, peak=peak))) <= base * (1 + 1e-6)


@settings(max_examples=30, deadline=None)
@given(_sizes, st.integers(1, 40000), st.sampled_from(["context", "generation"]))
def test_longer_sequence_or_cache_is_never_faster(size, extra, kind):
    """Prefill: always. Decode: for the same kernel and the same CTA count (the real kernels are not monotone across
    a heuristic switch: a longer cache can buy more splits or the faster XQA path; see the measured steps below)."""
    x = jnp.asarray(size, dtype=jnp.float32)
    longer = x.at[1].add(extra)
    bigger = x.at[0].multiply(2.0)
    for accel in (A100, H100):
        if kind == "context":
            assert float(EVAL[kind](longer, accel)) >= float(EVAL[kind](x, accel)) * (1 - 1e-6)
            assert float(EVAL[kind](bigger, accel)) >= float(EVAL[kind](x, accel)) * (1 - 1e-6)
            continue
        base = R.decode_attention_time(*x, accel)
        for other in (longer, bigger):
            r = R.decode_attention_time(*other, accel)
            same_path = float(r.ctas) == float(base.ctas) and float(r.floor_s) == float(base.floor_s)
            if same_path:
                assert float(r.time_s) >= float(base.time_s) * (1 - 1e-6)


def test_heuristics_match_tensorrt_llm_by_hand():
    """XQA use/split and MMHA CTA size/split against the TensorRT-LLM rules worked by hand (H100: 132 SMs)."""
    n = 132.0
    # XQA needs 4·hk·b·max(1, ⌊L/128⌋) >= N: batch 1, one kv head: 2048 -> 60 < 132, 4096 -> 124, 8192 -> 256
    for L, use in [(2048, 0.0), (4096, 0.0), (8192, 1.0)]:
        w, _ = R.xqa_use_and_splits(1.0, L, 1.0, 32.0, n)
        assert float(w) == use
    _, splits = R.xqa_use_and_splits(1.0, 8192.0, 1.0, 32.0, n)
    assert float(splits) == 23.0  # ⌊8192/128⌋ = 64 capped at round(√512) = 23
    _, splits = R.xqa_use_and_splits(1.0, 8192.0, 1.0, 32.0, n, sqrt_cap=0.0)
    assert float(splits) == 64.0
    _, splits = R.xqa_use_and_splits(64.0, 8192.0, 8.0, 4.0, n)
    assert float(splits) == 2.0  # at most ⌊8·132/(64·8)⌋ = 2 (8 waves)
    _, splits = R.xqa_use_and_splits(2048.0, 131072.0, 1.0, 4.0, n)
    assert float(splits) == 1.0  # ⌊6000/2048⌋ = 2 but ⌊8·132/2048⌋ = 0 -> 1
    for g, ok in [(1.0, 0.0), (2.0, 1.0), (32.0, 1.0), (64.0, 0.0)]:
        w, _ = R.xqa_use_and_splits(64.0, 4096.0, 8.0, g, n)
        assert float(w) == ok  # MHA and groups above 32 go to MMHA
    # MMHA: 4 CTAs of 256 threads per core; 64 rows -> 1024 threads, splits min(⌈132/64⌉, ⌈2048/512⌉) = 3
    threads, splits = R.mmha_threads_and_splits(1.0, 2048.0, 64.0, n, 4.0)
    assert (float(threads), float(splits)) == (1024.0, 3.0)
    threads, splits = R.mmha_threads_and_splits(1.0, 2048.0, 192.0, n, 4.0)
    assert (float(threads), float(splits)) == (512.0, 1.0)  # 256·⌈528/192⌉ = 768 falls to 512; b·hq >= N: no split
    threads, splits = R.mmha_threads_and_splits(4.0, 2048.0, 192.0, n, 4.0)
    assert (float(threads), float(splits)) == (256.0, 1.0)


def test_measured_kernel_switch_steps_are_reproduced(validation_dir):
    """H100, batch 1, 32 q heads on 1 kv head: MMHA at 2047 and 4095 cached tokens (5 splits of 820 tokens are
    slower than 4 of 512), XQA from 8191 on: the measured 27 / 37 / 20 µs step is a change of kernel."""
    path = validation_dir / "attention" / "generation_attention_h100_sxm_bf16_hd128.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    sel = (data[:, 0] == 1) & (data[:, 2] == 32) & (data[:, 3] == 1) & np.isin(data[:, 1], [2047, 4095, 8191])
    rows = data[sel][np.argsort(data[sel][:, 1])]
    pred = np.asarray(_decode(jnp.asarray(rows[:, :5], dtype=jnp.float32), H100), dtype=float)
    meas = rows[:, 5] * 1e-6
    assert pred[1] > pred[0] and pred[2] < pred[1]  # up, then down, as measured
    # 4095 and 8191 within 15 %; 2047 is predicted at the 512-token CTA cost of few-row MMHA launches (17 µs)
    # while this 32-row launch measures 27 µs (docs/roofline.md: residuals)
    assert np.all(_rel(pred[1:], meas[1:]) < 0.15), _rel(pred, meas)


def test_mha_decode_reads_every_q_head_and_gqa_shares_kv():
    mha = R.decode_attention_time(16, 8192, 32, 32, 128, H100)
    gqa = R.decode_attention_time(16, 8192, 32, 8, 128, H100)
    assert float(mha.bytes) / float(gqa.bytes) == pytest.approx(4.0, rel=1e-3)
    assert float(mha.time_s) > 3.0 * float(gqa.time_s)
    # a group beyond XQA's limit falls back to MMHA: one CTA per q head, K/V re-read per q head (from L2)
    big = R.decode_attention_time(16, 8192, 64, 1, 128, H100)
    small = R.decode_attention_time(16, 8192, 32, 1, 128, H100)
    assert float(big.bytes) == pytest.approx(float(small.bytes), rel=1e-2)  # the same unique cache from HBM
    assert float(big.ctas) > 2 * float(small.ctas)
    assert float(big.time_s) > 5 * float(small.time_s)


def _point():
    return jnp.asarray([8.0, 3000.0, 32.0, 8.0, 128.0])


def _fn(kind, temperature=0.0, jit=True):
    f = FUNCS[kind]
    fn = lambda x: f(x[0], x[1], x[2], x[3], x[4], H100, temperature=temperature).time_s  # noqa: E731
    return jax.jit(fn) if jit else fn


@pytest.mark.parametrize("kind", list(FUNCS))
def test_jit_vmap_and_no_retrace(kind):
    fn = _fn(kind, jit=False)
    assert_jit_matches_eager(lambda x: FUNCS[kind](x[0], x[1], x[2], x[3], x[4], H100), _point())
    xs = jnp.asarray([[1, 16, 8, 1, 128], [8, 3000, 32, 8, 128], [64, 70000, 64, 64, 128], [2, 1, 96, 2, 64]],
                     dtype=jnp.float32)
    assert_vmap_matches_loop(fn, xs)
    counter = TraceCounter(fn)
    jf = jax.jit(counter)
    jf(xs[0])
    jf(xs[1] * 2.0)
    assert counter.count == 1


@pytest.mark.parametrize("kind", list(FUNCS))
def test_smooth_twin_converges_and_has_finite_gradients(kind):
    f = FUNCS[kind]

    def time_of(x, temperature, bw):  # temperature traced: one compilation serves every temperature
        accel = eqx.tree_at(lambda a: a.memory[a.main_memory_index].bandwidth_Bps, H100, bw)
        return f(x[0], x[1], x[2], x[3], x[4], accel, temperature=temperature).time_s

    value = jax.jit(time_of)
    grad = jax.jit(jax.grad(time_of, argnums=(0, 2)))
    x, bw = _point(), H100.main_memory.bandwidth_Bps
    exact = float(_fn(kind)(x))
    assert float(value(x, 0.0, bw)) == pytest.approx(exact, rel=1e-6)
    assert float(value(x, 1e-4, bw)) == pytest.approx(exact, rel=2e-3)
    for temperature in (0.0, 0.05):
        gx, gbw = grad(x, temperature, bw)
        assert np.all(np.isfinite(np.asarray(gx))) and np.isfinite(float(gbw))
    assert float(gbw) < 0  # more bandwidth, less time
    assert float(gx[1]) > 0  # longer sequence, more time


@pytest.mark.parametrize("kind", list(FUNCS))
def test_float64_gradient_matches_finite_differences(kind):
    with float64():
        accel = H.preset("h100_sxm")
        x = jnp.asarray([8.0, 3000.0, 32.0, 8.0, 128.0], dtype=jnp.float64)
        f = FUNCS[kind]
        fn = jax.jit(lambda v: f(v[0], v[1], v[2], v[3], v[4], accel, temperature=0.1).time_s * 1e3)
        assert_grad_matches_fd(fn, x, rtol=1e-4, atol=1e-9)


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match="seq_len"):
        R.prefill_attention_time(1, -4, 8, 8, 128, H100)
    with pytest.raises(ValueError, match="kv_len"):
        R.decode_attention_time(1, -1, 8, 8, 128, H100)
    with pytest.raises(ValueError, match="kv_dtype"):
        R.decode_attention_time(1, 10, 8, 8, 128, H100, kv_dtype="int3")
    with pytest.raises(ValueError, match="unknown attention constants"):
        R.decode_attention_time(1, 10, 8, 8, 128, H100, constants={"decode_lunch_s": 1e-6})


@settings(max_examples=20, deadline=None)
@given(size=st.sampled_from([256, 1024, 4096, 16384]), heads=st.sampled_from([8, 32]),
       causal=st.booleans())
def test_backward_pass_costs_more_than_forward_and_grows_with_length(size, heads, causal):
    """FA2 Algorithm 2: five block GEMMs against two at 0.83x the forward's tensor-core efficiency [FA3]; at long
    sequences (the matrix work dominant) backward/forward approaches 2.5 / 0.83 of the kernel time."""
    f = lambda s, bwd: R.prefill_attention_time(1, s, heads, heads, 128, H100, "bf16", causal=causal, backward=bwd)
    fwd, bwd = f(size, False), f(size, True)
    assert float(bwd.time_s) > float(fwd.time_s)
    assert float(bwd.flops) == pytest.approx(2.5 * float(fwd.flops), rel=1e-6)
    assert float(f(2 * size, True).time_s) > float(bwd.time_s)
    long_ratio = float(f(65536, True).kernel_s / f(65536, False).kernel_s)
    assert 2.0 < long_ratio <= 2.5 / R.BACKWARD_MMA_EFFICIENCY_RATIO * 1.01, long_ratio


def test_backward_pass_is_jit_clean():
    fn = lambda s: R.prefill_attention_time(2, s, 16, 8, 128, H100, "bf16", backward=True).time_s
    assert_jit_matches_eager(fn, jnp.float32(3000.0))
