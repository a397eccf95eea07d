"""NoC model: routes, channel loads, traffic patterns, queueing, transformations, gradients, invariants."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffsys.testing import (
    TraceCounter,
    assert_grad_matches_fd,
    assert_jit_matches_eager,
    float64,
)
from diffsys.topologies import (
    TRAFFIC_PATTERNS,
    NocParams,
    channel_loads,
    channel_loads_from_incidence,
    channel_queueing_latency,
    dor_routes,
    noc_latency,
    routing_incidence,
    traffic_matrix,
)

_noc = jax.jit(noc_latency, static_argnames=("traffic", "k", "n", "topology"))

P = NocParams(routing_delay=0, vc_alloc_delay=1, sw_alloc_delay=1, credit_delay=2, packet_size=4, num_vcs=8,
              vc_buf_size=8)


@pytest.mark.parametrize("topology", ["mesh", "torus"])
def test_route_lengths_are_minimal_manhattan_distances(topology):
    k, n = 5, 2
    r = dor_routes(k, n, topology)
    c = np.stack([(np.arange(k**n) // k**i) % k for i in range(n)], 1)
    d = np.abs(c[:, None, :] - c[None, :, :])
    if topology == "torus":
        d = np.minimum(d, k - d)
    assert np.array_equal(r.hops.reshape(k**n, k**n), d.sum(-1))
    # every route only uses existing channels, and consecutive channels are connected (dimension order)
    used = r.flow_channels[r.flow_channels < r.num_channels]
    assert r.channel_exists[used].all()


def test_channel_loads_conserve_traffic():
    k = 4
    r = dor_routes(k, 2, "mesh")
    T = np.random.default_rng(1).uniform(size=(16, 16))
    loads = channel_loads(T, r)
    assert float(jnp.sum(loads)) == pytest.approx(float(np.sum(T * r.hops.reshape(16, 16))), rel=1e-5)


def test_incidence_form_matches_route_table():
    r = dor_routes(4, 2, "torus")
    T = np.random.default_rng(2).uniform(size=(16, 16))
    np.testing.assert_allclose(np.asarray(channel_loads_from_incidence(T, routing_incidence(r))),
                               np.asarray(channel_loads(T, r)), rtol=1e-5)


@pytest.mark.parametrize("k", [4, 6, 8])
def test_uniform_mesh_saturation_matches_bisection_bound(k):
    # Dally & Towles §3.3.1: uniform traffic on a k-ary 2-mesh loads the bisection channels with k/4 flits per
    # flit injected per node -> saturation at 4/k flits/node/cycle (even k)
    m = _noc(0.01, NocParams(packet_size=1.0), "uniform", k=k)
    assert float(m.saturation_rate) == pytest.approx(4.0 / k, rel=1e-5)
    t = _noc(0.01, NocParams(packet_size=1.0), "uniform", k=k, topology="torus")
    # the torus doubles the bisection; the injection channel (1 flit/cycle) caps both
    assert min(4.0 / k, 1.0) - 1e-6 <= float(t.saturation_rate) <= min(8.0 / k, 1.0) + 1e-6
    assert k == 4 or float(t.saturation_rate) > 4.0 / k


@pytest.mark.parametrize("pattern", TRAFFIC_PATTERNS)
def test_traffic_patterns_are_stochastic_and_permutations_where_defined(pattern):
    T = traffic_matrix(pattern, 4, 2)
    assert T.shape == (16, 16)
    np.testing.assert_allclose(T.sum(1), 1.0)
    if pattern not in ("uniform", "hotspot"):
        assert np.array_equal(T.sum(0), np.ones(16))  # permutations: every node receives exactly once
        assert set(np.unique(T)) <= {0.0, 1.0}


def test_pattern_definitions():
    assert traffic_matrix("transpose", 4, 2)[1, 4] == 1.0  # (x=1, y=0) -> (x=0, y=1)
    assert traffic_matrix("bitcomp", 4, 2)[0, 15] == 1.0
    assert traffic_matrix("bitrev", 4, 2)[1, 8] == 1.0  # 0001 -> 1000
    assert traffic_matrix("shuffle", 4, 2)[9, 3] == 1.0  # 1001 -> 0011
    assert traffic_matrix("tornado", 8, 1)[0, 3] == 1.0  # +ceil(8/2)-1
    assert traffic_matrix("neighbor", 4, 2)[0, 5] == 1.0  # +1 in x and y
    hs = traffic_matrix("hotspot", 4, 2, hotspot_nodes=(5,), hotspot_fraction=0.5)
    assert hs[0, 5] == pytest.approx(0.5 + 0.5 / 16)


def test_arbitrary_traffic_matrix_equals_named_pattern():
    a = _noc(0.05, P, "transpose", k=4)
    b = jax.jit(lambda T: noc_latency(0.05, P, T, k=4))(jnp.asarray(traffic_matrix("transpose", 4, 2)))
    np.testing.assert_allclose(float(a.latency_cycles), float(b.latency_cycles), rtol=1e-6)


def test_zero_load_latency_formula():
    # single flow 0 -> 3 on a 4-ary 1-mesh: 3 links, 4 routers
    T = np.zeros((4, 4))
    T[0, 3] = 1.0
    p = NocParams(routing_delay=1, vc_alloc_delay=1, sw_alloc_delay=1, packet_size=5)
    m = jax.jit(lambda T: noc_latency(1e-6, p, T, k=4, n=1))(T)
    assert float(m.zero_load_latency_cycles) == pytest.approx(4 * 4 + 3 * 1 + 3 + 4)


def test_queueing_is_md1_per_channel():
    q = channel_queueing_latency(jnp.array([0.0, 0.5, 0.9]), 4.0)
    np.testing.assert_allclose(np.asarray(q.wait_cycles), [0.0, 0.5 / (2 * 0.5) * 4, 0.9 / (2 * 0.1) * 4],
                               rtol=1e-5)
    assert not bool(q.saturated)


def test_jit_vmap_no_retrace():
    f = TraceCounter(lambda lam, d: noc_latency(lam, NocParams(vc_alloc_delay=d, packet_size=4.0), "uniform",
                                                 k=4).latency_cycles)
    g = jax.jit(jax.vmap(f))
    a = g(jnp.linspace(0.01, 0.2, 8), jnp.ones(8))
    g(jnp.linspace(0.02, 0.1, 8), 2.0 * jnp.ones(8))
    assert f.count == 1
    loop = [float(noc_latency(float(x), NocParams(packet_size=4.0), "uniform", k=4).latency_cycles)
            for x in np.linspace(0.01, 0.2, 8)]
    np.testing.assert_allclose(np.asarray(a), loop, rtol=2e-5)
    assert_jit_matches_eager(lambda lam: noc_latency(lam, P, "transpose", k=4), jnp.asarray(0.05))


def test_gradients_finite_at_and_past_saturation_and_match_fd():
    sat = float(noc_latency(0.01, P, "transpose", k=4).saturation_rate)
    lat = jax.jit(jax.grad(lambda lam, d: noc_latency(lam, NocParams(
        routing_delay=0.0, vc_alloc_delay=d, sw_alloc_delay=1.0, credit_delay=2.0, packet_size=4.0, num_vcs=8.0,
        vc_buf_size=8.0), "transpose", k=4).latency_cycles, argnums=(0, 1)))
    for lam in (0.5 * sat, sat, 1.3 * sat):
        g = lat(jnp.asarray(lam), jnp.asarray(1.0))
        assert all(np.isfinite(float(x)) for x in g)
        assert float(g[0]) > 0 and float(g[1]) > 0
    with float64():
        f = jax.jit(lambda x: noc_latency(x[0], NocParams(routing_delay=x[1], packet_size=x[2]), "uniform",
                                          k=4).latency_cycles)
        assert_grad_matches_fd(f, jnp.array([0.05, 1.0, 3.0]), eps=1e-6, rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(pattern=st.sampled_from(TRAFFIC_PATTERNS), lam=st.floats(0.0, 0.3), dlam=st.floats(1e-4, 0.1))
def test_latency_non_decreasing_in_load(pattern, lam, dlam):
    a = _noc(lam, P, pattern, k=4)
    b = _noc(lam + dlam, P, pattern, k=4)
    assert float(b.latency_cycles) >= float(a.latency_cycles) - 1e-4
    assert float(b.accepted_rate) >= float(a.accepted_rate) - 1e-7
    assert float(a.accepted_rate) <= float(a.saturation_rate) + 1e-7


@settings(max_examples=25, deadline=None)
@given(k=st.integers(2, 6), lam=st.floats(0.001, 0.05), extra=st.floats(0.0, 3.0))
def test_slower_routers_never_faster(k, lam, extra):
    a = _noc(lam, NocParams(packet_size=2.0), "uniform", k=k)
    b = _noc(lam, NocParams(packet_size=2.0, sw_alloc_delay=1.0 + extra), "uniform", k=k)
    assert float(b.latency_cycles) >= float(a.latency_cycles) - 1e-5


def test_bad_inputs_name_the_field():
    with pytest.raises(ValueError, match="topology"):
        dor_routes(4, 2, "hypercube")
    with pytest.raises(ValueError, match="traffic"):
        noc_latency(0.1, P, "random_walk", k=4)
    with pytest.raises(ValueError, match="power-of-two"):
        traffic_matrix("bitrev", 6, 2)
    with pytest.raises(ValueError, match="NocParams.packet_size"):
        NocParams(packet_size=0)
    with pytest.raises(ValueError, match="k must be"):
        dor_routes(1, 2)
    with pytest.raises(ValueError, match="shape"):
        noc_latency(0.1, P, np.ones((3, 3)), k=4)
