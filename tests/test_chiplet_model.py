"""MCM model: JAX conventions (jit, vmap, grad, no retrace), physical invariants, input errors."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffsys import chiplet as C
from diffsys.testing import (
    TraceCounter,
    assert_grad_matches_fd,
    assert_jit_matches_eager,
    assert_vmap_matches_loop,
    float64,
)


@functools.cache
def _model(name="transformer", rows=2, cols=2, routing="shortest"):
    w = {"transformer": lambda: C.transformer(layers=2, batch=2), "resnet50": lambda: C.resnet50(batch=2)}[name]()
    return C.MCMModel(w, C.D2DGraph.build(rows, cols, routing=routing))


@functools.cache
def _jit(name="transformer", rows=2, cols=2, routing="shortest", temperature=0.0):
    """One compiled evaluation per model structure (hypothesis examples reuse it)."""
    m = _model(name, rows, cols, routing)
    return jax.jit(lambda d, p: m(d, p, temperature=temperature))


def _random_design(model, key, n_strat=3):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    g, n = model.num_groups, model.num_chiplets
    return C.MCMDesign(
        partition_logits=jax.random.normal(k1, (g, n)),
        strategy=jax.random.randint(k2, (g,), 0, n_strat).astype(float),
        diagonals=jax.random.randint(k3, (), 0, len(model.graph.pattern_names)).astype(float),
        memory=jax.random.randint(k4, (), 0, len(model.graph.placement_names)).astype(float),
    )


def _stack(designs):
    return jax.tree_util.tree_map(lambda *x: jnp.stack(x), *designs)


def test_jit_matches_eager():
    m = _model("transformer", 2, 2)
    pk = C.ChipletPackage.split(4, "organic")
    assert_jit_matches_eager(lambda d: m(d, pk), _random_design(m, jax.random.PRNGKey(0)), rtol=1e-5)


def test_metrics_are_consistent():
    m = _model("resnet50", 3, 3)
    pk = C.ChipletPackage.split(9, "organic")
    r = _jit("resnet50", 3, 3)(_random_design(m, jax.random.PRNGKey(0)), pk)
    total_e = (r.energy_compute_J + r.energy_sram_J + r.energy_d2d_J + r.energy_noc_J + r.energy_dram_J
               + r.energy_static_J)
    np.testing.assert_allclose(r.energy_J, total_e, rtol=1e-5)
    np.testing.assert_allclose(r.latency_s, r.compute_time_s + r.communication_time_s + r.congestion_time_s,
                               rtol=1e-5)
    np.testing.assert_allclose(r.edp_Js, r.energy_J * r.latency_s, rtol=1e-6)
    np.testing.assert_allclose(r.link_bytes.sum(), r.d2d_link_bytes, rtol=1e-4)
    assert r.latency_s >= r.compute_time_s > 0
    assert r.d2d_link_bytes >= r.d2d_injected_bytes > 0
    # compute energy is the workload's FLOPs times the per-FLOP energy, whatever the partition
    np.testing.assert_allclose(r.energy_compute_J, m.workload.total_flops * 0.3e-12, rtol=1e-5)


def test_vmap_matches_loop():
    m = _model("resnet50", 3, 3)
    pk = C.ChipletPackage.split(9, "interposer")
    f = _jit("resnet50", 3, 3)
    ds = _stack([_random_design(m, jax.random.PRNGKey(i)) for i in range(4)])
    assert_vmap_matches_loop(lambda d: f(d, pk), ds, rtol=1e-4)


@functools.cache
def _grad_fn(temperature):
    m = _model("resnet50", 3, 3)
    return jax.jit(jax.grad(lambda d, p: m(d, p, temperature=temperature).edp_Js, argnums=(0, 1)))


@pytest.mark.parametrize("temperature", [0.0, 0.1])
def test_finite_grads_exact_and_relaxed(temperature):
    m = _model("resnet50", 3, 3)
    pk = C.ChipletPackage.split(9, "organic")
    for i in range(3):
        d = _random_design(m, jax.random.PRNGKey(10 + i))
        gd, gp = _grad_fn(temperature)(d, pk)
        for leaf in jax.tree_util.tree_leaves((gd, gp)):
            assert np.all(np.isfinite(np.asarray(leaf)))
        assert np.any(np.asarray(gd.partition_logits) != 0)
        assert gp.packaging.bandwidth_density_Bps_per_mm <= 0  # more bandwidth helps (or is neutral)
        if temperature > 0:  # relaxed categorical choices carry gradient
            assert np.any(np.asarray(gd.strategy) != 0)


def test_gradient_matches_finite_differences():
    with float64():
        m = _model()
        pk = C.ChipletPackage.split(4, "organic")
        d = _random_design(m, jax.random.PRNGKey(3))
        x0 = jnp.asarray(d.partition_logits, jnp.float64).ravel()

        @jax.jit
        def f(x, t):
            dd = eqx.tree_at(lambda z: z.partition_logits, d, x.reshape(d.partition_logits.shape))
            return jnp.log(m(dd, pk, temperature=t).edp_Js)

        for t in (0.0, 0.1):  # exact (at a generic point) and relaxed
            assert_grad_matches_fd(lambda x, t=t: f(x, t), x0, eps=1e-6, rtol=1e-4, atol=1e-8)


def test_no_retrace_on_second_call():
    m = _model()
    pk = C.ChipletPackage.split(4, "organic")
    counter = TraceCounter(lambda d: m(d, pk, temperature=0.0).edp_Js)
    f = jax.jit(counter)
    f(_random_design(m, jax.random.PRNGKey(0))).block_until_ready()
    f(_random_design(m, jax.random.PRNGKey(1))).block_until_ready()
    assert counter.count == 1


def test_bad_input_errors_name_the_field():
    with pytest.raises(ValueError, match="bandwidth_density_Bps_per_mm"):
        C.packaging("organic", bandwidth_density_Bps_per_mm=-1.0)
    with pytest.raises(ValueError, match="packaging name"):
        C.packaging("glass")
    with pytest.raises(ValueError, match="d2d_edge_fraction"):
        C.ChipletPackage.split(4, d2d_edge_fraction=1.5)
    with pytest.raises(ValueError, match="num_chiplets"):
        C.ChipletPackage.split(0)
    with pytest.raises(ValueError, match="batch"):
        C.resnet50(batch=0)
    with pytest.raises(ValueError, match="d_model"):
        C.transformer(d_model=100, heads=12)
    with pytest.raises(ValueError, match="workload"):
        C.workload("alexnet")
    with pytest.raises(ValueError, match="activity_eps"):
        C.MCMModel(C.transformer(), rows=2, cols=2, activity_eps=0.0)


def test_workload_totals_match_published_counts():
    """ResNet-50: 4.1 GMAC and 25.6 M parameters (He et al. 2016); ViT-B/16: 17.6 GMAC (our count adds the class
    token and attention products: ~17.5), 86 M parameters (Dosovitskiy et al. 2021)."""
    r = C.resnet50()
    assert r.total_flops / 2 == pytest.approx(4.1e9, rel=0.02)
    assert r.weight_B.sum() / 2 == pytest.approx(25.6e6, rel=0.01)
    v = C.vit_b16()
    assert v.total_flops / 2 == pytest.approx(17.6e9, rel=0.02)
    assert v.weight_B.sum() / 2 == pytest.approx(86e6, rel=0.01)
    assert C.resnet50(batch=4).total_flops == pytest.approx(4 * r.total_flops)


# ---- physical invariants ----------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(1.01, 20.0), st.sampled_from(["organic", "interposer", "bridge"]))
def test_more_link_bandwidth_never_raises_edp(seed, factor, tech):
    m = _model("resnet50", 3, 3)
    pk = C.ChipletPackage.split(9, tech)
    d = _random_design(m, jax.random.PRNGKey(seed))
    more = eqx.tree_at(lambda p: p.packaging.bandwidth_density_Bps_per_mm, pk,
                       pk.packaging.bandwidth_density_Bps_per_mm * factor)
    f = _jit("resnet50", 3, 3)
    a, b = f(d, pk), f(d, more)
    assert float(b.edp_Js) <= float(a.edp_Js) * (1 + 1e-6)
    assert float(b.latency_s) <= float(a.latency_s) * (1 + 1e-6)
    assert float(b.energy_d2d_J) == pytest.approx(float(a.energy_d2d_J), rel=1e-6)  # same bytes, same pJ/b


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 8), st.integers(0, 2), st.integers(0, 2**31 - 1))
def test_single_chiplet_partition_with_local_memory_has_zero_d2d_traffic(chiplet, strategy, seed):
    """All work of every layer on one die whose data sit in its own DRAM channel: no die-to-die bytes or energy."""
    m = _model("resnet50", 3, 3)
    pk = C.ChipletPackage.split(9, "organic")
    logits = jnp.full((m.num_groups, 9), -jnp.inf).at[:, chiplet].set(0.0)
    d = C.MCMDesign(partition_logits=logits, strategy=jnp.full((m.num_groups,), float(strategy)),
                    diagonals=float(seed % len(m.graph.pattern_names)),
                    memory=float(m.graph.placement_names.index("local")))
    r = _jit("resnet50", 3, 3)(d, pk)
    assert float(r.energy_d2d_J) == 0.0 and float(r.energy_noc_J) == 0.0
    assert float(r.d2d_link_bytes) == 0.0 and float(r.congestion_time_s) == 0.0
    assert float(r.energy_dram_J) > 0


def test_uniform_partition_with_local_memory_and_token_strategy_is_traffic_free():
    """Token slices that line up layer after layer never cross a die (a CNN without halos, weights local)."""
    m = _model("resnet50", 2, 2)
    pk = C.ChipletPackage.split(4, "organic")
    d = m.uniform_design("token", memory="local")
    r = m(d, pk)
    # token strategy broadcasts weights: with local memory every die reads its own copy, nothing crosses
    assert float(r.d2d_link_bytes) == 0.0


@pytest.mark.parametrize("routing", ["shortest", "dor"])
def test_symmetric_workload_gives_symmetric_link_loads(routing):
    """Uniform partitions with a mirror-symmetric memory placement and diagonal pattern give link loads invariant
    under the grid's mirror symmetries (DOR is only mirror-symmetric, not transpose-symmetric)."""
    n = 4
    m = _model("transformer", n, n, routing)
    pk = C.ChipletPackage.split(n * n, "organic")
    links = m.graph.links
    index = {(s, d): e for e, (s, d, *_) in enumerate(links)}
    maps = [lambda r, c: (r, n - 1 - c), lambda r, c: (n - 1 - r, c)]
    if routing == "shortest":
        maps.append(lambda r, c: (c, r))
    for strategy in ("channel", "reduction"):
        for pattern in ("none", "all"):
            for placement in ("perimeter", "corners"):
                load = np.asarray(_jit("transformer", n, n, routing)(m.uniform_design(strategy, pattern, placement),
                                                                      pk).link_bytes)
                assert load.sum() > 0
                for f in maps:
                    def mp(i, f=f):
                        r, c = f(*divmod(i, n))
                        return r * n + c
                    perm = [index[(mp(s), mp(d))] for s, d, *_ in links]
                    np.testing.assert_allclose(load[perm], load, rtol=2e-5)


def test_packaging_technologies_order_the_d2d_energy():
    """Same design and traffic: D2D PHY energy scales with pJ/bit (organic > bridge > interposer > hybrid)."""
    m = _model("resnet50", 3, 3)
    d = m.uniform_design("channel", memory="perimeter")
    f = _jit("resnet50", 3, 3)
    e = {t: float(f(d, C.ChipletPackage.split(9, t)).energy_d2d_J) for t in C.PACKAGING_NAMES}
    assert e["organic"] > e["bridge"] > e["interposer"] > e["hybrid_bonding"] > 0
    np.testing.assert_allclose(e["organic"] / e["interposer"], 0.5 / 0.25, rtol=1e-5)


def test_relaxed_model_converges_to_exact():
    m = _model("resnet50", 2, 2)
    pk = C.ChipletPackage.split(4, "organic")
    d = _random_design(m, jax.random.PRNGKey(5))
    exact = float(_jit("resnet50", 2, 2)(d, pk).edp_Js)
    f = jax.jit(lambda d_, t: m(d_, pk, temperature=t))  # traced temperature: one compilation
    errs = [abs(float(f(d, t).edp_Js) / exact - 1) for t in (0.1, 0.01, 0.001)]
    assert errs[-1] < 0.02 and errs[-1] <= errs[0]


def test_reach_violation_flags_infeasible_packages():
    m = _model("transformer", 2, 2)
    short = C.ChipletPackage.split(4, C.packaging("interposer", die_gap_mm=3.0))  # reach is 2 mm
    r = m(m.uniform_design("token"), short)
    assert not bool(r.feasible) and float(r.violation) == pytest.approx(1.0)
    ok = m(m.uniform_design("token"), C.ChipletPackage.split(4, "interposer"))
    assert bool(ok.feasible) and float(ok.violation) == 0.0


def test_layer_chains_agree_with_roofline_op_graphs():
    """The chiplet layer chains carry the weight/activation split the partitioning needs; their matrix FLOPs agree
    with the op graphs of ``diffsys.roofline`` (ResNet-50 exactly, ViT-B/16 within 0.1 %)."""
    from diffsys import roofline as R

    for graph, chain, tol in ((R.resnet50_layers(batch=2), C.resnet50(batch=2), 1e-6),
                              (R.vit_b16_layers(batch=2), C.vit_b16(batch=2), 1e-3)):
        matrix = np.asarray(graph.ops.matrix).astype(bool)
        flops = np.asarray(graph.ops.flops, float)[matrix].sum()
        assert flops == pytest.approx(chain.total_flops, rel=tol)
