"""Power fixed points and root finds (optimistix): same answers as the earlier hand-written loops (kept here as the
reference), implicit-function gradients against float64 finite differences, convergence flags and their logs."""

import logging

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffsys.power as P
from diffsys.testing import assert_grad_matches_fd, float64

CFG = P.ThermalConfig(ambient=318.15)
FLP = P.grid_floorplan(2, 2, 0.01, 0.01)
POWER = jnp.array([20.0, 10.0, 5.0, 5.0])
CURVE = dict(f_max_Hz=2.0e9, v_max_V=1.0, v_min_V=0.6, v_th_V=0.3, alpha=1.3)


# -- references: the previous fixed-iteration implementations -------------------------------------------------------
def _ref_voltage(d, f, n=25):
    target = jnp.maximum(jnp.asarray(f), d.f_floor_Hz)

    def step(v, _):
        val, dv = jax.jvp(d.frequency, (v,), (jnp.ones_like(v),))
        return jnp.clip(v - (val - target) / dv, d.v_min_V, d.v_max_V * 1.5), None

    v0 = jnp.broadcast_to(d.v_max_V, jnp.shape(target)).astype(jnp.result_type(target, float))
    return jax.lax.scan(step, v0, None, length=n)[0]


def _ref_leakage(net, p, area, n_iter=60):
    solve = P.SteadySolver(net)
    body = lambda T, _: (solve(p + P.hotspot_leakage(area, jnp.minimum(T, 500.0))).block_K, None)
    T = jax.lax.scan(body, solve(p).block_K, None, length=n_iter)[0]
    return solve(p + P.hotspot_leakage(area, jnp.minimum(T, 500.0)))


# -- DVFS ---------------------------------------------------------------------------------------------------------
def test_voltage_root_matches_previous_newton_loop():
    d = P.DVFSCurve(**CURVE)
    f = jnp.linspace(0.1e9, 2.4e9, 12)  # below the floor, inside, above f_max
    sol = d.solve_voltage(f)
    assert sol.voltage_V.shape == f.shape and bool(jnp.all(sol.converged))
    np.testing.assert_allclose(np.asarray(sol.voltage_V), np.asarray(_ref_voltage(d, f)), rtol=2e-6)
    np.testing.assert_allclose(np.asarray(d.frequency(sol.voltage_V[5:10])), np.asarray(f[5:10]), rtol=1e-5)
    assert float(d.voltage(1.3e9)) == pytest.approx(float(_ref_voltage(d, 1.3e9)), rel=2e-6)  # scalar path
    with float64():
        d64 = P.DVFSCurve(**{k: jnp.float64(v) for k, v in CURVE.items()})
        f64 = jnp.linspace(1.0e9, 2.2e9, 5, dtype=jnp.float64)
        np.testing.assert_allclose(np.asarray(d64.voltage(f64)), np.asarray(_ref_voltage(d64, f64)), rtol=1e-13)


def test_voltage_implicit_gradient_matches_finite_differences():
    with float64():
        def v_of(x):  # (clock, f_max, v_th, alpha) -> voltage
            d = P.DVFSCurve(f_max_Hz=x[1], v_max_V=1.0, v_min_V=0.6, v_th_V=x[2], alpha=x[3])
            return d.voltage(x[0])

        x = jnp.array([1.4e9, 2.0e9, 0.3, 1.3])
        g = assert_grad_matches_fd(v_of, x, eps=1e-6, rtol=1e-6)
        assert g[0] > 0 and g[1] < 0  # a faster clock needs more voltage, a faster device less
        # the implicit gradient equals the unrolled gradient of the previous loop
        ref = jax.grad(lambda x: _ref_voltage(P.DVFSCurve(f_max_Hz=x[1], v_max_V=1.0, v_min_V=0.6, v_th_V=x[2],
                                                          alpha=x[3]), x[0]))(x)
        np.testing.assert_allclose(np.asarray(g), np.asarray(ref), rtol=1e-8)


def test_voltage_nonconvergence_is_flagged_and_logged(caplog):
    d = P.DVFSCurve(**CURVE)
    with caplog.at_level(logging.WARNING, logger="diffsys.power._dvfs"):
        sol = jax.jit(lambda f: d.solve_voltage(f, n_newton=1))(jnp.array([0.7e9, 1.5e9]))
        jax.effects_barrier()
    assert not bool(jnp.any(sol.converged))
    assert any("DVFS voltage solve did not converge at 2 of 2" in r.getMessage() for r in caplog.records)


# -- leakage-temperature fixed point ------------------------------------------------------------------------------
def test_leakage_fixed_point_matches_previous_loop():
    net = P.block_network(FLP, CFG)
    ref = _ref_leakage(net, POWER, FLP.area_m2)
    hs = P.steady_state_with_leakage(net, POWER, area_m2=FLP.area_m2)  # HotSpot's test: max ΔT < 0.01 K
    assert bool(hs.converged) and not bool(hs.runaway) and float(hs.iterations_residual_K) < 0.01
    np.testing.assert_allclose(np.asarray(hs.temperatures.block_K), np.asarray(ref.block_K), atol=0.01)
    assert 1 < int(hs.steps) < 60


def test_leakage_gradient_is_implicit_and_matches_finite_differences():
    with float64():
        flp = P.grid_floorplan(2, 2, 0.01, 0.01)  # float64 leaves throughout
        net = P.block_network(flp, P.ThermalConfig(ambient=318.15))
        area = flp.area_m2

        def peak(x):  # power scale -> peak temperature
            p = jnp.asarray(POWER, jnp.float64) * x[0]
            return P.steady_state_with_leakage(net, p, area_m2=area, tol_K=1e-9, n_iter=100).temperatures.peak_K

        g = assert_grad_matches_fd(peak, jnp.array([1.5]), eps=1e-6, rtol=1e-5)
        # value and unrolled gradient of the previous loop (100 iterations: converged to round-off)
        ref, ref_g = jax.value_and_grad(
            lambda s: _ref_leakage(net, jnp.asarray(POWER, jnp.float64) * s, area, 100).peak_K)(1.5)
        assert float(peak(jnp.array([1.5]))) == pytest.approx(float(ref), abs=1e-8)
        assert float(g[0]) == pytest.approx(float(ref_g), rel=1e-6)


def test_leakage_runaway_not_converged_and_logged(caplog):
    net = P.block_network(FLP, CFG)
    run = jax.jit(jax.vmap(lambda s: P.steady_state_with_leakage(net, POWER * s, area_m2=FLP.area_m2 * s)))
    with caplog.at_level(logging.WARNING, logger="diffsys.power._leakage_loop"):
        out = run(jnp.array([1.0, 40.0]))
        jax.effects_barrier()
    assert list(np.asarray(out.converged)) == [True, False] or list(np.asarray(out.runaway)) == [False, True]
    assert list(np.asarray(out.runaway)) == [False, True]
    assert bool(jnp.all(jnp.isfinite(out.temperatures.block_K)))
    if not bool(out.converged[1]):
        assert any("did not converge at 1 of 2" in r.getMessage() for r in caplog.records)


# -- power-capped clock (root find on log f) ------------------------------------------------------------------------
@eqx.filter_jit  # compiled once: 40 eager halvings of the device-power model are slow
def _ref_capped_clock(acc, flops, byts, cap, n=40):
    """The previous 40-halving bisection on log f (value only)."""
    dvfs = P.default_dvfs(acc)
    g = lambda f: P.device_power(acc, flops, byts, clock_Hz=f, dvfs=dvfs).power_W / cap - 1.0
    lo, hi = jnp.log(0.1 * dvfs.f_max_Hz), jnp.log(dvfs.f_max_Hz)
    for _ in range(n):
        mid = 0.5 * (lo + hi)
        ok = g(jnp.exp(mid)) <= 0
        lo, hi = jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)
    return jnp.exp(lo)


def test_power_capped_clock_matches_previous_bisection_and_fd_gradient():
    from diffsys import hardware as H

    acc = H.h100_sxm()
    gemm = (2 * 8192.0 ** 3, 3 * 8192.0 ** 2 * 2)
    caps = jnp.array([350.0, 500.0, 2000.0, 50.0])  # throttled, throttled, unconstrained, infeasible
    cc = jax.jit(jax.vmap(lambda c: P.power_capped_clock(acc, *gemm, c)))(caps)
    assert list(np.asarray(cc.converged)) == [True] * 4
    assert list(np.asarray(cc.throttled)) == [True, True, False, True]
    assert list(np.asarray(cc.feasible)) == [True, True, True, False]
    for i in range(2):
        assert float(cc.clock_Hz[i]) == pytest.approx(float(_ref_capped_clock(acc, *gemm, caps[i])), rel=1e-5)
        assert abs(float(cc.violation[i])) < 1e-4  # the power sits on the cap
    with float64():
        acc64 = H.h100_sxm()

        @jax.jit
        def clock(x):
            return P.power_capped_clock(acc64, *gemm, x[0]).clock_Hz / 1e9

        g = assert_grad_matches_fd(clock, jnp.array([400.0]), eps=1e-6, rtol=1e-5)
        assert g[0] > 0  # a higher cap allows a higher clock
        assert float(clock(jnp.array([400.0]))) * 1e9 == pytest.approx(
            float(_ref_capped_clock(acc64, *gemm, 400.0)), rel=1e-11)  # 40 halvings: 2e-12
