"""Collective-time model: transformations, gradients, invariants, nccl-tests conventions, input errors."""

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
    assert_vmap_matches_loop,
    float64,
)
from diffsys.topologies import (
    ALGORITHMS,
    OPS,
    PROTOCOLS,
    bus_factor,
    chosen_algorithm,
    collective_time,
    normalize_op,
)
from diffsys.topologies._collectives import VALID_ALGORITHMS

KW = {"efficiency": 0.9, "overhead_s": 10e-6, "reduce_Bps": 1e12, "in_network_Bps": 200e9}


def _t(op, x, **kw):
    size, n, bw, lat = x[0], x[1], x[2], x[3]
    return collective_time(op, size, n, bw, lat, **{**KW, **kw}).time_s


def _all_ops(v, temperature=0.05):
    """Every op's result at once (one compilation covers them all)."""
    return {op: collective_time(op, v[0], v[1], v[2], v[3], temperature=temperature, **KW) for op in OPS}


def test_jit_matches_eager_and_vmap_matches_loop():
    x = jnp.array([64e6, 8.0, 300e9, 3e-6])
    assert_jit_matches_eager(lambda v: _all_ops(v, 0.0), x)
    key = jax.random.PRNGKey(0)
    xs = jnp.stack([jnp.exp(jax.random.uniform(key, (6,), minval=np.log(1e3), maxval=np.log(1e10))),
                    jnp.array([2.0, 3, 4, 8, 16, 64]), jnp.full(6, 100e9), jnp.full(6, 2e-6)], axis=1)
    assert_vmap_matches_loop(jax.jit(_all_ops), xs)


def test_finite_grads_and_fd():
    x = jnp.array([64e6, 8.0, 300e9, 3e-6])
    jac = jax.jit(jax.jacrev(lambda v: jnp.stack([_t(op, v, temperature=0.1) for op in OPS])))(x)
    assert np.all(np.isfinite(np.asarray(jac))), "non-finite gradient"
    assert np.all(np.asarray(jac[:, 2]) <= 0.0)  # more bandwidth never slower, every op
    assert np.all(np.asarray(jac[:, 3]) >= 0.0)  # more latency never faster
    with float64():
        # log-space parameters so finite differences are well scaled; random op weights check every op at once
        base = jnp.array([64e6, 7.3, 300e9, 3e-6], dtype=jnp.float64)
        ops = ("all_reduce", "all_to_all", "broadcast", "reduce_scatter")  # one per formula family
        w = jnp.asarray(np.random.default_rng(0).uniform(0.5, 2.0, len(ops)))
        f = jax.jit(lambda u: sum(wi * _t(op, base * jnp.exp(u), temperature=0.1) for wi, op in zip(w, ops)) * 1e3)
        assert_grad_matches_fd(f, jnp.zeros(4, jnp.float64), eps=1e-6, rtol=1e-4, atol=1e-9, relative_step=False)


def test_no_retrace_on_second_call():
    counted = TraceCounter(lambda s, n: collective_time("all_reduce", s, n, 300e9, 3e-6).time_s)
    f = jax.jit(jax.vmap(counted))
    f(jnp.ones(16) * 1e6, jnp.full(16, 8.0)).block_until_ready()
    f(jnp.ones(16) * 2e6, jnp.full(16, 4.0)).block_until_ready()
    assert counted.count == 1


def test_nccl_tests_bus_factors():
    # nccl-tests doc/PERFORMANCE.md
    n = 8.0
    assert float(bus_factor("all_reduce", n)) == pytest.approx(2 * 7 / 8)
    for op in ("reduce_scatter", "all_gather", "alltoall"):
        assert float(bus_factor(op, n)) == pytest.approx(7 / 8)
    for op in ("broadcast", "reduce", "send_recv"):
        assert float(bus_factor(op, n)) == 1.0
    r = collective_time("all_reduce", 2**30, 8, 300e9, 3e-6)
    assert float(r.algbw_Bps) == pytest.approx(2**30 / float(r.time_s), rel=1e-6)
    assert float(r.busbw_Bps) == pytest.approx(float(r.algbw_Bps) * 1.75, rel=1e-6)


def test_ring_all_reduce_matches_thakur_formula():
    # Thakur et al. 2005: 2(p-1)α + 2(p-1)/p·nβ + (p-1)/p·nγ
    S, p, B, a, g = 1e8, 6.0, 100e9, 5e-6, 500e9
    r = collective_time("all_reduce", S, p, B, a, algorithm="ring", protocol="simple", reduce_Bps=g)
    expect = 2 * (p - 1) * a + 2 * (p - 1) / p * S / B + (p - 1) / p * S / g
    assert float(r.time_s) == pytest.approx(expect, rel=1e-5)


def test_large_messages_choose_bandwidth_optimal_small_choose_latency_optimal():
    big = collective_time("all_reduce", 2**32, 64, 100e9, 5e-6, algorithm=("ring", "tree"))
    small = collective_time("all_reduce", 1024, 64, 100e9, 5e-6, algorithm=("ring", "tree"))
    assert chosen_algorithm(big) == ("ring", "simple")
    assert chosen_algorithm(small)[0] == "tree" and chosen_algorithm(small)[1] == "ll"
    # exact selection is one-hot; per-algorithm times carry inf for excluded algorithms
    assert float(jnp.sum(big.weights)) == 1.0
    assert np.isinf(np.asarray(big.per_algorithm_s)[ALGORITHMS.index("bruck")]).all()


def test_relaxed_selection_converges_to_exact():
    exact = float(collective_time("all_reduce", 3e6, 16, 100e9, 5e-6, algorithm="all",
                                  in_network_Bps=80e9).time_s)
    prev = None
    for t in (0.3, 0.1, 0.01, 0.001):
        soft = float(collective_time("all_reduce", 3e6, 16, 100e9, 5e-6, algorithm="all", in_network_Bps=80e9,
                                     temperature=t).time_s)
        assert soft <= exact * (1 + 1e-6)  # softmin is below the min ...
        if prev is not None:
            assert abs(soft - exact) <= abs(prev - exact) + 1e-12  # ... and approaches it
        prev = soft
    assert prev == pytest.approx(exact, rel=1e-2)


def test_gradients_finite_for_one_rank_and_zero_size():
    f = jax.jit(jax.jacrev(lambda v, t: jnp.stack([_t(op, v, temperature=t) for op in OPS])))
    for x in ([1e6, 1.0, 1e11, 1e-6], [0.0, 4.0, 1e11, 0.0]):
        for t in (0.0, 0.1):
            assert np.all(np.isfinite(np.asarray(f(jnp.asarray(x), t)))), (x, t)


def test_single_rank_costs_nothing():
    r = collective_time("all_reduce", 1e9, 1, 100e9, 5e-6, overhead_s=1e-5)
    assert float(r.time_s) == 0.0 and float(r.busbw_Bps) == 0.0


def test_moe_imbalance_slows_all_to_all():
    a = collective_time("all_to_all", 1e8, 8, 100e9, 2e-6).time_s
    b = collective_time("all_to_all", 1e8, 8, 100e9, 2e-6, imbalance=1.5).time_s
    assert float(b) > float(a)


def test_in_network_halves_all_reduce_traffic():
    ring = collective_time("all_reduce", 2**30, 8, 450e9, 3e-6, algorithm="ring", protocol="simple")
    nvls = collective_time("all_reduce", 2**30, 8, 450e9, 3e-6, algorithm="in_network", in_network_Bps=450e9,
                           protocol="simple")
    # ring moves 2(n-1)/n·S per rank, the switch-reduction S: ratio 1.75 at large sizes
    assert float(ring.time_s) / float(nvls.time_s) == pytest.approx(1.75, rel=0.01)


def test_chunked_pipeline_approaches_streamed_limit():
    streamed = float(collective_time("broadcast", 1e9, 16, 100e9, 5e-6, algorithm="ring").time_s)
    coarse = float(collective_time("broadcast", 1e9, 16, 100e9, 5e-6, algorithm="ring", chunk_B=1e8).time_s)
    fine = float(collective_time("broadcast", 1e9, 16, 100e9, 5e-6, algorithm="ring", chunk_B=1e6).time_s)
    assert streamed < fine < coarse


@settings(max_examples=25, deadline=None)
@given(op=st.sampled_from(OPS), size=st.floats(1e3, 1e10), n=st.integers(2, 512), bw=st.floats(1e9, 1e12),
       factor=st.floats(1.01, 10.0), lat=st.floats(1e-7, 1e-4))
def test_more_bandwidth_never_slower(op, size, n, bw, factor, lat):
    t1 = float(collective_time(op, size, n, bw, lat).time_s)
    t2 = float(collective_time(op, size, n, bw * factor, lat).time_s)
    assert t2 <= t1 * (1 + 1e-6)


@settings(max_examples=25, deadline=None)
@given(op=st.sampled_from(OPS), size=st.floats(1e3, 1e10), n=st.integers(2, 512), lat=st.floats(1e-7, 1e-4),
       extra=st.floats(1e-7, 1e-4))
def test_more_latency_never_faster(op, size, n, lat, extra):
    t1 = float(collective_time(op, size, n, 100e9, lat).time_s)
    t2 = float(collective_time(op, size, n, 100e9, lat + extra).time_s)
    assert t2 >= t1 * (1 - 1e-6)


@settings(max_examples=25, deadline=None)
@given(size=st.floats(1e3, 1e10), n=st.integers(2, 1024))
def test_ring_all_reduce_total_traffic_grows_with_ranks(size, n):
    # total bytes on the wire = n · busbw-bytes per rank = 2(n-1)·S: never less with more ranks
    def traffic(m):
        r = collective_time("all_reduce", size, m, 100e9, 0.0, algorithm="ring", protocol="simple")
        return float(r.time_s) * 100e9 * m
    assert traffic(n + 1) >= traffic(n) * (1 - 1e-5)
    assert traffic(n) == pytest.approx(2 * (n - 1) * size, rel=1e-4)


@settings(max_examples=25, deadline=None)
@given(op=st.sampled_from(OPS), size=st.floats(1e3, 1e10), n=st.integers(2, 512))
def test_busbw_never_exceeds_link_bandwidth_without_in_network(op, size, n):
    # nccl-tests' busbw is normalized to the per-rank link: no host-based algorithm beats the link rate
    r = collective_time(op, size, n, 100e9, 1e-6, algorithm=tuple(a for a in VALID_ALGORITHMS[normalize_op(op)]
                                                                  if a != "in_network"))
    assert float(r.busbw_Bps) <= 100e9 * (1 + 1e-5)


def test_bad_inputs_name_the_field():
    with pytest.raises(ValueError, match="n_ranks"):
        collective_time("all_reduce", 1e6, 0, 1e9, 1e-6)
    with pytest.raises(ValueError, match="n_ranks"):
        collective_time("all_reduce", 1e6, -3, 1e9, 1e-6)
    with pytest.raises(ValueError, match="n_ranks must be an integer"):
        collective_time("all_reduce", 1e6, 7.5, 1e9, 1e-6)  # exact mode
    collective_time("all_reduce", 1e6, 7.5, 1e9, 1e-6, temperature=0.1)  # relaxed mode accepts it
    with pytest.raises(ValueError, match="bandwidth_Bps"):
        collective_time("all_reduce", 1e6, 8, 0.0, 1e-6)
    with pytest.raises(ValueError, match="size_B"):
        collective_time("all_reduce", -1.0, 8, 1e9, 1e-6)
    with pytest.raises(ValueError, match="op must be one of"):
        collective_time("allsum", 1e6, 8, 1e9, 1e-6)
    with pytest.raises(ValueError, match="algorithm for all_gather"):
        collective_time("all_gather", 1e6, 8, 1e9, 1e-6, algorithm="tree")
    with pytest.raises(ValueError, match="in_network_Bps"):
        collective_time("all_reduce", 1e6, 8, 1e9, 1e-6, algorithm="in_network")
    with pytest.raises(ValueError, match="protocol"):
        collective_time("all_reduce", 1e6, 8, 1e9, 1e-6, protocol="fast")
    with pytest.raises(ValueError, match="efficiency"):
        collective_time("all_reduce", 1e6, 8, 1e9, 1e-6, efficiency=1.5)


def test_protocol_tables_follow_nccl():
    from diffsys.topologies._collectives import (
        PROTOCOL_BANDWIDTH_FRACTION,
        PROTOCOL_LATENCY_FACTOR,
    )
    assert set(PROTOCOLS) == set(PROTOCOL_BANDWIDTH_FRACTION) == set(PROTOCOL_LATENCY_FACTOR)
    assert PROTOCOL_BANDWIDTH_FRACTION["ll"] < PROTOCOL_BANDWIDTH_FRACTION["ll128"] < 1.0
    assert PROTOCOL_LATENCY_FACTOR["ll"] < PROTOCOL_LATENCY_FACTOR["ll128"] < PROTOCOL_LATENCY_FACTOR["simple"]


def test_ll_bandwidth_is_a_quarter_for_reductions_and_a_third_otherwise():
    """NCCL tuning.cc: LL carries 1/4 of the Simple bandwidth for all-reduce/reduce, 1/3 for other collectives; at
    sizes where latency is negligible the LL/Simple time ratio must approach those factors' inverses."""
    S = 2.0**36
    for op, ratio in (("all_reduce", 4.0), ("reduce", 4.0), ("all_gather", 3.0), ("reduce_scatter", 3.0)):
        ll = collective_time(op, S, 8, 100e9, 1e-6, algorithm="ring", protocol="ll").time_s
        simple = collective_time(op, S, 8, 100e9, 1e-6, algorithm="ring", protocol="simple").time_s
        assert float(ll / simple) == pytest.approx(ratio, rel=1e-3), op


@settings(max_examples=25, deadline=None)
@given(size=st.floats(1e3, 1e10), n=st.integers(2, 16), lat=st.floats(1e-7, 1e-4))
def test_chain_tree_is_deeper_than_binary_and_never_beats_ring_in_one_node(size, n, lat):
    """NCCL's intra-node tree is a chain: 2(n-1) steps and 2·S bytes per rank, so it cannot beat the ring
    (2(n-1) steps, 2(n-1)/n·S bytes) -- NCCL picks ring inside a node; the binary tree is never slower."""
    kw = {"protocol": "simple"}
    chain = collective_time("all_reduce", size, n, 100e9, lat, algorithm="tree", tree="chain", **kw).time_s
    binary = collective_time("all_reduce", size, n, 100e9, lat, algorithm="tree", **kw).time_s
    ring = collective_time("all_reduce", size, n, 100e9, lat, algorithm="ring", **kw).time_s
    assert float(chain) >= float(binary) * (1 - 1e-6)
    assert float(chain) >= float(ring) * (1 - 1e-6)


def test_tree_shape_is_checked():
    with pytest.raises(ValueError, match="tree"):
        collective_time("all_reduce", 1e6, 8, 1e9, 1e-6, tree="star")
