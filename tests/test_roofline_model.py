"""op_time / hierarchical roofline: datasheet sanity, published efficiency bands, JAX transformations, invariants."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffsys.hardware as H
import diffsys.roofline as R
from diffsys.testing import (
    TraceCounter, assert_finite_grads, assert_grad_matches_fd, assert_jit_matches_eager, assert_vmap_matches_loop,
    float64,
)

H100 = H.preset("h100")
A100 = H.preset("a100_80gb")


# -- datasheet sanity ---------------------------------------------------------------------------------------------
def test_8192_cubed_bf16_gemm_on_h100_is_compute_bound_at_datasheet_time():
    r = R.op_time(R.gemm(8192, 8192, 8192), H100, "bf16", efficiency=1.0)
    assert bool(r.compute_bound)
    assert float(r.time_s) == pytest.approx(2 * 8192**3 / 989.4e12, rel=1e-6)
    assert float(r.arithmetic_intensity) == pytest.approx(2 * 8192**3 / (3 * 8192**2 * 2), rel=1e-6)
    # the ridge point of H100 bf16: 989.4e12 / 3.35e12 ≈ 295 FLOP/B; a GEMV is far below it
    gemv = R.op_time(R.gemm(8192, 1, 8192), H100, "bf16", efficiency=1.0)
    assert not bool(gemv.compute_bound)
    assert float(gemv.time_s) == pytest.approx(float(R.gemm(8192, 1, 8192).bytes) / 3.35e12, rel=1e-6)


# -- measured data from the literature ----------------------------------------------------------------------------
@pytest.mark.parametrize("accel", ["a100_40gb", "a100_80gb"])
@pytest.mark.parametrize("size", [4096, 8192, 16384])
def test_a100_large_gemm_reaches_the_published_fraction_of_peak(accel, size):
    """Large cuBLAS bf16 GEMMs on A100 attain ~82 % of the 312 TFLOP/s peak (NVIDIA DL performance guide)."""
    a = H.preset(accel)
    # the generic roofline with the size-dependent efficiency curves (the default of op_time for a GEMM is the
    # calibrated kernel model, tested against the measured GEMMs in test_gemm_kernel.py)
    r = R.op_time(R.gemm(size, size, size), a, "bf16", R.default_efficiency(a))
    frac = float(r.achieved_flops) / 312e12
    assert 0.79 <= frac <= 0.85, frac
    # the kernel model stays within 12 % of that band (measured on A100-SXM4-80GB: 0.86 at 4096³, 0.84 at 8192³)
    k = float(R.op_time(R.gemm(size, size, size), a, "bf16").achieved_flops) / 312e12
    assert 0.79 / 1.12 <= k <= 0.85 * 1.12, k


def test_small_gemms_fall_short_of_the_band():
    # the size-dependent curve separates small GEMMs (well below the large-GEMM fraction) from large ones
    fr = [float(R.op_time(R.gemm(s, s, s), A100).achieved_flops) / 312e12 for s in (256, 512, 1024, 2048, 8192)]
    # (the calibrated kernel model; measured on A100: 0.02, 0.13, 0.38, 0.51, 0.84 of the peak)
    assert all(b > a for a, b in zip(fr, fr[1:])), fr
    assert fr[0] < 0.1 and fr[1] < 0.5


@pytest.mark.parametrize("accel", ["v100", "a100_40gb", "a100_80gb", "h100_sxm"])
def test_stream_triad_attains_published_hbm_efficiency(accel):
    """BabelStream-size triad (3 arrays of 2^25 fp64): achieved / datasheet bandwidth in 0.83–0.89."""
    a = H.preset(accel)
    n = 2**25
    triad = R.elementwise(n, flops_per_element=2, n_inputs=2, n_outputs=1, bytes_per_element=8)
    r = R.op_time(triad, a, "fp32")
    assert not bool(r.compute_bound)
    frac = float(triad.bytes) / float(r.time_s) / float(a.main_memory.bandwidth_Bps)
    assert 0.83 <= frac <= 0.89, frac
    # a 64 KiB copy is latency bound (Little's law): far below the streaming band
    small = R.elementwise(2**13, 0, 1, 1, 8)
    rs = R.op_time(small, a, "fp32")
    assert float(small.bytes) / float(rs.time_s) / float(a.main_memory.bandwidth_Bps) < 0.5


# -- JAX transformations ------------------------------------------------------------------------------------------
def _model(x):
    """A design point x = (log2 m, log2 n, log2 k, bandwidth scale, peak scale) -> Roofline metrics."""
    m, n, k = 2.0 ** x[0], 2.0 ** x[1], 2.0 ** x[2]
    op = R.gemm(m, n, k)
    eff = R.Efficiency(R.EfficiencyCurve(0.8, 1e9 * x[4]), R.EfficiencyCurve(0.9, 2e6 * x[3]), 0.7)
    r = R.op_time(op, H100, "bf16", eff, temperature=0.05)
    return r._replace(compute_bound=r.compute_bound.astype(jnp.float32))


def _points(key, n):
    lo = jnp.array([4.0, 4.0, 4.0, 0.5, 0.5])
    hi = jnp.array([14.0, 14.0, 14.0, 2.0, 2.0])
    return lo + (hi - lo) * jax.random.uniform(key, (n, 5))


def test_jit_vmap_and_no_retrace():
    xs = _points(jax.random.PRNGKey(0), 4)
    assert_jit_matches_eager(_model, xs[0])
    assert_vmap_matches_loop(_model, xs)
    counter = TraceCounter(_model)
    f = jax.jit(jax.vmap(counter))
    f(xs)
    f(xs + 0.1)
    assert counter.count == 1


def test_finite_grads_and_fd_check():
    logt = jax.jit(lambda z: jnp.log(_model(z).time_s))
    grads = jax.jit(jax.vmap(jax.grad(logt)))(_points(jax.random.PRNGKey(1), 16))
    assert np.all(np.isfinite(np.asarray(grads)))
    with float64():
        logt64 = jax.jit(lambda z: jnp.log(_model(z).time_s))
        for x in _points(jax.random.PRNGKey(2), 3):
            x = jnp.asarray(np.asarray(x), dtype=jnp.float64)
            assert_finite_grads(logt64, x)
            assert_grad_matches_fd(logt64, x, eps=1e-6, rtol=1e-4)


def test_gradients_wrt_accelerator_fields():
    op = R.gemm(4096, 4096, 4096)

    def t(acc):
        return R.op_time(op, acc, "bf16", temperature=0.1).time_s

    g = jax.grad(t)(H100)
    assert float(g.matrix_flops["bf16"]) < 0  # more peak -> less time
    assert float(g.memory[2].bandwidth_Bps) <= 0


def test_smooth_twin_converges_to_exact():
    ops = R.gemm(jnp.array([64.0, 1024.0, 8192.0]), 1024.0, jnp.array([4096.0, 1024.0, 64.0]))
    exact = np.asarray(R.op_time(ops, H100).time_s)
    errs = [np.max(np.abs(np.asarray(R.op_time(ops, H100, temperature=t).time_s) / exact - 1))
            for t in (0.3, 0.1, 0.03, 0.01)]
    assert all(b < a for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 0.01
    # traced temperature 0 is bit-identical to the exact path
    traced = jax.jit(lambda tt: R.op_time(ops, H100, temperature=tt).time_s)(jnp.asarray(0.0))
    np.testing.assert_array_equal(np.asarray(traced), exact)


# -- invariants ---------------------------------------------------------------------------------------------------
def _op_time(f, b, peak_scale, bw_scale, temperature):
    acc = H.Accelerator("x", {"bf16": 1e15 * peak_scale}, {"bf16": 1e14 * peak_scale},
                        (H.MemoryLevel("hbm", 8e10, 3e12 * bw_scale, 5e-7, 3e-11),), H.PowerSpec(700.0))
    return R.op_time(R.OpCost(f, b / 2, b / 2, 0.9), acc, "bf16", temperature=temperature).time_s


_op_time_jit = jax.jit(_op_time)


@settings(max_examples=25, deadline=None)
@given(st.floats(1e3, 1e15), st.floats(1e3, 1e12), st.floats(0.1, 10), st.floats(0.1, 10), st.floats(1.0, 4.0),
       st.sampled_from([0.0, 0.05, 0.5]))
def test_more_bandwidth_or_peak_is_never_slower(f, b, peak, bw, factor, temp):
    base = float(_op_time_jit(f, b, peak, bw, temp))
    assert float(_op_time_jit(f, b, peak * factor, bw, temp)) <= base * (1 + 1e-6)
    assert float(_op_time_jit(f, b, peak, bw * factor, temp)) <= base * (1 + 1e-6)
    # and more work is never faster
    assert float(_op_time_jit(f * factor, b, peak, bw, temp)) >= base * (1 - 1e-6)


@settings(max_examples=25, deadline=None)
@given(st.floats(1.0, 1e4), st.floats(0.05, 1.0), st.floats(0.0, 1e4))
def test_efficiency_curve_is_monotone_and_saturating(s, emax, shalf):
    c = R.EfficiencyCurve(emax, shalf)
    e1, e2 = float(c(s)), float(c(2 * s))
    assert 0 <= e1 <= e2 <= emax + 1e-6


# -- hierarchical ---------------------------------------------------------------------------------------------------
def test_hierarchical_reduces_to_op_roofline_with_one_level():
    op = R.gemm(2048, 2048, 64)
    flat = R.op_time(op, H100, efficiency=(0.9, 0.8))
    hier = R.hierarchical_roofline(op.flops, jnp.stack([op.bytes]), 989.4e12, jnp.stack([3.35e12]),
                                   compute_efficiency=0.9, level_efficiencies=0.8)
    assert float(hier.time_s) == pytest.approx(float(flat.time_s), rel=1e-6)
    assert bool(hier.compute_bound) == bool(flat.compute_bound)


def test_hierarchical_gemm_binding_levels_and_energy():
    lb = R.gemm_level_bytes(8192, 8192, 8192, H100)
    assert lb.shape == (3,)
    compulsory = float(R.gemm(8192, 8192, 8192).bytes)
    assert float(lb[-1]) >= compulsory * (1 - 1e-6)  # never below compulsory
    assert float(lb[0]) >= float(lb[-1])  # inner levels see at least as much traffic as main memory
    r = R.hierarchical_op_time(R.gemm(8192, 8192, 8192), H100, level_bytes=lb)
    assert int(r.binding) == 0
    # shrink L2 bandwidth 50x: the L2 ceiling binds
    slow = H100.memory[1].__class__("l2", 50 * 2**20, 12e12 / 50, 2e-7, 1e-12)
    acc = H.Accelerator("slow-l2", H100.matrix_flops, H100.vector_flops, (H100.memory[0], slow, H100.memory[2]),
                        H100.power, main_memory_index=2)
    r2 = R.hierarchical_op_time(R.gemm(8192, 8192, 8192), acc, level_bytes=lb)
    assert int(r2.binding) == 2 and float(r2.time_s) > float(r.time_s)
    e = float(r.compute_energy_J) + float(jnp.sum(r.level_energy_J))
    assert float(r.energy_J) == pytest.approx(e, rel=1e-6)
    smooth = R.hierarchical_op_time(R.gemm(8192, 8192, 8192), H100, level_bytes=lb, temperature=0.01)
    assert float(smooth.time_s) == pytest.approx(float(r.time_s), rel=0.02)


def test_op_energy_splits_compute_and_memory():
    op = R.gemm(4096, 4096, 4096)
    r = R.op_time(op, H100)
    assert float(r.compute_energy_J) == pytest.approx(float(op.flops) * 0.3e-12, rel=1e-5)
    assert float(r.memory_energy_J) == pytest.approx(float(op.bytes) * float(H100.main_memory.energy_J_per_B),
                                                     rel=1e-5)
    assert float(r.energy_J) == pytest.approx(float(r.compute_energy_J + r.memory_energy_J), rel=1e-6)


def test_roofline_chart_png(tmp_path):
    ops = [("gemm", R.gemm(4096, 4096, 4096)), ("gemv", R.gemm(4096, 1, 4096)), ("add", R.elementwise(1 << 24))]
    path = tmp_path / "roofline.png"
    R.plot_roofline(ops, H100, path)
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_bad_input_errors_name_the_field():
    with pytest.raises(ValueError, match="efficiency"):
        R.op_time(R.gemm(8, 8, 8), H100, efficiency=1.5)
    with pytest.raises(ValueError, match="efficiency"):
        R.op_time(R.gemm(8, 8, 8), H100, efficiency=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="eff_max"):
        R.EfficiencyCurve(0.0, 1.0)
    with pytest.raises(ValueError, match="s_half"):
        R.EfficiencyCurve(0.5, float("nan"))
    with pytest.raises(ValueError, match="dtype"):
        R.op_time(R.gemm(8, 8, 8), H100, dtype="bf15")
    with pytest.raises(ValueError, match="memory level"):
        R.op_time(R.gemm(8, 8, 8), H100, level="l7")
    with pytest.raises(ValueError, match="temperature"):
        R.op_time(R.gemm(8, 8, 8), H100, temperature=-1.0)


def _hier_time(level_bytes, bws, flops, temp):
    return R.hierarchical_roofline(flops, level_bytes, 1e15, bws, compute_efficiency=0.8, level_efficiencies=0.9,
                                   temperature=temp).time_s


_hier_time_jit = jax.jit(_hier_time)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(1e3, 1e12), min_size=3, max_size=3), st.lists(st.floats(1e10, 1e14), min_size=3,
       max_size=3), st.floats(1e3, 1e15), st.integers(0, 2), st.floats(1.0, 10.0), st.sampled_from([0.0, 0.1]))
def test_hierarchical_more_level_bandwidth_never_slower(q, bw, flops, level, factor, temp):
    q, bw = jnp.array(q), jnp.array(bw)
    base = float(_hier_time_jit(q, bw, flops, temp))
    faster = float(_hier_time_jit(q, bw.at[level].multiply(factor), flops, temp))
    assert faster <= base * (1 + 1e-5)
    assert float(_hier_time_jit(q.at[level].multiply(factor), bw, flops, temp)) >= base * (1 - 1e-5)


def test_host_level_offload_binds_on_the_link():
    acc = R.with_host_level(H100, "pcie5")
    assert acc.level_names == ("l1", "l2", "hbm", "host") and acc.main_memory.name == "hbm"
    op = R.gemm(1, 8192, 8192)  # a GEMV whose weights stream from host memory
    r = R.hierarchical_op_time(op, acc, level_bytes=jnp.full((4,), op.bytes))
    assert int(r.binding) == 4
    assert float(r.time_s) == pytest.approx(float(op.bytes) / (64e9 * R.MEMORY_EFFICIENCY_MAX), rel=0.01)
    with pytest.raises(ValueError, match="link"):
        R.with_host_level(H100, "pcie9")


def test_fit_efficiency_curve_recovers_parameters_on_held_out_sizes():
    true = R.EfficiencyCurve(0.83, 6e8, 1.3)
    sizes = np.logspace(7, 13, 24)
    noisy = np.asarray(true(sizes)) * (1 + 0.01 * np.random.default_rng(0).standard_normal(24))
    fit = R.fit_efficiency_curve(sizes[::2], np.clip(noisy[::2], 0, 1), steps=1500)
    held_out = np.abs(np.asarray(fit(sizes[1::2])) - np.asarray(true(sizes[1::2])))
    assert held_out.max() < 0.02, held_out.max()
    assert float(fit.eff_max) == pytest.approx(0.83, abs=0.02)
