"""Static die-to-die link graph of an R×C chiplet grid: mesh links, optional diagonal links, routing matrices.

Everything here is structure, computed once in numpy: the candidate links (directed mesh links plus both diagonals
of every grid cell), a list of *diagonal patterns* (which diagonals are built), and for every pattern the routing
tensor ``R[e, s, d]`` = fraction of the traffic from chiplet ``s`` to chiplet ``d`` that crosses directed link
``e``. The model then computes link loads as ``R @ vec(traffic)`` inside JAX, so the diagonal pattern (and the
off-package memory placement) are categorical design choices over precomputed structures.

Routing algorithms:

- ``"shortest"``: minimal-hop routing with traffic split equally over the tied next hops at every chiplet
  (per-hop equal-cost multipath). Data is moved on-chip to whichever D2D port lies on a shortest path towards its
  destination ("on-chip redistribution"), so ties share the load.
- ``"dor"``: deterministic dimension-order routing (X then Y; with diagonals, a diagonal hop is taken first while
  both offsets are non-zero and the diagonal exists). Without on-chip redistribution data leaves through one port.
- ``"dor_yx"``: the same with Y before X.

**On-chip redistribution** (``D2DGraph.build(..., alt_routing="dor_yx")``): a die may move part of a flow on-chip to
the port of a second minimal route before it leaves, so a flow is split ``(1 - ρ)`` on the primary route and ``ρ``
on the alternative (XY/YX splitting as in O1TURN, Seo et al., "Near-optimal worst-case throughput routing for
two-dimensional mesh networks", ISCA 2005). The graph stores both routing tensors; the model mixes them with the
design's ``redistribution`` fraction ``ρ`` (0 = no redistribution), so the split is a design variable that an
optimizer sets to unload the hottest links.

Dimension-order routing on a mesh and per-hop ECMP are the textbook algorithms of W. J. Dally & B. Towles,
*Principles and Practices of Interconnection Networks*, 2004, ch. 8-9.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .._checks import check_choice, check_integer

ROUTINGS = ("shortest", "dor", "dor_yx")
PLACEMENTS = ("west", "west_east", "perimeter", "corners", "local")
#: link kinds: crosses a vertical edge (east-west link), a horizontal edge (north-south link), or a die corner.
EW, NS, DIAG = 0, 1, 2


def _node(r, c, cols):
    return r * cols + c


def candidate_links(rows: int, cols: int):
    """Directed candidate links ``(src, dst, kind, cell)``; ``cell`` = diagonal slot index or -1 for mesh links.

    Diagonal slot ``2·k`` is the "\\" diagonal of cell ``k`` (top-left to bottom-right), ``2·k+1`` the "/" one.
    """
    links = []
    for r in range(rows):
        for c in range(cols):
            u = _node(r, c, cols)
            if c + 1 < cols:
                v = _node(r, c + 1, cols)
                links += [(u, v, EW, -1), (v, u, EW, -1)]
            if r + 1 < rows:
                v = _node(r + 1, c, cols)
                links += [(u, v, NS, -1), (v, u, NS, -1)]
    k = 0
    for r in range(rows - 1):
        for c in range(cols - 1):
            a, b = _node(r, c, cols), _node(r + 1, c + 1, cols)
            links += [(a, b, DIAG, 2 * k), (b, a, DIAG, 2 * k)]
            a, b = _node(r, c + 1, cols), _node(r + 1, c, cols)
            links += [(a, b, DIAG, 2 * k + 1), (b, a, DIAG, 2 * k + 1)]
            k += 1
    return links


def diagonal_patterns(rows: int, cols: int, exhaustive: bool = False):
    """Named diagonal patterns: ``{name: bool mask over the 2·(R-1)(C-1) diagonal slots}`` (duplicates removed).

    The curated set: ``none``, ``all`` (an X in every cell), ``backslash``, ``slash``, ``checkerboard``,
    ``center``, ``border`` and, for at most 9 cells, an X in each single cell. ``exhaustive=True`` lists every subset
    of X cells instead (2^cells patterns; refused above 12 cells).
    """
    cells = [(r, c) for r in range(rows - 1) for c in range(cols - 1)]
    n = len(cells)
    out: dict[str, np.ndarray] = {}

    def add(name, cell_mask, kinds=(0, 1)):
        m = np.zeros(2 * n, bool)
        for k, on in enumerate(cell_mask):
            if on:
                for d in kinds:
                    m[2 * k + d] = True
        if not any(np.array_equal(m, v) for v in out.values()):
            out[name] = m

    add("none", [False] * n)
    if n == 0:
        return out
    if exhaustive:
        if n > 12:
            raise ValueError(f"exhaustive diagonal patterns need at most 12 cells, got {n} (grid {rows}x{cols})")
        for bits in itertools.product([False, True], repeat=n):
            add("x:" + "".join("1" if b else "0" for b in bits), bits)
        return out
    add("all", [True] * n)
    add("backslash", [True] * n, kinds=(0,))
    add("slash", [True] * n, kinds=(1,))
    add("checkerboard", [(r + c) % 2 == 0 for r, c in cells])
    add("center", [0 < r < rows - 2 and 0 < c < cols - 2 for r, c in cells])
    add("border", [not (0 < r < rows - 2 and 0 < c < cols - 2) for r, c in cells])
    if n <= 9:
        for k, (r, c) in enumerate(cells):
            add(f"cell{r}{c}", [j == k for j in range(n)])
    return out


def memory_placements(rows: int, cols: int):
    """Off-package memory attachments: ``{name: (M, share)}``.

    ``M[m, i]`` is the fraction of chiplet ``i``'s DRAM traffic served by the memory interface on chiplet ``m``;
    ``share[m]`` the fraction of the package's DRAM bandwidth attached at ``m``. Edge placements interleave data over
    their interfaces (``M[m, i] = share[m]``); ``local`` attaches a channel to every chiplet (3D-stacked or per-chiplet
    DRAM) with each chiplet's data in its own channel (``M = I``).
    """
    n = rows * cols
    coords = [(r, c) for r in range(rows) for c in range(cols)]
    sets = {
        "west": [c == 0 for r, c in coords],
        "west_east": [c in (0, cols - 1) for r, c in coords],
        "perimeter": [r in (0, rows - 1) or c in (0, cols - 1) for r, c in coords],
        "corners": [r in (0, rows - 1) and c in (0, cols - 1) for r, c in coords],
    }
    out = {}
    for name, on in sets.items():
        share = np.asarray(on, float)
        share /= share.sum()
        m = np.repeat(share[:, None], n, axis=1)
        if not any(np.array_equal(m, v[0]) for v in out.values()):
            out[name] = (m, share)
    out["local"] = (np.eye(n), np.full(n, 1.0 / n))
    return out


def _adjacency(rows, cols, links, diag_mask):
    n = rows * cols
    nbr = [{} for _ in range(n)]  # node -> {neighbour: link index}
    for e, (s, d, kind, slot) in enumerate(links):
        if kind == DIAG and not diag_mask[slot]:
            continue
        nbr[s][d] = e
    return nbr


def _bfs_dist(nbr, n):
    dist = np.full((n, n), np.inf)
    for d in range(n):  # distances *to* d (graph is symmetric, so from d)
        dist[d, d] = 0
        frontier = [d]
        while frontier:
            nxt = []
            for u in frontier:
                for v in nbr[u]:
                    if dist[v, d] == np.inf:
                        dist[v, d] = dist[u, d] + 1
                        nxt.append(v)
            frontier = nxt
    return dist  # dist[u, d]


def routing_tensor(rows: int, cols: int, diag_mask, routing: str = "shortest") -> np.ndarray:
    """``R[e, s, d]``: fraction of ``s → d`` traffic on directed link ``e`` (links from :func:`candidate_links`)."""
    check_choice("routing", routing, ROUTINGS)
    links = candidate_links(rows, cols)
    n = rows * cols
    nbr = _adjacency(rows, cols, links, np.asarray(diag_mask, bool))
    R = np.zeros((len(links), n, n))
    if routing == "shortest":
        dist = _bfs_dist(nbr, n)
        for d in range(n):
            order = np.argsort(-dist[:, d], kind="stable")
            for s in range(n):
                if s == d:
                    continue
                x = np.zeros(n)
                x[s] = 1.0
                for u in order:
                    if x[u] == 0 or u == d:
                        continue
                    nh = [v for v in nbr[u] if dist[v, d] == dist[u, d] - 1]
                    for v in nh:
                        R[nbr[u][v], s, d] += x[u] / len(nh)
                        x[v] += x[u] / len(nh)
                    x[u] = 0.0
    else:
        for s in range(n):
            for d in range(n):
                u = s
                rd, cd = divmod(d, cols)
                while u != d:
                    ru, cu = divmod(u, cols)
                    dy, dx = int(np.sign(rd - ru)), int(np.sign(cd - cu))
                    diag = _node(ru + dy, cu + dx, cols) if dx and dy else None
                    x_first = dx if routing == "dor" else not dy
                    if diag is not None and diag in nbr[u]:
                        v = diag
                    elif x_first:
                        v = _node(ru, cu + dx, cols)
                    else:
                        v = _node(ru + dy, cu, cols)
                    R[nbr[u][v], s, d] += 1.0
                    u = v
    return R


def _corner_counts(rows, cols, links, diag_mask):
    """For each link, the number of die corners used by diagonals on the edge it crosses (max over both dies)."""
    used = np.zeros((rows * cols, 4), bool)  # corners NW, NE, SW, SE of each die
    for s, d, kind, slot in links:
        if kind == DIAG and diag_mask[slot]:
            rs, cs = divmod(s, cols)
            rd, cd = divmod(d, cols)
            used[s, (2 if rd > rs else 0) + (1 if cd > cs else 0)] = True
    edge_corners = {"N": (0, 1), "S": (2, 3), "W": (0, 2), "E": (1, 3)}
    out = np.zeros(len(links))
    for e, (s, d, kind, slot) in enumerate(links):
        if kind == DIAG:
            continue
        rs, cs = divmod(s, cols)
        rd, cd = divmod(d, cols)
        if kind == EW:
            es, ed = ("E", "W") if cd > cs else ("W", "E")
        else:
            es, ed = ("S", "N") if rd > rs else ("N", "S")
        out[e] = max(used[s, list(edge_corners[es])].sum(), used[d, list(edge_corners[ed])].sum())
    return out


@dataclass(frozen=True, eq=False)
class D2DGraph:
    """Static die-to-die structure of an R×C grid (numpy arrays; not a pytree — captured by the model factory).

    Attributes:
        rows, cols: grid shape. ``n = rows·cols`` chiplets, ``L`` candidate directed links.
        routing: ``"shortest"`` or ``"dor"``.
        links: ``(src, dst, kind, slot)`` per candidate link.
        pattern_names / placement_names: the categorical options of the diagonal pattern and the memory placement.
        route: ``(K, L, n, n)`` routing tensors per diagonal pattern.
        route_mem: ``(K, P, L, n)`` routing of DRAM traffic: ``Σ_m R[k, e, m, i]·M[p, m, i]``.
        alt_routing: the routing of on-chip redistribution (``None``: no alternative route is built).
        route_alt, route_mem_alt: the same tensors for ``alt_routing`` (``None`` without one).
        enabled: ``(K, L)`` 1 where the link exists in the pattern.
        corners: ``(K, L)`` die corners taken by diagonals on each mesh link's edge.
        kind: ``(L,)`` EW / NS / DIAG.
        mem_M, mem_share: ``(P, n, n)`` and ``(P, n)``, see :func:`memory_placements`.
        hops: ``(K, n, n)`` path length in hops (traffic-weighted over split paths).
    """

    rows: int
    cols: int
    routing: str
    links: tuple
    pattern_names: tuple
    placement_names: tuple
    route: np.ndarray
    route_mem: np.ndarray
    enabled: np.ndarray
    corners: np.ndarray
    kind: np.ndarray
    mem_M: np.ndarray
    mem_share: np.ndarray
    hops: np.ndarray
    patterns: dict = field(repr=False, default_factory=dict)
    alt_routing: str | None = None
    route_alt: np.ndarray | None = field(repr=False, default=None)
    route_mem_alt: np.ndarray | None = field(repr=False, default=None)

    @property
    def n(self) -> int:
        return self.rows * self.cols

    @property
    def num_links(self) -> int:
        return len(self.links)

    @property
    def link_dst(self) -> np.ndarray:
        """``(L, n)`` one-hot of each directed link's destination die (for per-die ingress bandwidth)."""
        out = np.zeros((self.num_links, self.n))
        out[np.arange(self.num_links), [d for _, d, _, _ in self.links]] = 1.0
        return out

    @classmethod
    def build(cls, rows: int, cols: int, routing: str = "shortest", patterns=None, placements=None,
              alt_routing: str | None = None):
        """Build the structure; ``patterns`` / ``placements`` default to :func:`diagonal_patterns` /
        :func:`memory_placements` (pass a dict or a list of names to restrict them; ``placements="edge"`` keeps the
        edge attachments only). ``alt_routing`` (e.g. ``"dor_yx"`` with ``routing="dor"``) adds the second route of
        on-chip redistribution."""
        check_integer("rows", rows, 1, 16)
        check_integer("cols", cols, 1, 16)
        check_choice("routing", routing, ROUTINGS)
        if alt_routing is not None:
            check_choice("alt_routing", alt_routing, ROUTINGS)
        rows, cols = int(rows), int(cols)
        all_pat = diagonal_patterns(rows, cols)
        if patterns is None:
            patterns = all_pat
        elif not isinstance(patterns, dict):
            for p in patterns:
                check_choice("diagonal pattern", p, all_pat)
            patterns = {p: all_pat[p] for p in patterns}
        all_pl = memory_placements(rows, cols)
        if placements is None:
            placements = all_pl
        elif placements == "edge":
            placements = {k: v for k, v in all_pl.items() if k != "local"}
        elif not isinstance(placements, dict):
            for p in placements:
                check_choice("memory placement", p, PLACEMENTS)
            # names that coincide with an earlier placement on this grid (e.g. perimeter = corners on 2x2) drop out
            placements = {p: all_pl[p] for p in placements if p in all_pl}
        links = tuple(candidate_links(rows, cols))
        kind = np.array([k for _, _, k, _ in links])
        slots = np.array([s for *_, s in links])
        route, enabled, corners = [], [], []
        for mask in patterns.values():
            mask = np.asarray(mask, bool)
            route.append(routing_tensor(rows, cols, mask, routing))
            enabled.append(np.where(kind == DIAG, mask[np.maximum(slots, 0)] if mask.size else False, True))
            corners.append(_corner_counts(rows, cols, links, mask))
        route = np.stack(route)
        mem_M = np.stack([m for m, _ in placements.values()])
        mem_share = np.stack([s for _, s in placements.values()])
        route_mem = np.einsum("klmi,pmi->kpli", route, mem_M)
        hops = route.sum(axis=1)
        route_alt = route_mem_alt = None
        if alt_routing is not None:
            route_alt = np.stack([routing_tensor(rows, cols, np.asarray(m, bool), alt_routing)
                                  for m in patterns.values()])
            route_mem_alt = np.einsum("klmi,pmi->kpli", route_alt, mem_M)
        return cls(rows, cols, routing, links, tuple(patterns), tuple(placements), route, route_mem,
                   np.stack(enabled).astype(float), np.stack(corners), kind, mem_M, mem_share, hops, dict(patterns),
                   alt_routing, route_alt, route_mem_alt)
