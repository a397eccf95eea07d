"""Block thermal model: JAX contracts, physical invariants, analytic checks and input errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffsys.power as P
from diffsys.testing import (
    TraceCounter,
    assert_grad_matches_fd,
    assert_jit_matches_eager,
    assert_vmap_matches_loop,
    float64,
)

CFG = P.ThermalConfig(ambient=318.15)
FLP = P.grid_floorplan(2, 3, 0.012, 0.008)  # six 4 mm x 4 mm blocks


def _split_floorplan(s):
    """2x2 die of 10 mm x 8 mm whose column boundary sits at x = s (a continuous placement parameter)."""
    W, H = 0.010, 0.008
    w = jnp.stack([s, W - s, s, W - s])
    h = jnp.full(4, H / 2)
    x = jnp.stack([0.0 * s, s, 0.0 * s, s])
    y = jnp.array([0.0, 0.0, H / 2, H / 2], dtype=jnp.result_type(s))
    return P.Floorplan(("a", "b", "c", "d"), w, h, x, y)


def test_jit_matches_eager_and_vmap_matches_loop():
    p = jnp.array([5.0, 1.0, 3.0, 0.5, 8.0, 2.0])
    f = lambda p: P.steady_state(FLP, p, CFG)
    assert_jit_matches_eager(f, p, rtol=1e-5)
    ps = jax.random.uniform(jax.random.PRNGKey(0), (4, 6)) * 10
    assert_vmap_matches_loop(f, ps, rtol=1e-5)
    s = jnp.array([0.003, 0.005, 0.007])
    h = lambda s: P.steady_state(_split_floorplan(s), p[:4], CFG).block_K
    assert_vmap_matches_loop(h, s, rtol=1e-5)


def test_no_retrace_on_second_call():
    fn = TraceCounter(lambda p, r: P.steady_state(FLP, p, P.ThermalConfig(r_convec=r)).peak_K)
    jf = jax.jit(fn)
    jf(jnp.asarray([1.0] * 6, jnp.float32), jnp.float32(0.1))
    jf(jnp.asarray([2.0] * 6, jnp.float32), jnp.float32(0.2))
    assert fn.count == 1


def test_gradient_matches_finite_differences():
    """Gradient w.r.t. block powers, a placement boundary and three package parameters (float64)."""
    with float64():
        def f(x):
            p = x[:4]
            flp = _split_floorplan(x[4])
            cfg = P.ThermalConfig(r_convec=x[5], k_interface=x[6], t_spreader=x[7])
            t = P.steady_state(flp, p, cfg).block_K
            return jnp.dot(t, jnp.array([0.4, 0.3, 0.2, 0.1]))

        x = jnp.array([10.0, 2.0, 4.0, 1.0, 0.004, 0.1, 4.0, 1e-3])
        g = np.asarray(assert_grad_matches_fd(jax.jit(f), x, eps=1e-6, rtol=1e-5, atol=1e-7))
        assert np.all(np.isfinite(g)) and np.all(g[:4] > 0)  # every block's power heats the weighted mean
        assert g[5] > 0 and g[6] < 0  # worse convection -> hotter; better TIM -> cooler


def test_one_block_analytic_series_resistance():
    """A die that fills the spreader and sink (no spreading, periphery vanishing) is a 1-D chain:
    T = T_amb + P·(t_chip/k_chip + t_int/k_int + t_sp/k_sp + t_sink/k_sink)/A + P·r_convec."""
    with float64():
        side = 0.03
        cfg = P.ThermalConfig(s_spreader=side * (1 + 1e-9), s_sink=side * (1 + 2e-9), ambient=300.0)
        flp = P.floorplan([("die", side, side, 0.0, 0.0)])
        power = 80.0
        t = float(P.steady_state(flp, jnp.array([power]), cfg).block_K[0])
        A = side * side
        r = (float(cfg.t_chip) / float(cfg.k_chip) + float(cfg.t_interface) / float(cfg.k_interface)
             + float(cfg.t_spreader) / float(cfg.k_spreader) + float(cfg.t_sink) / float(cfg.k_sink)) / A
        expected = 300.0 + power * (r + float(cfg.r_convec))
        assert t == pytest.approx(expected, rel=0, abs=1e-5)


def test_lateral_conductance_two_blocks():
    """Two blocks side by side: silicon lateral conductance is the two half-block resistances in series."""
    with float64():
        flp = P.floorplan([("l", 0.004, 0.002, 0.0, 0.0), ("r", 0.006, 0.002, 0.004, 0.0)])
        net = P.block_network(flp, CFG)
        k, t, h = float(CFG.k_chip), float(CFG.t_chip), 0.002
        expected = 1.0 / (0.002 / (k * t * h) + 0.003 / (k * t * h))
        assert float(-net.conductance[0, 1]) == pytest.approx(expected, rel=1e-12)
        shared, horiz, _ = P.adjacency(flp)
        assert bool(horiz[0, 1]) and float(shared[0, 1]) == pytest.approx(0.002)


def test_corner_contact_is_not_adjacent():
    flp = P.floorplan([("a", 1e-3, 1e-3, 0, 0), ("b", 1e-3, 1e-3, 1e-3, 1e-3), ("c", 1e-3, 1e-3, 1e-3, 0),
                       ("d", 1e-3, 1e-3, 0, 1e-3)])
    _, _, adj = P.adjacency(flp)
    assert not bool(adj[0, 1]) and bool(adj[0, 2]) and bool(adj[0, 3])


powers6 = st.lists(st.floats(0.0, 20.0), min_size=6, max_size=6)


@settings(max_examples=25, deadline=None)
@given(powers6, st.integers(0, 5), st.floats(0.01, 10.0))
def test_more_power_never_cooler(p, which, extra):
    p = jnp.asarray(p, dtype=jnp.float32)
    t0 = P.steady_state(FLP, p, CFG).nodes_K
    t1 = P.steady_state(FLP, p.at[which].add(extra), CFG).nodes_K
    assert np.all(np.asarray(t1) >= np.asarray(t0) - 1e-3)
    assert float(t1[which]) > float(t0[which])


@settings(max_examples=25, deadline=None)
@given(powers6, st.floats(0.02, 1.0), st.floats(1.01, 3.0))
def test_higher_convection_resistance_never_cooler(p, r, factor):
    p = jnp.asarray(p, dtype=jnp.float32)
    t0 = P.steady_state(FLP, p, P.ThermalConfig(r_convec=r)).nodes_K
    t1 = P.steady_state(FLP, p, P.ThermalConfig(r_convec=r * factor)).nodes_K
    assert np.all(np.asarray(t1) >= np.asarray(t0) - 1e-3)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.001, 0.004), st.floats(0.002, 0.01), st.floats(0.0, 10.0), st.floats(0.0, 10.0))
def test_symmetric_floorplan_gives_symmetric_field(w_side, w_mid, p_side, p_mid):
    """Left/centre/right columns with mirror-symmetric sizes and powers: left == right, west == east nodes."""
    h = 0.008
    flp = P.floorplan([("L", w_side, h, 0, 0), ("M", w_mid, h, w_side, 0), ("R", w_side, h, w_side + w_mid, 0)])
    t = P.steady_state(flp, jnp.array([p_side, p_mid, p_side]), CFG)
    nodes = np.asarray(t.nodes_K)
    n = 3
    for layer in range(4):
        assert nodes[layer * n] == pytest.approx(nodes[layer * n + 2], abs=2e-4)
    e = 4 * n
    for west, east in ((0, 1), (4, 5), (8, 9)):
        assert nodes[e + west] == pytest.approx(nodes[e + east], abs=2e-4)


def test_mirrored_floorplan_gives_mirrored_field():
    p = jnp.array([5.0, 1.0, 3.0, 0.5, 8.0, 2.0])
    t = np.asarray(P.steady_state(FLP, p, CFG).block_K)
    # mirroring the die with the powers attached to their blocks mirrors the field: every block keeps its temperature
    tm = np.asarray(P.steady_state(FLP.mirrored_x(), p, CFG).block_K)
    np.testing.assert_allclose(tm, t, atol=2e-4)
    # permuting the powers column-wise (block (r, c) gets the power of (r, 2 - c)) mirrors the field on FLP
    order = np.array([2, 1, 0, 5, 4, 3])
    tp = np.asarray(P.steady_state(FLP, p[order], CFG).block_K)
    np.testing.assert_allclose(tp, t[order], atol=2e-4)
    assert not np.allclose(tp, t, atol=1e-2)


def test_steady_state_is_the_limit_of_the_transient():
    p = jnp.array([5.0, 1.0, 3.0, 0.5, 8.0, 2.0])
    net = P.block_network(FLP, CFG)
    steady = P.solve_steady(net, p)
    tr = P.transient(net, jnp.tile(p, (60, 1)), 20.0)  # 20 minutes: >> sink time constant (~ r·C ≈ 14 s)
    np.testing.assert_allclose(np.asarray(tr.nodes_K[-1]), np.asarray(steady.nodes_K), atol=2e-3)
    peak = np.asarray(tr.peak_K)
    assert np.all(np.diff(peak) >= -1e-4)  # heating from ambient under constant power is monotone
    tr2 = P.transient(net, jnp.tile(p, (40, 1)), 1.0, method="trapezoid", substeps=4)
    assert float(tr2.peak_K[-1]) < float(steady.peak_K) + 1e-3


def test_transient_energy_conservation():
    with float64():
        net = P.block_network(P.grid_floorplan(2, 3, 0.012, 0.008), P.ThermalConfig(ambient=318.15))
        power = jax.random.uniform(jax.random.PRNGKey(1), (50, 6), dtype=jnp.float64) * 10
        tr = P.transient(net, power, 0.05, 330.0, substeps=3)
        balance = tr.energy_in_J - tr.energy_stored_J - tr.energy_to_ambient_J
        assert float(jnp.max(jnp.abs(balance))) < 1e-9 * float(tr.energy_in_J[-1])
        tr = P.transient(net, power, 0.05, 330.0, substeps=3, method="trapezoid")
        rel = jnp.abs(tr.energy_in_J - tr.energy_stored_J - tr.energy_to_ambient_J)[-1] / tr.energy_in_J[-1]
        assert float(rel) < 2e-3  # piecewise-constant power vs trapezoidal heat-flow quadrature


def test_transient_gradient_is_finite():
    net = P.block_network(FLP, CFG)

    def f(scale):
        return P.transient(net, scale * jnp.ones((10, 6)), 0.01).peak_K[-1]

    g = jax.grad(f)(2.0)
    assert np.isfinite(float(g)) and float(g) > 0


def test_solver_reuses_factorization():
    net = P.block_network(FLP, CFG)
    solver = P.SteadySolver(net)
    ps = jax.random.uniform(jax.random.PRNGKey(2), (5, 6)) * 10
    batch = solver(ps).block_K
    loop = jnp.stack([P.solve_steady(net, p).block_K for p in ps])
    np.testing.assert_allclose(np.asarray(batch), np.asarray(loop), atol=2e-4)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="Floorplan.width_m"):
        P.floorplan([("a", -1e-3, 1e-3, 0, 0)])
    with pytest.raises(ValueError, match="Floorplan.names must be unique"):
        P.floorplan([("a", 1e-3, 1e-3, 0, 0), ("a", 1e-3, 1e-3, 1e-3, 0)])
    with pytest.raises(ValueError, match="ThermalConfig.k_interface"):
        P.ThermalConfig(k_interface=0.0)
    with pytest.raises(ValueError, match="ThermalConfig.r_convec"):
        P.ThermalConfig(r_convec=-0.1)
    with pytest.raises(ValueError, match="s_spreader"):
        P.ThermalConfig(s_spreader=0.1, s_sink=0.05)
    with pytest.raises(ValueError, match="method"):
        P.transient(P.block_network(FLP, CFG), jnp.ones((2, 6)), 0.1, method="rk4")
    with pytest.raises(ValueError, match="block_power_W must be in"):
        P.steady_state(FLP, jnp.array([1.0, -2.0, 0, 0, 0, 0]), CFG)
    with pytest.raises(ValueError, match=r"block_power_W must have shape \(\.\.\., 6\)"):
        P.steady_state(FLP, jnp.ones(5), CFG)
    with pytest.raises(ValueError, match="overlap"):
        P.floorplan([("a", 2e-3, 2e-3, 0, 0), ("b", 2e-3, 2e-3, 1e-3, 0)]).validate()


def test_slowest_time_constant_is_the_lumped_sink_rc():
    """The package's slowest thermal mode is the heat sink charging through the convection resistance.

    Rayleigh quotient with the all-ones vector: ``τ_max = max_x xᵀCx / xᵀGx ≥ C_total·r_convec`` (every path to
    ambient runs through ``r_convec``), and for this package the bound is tight within a few percent. ``C_total`` is
    computed here from HotSpot's own definitions (temperature.h ``C_FACTOR = 0.333`` lumps the convection
    capacitance, and RCutil.c ``getcap`` applies it to every material capacitance ``c_v · volume`` as well),
    independently of the library's network builder, so a wrong capacitance (a changed lumping factor, a missing
    volume term) fails this test. The decay measured from the transient integrator must agree with the eigenvalue.
    """
    with float64():
        cfg = P.ThermalConfig(ambient=318.15)
        flp = P.grid_floorplan(2, 3, 0.012, 0.008)
        net = P.block_network(flp, cfg)
        G = np.asarray(net.conductance)
        C = np.asarray(net.capacitance)
        s = 1.0 / np.sqrt(C)
        tau_slow = 1.0 / np.linalg.eigvalsh(s[:, None] * G * s[None, :]).min()

        die = 0.012 * 0.008
        c_total = 0.333 * (float(cfg.c_convec)
                           + float(cfg.p_sink) * float(cfg.s_sink) ** 2 * float(cfg.t_sink)
                           + float(cfg.p_spreader) * float(cfg.s_spreader) ** 2 * float(cfg.t_spreader)
                           + float(cfg.p_interface) * die * float(cfg.t_interface)
                           + float(cfg.p_chip) * die * float(cfg.t_chip))
        lumped = float(cfg.r_convec) * c_total
        assert lumped <= tau_slow <= 1.06 * lumped, (tau_slow, lumped)

        # the integrator's late-time decay towards the steady state has the same time constant
        p = jnp.full(6, 5.0)
        steady = P.solve_steady(net, p)
        dt = 2.0
        tr = P.transient(net, jnp.tile(p, (60, 1)), dt, substeps=20)
        gap = np.asarray(steady.nodes_K)[-1] - np.asarray(tr.nodes_K)[:, -1]
        tau_meas = dt * 10 / np.log(gap[29] / gap[39])
        np.testing.assert_allclose(tau_meas, tau_slow, rtol=0.02)
