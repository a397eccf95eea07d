"""Thermal/power throttling: sustained clock under a power cap and a junction limit, and its feedback into step
times through the clock-scaled accelerator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffsys.power as P
from diffsys.hardware import preset
from diffsys.roofline import OpCost, gemm, op_time
from diffsys.testing import TraceCounter, assert_grad_matches_fd, float64

H100 = preset("h100_sxm")
GEMM = gemm(8192, 8192, 8192)  # compute bound: the clock sets its time
FLOPS, BYTES = 4e12, 4e9  # a compute-heavy step of 4.9 ms at the boost clock
R_TH = 50.0 / 700.0  # assumption: TDP at 35 °C inlet puts the junction at 85 °C (device_power's T_ref)
LUMPED = dict(ambient_K=308.15, r_th_K_per_W=R_TH)


def _throttle(cap=jnp.inf, t_limit=jnp.inf, ambient=308.15, accel=H100, wl=(FLOPS, BYTES), **kw):
    return P.throttled_accelerator(accel, *wl, power_cap_W=cap, t_limit_K=t_limit, ambient_K=ambient,
                                   r_th_K_per_W=R_TH, **kw)


ROOF = OpCost(GEMM.flops, GEMM.bytes_read, GEMM.bytes_written)  # the same GEMM on the plain roofline (cheap)


def _step_s(accel, op=ROOF):
    """The step model under test: the roofline op model (``op=GEMM``: its calibrated GEMM kernel)."""
    return op_time(op, accel, "bf16").time_s


def test_scale_clock_physics():
    r = 0.6
    a = P.scale_clock(H100, 0.6 * H100.frequency_Hz)
    assert float(a.peak_flops("bf16")) == pytest.approx(r * float(H100.peak_flops("bf16")), rel=1e-6)
    assert float(a.peak_flops("fp32", matrix=False)) == pytest.approx(r * float(H100.peak_flops("fp32", matrix=False)),
                                                                       rel=1e-6)
    assert float(a.level("l2").bandwidth_Bps) == pytest.approx(r * float(H100.level("l2").bandwidth_Bps), rel=1e-6)
    assert float(a.level("l2").latency_s) == pytest.approx(float(H100.level("l2").latency_s) / r, rel=1e-6)
    assert float(a.main_memory.bandwidth_Bps) == float(H100.main_memory.bandwidth_Bps)  # HBM: own clock
    assert float(a.link_bandwidth_Bps) == float(H100.link_bandwidth_Bps)
    # compute-bound GEMM slows by ~1/r, a memory-bound op (decode-like GEMV) hardly at all
    assert float(_step_s(a, GEMM) / _step_s(H100, GEMM)) == pytest.approx(1 / r, rel=0.05)
    gemv = gemm(8, 8192, 8192)
    slow = float(op_time(gemv, a, "bf16").time_s / op_time(gemv, H100, "bf16").time_s)
    assert 1.0 <= slow < 1.15
    e = P.scale_clock(H100, H100.frequency_Hz, 0.8, 1.0)
    assert float(e.energy_J_per_flop) == pytest.approx(0.64 * float(H100.energy_J_per_flop), rel=1e-6)


def test_loose_limits_give_the_exact_unthrottled_accelerator_and_step():
    th = _throttle(cap=1e4, t_limit=500.0)
    assert not bool(th.throttled) and bool(th.feasible) and bool(th.converged)
    assert float(th.clock_Hz) == float(H100.frequency_Hz)
    for a, b in zip(jax.tree.leaves(th.accel), jax.tree.leaves(H100)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert float(_step_s(th.accel)) == float(_step_s(H100))
    assert float(_step_s(th.accel, GEMM)) == float(_step_s(H100, GEMM))
    # the workload alone draws ~630 W at 352 K on this thermal path
    assert 550 < float(th.power_W) < 700 and 345 < float(th.junction_K) < 360


def test_power_cap_holds_and_is_active():
    th = _throttle(cap=400.0)
    assert bool(th.throttled) and bool(th.power_limited) and not bool(th.thermal_limited)
    np.testing.assert_allclose(float(th.power_W), 400.0, rtol=1e-4)
    assert 0.5 < float(th.clock_ratio) < 1.0
    # consistency: the op model on the returned accelerator equals device_power's clock-scaled roofline time
    ref = P.device_power(H100, FLOPS, BYTES, clock_Hz=th.clock_Hz, die_temperature_K=th.junction_K)
    np.testing.assert_allclose(float(ref.power_W), float(th.power_W), rtol=1e-5)
    np.testing.assert_allclose(float(th.junction_K), 308.15 + R_TH * float(th.power_W), rtol=1e-6)


def test_temperature_limit_holds_and_is_active():
    th = _throttle(t_limit=338.15)  # 65 °C junction
    assert bool(th.throttled) and bool(th.thermal_limited) and not bool(th.power_limited)
    np.testing.assert_allclose(float(th.junction_K), 338.15, rtol=1e-5)
    hot = _throttle(t_limit=338.15, ambient=318.15)
    assert float(hot.clock_Hz) < float(th.clock_Hz)


def _throttled_step(cap, t_limit, ambient):
    return _step_s(_throttle(cap=cap, t_limit=t_limit, ambient=ambient).accel)


def _f32(*values):
    return [jnp.asarray(v, jnp.float32) for v in values]


COUNTER = TraceCounter(_throttled_step)
STEP = jax.jit(COUNTER)


def test_tighter_cap_or_hotter_ambient_never_faster_vmap_matches_loop_jit_matches_eager():
    caps = np.array([900.0, 650.0, 600.0, 500.0, 400.0, 300.0, 200.0])
    amb = np.linspace(293.15, 333.15, 6)
    t = np.array([float(STEP(*_f32(c, 353.15, 308.15))) for c in caps])
    assert np.all(np.diff(t) >= 0) and t[-1] > 1.5 * t[0]
    ta = np.array([float(STEP(*_f32(650.0, 353.15, a))) for a in amb])
    assert np.all(np.diff(ta) >= 0) and ta[-1] > ta[0]
    assert COUNTER.count == 1  # no retrace for new limit values
    np.testing.assert_allclose(t[4], float(_throttled_step(400.0, 353.15, 308.15)), rtol=1e-6)  # jit == eager
    batched = jax.vmap(STEP)(*_f32(caps[:4], np.full(4, 353.15), amb[[0, 2, 4, 5]]))
    loop = [float(STEP(*_f32(c, 353.15, a))) for c, a in zip(caps[:4], amb[[0, 2, 4, 5]])]
    np.testing.assert_allclose(np.asarray(batched), loop, rtol=1e-6)


def test_gradient_matches_finite_differences_float64():
    with float64():
        acc = preset("h100_sxm")
        f = jax.jit(lambda x: _step_s(_throttle(cap=x[0], t_limit=x[1], ambient=x[2], accel=acc).accel))
        power_bound = jnp.array([450.0, 400.0, 308.15])
        heat_bound = jnp.array([2000.0, 343.15, 313.15])
        g = assert_grad_matches_fd(f, power_bound, eps=1e-5, rtol=1e-3)
        assert g[0] < 0 and g[1] == 0 and np.isfinite(g).all()  # more power, faster; inactive limit: no effect
        g = assert_grad_matches_fd(f, heat_bound, eps=1e-6, rtol=1e-3)
        assert g[0] == 0 and g[1] < 0 < g[2]  # a higher limit speeds up, a hotter room slows down


def test_block_model_junction():
    flp = P.grid_floorplan(1, 2, 0.028, 0.028)  # an 8 cm² die, two thirds of the power in one half
    net = P.block_network(flp, P.ThermalConfig(ambient=308.15, r_convec=0.02, s_spreader=0.04, s_sink=0.08))
    hot = P.BlockJunction(P.SteadySolver(net), jnp.array([2 / 3, 1 / 3]))
    free = P.throttled_accelerator(H100, FLOPS, BYTES, thermal=hot)
    assert 345.0 < float(free.junction_K) < 360.0 and not bool(free.throttled)
    lim = float(free.junction_K) - 5.0
    th = P.throttled_accelerator(H100, FLOPS, BYTES, t_limit_K=lim, thermal=hot)
    assert bool(th.thermal_limited)
    np.testing.assert_allclose(float(th.junction_K), lim, rtol=1e-5)
    np.testing.assert_allclose(float(th.junction_K), float(hot(th.power_W)), rtol=1e-6)


def test_infeasible_limits_are_flagged():
    th = _throttle(cap=80.0)  # below idle + leakage at the lowest clock
    assert not bool(th.feasible) and float(th.violation) > 0
    assert float(th.clock_Hz) == pytest.approx(0.1 * float(H100.frequency_Hz), rel=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match="power_cap_W"):
        _throttle(cap=-1.0)
    with pytest.raises(ValueError, match="t_limit_K must be above ambient_K"):
        _throttle(t_limit=300.0)
    with pytest.raises(ValueError, match="r_th_K_per_W"):
        P.throttled_accelerator(H100, FLOPS, BYTES, r_th_K_per_W=-0.1)
    with pytest.raises(ValueError, match="thermal must be a callable"):
        P.throttled_accelerator(H100, FLOPS, BYTES, thermal=3.0)


def test_throttled_step_wraps_any_step_model():
    """The wrapper on the roofline op model (the LLM steps take the accelerator the same way, see test below)."""
    run = P.throttled_step(lambda op, acc: op_time(op, acc, "bf16").time_s, where=lambda args: args[1],
                           workload=(FLOPS, BYTES), power_cap_W=400.0, **LUMPED)
    t, th = run(ROOF, H100)
    assert bool(th.power_limited)
    np.testing.assert_allclose(float(t), float(_step_s(th.accel)), rtol=1e-6)
    assert float(t) > float(_step_s(H100))
