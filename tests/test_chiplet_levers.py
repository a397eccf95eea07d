"""Co-optimization levers of the MCM model: diagonal links, on-chip redistribution, diagonal share, per-chiplet
arrival (the physics that rewards non-uniform partitions), and the lever study (GA vs exhaustive enumeration)."""

import functools

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffsys import chiplet as C
from diffsys import problems as P
from diffsys.chiplet import diagonal_patterns, routing_tensor
from diffsys.chiplet._workloads import LINEAR, LayerChain


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 4), st.integers(2, 4), st.integers(0, 2**31 - 1), st.sampled_from(["shortest", "dor", "dor_yx"]))
def test_adding_diagonal_links_never_increases_hop_count(rows, cols, seed, routing):
    """Every routing is minimal on the built links, so a superset of diagonals never lengthens any s→d path."""
    rng = np.random.default_rng(seed)
    n_slots = 2 * (rows - 1) * (cols - 1)
    base = rng.random(n_slots) < 0.3
    more = base | (rng.random(n_slots) < 0.5)
    h_base = routing_tensor(rows, cols, base, routing).sum(0)
    h_more = routing_tensor(rows, cols, more, routing).sum(0)
    assert np.all(h_more <= h_base + 1e-12)


def test_yx_routing_is_the_transposed_xy_routing():
    """On a square grid, YX routing of s→d is XY routing of the transposed pair mapped back (mesh links only)."""
    n = 3
    links = C.candidate_links(n, n)
    index = {(s, d): e for e, (s, d, *_) in enumerate(links)}
    t = lambda i: (i % n) * n + i // n
    none = diagonal_patterns(n, n)["none"]
    xy, yx = routing_tensor(n, n, none, "dor"), routing_tensor(n, n, none, "dor_yx")
    for e, (s, d, *_) in enumerate(links):
        np.testing.assert_allclose(yx[e], xy[index[(t(s), t(d))]][np.ix_([t(i) for i in range(n * n)],
                                                                         [t(i) for i in range(n * n)])])


@functools.cache
def _models():
    w = C.transformer(layers=1, batch=1)
    kw = dict(routing="dor", placements="edge")
    return (C.MCMModel(w, C.D2DGraph.build(2, 3, **kw)), C.MCMModel(w, C.D2DGraph.build(2, 3, alt_routing="dor_yx", **kw)),
            C.MCMModel(w, C.D2DGraph.build(2, 3, routing="dor_yx", placements="edge")))


def _design(model, key=0):
    k1, k2 = jax.random.split(jax.random.PRNGKey(key))
    return C.MCMDesign(partition_logits=0.3 * jax.random.normal(k1, (model.num_groups, model.num_chiplets)),
                       strategy=jax.random.randint(k2, (model.num_groups,), 0, 3).astype(float),
                       diagonals=0.0, memory=1.0)


def test_zero_redistribution_is_no_redistribution_and_full_redistribution_is_yx():
    plain, alt, yx = _models()
    pk = C.ChipletPackage.split(6, "organic")
    d = _design(plain)
    ref = plain(d, pk)
    zero = alt(d, pk)
    np.testing.assert_allclose(zero.link_bytes, ref.link_bytes, rtol=1e-6)
    np.testing.assert_allclose(zero.edp_Js, ref.edp_Js, rtol=1e-6)
    full = alt(C.MCMDesign(d.partition_logits, d.strategy, d.diagonals, d.memory, redistribution=1.0), pk)
    np.testing.assert_allclose(full.link_bytes, yx(d, pk).link_bytes, rtol=1e-6)
    # a split sends the mean of both routes' bytes over every link, and byte-hops are unchanged (both minimal)
    half = alt(C.MCMDesign(d.partition_logits, d.strategy, d.diagonals, d.memory, redistribution=0.5), pk)
    np.testing.assert_allclose(half.link_bytes, 0.5 * (ref.link_bytes + full.link_bytes), rtol=1e-5)
    np.testing.assert_allclose(half.d2d_link_bytes, ref.d2d_link_bytes, rtol=1e-5)


def test_zero_diagonal_share_routes_like_the_mesh():
    plain, _, _ = _models()
    pk = C.ChipletPackage.split(6, "organic")
    d = _design(plain)
    k_all = plain.graph.pattern_names.index("all")
    mesh = plain(d, pk)
    diag0 = plain(C.MCMDesign(d.partition_logits, d.strategy, float(k_all), d.memory, diagonal_share=0.0), pk)
    diag1 = plain(C.MCMDesign(d.partition_logits, d.strategy, float(k_all), d.memory, diagonal_share=1.0), pk)
    np.testing.assert_allclose(diag0.link_bytes, mesh.link_bytes, rtol=1e-6)
    assert float(diag1.d2d_link_bytes) < float(mesh.d2d_link_bytes)  # diagonals shorten paths: fewer byte-hops


def _two_layer_chain(inb2=4e6, flops2=2e9):
    rows = [("l1", 1e9, 1e5, 1e5, inb2, LINEAR, "g"), ("l2", flops2, 1e5, inb2, 1e5, LINEAR, "g")]
    return LayerChain.from_rows("two", rows, ("g",))


@pytest.mark.parametrize("inb2,flops2", [(4e6, 2e9), (4e6, 2e11)])
def test_per_chiplet_arrival_by_hand(inb2, flops2):
    """1×2 grid, channel slices, local memory, no DRAM or queueing time: the second layer gathers the other half of
    its input over the one link into each die, arrival = (inb/2) / bw; without overlap the die computes after the
    arrival, with full overlap the layer takes max(arrival, compute). The latency difference is min(arrival,
    compute) exactly (halving the ingress bandwidth or the bytes would change it)."""
    m = C.MCMModel(_two_layer_chain(inb2, flops2), C.D2DGraph.build(1, 2, routing="dor", placements=["local"]))
    pk0 = C.ChipletPackage.split(2, "organic", dram_bandwidth_Bps=1e20, packet_B=1e-9, hop_latency_s=0.0)
    d = m.uniform_design("channel", memory="local")
    lat = {ov: float(m(d, C.ChipletPackage.split(2, "organic", dram_bandwidth_Bps=1e20, packet_B=1e-9,
                                               hop_latency_s=0.0, overlap=ov)).latency_s) for ov in (0.0, 1.0)}
    bw = 0.5 * float(pk0.packaging.bandwidth_density_Bps_per_mm) * float(pk0.height_mm * pk0.d2d_edge_fraction)
    act = 0.5 / (0.5 + m.activity_eps)  # an active die counts as p / (p + eps)
    arrival = act * inb2 / 2 / bw
    sram2 = (inb2 + 1e5) / 2 + 1e5 / 2
    comp2 = max(flops2 / 2 / float(pk0.peak_flops), sram2 / float(pk0.sram_bandwidth_Bps))
    assert lat[0.0] - lat[1.0] == pytest.approx(min(arrival, comp2), rel=1e-4)


@functools.cache
def _study():
    return P.LeverStudy(C.transformer(layers=1, batch=1), 2, 2, batch=32)


def test_study_baseline_is_the_uniform_mesh_baseline():
    """Uniform fractions (θ = 0), no diagonals, no redistribution reproduce :func:`chiplet.baseline` on a graph
    without an alternative route."""
    s = _study()
    model = C.MCMModel(s.model.workload, C.D2DGraph.build(2, 2, routing="dor", placements="edge"))
    _, ref = C.baseline(model, C.ChipletPackage.split(4, "organic"))
    assert s.baseline_edp == pytest.approx(float(ref.edp_Js), rel=1e-5)
    lab = s.label(s.baseline_point)
    assert lab["diagonals"] == "none" and lab["redistribution"] == 0.0 and set(lab["affinity"].values()) == {0.0}


@pytest.mark.parametrize("lever", ["mapping", "diagonals", "non_uniform", "packaging", "all"])
def test_exact_lever_search_is_never_worse_than_ga_or_baseline(lever):
    s = _study()
    pt_ga, e_ga = s.ga(lever, population=8, generations=3)
    pt_ex, e_ex = s.exact(lever)
    assert e_ex <= s.baseline_edp * (1 + 1e-9) and e_ga <= s.baseline_edp * (1 + 1e-9)
    if lever != "all":  # exhaustive on the lever's lattice: the GA searches a subset of it
        assert e_ex <= e_ga * (1 + 1e-9)
    # only the lever's coordinates moved
    frozen = np.setdiff1d(np.arange(len(s.sizes)), s.blocks[lever])
    np.testing.assert_array_equal(pt_ex[frozen], s.baseline_point[frozen])
    np.testing.assert_array_equal(pt_ga[frozen], s.baseline_point[frozen])
    assert float(s.edp(pt_ex[None])[0]) == pytest.approx(e_ex, rel=1e-9)


@pytest.mark.slow
def test_lever_enumeration_agrees_with_optimize_exact_search():
    """The study's exhaustive mapping lever and :func:`diffsys.optimize.exact_search` (vmapped enumeration with a
    proof by exhaustion) over the same strategies, other choices at the baseline, find the same optimum."""
    from diffsys import optimize as opt

    s = _study()
    model = C.MCMModel(s.model.workload, C.D2DGraph.build(2, 2, routing="dor", placements="edge"))
    mem = float(model.graph.placement_names.index(s.label(s.baseline_point)["memory"]))
    fixed = {**{f"affinity.{g}": 0.0 for g in model.workload.group_names}, "diagonals": 0.0, "memory": mem}
    problem = P.mcm_problem(model, C.ChipletPackage.split(4, "organic"), "affinity", fixed=fixed)
    res = opt.exact_search(problem, solver="enumerate", chunk_size=128)
    _, e_ex = s.exact("mapping")
    assert res.optimal
    assert res.objective == pytest.approx(e_ex, rel=1e-5)


def test_lever_variables_have_finite_gradients():
    """ρ, δ and the package overlap ω are continuous: EdP is differentiable in them (exact model, interior point)."""
    _, alt, _ = _models()
    d = _design(alt)
    k_all = float(alt.graph.pattern_names.index("all"))

    def edp(x):
        dd = C.MCMDesign(d.partition_logits, d.strategy, k_all, d.memory, redistribution=x[0], diagonal_share=x[1])
        return alt(dd, C.ChipletPackage.split(6, "organic", overlap=x[2])).edp_Js

    g = jax.jit(jax.grad(edp))(jax.numpy.array([0.3, 0.6, 0.5]))
    assert np.all(np.isfinite(np.asarray(g)))
    assert float(g[2]) <= 0  # more overlap (transfers hidden behind compute) never costs time
