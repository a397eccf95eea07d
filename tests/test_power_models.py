"""Power models: dynamic/leakage power, energy tables, DVFS, device power, caps, throttling, cluster power."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffsys.hardware as H
import diffsys.power as P
from diffsys.testing import (
    TraceCounter,
    assert_finite_grads,
    assert_grad_matches_fd,
    assert_jit_matches_eager,
    assert_vmap_matches_loop,
    float64,
)

H100 = H.h100_sxm()
GEMM = (2 * 8192.0 ** 3, 3 * 8192.0 ** 2 * 2)  # bf16 8k GEMM: compute bound


def test_dynamic_and_leakage_formulas():
    assert float(P.dynamic_power(0.1, 1e-9, 0.9, 2e9)) == pytest.approx(0.1 * 1e-9 * 0.81 * 2e9)
    assert float(P.hotspot_leakage(1e-4, 383.15)) == pytest.approx(1.5)
    # +1/β K multiplies leakage by e
    ratio = P.leakage_power(2.0, 383.15 + 1 / 0.036) / P.leakage_power(2.0, 383.15)
    assert float(ratio) == pytest.approx(np.e, rel=1e-5)


def test_energy_tables_and_scaling():
    assert P.HOROWITZ_45NM_PJ["fp32_mult"] == 3.7 and P.HOROWITZ_45NM_PJ["int8_add"] == 0.03
    e = {d: P.energy_per_flop_J(d) for d in ("fp64", "fp32", "bf16", "fp8")}
    assert e["fp64"] > e["fp32"] > e["bf16"] > e["fp8"] > 0
    assert P.energy_per_flop_J("bf16", node_nm=45.0) == pytest.approx(0.75e-12)
    # E ∝ L·V²: 7 nm at 0.7 V
    assert P.energy_per_flop_J("bf16", 7.0, 0.7) == pytest.approx(0.75e-12 * 7 / 45 * (0.7 / 0.9) ** 2)
    assert P.energy_per_byte_J("dram", 7.0) == P.energy_per_byte_J("dram", 45.0)  # DRAM not node-scaled
    assert P.energy_per_byte_J("sram_1MB") > P.energy_per_byte_J("sram_8KB")
    assert P.energy_per_bit_J("ucie_advanced") < P.energy_per_bit_J("serdes_lr")
    with pytest.raises(ValueError, match="dtype"):
        P.energy_per_flop_J("fp7")
    with pytest.raises(ValueError, match="node_nm"):
        P.scale_energy(1.0, -3)


def test_dvfs_alpha_power_law():
    d = P.DVFSCurve(f_max_Hz=2.0e9, v_max_V=1.0, v_min_V=0.6, v_th_V=0.3, alpha=1.3)
    v = jnp.linspace(0.6, 1.0, 9)
    f = d.frequency(v)
    assert np.all(np.diff(np.asarray(f)) > 0) and float(f[-1]) == pytest.approx(2e9)
    np.testing.assert_allclose(np.asarray(d.voltage(f)), np.asarray(v), atol=1e-4)
    assert float(d.voltage(0.1 * float(d.f_floor_Hz))) == pytest.approx(0.6)  # voltage floor
    with pytest.raises(ValueError, match="v_th_V < v_min_V"):
        P.DVFSCurve(f_max_Hz=1e9, v_min_V=0.2, v_th_V=0.3)
    with pytest.raises(ValueError, match="DVFSCurve.alpha"):
        P.DVFSCurve(f_max_Hz=1e9, alpha=3.0)


def test_device_power_sanity_bands():
    """Published figures as sanity bands: a compute- and bandwidth-saturating kernel at nominal clock draws the TDP
    (A100 400 W, H100 700 W); a big GEMM stays under it; LLM decode on H200 draws well under TDP."""
    for acc, tdp in ((H.a100_80gb(), 400.0), (H100, 700.0)):
        ridge = float(acc.peak_flops("bf16") / acc.main_memory.bandwidth_Bps)
        full = P.device_power(acc, ridge * 1e9, 1e9, efficiency=1.0)  # ideal ceilings: exactly at the ridge
        assert float(full.power_W) == pytest.approx(tdp, rel=1e-4)
        gemm = P.device_power(acc, *GEMM)
        assert 0.6 * tdp < float(gemm.power_W) <= tdp
    h200 = H.h200()
    decode = P.device_power(h200, 2 * 70e9 * 8, 2 * 70e9)  # 70B bf16 model, batch 8: memory bound
    assert float(decode.memory_util) == pytest.approx(1.0) and float(decode.compute_util) < 0.05
    assert float(decode.power_W) < 0.65 * 700
    assert float(decode.energy_J) == pytest.approx(float(decode.power_W * decode.time_s), rel=1e-6)
    assert float(decode.edp_Js) == pytest.approx(float(decode.energy_J * decode.time_s), rel=1e-6)


def test_device_power_jit_vmap_grad_retrace():
    f = lambda c: P.device_power(H100, GEMM[0], GEMM[1], clock_Hz=c)
    assert_jit_matches_eager(f, jnp.asarray(1.5e9), rtol=1e-5)
    assert_vmap_matches_loop(f, jnp.array([0.8e9, 1.2e9, 1.98e9]), rtol=1e-5)
    g = assert_finite_grads(lambda c: f(c).power_W, jnp.asarray(1.5e9))
    assert float(g) > 0
    cnt = TraceCounter(lambda c: f(c).power_W)
    jf = jax.jit(cnt)
    jf(jnp.float32(1e9))
    jf(jnp.float32(1.2e9))
    assert cnt.count == 1
    with float64():
        assert_grad_matches_fd(lambda x: P.device_power(H100, x[0], x[1], clock_Hz=x[2], die_temperature_K=x[3],
                                                        temperature=0.05).energy_J,
                               jnp.array([1e12, 2e9, 1.4e9, 350.0]), rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(st.floats(250.0, 650.0), st.floats(1.0, 80.0))
def test_power_cap_clock_respects_cap_and_is_monotone(cap, extra):
    a = P.power_capped_clock(H100, *GEMM, jnp.float32(cap))
    b = P.power_capped_clock(H100, *GEMM, jnp.float32(cap + extra))
    pa = P.device_power(H100, *GEMM, clock_Hz=a.clock_Hz).power_W
    assert bool(a.feasible) and float(pa) <= cap * (1 + 1e-4)
    assert float(b.clock_Hz) >= float(a.clock_Hz) * (1 - 1e-5)
    if float(a.clock_Hz) < 0.999 * 1.98e9:
        assert float(pa) == pytest.approx(cap, rel=1e-3)  # binding cap is met with equality


def test_power_cap_gradient_is_the_implicit_function_gradient():
    with float64():
        def clock(cap):
            return P.power_capped_clock(H100, *GEMM, cap).clock_Hz

        g = float(jax.grad(clock)(500.0))
        h = 0.5
        fd = (float(clock(500.0 + h)) - float(clock(500.0 - h))) / (2 * h)
        assert g == pytest.approx(fd, rel=1e-3)
        assert float(jax.grad(clock)(900.0)) == 0.0  # unconstrained: clock at its maximum


def test_throttle_by_temperature_and_cap():
    die = P.grid_floorplan(2, 2, 0.026, 0.031)  # ~814 mm² die
    cfg = P.ThermalConfig(r_convec=0.03, s_spreader=0.06, s_sink=0.1, ambient=308.15)
    solver = P.SteadySolver(P.block_network(die, cfg))
    split = jnp.array([0.3, 0.3, 0.2, 0.2])
    no_cap = jnp.float32(1e5)  # one compiled function for every call below (same argument structure)
    free = P.throttle(H100, *GEMM, thermal=solver, power_split=split, temp_limit_K=jnp.float32(500.0), cap_W=no_cap)
    assert not bool(free.throttled) and float(free.clock_Hz) == pytest.approx(1.98e9)
    assert float(free.peak_K) < 400.0
    limit = jnp.float32(float(free.peak_K) - 8.0)
    hot = P.throttle(H100, *GEMM, thermal=solver, power_split=split, temp_limit_K=limit, cap_W=no_cap)
    assert bool(hot.throttled) and bool(hot.feasible)
    assert float(hot.peak_K) == pytest.approx(float(limit), abs=0.05) and float(hot.clock_Hz) < 1.98e9
    capped = P.throttle(H100, *GEMM, thermal=solver, power_split=split, temp_limit_K=limit, cap_W=jnp.float32(400))
    assert float(capped.power_W) <= 400.0 * 1.0001 and float(capped.clock_Hz) < float(hot.clock_Hz)
    assert float(capped.time_s) > float(free.time_s)
    impossible = P.throttle(H100, *GEMM, thermal=solver, power_split=split, temp_limit_K=jnp.float32(300.0),
                            cap_W=no_cap)
    assert not bool(impossible.feasible) and float(impossible.violation) > 0
    g = jax.jit(jax.grad(lambda r: P.throttle(H100, *GEMM, thermal=P.SteadySolver(P.block_network(
        die, P.ThermalConfig(r_convec=r, s_spreader=0.06, s_sink=0.1, ambient=308.15))), power_split=split,
        temp_limit_K=limit, cap_W=no_cap).clock_Hz))(0.03)
    assert np.isfinite(float(g)) and float(g) < 0  # worse cooling -> lower sustainable clock


def test_cluster_power_headroom():
    phase = jnp.array([650.0, 480.0, 380.0])  # training, prefill, decode GPU power
    mix = jnp.array([0.2, 0.3, 0.5])
    c = P.cluster_power(phase, mix, n_nodes=100)
    assert bool(c.feasible) and float(c.headroom) > 0.1
    # the quantile draw of the supported node count meets the budget exactly
    c2 = P.cluster_power(phase, mix, n_nodes=c.nodes_supported, budget_W=c.budget_W)
    assert float(c2.quantile_W) == pytest.approx(float(c.budget_W), rel=1e-4)
    tight = P.cluster_power(phase, mix, n_nodes=100, budget_W=0.5 * float(c.nameplate_W))
    assert not bool(tight.feasible) and float(tight.violation_W) > 0 and float(tight.headroom) < 0
    f = lambda b: P.cluster_power(phase, mix, n_nodes=100, budget_W=b).nodes_supported
    assert_vmap_matches_loop(f, jnp.array([5e5, 7e5, 9e5]), rtol=1e-5)
    assert float(jax.grad(f)(7e5)) > 0


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(100.0, 700.0), min_size=3, max_size=3), st.lists(st.floats(0.01, 1.0), min_size=3,
                                                                             max_size=3), st.floats(1.0, 1000.0))
def test_cluster_more_budget_more_nodes(phase, mix, n):
    a = P.cluster_power(jnp.asarray(phase), jnp.asarray(mix), n_nodes=n)
    b = P.cluster_power(jnp.asarray(phase), jnp.asarray(mix), n_nodes=n, budget_W=a.budget_W * 1.1)
    assert float(b.nodes_supported) > float(a.nodes_supported)
    assert float(a.quantile_W) >= float(a.mean_W)


def test_pipeline_excursions_grow_with_microbatch():
    kw = {"global_batch": 512, "seq_len": 128, "hidden": 4096, "layers": 32, "pipeline_stages": 4,
          "data_parallel": 16, "tensor_parallel": 2}
    ex = [P.pipeline_power_excursion(H100, microbatch_size=b, **kw) for b in (1.0, 4.0, 16.0)]
    busy = [float(e.busy_gpu_power_W) for e in ex]
    swing = [float(e.swing_W) for e in ex]
    assert busy[0] < busy[2] and max(busy) <= 700.0  # memory bound -> compute bound
    assert swing[0] < swing[2]
    assert all(float(e.trough_cluster_W) > 0 and float(e.peak_cluster_W) > float(e.mean_cluster_W) for e in ex)
    g = jax.grad(lambda b: P.pipeline_power_excursion(H100, microbatch_size=b, **kw).swing_W)(2.0)
    assert np.isfinite(float(g))


def test_device_power_times_with_the_library_op_model():
    # one GEMM model: device_power's time is diffsys.roofline.op_time's (no efficiency model of its own), and a GEMM
    # OpCost goes through the calibrated kernel model
    from diffsys import roofline

    flops, nbytes = GEMM
    op = roofline.OpCost(jnp.asarray(flops), jnp.asarray(nbytes), jnp.asarray(0.0), 1.0)
    assert float(P.device_power(H100, flops, nbytes).time_s) == pytest.approx(
        float(roofline.op_time(op, H100, "bf16").time_s), rel=1e-6)
    g = roofline.gemm(8192, 8192, 8192)
    assert float(P.device_power(H100, g).time_s) == pytest.approx(
        float(roofline.op_time(g, H100, "bf16").time_s), rel=1e-6)
    # half the clock: the compute-bound GEMM takes twice as long
    slow = P.device_power(H100, g, clock_Hz=0.5 * float(H100.frequency_Hz))
    assert float(slow.time_s) == pytest.approx(2 * float(P.device_power(H100, g).time_s), rel=0.05)
    with pytest.raises(ValueError, match="bytes_moved"):
        P.device_power(H100, 1e12)
