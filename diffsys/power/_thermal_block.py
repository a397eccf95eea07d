"""HotSpot's compact *block* thermal model as a differentiable RC network.

The network follows Huang, Ghosh, Velusamy, Sankaranarayanan, Skadron & Stan, "HotSpot: a compact thermal modeling
methodology for early-stage VLSI design", IEEE TVLSI 14(5), 2006, and Skadron et al., "Temperature-aware
microarchitecture", ISCA 2003, as realised by HotSpot 6 (``temperature_block.c``, ``populate_package_R/C``):

* four layers of one node per block: silicon, thermal interface material (TIM), heat spreader, heat sink;
* lateral conductance between adjacent blocks of a layer: the two half-block resistances in series,
  ``R = w_i/(2·k·t·ℓ) + w_j/(2·k·t·ℓ)`` for a shared edge of length ``ℓ``;
* vertical conductance between a block's layers ``1/R = k·A/t`` (silicon→TIM uses the silicon slab, TIM→spreader
  the TIM, spreader→sink the spreader) and sink→ambient ``1/(t_sink/(k_sink·A) + r_convec·s_sink²/A)``;
* 12 package nodes where the spreader and sink extend beyond the die: spreader west/east/north/south, sink inner
  periphery (under the spreader overhang) and sink outer periphery. Blocks on a die edge connect to the spreader
  (sink) periphery node of that edge through their half-block lateral resistance with the trapezoidal spreading
  resistance ``r_sp1`` (``r_hs1``) shared among the edge blocks in proportion to their conductance;
* capacitances ``c_v·t·A`` per node; the convection capacitance is split by area and scaled by HotSpot's
  lumping factor 0.333.

Node order (``node_names``) is HotSpot's: ``name`` (silicon), ``iface_name``, ``hsp_name``, ``hsink_name`` for every
block, then ``inode_0..11`` = spreader W, E, N, S, sink-inner W, E, N, S, sink-outer W, E, N, S.

Everything is computed from arrays, so temperatures are differentiable in the powers, the block sizes and positions
and every package parameter. The steady state is one Cholesky solve of the SPD conductance matrix; the transient is
backward Euler or trapezoidal integration under ``lax.scan``.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from .._checks import check_range
from ._floorplan import EDGE_TOL_M, Floorplan
from ._thermal_config import DEFAULT_CONFIG, ThermalConfig

N_LAYERS = 4
N_EXTRA = 12
#: HotSpot's convection-capacitance lumping factor (temperature.h ``C_FACTOR``).
C_FACTOR = 0.333
SP_W, SP_E, SP_N, SP_S, SINK_C_W, SINK_C_E, SINK_C_N, SINK_C_S, SINK_W, SINK_E, SINK_N, SINK_S = range(12)


def node_names(names) -> tuple:
    """HotSpot's block-model node names in solver order."""
    names = tuple(names)
    return (names + tuple(f"iface_{b}" for b in names) + tuple(f"hsp_{b}" for b in names)
            + tuple(f"hsink_{b}" for b in names) + tuple(f"inode_{i}" for i in range(N_EXTRA)))


def _eq(a, b):
    return jnp.abs(a - b) < EDGE_TOL_M


def _safe_series(a, b):
    """Series combination ``1/(1/a + 1/b)`` of two conductances; 0 when either is 0."""
    s = a + b
    ok = (a > 0) & (b > 0)
    return jnp.where(ok, a * b / jnp.where(ok, s, 1.0), 0.0)


def adjacency(flp: Floorplan):
    """Shared edge lengths (n, n) and whether the contact is across a vertical edge (horizontal neighbours).

    Follows HotSpot's ``is_horiz_adj`` / ``is_vert_adj`` / ``get_shared_len`` with its 1 µm tolerance: blocks that
    only touch at a corner are not adjacent.
    """
    x1, y1 = flp.x_m, flp.y_m
    x2, y2 = x1 + flp.width_m, y1 + flp.height_m
    a = lambda v: v[:, None]
    b = lambda v: v[None, :]
    X1, X2, X3, X4 = a(x1), a(x2), b(x1), b(x2)
    Y1, Y2, Y3, Y4 = a(y1), a(y2), b(y1), b(y2)
    n = flp.n_blocks
    offdiag = ~jnp.eye(n, dtype=bool)
    corner = ((_eq(X2, X3) & _eq(Y2, Y3)) | (_eq(X1, X4) & _eq(Y1, Y4)) | (_eq(X2, X3) & _eq(Y1, Y4))
              | (_eq(X1, X4) & _eq(Y2, Y3)))

    def overlaps(p1, p2, p3, p4):
        return (((p3 >= p1) & (p3 <= p2)) | ((p4 >= p1) & (p4 <= p2)) | ((p1 >= p3) & (p1 <= p4))
                | ((p2 >= p3) & (p2 <= p4)))

    horiz = offdiag & ~corner & (_eq(X1, X4) | _eq(X2, X3)) & overlaps(Y1, Y2, Y3, Y4)
    vert = offdiag & ~corner & (_eq(Y1, Y4) | _eq(Y2, Y3)) & overlaps(X1, X2, X3, X4)
    len_v = jnp.minimum(X2, X4) - jnp.maximum(X1, X3)
    len_h = jnp.minimum(Y2, Y4) - jnp.maximum(Y1, Y3)
    shared = jnp.where(vert, len_v, jnp.where(horiz, len_h, 0.0))
    return jnp.maximum(shared, 0.0), horiz, vert | horiz


class PackageRC(NamedTuple):
    """Lumped resistances (K/W) and capacitances (J/K) of the spreader/sink parts outside the die (HotSpot 6
    ``populate_package_R/C``): ``_x`` for the west/east pieces, ``_y`` for north/south."""

    r_sp1_x: jnp.ndarray
    r_sp1_y: jnp.ndarray
    r_hs1_x: jnp.ndarray
    r_hs1_y: jnp.ndarray
    r_hs2_x: jnp.ndarray
    r_hs2_y: jnp.ndarray
    r_hs: jnp.ndarray
    r_sp_per_x: jnp.ndarray
    r_sp_per_y: jnp.ndarray
    r_hs_c_per_x: jnp.ndarray
    r_hs_c_per_y: jnp.ndarray
    r_hs_per: jnp.ndarray
    r_amb_c_per_x: jnp.ndarray
    r_amb_c_per_y: jnp.ndarray
    r_amb_per: jnp.ndarray
    c_sp_per_x: jnp.ndarray
    c_sp_per_y: jnp.ndarray
    c_hs_c_per_x: jnp.ndarray
    c_hs_c_per_y: jnp.ndarray
    c_hs_per: jnp.ndarray
    c_amb_c_per_x: jnp.ndarray
    c_amb_c_per_y: jnp.ndarray
    c_amb_per: jnp.ndarray


def _r(k, thickness, area):
    """Conduction resistance of a slab, K/W (HotSpot ``getr``)."""
    return thickness / (k * area)


def _c(c_v, thickness, area):
    """Lumped capacitance of a slab, J/K: ``C_FACTOR·c_v·t·A`` (HotSpot 6 ``getcap``, RCutil.c: the 0.333
    "lumped vs. distributed correction" applies to every material capacitance, not only to the convection one)."""
    return C_FACTOR * c_v * thickness * area


def package_rc(cfg: ThermalConfig, width, height) -> PackageRC:
    """Spreader and sink periphery R/C for a die of ``width × height`` metres (trapezoid approximation of the
    spreading regions, Huang et al. TVLSI 2006 §III)."""
    s_sp, t_sp, s_hs, t_hs = cfg.s_spreader, cfg.t_spreader, cfg.s_sink, cfg.t_sink
    k_sp, k_hs = cfg.k_spreader, cfg.k_sink
    a_per_x = (s_sp + height) * (s_sp - width) / 4.0
    a_per_y = (s_sp + width) * (s_sp - height) / 4.0
    a_out = (s_hs * s_hs - s_sp * s_sp) / 4.0
    cf = C_FACTOR * cfg.c_convec / (s_hs * s_hs)
    return PackageRC(
        r_sp1_x=_r(k_sp, (s_sp - width) / 4.0, (s_sp + 3 * height) / 4.0 * t_sp),
        r_sp1_y=_r(k_sp, (s_sp - height) / 4.0, (s_sp + 3 * width) / 4.0 * t_sp),
        r_hs1_x=_r(k_hs, (s_sp - width) / 4.0, (s_sp + 3 * height) / 4.0 * t_hs),
        r_hs1_y=_r(k_hs, (s_sp - height) / 4.0, (s_sp + 3 * width) / 4.0 * t_hs),
        r_hs2_x=_r(k_hs, (s_sp - width) / 4.0, (3 * s_sp + height) / 4.0 * t_hs),
        r_hs2_y=_r(k_hs, (s_sp - height) / 4.0, (3 * s_sp + width) / 4.0 * t_hs),
        r_hs=_r(k_hs, (s_hs - s_sp) / 4.0, (s_hs + 3 * s_sp) / 4.0 * t_hs),
        r_sp_per_x=_r(k_sp, t_sp, a_per_x),
        r_sp_per_y=_r(k_sp, t_sp, a_per_y),
        r_hs_c_per_x=_r(k_hs, t_hs, a_per_x),
        r_hs_c_per_y=_r(k_hs, t_hs, a_per_y),
        r_hs_per=_r(k_hs, t_hs, a_out),
        r_amb_c_per_x=cfg.r_convec * (s_hs * s_hs) / a_per_x,
        r_amb_c_per_y=cfg.r_convec * (s_hs * s_hs) / a_per_y,
        r_amb_per=cfg.r_convec * (s_hs * s_hs) / a_out,
        c_sp_per_x=_c(cfg.p_spreader, t_sp, a_per_x),
        c_sp_per_y=_c(cfg.p_spreader, t_sp, a_per_y),
        c_hs_c_per_x=_c(cfg.p_sink, t_hs, a_per_x),
        c_hs_c_per_y=_c(cfg.p_sink, t_hs, a_per_y),
        c_hs_per=_c(cfg.p_sink, t_hs, a_out),
        c_amb_c_per_x=cf * a_per_x,
        c_amb_c_per_y=cf * a_per_y,
        c_amb_per=cf * a_out,
    )


class RCNetwork(eqx.Module):
    """HotSpot's block-model RC network ``C·dT/dt = P − G·(T − T_amb)``, stored by structure.

    Attributes:
        lateral: (4, n, n) node-to-node conductances inside each layer (silicon, TIM, spreader, sink), W/K.
        vertical: (3, n) conductances between a block's layer l and l+1.
        to_sp, to_hs: (n, 4) conductances from edge blocks of the spreader / sink layer to the W, E, N, S
            spreader / inner-sink periphery nodes.
        sp_to_sinkc, sinkc_to_sink: (4,) periphery links (spreader → inner sink, inner → outer sink).
        g_ambient: (N,) conductance of each node to ambient.
        capacitance: (N,) node capacitances to ground, J/K.
        names: node names in HotSpot's order (static).

    ``conductance`` assembles the dense (N, N) SPD matrix G when needed (transients, inspection); steady solves
    use a block elimination over the four layers (see :func:`factor`).
    """

    lateral: jnp.ndarray
    vertical: jnp.ndarray
    to_sp: jnp.ndarray
    to_hs: jnp.ndarray
    sp_to_sinkc: jnp.ndarray
    sinkc_to_sink: jnp.ndarray
    g_ambient: jnp.ndarray
    capacitance: jnp.ndarray
    ambient_K: jnp.ndarray
    n_blocks: int = eqx.field(static=True)
    names: tuple = eqx.field(static=True)

    @property
    def n_nodes(self) -> int:
        return N_LAYERS * self.n_blocks + N_EXTRA

    def node_power(self, block_power_W):
        """Power vector over all nodes (block powers on the first ``n_blocks`` nodes)."""
        p = jnp.asarray(block_power_W)
        pad = self.n_nodes - self.n_blocks
        return jnp.concatenate([p, jnp.zeros(p.shape[:-1] + (pad,), p.dtype)], axis=-1)

    # -- structured blocks: G = [[A0,-V0,0,0,0],[-V0,A1,-V1,0,0],[0,-V1,A2,-V2,-E2],[0,0,-V2,A3,-E3],
    #                           [0,0,-E2ᵀ,-E3ᵀ,X]]
    def layer_blocks(self):
        """Diagonal blocks ``A_l`` (4, n, n), coupling matrices ``E2, E3`` (n, 12) and the periphery block X."""
        n = self.n_blocks
        lat, v = self.lateral, self.vertical
        z = jnp.zeros((1, n), lat.dtype)
        vin = jnp.concatenate([z, v], axis=0)
        vout = jnp.concatenate([v, z], axis=0)
        d = jnp.sum(lat, axis=-1) + vin + vout
        d = d.at[2].add(jnp.sum(self.to_sp, axis=1)).at[3].add(jnp.sum(self.to_hs, axis=1) + self.g_ambient[3 * n:4 * n])
        A = jax.vmap(jnp.diag)(d) - lat
        E2 = jnp.zeros((n, N_EXTRA), lat.dtype).at[:, 0:4].set(self.to_sp)
        E3 = jnp.zeros((n, N_EXTRA), lat.dtype).at[:, 4:8].set(self.to_hs)
        k = jnp.arange(4)
        link = jnp.zeros((N_EXTRA, N_EXTRA), lat.dtype)
        link = link.at[k, 4 + k].set(self.sp_to_sinkc).at[4 + k, k].set(self.sp_to_sinkc)
        link = link.at[4 + k, 8 + k].set(self.sinkc_to_sink).at[8 + k, 4 + k].set(self.sinkc_to_sink)
        xd = (jnp.sum(link, axis=1) + self.g_ambient[4 * n:]
              + jnp.concatenate([jnp.sum(self.to_sp, axis=0), jnp.sum(self.to_hs, axis=0), jnp.zeros(4, lat.dtype)]))
        X = jnp.diag(xd) - link
        return A, E2, E3, X

    @property
    def conductance(self):
        """The dense (N, N) conductance matrix G, W/K."""
        n = self.n_blocks
        A, E2, E3, X = self.layer_blocks()
        N = self.n_nodes
        G = jnp.zeros((N, N), A.dtype)
        for li in range(N_LAYERS):
            G = G.at[li * n:(li + 1) * n, li * n:(li + 1) * n].set(A[li])
        for li in range(3):
            V = jnp.diag(self.vertical[li])
            G = G.at[li * n:(li + 1) * n, (li + 1) * n:(li + 2) * n].set(-V)
            G = G.at[(li + 1) * n:(li + 2) * n, li * n:(li + 1) * n].set(-V)
        e0 = N_LAYERS * n
        G = G.at[2 * n:3 * n, e0:].add(-E2).at[e0:, 2 * n:3 * n].add(-E2.T)
        G = G.at[3 * n:4 * n, e0:].add(-E3).at[e0:, 3 * n:4 * n].add(-E3.T)
        return G.at[e0:, e0:].set(X)

    def matvec(self, x):
        """``G·x`` for a node vector (N,) without forming G."""
        n = self.n_blocks
        A, E2, E3, X = self.layer_blocks()
        xl = x[:4 * n].reshape(4, n)
        xe = x[4 * n:]
        y = jnp.einsum("lij,lj->li", A, xl)
        v = self.vertical
        y = y.at[:3].add(-v * xl[1:]).at[1:].add(-v * xl[:3])
        y = y.at[2].add(-E2 @ xe).at[3].add(-E3 @ xe)
        ye = X @ xe - E2.T @ xl[2] - E3.T @ xl[3]
        return jnp.concatenate([y.ravel(), ye])


class BlockFactor(eqx.Module):
    """Block-elimination factor of a block network's G (four n × n inverses and a 12 × 12 Cholesky factor):
    ~6× fewer operations than a Cholesky factorization of the whole (4n + 12)² matrix."""

    K: jnp.ndarray  # (4, n, n) inverses of the successive Schur complements of the layer blocks
    v: jnp.ndarray  # (3, n)
    E2: jnp.ndarray
    F3: jnp.ndarray
    chol_e: jnp.ndarray  # Cholesky factor of the periphery Schur complement
    n_blocks: int = eqx.field(static=True)

    def solve(self, b):
        """Solve ``G·x = b`` for one right-hand side (N,)."""
        n = self.n_blocks
        K, v, E2, F3 = self.K, self.v, self.E2, self.F3
        b0, b1, b2, b3 = (b[i * n:(i + 1) * n] for i in range(4))
        be = b[4 * n:]
        b1 = b1 + v[0] * (K[0] @ b0)
        b2 = b2 + v[1] * (K[1] @ b1)
        k2b2 = K[2] @ b2
        b3 = b3 + v[2] * k2b2
        be = be + E2.T @ k2b2
        k3b3 = K[3] @ b3
        xe = jsl.cho_solve((self.chol_e, True), be + F3.T @ k3b3)
        x3 = k3b3 + K[3] @ (F3 @ xe)
        x2 = K[2] @ (b2 + v[2] * x3 + E2 @ xe)
        x1 = K[1] @ (b1 + v[1] * x2)
        x0 = K[0] @ (b0 + v[0] * x1)
        return jnp.concatenate([x0, x1, x2, x3, xe])


def _spd_inv(M):
    c = jnp.linalg.cholesky(M)
    return jsl.cho_solve((c, True), jnp.eye(M.shape[-1], dtype=M.dtype))


def factor(net: RCNetwork) -> BlockFactor:
    """Factor G by eliminating the silicon, TIM, spreader and sink layers in turn (block Thomas algorithm on the
    SPD layer-tridiagonal structure), leaving a 12 × 12 periphery system."""
    A, E2, E3, X = net.layer_blocks()
    v = net.vertical
    K0 = _spd_inv(A[0])
    K1 = _spd_inv(A[1] - v[0][:, None] * K0 * v[0][None, :])
    K2 = _spd_inv(A[2] - v[1][:, None] * K1 * v[1][None, :])
    K2E2 = K2 @ E2
    M3 = A[3] - v[2][:, None] * K2 * v[2][None, :]
    F3 = E3 + v[2][:, None] * K2E2
    K3 = _spd_inv(M3)
    Xs = X - E2.T @ K2E2 - F3.T @ K3 @ F3
    return BlockFactor(jnp.stack([K0, K1, K2, K3]), v, E2, F3, jnp.linalg.cholesky(Xs), net.n_blocks)


@eqx.filter_jit
def block_network(flp: Floorplan, cfg: ThermalConfig = DEFAULT_CONFIG) -> RCNetwork:
    """Assemble HotSpot's block-model RC network for a floorplan (translated to the origin, as HotSpot reads it)."""
    flp = flp.at_origin()
    n = flp.n_blocks
    w, h = flp.width_m, flp.height_m
    area = w * h
    W, L = flp.chip_width_m, flp.chip_height_m
    shared, horiz, _ = adjacency(flp)
    pk = package_rc(cfg, W, L)

    layers = ((cfg.k_chip, cfg.t_chip), (cfg.k_interface, cfg.t_interface), (cfg.k_spreader, cfg.t_spreader),
              (cfg.k_sink, cfg.t_sink))
    lateral = []
    gxy = []
    for li, (k, t) in enumerate(layers):
        gx = 2.0 * k * h * t / w  # centre-to-east/west-edge conductance of each block
        gy = 2.0 * k * w * t / h  # centre-to-north/south-edge conductance
        gxy.append((gx, gy))
        part = jnp.where(horiz, (gx / h)[:, None], (gy / w)[:, None])  # per unit edge length, from block i
        g_half = part * shared
        g = _safe_series(g_half, g_half.T)
        if li == 0 and cfg.block_omit_lateral:
            g = jnp.zeros_like(g)
        lateral.append(g)

    # vertical conductances between a block's layers
    v_si = cfg.k_chip * area / cfg.t_chip
    v_int = cfg.k_interface * area / cfg.t_interface
    v_sp = cfg.k_spreader * area / cfg.t_spreader
    g_amb_blk = 1.0 / (_r(cfg.k_sink, cfg.t_sink, area) + cfg.r_convec * cfg.s_sink ** 2 / area)

    # die-edge membership (HotSpot compares against 0 and the total width/height with its 1 µm tolerance)
    north = _eq(flp.y_m + h, L).astype(w.dtype)
    south = _eq(flp.y_m, 0.0).astype(w.dtype)
    east = _eq(flp.x_m + w, W).astype(w.dtype)
    west = _eq(flp.x_m, 0.0).astype(w.dtype)
    (gx_sp, gy_sp), (gx_hs, gy_hs) = gxy[2], gxy[3]

    def edge(gdir, mask, r1):
        tot = jnp.sum(mask * gdir)
        return mask * gdir / (1.0 + r1 * tot)

    to_sp = jnp.stack([edge(gx_sp, west, pk.r_sp1_x), edge(gx_sp, east, pk.r_sp1_x),
                       edge(gy_sp, north, pk.r_sp1_y), edge(gy_sp, south, pk.r_sp1_y)], axis=1)  # (n, 4)
    to_hs = jnp.stack([edge(gx_hs, west, pk.r_hs1_x), edge(gx_hs, east, pk.r_hs1_x),
                       edge(gy_hs, north, pk.r_hs1_y), edge(gy_hs, south, pk.r_hs1_y)], axis=1)
    sp_to_sinkc = jnp.stack([1 / pk.r_sp_per_x, 1 / pk.r_sp_per_x, 1 / pk.r_sp_per_y, 1 / pk.r_sp_per_y])
    sinkc_to_sink = jnp.stack([1 / (pk.r_hs + pk.r_hs2_x), 1 / (pk.r_hs + pk.r_hs2_x),
                               1 / (pk.r_hs + pk.r_hs2_y), 1 / (pk.r_hs + pk.r_hs2_y)])
    g_amb_sinkc = jnp.stack([1 / (pk.r_hs_c_per_x + pk.r_amb_c_per_x)] * 2 + [1 / (pk.r_hs_c_per_y + pk.r_amb_c_per_y)] * 2)
    g_amb_sink = jnp.broadcast_to(1 / (pk.r_hs_per + pk.r_amb_per), (4,))

    g_amb = jnp.concatenate([jnp.zeros(3 * n, w.dtype), g_amb_blk, jnp.zeros(4, w.dtype), g_amb_sinkc, g_amb_sink])
    lat = jnp.stack(lateral)
    vert = jnp.stack([v_si, v_int, v_sp])

    c_sink_blk = _c(cfg.p_sink, cfg.t_sink, area) + C_FACTOR * cfg.c_convec / cfg.s_sink ** 2 * area
    cap = jnp.concatenate([
        _c(cfg.p_chip, cfg.t_chip, area), _c(cfg.p_interface, cfg.t_interface, area),
        _c(cfg.p_spreader, cfg.t_spreader, area), c_sink_blk,
        jnp.stack([pk.c_sp_per_x, pk.c_sp_per_x, pk.c_sp_per_y, pk.c_sp_per_y]),
        jnp.stack([pk.c_hs_c_per_x + pk.c_amb_c_per_x] * 2 + [pk.c_hs_c_per_y + pk.c_amb_c_per_y] * 2),
        jnp.broadcast_to(pk.c_hs_per + pk.c_amb_per, (4,)),
    ])
    return RCNetwork(lat, vert, to_sp, to_hs, sp_to_sinkc, sinkc_to_sink, g_amb, cap, jnp.asarray(cfg.ambient), n,
                     node_names(flp.names))


class Temperatures(NamedTuple):
    """Node temperatures of a thermal solve (kelvin)."""

    block_K: jnp.ndarray  # (n,) silicon-layer block temperatures
    nodes_K: jnp.ndarray  # (N,) every node in the network's order
    peak_K: jnp.ndarray  # hottest block
    mean_K: jnp.ndarray  # area-unweighted mean block temperature


def _temps(net: RCNetwork, rise):
    T = net.ambient_K + rise
    blk = T[..., :net.n_blocks]
    return Temperatures(blk, T, jnp.max(blk, axis=-1), jnp.mean(blk, axis=-1))


def spd_solve(G, b):
    """Solve ``G·x = b`` for SPD ``G`` by Cholesky, differentiated by the adjoint method: the backward pass reuses
    the factor for one more solve (``λ = G⁻¹·x̄``, ``Ḡ = −λ·xᵀ``) instead of differentiating the factorization."""
    chol = jax.lax.stop_gradient(jnp.linalg.cholesky(G))
    return jax.lax.custom_linear_solve(lambda x: G @ x, b, lambda _, r: jsl.cho_solve((chol, True), r),
                                       symmetric=True)


def network_solve(net: RCNetwork, b, fac: BlockFactor | None = None):
    """Solve ``G·x = b`` on a block network by block elimination; gradients by the adjoint method (one more solve
    with the same factor, and ``Ḡ = −λ·xᵀ`` pulled back through the structured ``G·x`` product)."""
    fac = jax.lax.stop_gradient(factor(net) if fac is None else fac)
    return jax.lax.custom_linear_solve(net.matvec, b, lambda _, r: fac.solve(r), symmetric=True)


def _check_power(block_power_W, n):
    """Eager input check (skipped for traced values): finite, non-negative, one entry per block."""
    check_range("block_power_W", block_power_W, 0.0, None)
    shape = jnp.shape(block_power_W)
    if shape[-1:] != (n,):
        raise ValueError(f"block_power_W must have shape (..., {n}) (one power per block), got {shape}")


@eqx.filter_jit
def _solve_steady(net: RCNetwork, block_power_W) -> Temperatures:
    p = net.node_power(block_power_W)
    return _temps(net, network_solve(net, p))


def solve_steady(net: RCNetwork, block_power_W) -> Temperatures:
    """Steady state ``G·(T − T_amb) = P`` (differentiable in every network parameter and in P).

    Negative or non-finite concrete powers raise ``ValueError`` naming ``block_power_W``."""
    _check_power(block_power_W, net.n_blocks)
    return _solve_steady(net, block_power_W)


@eqx.filter_jit
def _steady_state(flp, block_power_W, cfg):
    return _solve_steady(block_network(flp, cfg), block_power_W)


def steady_state(flp: Floorplan, block_power_W, cfg: ThermalConfig = DEFAULT_CONFIG) -> Temperatures:
    """HotSpot block-model steady-state temperatures for ``block_power_W`` (n,) watts on floorplan ``flp``."""
    _check_power(block_power_W, flp.n_blocks)
    return _steady_state(flp, block_power_W, cfg)


class SteadySolver(eqx.Module):
    """A block network with its factor precomputed: many power vectors (n,) or (batch, n), one factorization."""

    net: RCNetwork
    fac: BlockFactor

    def __init__(self, net: RCNetwork):
        self.net = net
        self.fac = factor(net)

    def __call__(self, block_power_W) -> Temperatures:
        _check_power(block_power_W, self.net.n_blocks)
        p = self.net.node_power(block_power_W)
        solve = lambda r: network_solve(self.net, r, self.fac)
        rise = jax.vmap(solve)(p.reshape(-1, p.shape[-1])).reshape(p.shape) if p.ndim > 1 else solve(p)
        return _temps(self.net, rise)


class Transient(NamedTuple):
    """Transient solution sampled at the end of every power interval."""

    block_K: jnp.ndarray  # (steps, n)
    nodes_K: jnp.ndarray  # (steps, N)
    peak_K: jnp.ndarray  # (steps,)
    energy_in_J: jnp.ndarray  # cumulative electrical energy dissipated
    energy_to_ambient_J: jnp.ndarray  # cumulative heat carried to ambient
    energy_stored_J: jnp.ndarray  # heat stored in the capacitances relative to the initial state


@eqx.filter_jit
def transient(net: RCNetwork, power_trace_W, dt_s, initial_K=None, *, substeps: int = 1,
              method: str = "backward_euler") -> Transient:
    """Integrate ``C·dT/dt = P(t) − G·(T − T_amb)`` over a power trace (steps, n), one row per interval ``dt_s``
    (the power of row ``i`` is held over interval ``i``; row ``i`` of the result is the state at its end, as in
    HotSpot's ``.ttrace``).

    ``method``:

    * ``"exact"``: the exact solution for piecewise-constant power (zero-order hold, e.g. Franklin, Powell &
      Workman, *Digital Control of Dynamic Systems*, §6.3): ``x⁺ = Φ·x + (I − Φ)·G⁻¹P`` with
      ``Φ = exp(−C⁻¹G·h)`` (:func:`jax.scipy.linalg.expm`), and the heat carried to ambient integrated exactly,
      ``∫x dt = x_ss·h + G⁻¹C·(I − Φ)·(x − x_ss)``. No time-step error; HotSpot's adaptive RK4 (step doubling with
      a 0.01 K absolute tolerance per step, ``RCutil.c``) approximates the same solution.
    * ``"backward_euler"`` (first order, L-stable; its discrete energy balance is exact) or ``"trapezoid"``
      (Crank–Nicolson, second order but not L-stable: the die's sub-millisecond modes ring unless ``substeps`` makes
      ``h`` comparable to them), with ``substeps`` equal implicit sub-steps per interval.

    ``initial_K`` is a scalar or an (N,) vector of node temperatures (default: ambient).
    """
    if method not in ("backward_euler", "trapezoid", "exact"):
        raise ValueError(f"method must be 'exact', 'backward_euler' or 'trapezoid', got {method!r}")
    if substeps < 1:
        raise ValueError(f"substeps must be >= 1, got {substeps}")
    G, C = net.conductance, net.capacitance
    h = jnp.asarray(dt_s) / substeps
    x0 = jnp.zeros(net.n_nodes, G.dtype) if initial_K is None else jnp.broadcast_to(
        jnp.asarray(initial_K, G.dtype) - net.ambient_K, (net.n_nodes,))
    powers = net.node_power(jnp.asarray(power_trace_W, G.dtype))
    if method == "exact":
        step = _exact_step(net, G, C, h)
    else:
        step = _implicit_step(net, G, C, h, 1.0 if method == "backward_euler" else 0.5)

    def interval(carry, p):
        (x, e_amb), _ = jax.lax.scan(lambda st, _: (step(st, p), None), carry, None, length=substeps)
        return (x, e_amb), (x, e_amb)

    _, (xs, e_amb) = jax.lax.scan(interval, (x0, jnp.zeros((), G.dtype)), powers)
    T = net.ambient_K + xs
    blk = T[:, :net.n_blocks]
    e_in = jnp.cumsum(jnp.sum(powers, axis=-1)) * jnp.asarray(dt_s)
    stored = (xs - x0) @ C
    return Transient(blk, T, jnp.max(blk, axis=-1), e_in, e_amb, stored)


def _implicit_step(net, G, C, h, theta):
    """One θ-method step ``(C/h + θG)·x⁺ = (C/h − (1 − θ)G)·x + P`` with its heat-to-ambient quadrature."""
    lu = jsl.lu_factor(jnp.diag(C / h) + theta * G)
    rhs_mat = jnp.diag(C / h) - (1.0 - theta) * G

    def step(state, p):
        x, e_amb = state
        x_new = jsl.lu_solve(lu, rhs_mat @ x + p)
        return x_new, e_amb + h * jnp.dot(net.g_ambient, theta * x_new + (1 - theta) * x)

    return step


def _exact_step(net, G, C, h):
    """One zero-order-hold step ``x⁺ = x_ss + Φ·(x − x_ss)``, ``x_ss = G⁻¹P``, with the exact heat to ambient."""
    phi = jsl.expm(-(G / C[:, None]) * h)
    fac = jax.lax.stop_gradient(factor(net))
    solve = lambda b: network_solve(net, b, fac)

    def step(state, p):
        x, e_amb = state
        x_ss = solve(p)
        d = x - x_ss
        decay = d - phi @ d  # (I − Φ)·(x − x_ss)
        integral = x_ss * h + solve(C * decay)
        return x_ss + phi @ d, e_amb + jnp.dot(net.g_ambient, integral)

    return step
