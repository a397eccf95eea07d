"""Die-to-die graph: candidate links, diagonal patterns, routing tensors, memory placements."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffsys.chiplet import (
    D2DGraph,
    candidate_links,
    diagonal_patterns,
    memory_placements,
    routing_tensor,
)
from diffsys.chiplet._graph import DIAG


def _mesh_hops(rows, cols):
    n = rows * cols
    rc = np.array([divmod(i, cols) for i in range(n)])
    return np.abs(rc[:, None, :] - rc[None, :, :]).sum(-1)


def _cheb_hops(rows, cols):
    n = rows * cols
    rc = np.array([divmod(i, cols) for i in range(n)])
    return np.abs(rc[:, None, :] - rc[None, :, :]).max(-1)


@pytest.mark.parametrize("rows,cols", [(1, 3), (2, 2), (2, 3), (3, 3), (4, 4)])
@pytest.mark.parametrize("routing", ["shortest", "dor"])
def test_flow_conservation_and_hop_counts(rows, cols, routing):
    """Every s→d unit of traffic leaves s once, enters d once, is conserved at transit dies; hop counts are the
    Manhattan distance without diagonals and the Chebyshev distance with all diagonals (both routings are minimal)."""
    links = candidate_links(rows, cols)
    n = rows * cols
    src = np.array([s for s, *_ in links])
    dst = np.array([d for _, d, *_ in links])
    pats = diagonal_patterns(rows, cols)
    for name in ("none", "all") if "all" in pats else ("none",):
        R = routing_tensor(rows, cols, pats[name], routing)
        for s, d in itertools.product(range(n), range(n)):
            f = R[:, s, d]
            out_flow = np.bincount(src, f, n)
            in_flow = np.bincount(dst, f, n)
            net = out_flow - in_flow
            expect = np.zeros(n)
            if s != d:
                expect[s], expect[d] = 1.0, -1.0
            np.testing.assert_allclose(net, expect, atol=1e-12)
        hops = R.sum(0)
        ref = _mesh_hops(rows, cols) if name == "none" else _cheb_hops(rows, cols)
        np.testing.assert_allclose(hops, ref, atol=1e-12)
        if name == "none":  # no diagonal link ever carries traffic when none is built
            kinds = np.array([k for _, _, k, _ in links])
            assert np.all(R[kinds == DIAG] == 0)


def test_pattern_and_placement_sets():
    pats = diagonal_patterns(3, 3)
    assert list(pats)[:2] == ["none", "all"]
    masks = list(pats.values())
    assert all(m.shape == (8,) for m in masks)
    assert len({m.tobytes() for m in masks}) == len(masks)  # deduplicated
    assert len(diagonal_patterns(3, 3, exhaustive=True)) == 2**4
    pl = memory_placements(3, 3)
    for M, share in pl.values():
        np.testing.assert_allclose(M.sum(0), 1.0)  # every chiplet's data is fully served
        np.testing.assert_allclose(share.sum(), 1.0)
    np.testing.assert_allclose(pl["local"][0], np.eye(9))


def test_graph_build_errors_name_the_field():
    with pytest.raises(ValueError, match="routing"):
        D2DGraph.build(2, 2, routing="valiant")
    with pytest.raises(ValueError, match="rows"):
        D2DGraph.build(0, 2)
    with pytest.raises(ValueError, match="diagonal pattern"):
        D2DGraph.build(2, 2, patterns=["none", "spiral"])
    with pytest.raises(ValueError, match="memory placement"):
        D2DGraph.build(2, 2, placements=["moon"])
    with pytest.raises(ValueError, match="exhaustive"):
        diagonal_patterns(5, 5, exhaustive=True)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 4), st.integers(2, 4), st.integers(0, 2**31 - 1))
def test_diagonals_never_increase_total_link_load(rows, cols, seed):
    """Adding diagonal links to a pattern never lengthens a shortest path, so the total link load (byte·hops) of any
    traffic matrix never increases under shortest-path routing."""
    rng = np.random.default_rng(seed)
    n_slots = 2 * (rows - 1) * (cols - 1)
    base = rng.random(n_slots) < 0.3
    more = base | (rng.random(n_slots) < 0.5)
    T = rng.random((rows * cols, rows * cols)) * (rng.random((rows * cols,) * 2) < 0.6)
    load_base = np.einsum("esd,sd->e", routing_tensor(rows, cols, base, "shortest"), T)
    load_more = np.einsum("esd,sd->e", routing_tensor(rows, cols, more, "shortest"), T)
    assert load_more.sum() <= load_base.sum() + 1e-9


def test_full_diagonals_lower_max_load_of_uniform_traffic():
    """Completing every cell with an X lowers the max link load of uniform all-to-all traffic (2x2 .. 4x4)."""
    for n in (2, 3, 4):
        T = np.ones((n * n, n * n)) - np.eye(n * n)
        pats = diagonal_patterns(n, n)
        for routing in ("shortest", "dor"):
            none = np.einsum("esd,sd->e", routing_tensor(n, n, pats["none"], routing), T).max()
            full = np.einsum("esd,sd->e", routing_tensor(n, n, pats["all"], routing), T).max()
            assert full < none


def test_single_diagonal_can_raise_max_link_load():
    """The converse statement does not hold in general: one s→d flow split over two mesh paths (load 1/2 each) is
    pulled entirely onto a new diagonal (load 1). The model therefore reports link utilizations rather than
    assuming diagonals only help."""
    pats = diagonal_patterns(2, 2)
    T = np.zeros((4, 4))
    T[0, 3] = 1.0
    none = np.einsum("esd,sd->e", routing_tensor(2, 2, pats["none"], "shortest"), T).max()
    diag = np.einsum("esd,sd->e", routing_tensor(2, 2, pats["backslash"], "shortest"), T).max()
    assert none == pytest.approx(0.5) and diag == pytest.approx(1.0)


def _mirror_maps(rows, cols):
    maps = [lambda r, c: (r, cols - 1 - c), lambda r, c: (rows - 1 - r, c)]
    if rows == cols:
        maps.append(lambda r, c: (c, r))
    return maps


@pytest.mark.parametrize("n", [2, 3, 4])
def test_shortest_routing_is_symmetric_under_grid_symmetries(n):
    """Uniform traffic on a symmetric pattern gives link loads invariant under the grid's mirror symmetries."""
    links = candidate_links(n, n)
    index = {(s, d): e for e, (s, d, *_) in enumerate(links)}
    T = np.ones((n * n, n * n)) - np.eye(n * n)
    for name in ("none", "all"):
        load = np.einsum("esd,sd->e", routing_tensor(n, n, diagonal_patterns(n, n)[name], "shortest"), T)
        for f in _mirror_maps(n, n):
            def m(i, f=f):
                r, c = f(*divmod(i, n))
                return r * n + c
            for e, (s, d, *_) in enumerate(links):
                np.testing.assert_allclose(load[index[(m(s), m(d))]], load[e], rtol=1e-12)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_mesh_dor_loads_agree_with_topologies_noc(k):
    """Without diagonals our DOR routing tensor gives the same channel loads as ``diffsys.topologies``' NoC DOR
    routes on a k×k mesh (X first, then Y) for a random traffic matrix."""
    from diffsys.chiplet._graph import EW
    from diffsys.topologies import channel_loads, dor_routes

    rng = np.random.default_rng(k)
    T = rng.random((k * k, k * k))
    ours = np.einsum("esd,sd->e", routing_tensor(k, k, diagonal_patterns(k, k)["none"], "dor"), T)
    theirs = np.asarray(channel_loads(T, dor_routes(k, 2, "mesh")))
    for e, (s, d, kind, _) in enumerate(candidate_links(k, k)):
        if kind == DIAG:
            assert ours[e] == 0
            continue
        dim = 0 if kind == EW else 1
        channel = (s * 2 + dim) * 2 + (0 if d > s else 1)
        assert ours[e] == pytest.approx(theirs[channel], rel=1e-5)
