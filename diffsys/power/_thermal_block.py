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

from ._floorplan import EDGE_TOL_M, Floorplan
from ._thermal_config import ThermalConfig

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
    a = lambda v: v[:, None]  # noqa: E731  block i
    b = lambda v: v[None, :]  # noqa: E731  block j
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
        c_sp_per_x=cfg.p_spreader * t_sp * a_per_x,
        c_sp_per_y=cfg.p_spreader * t_sp * a_per_y,
        c_hs_c_per_x=cfg.p_sink * t_hs * a_per_x,
        c_hs_c_per_y=cfg.p_sink * t_hs * a_per_y,
        c_hs_per=cfg.p_sink * t_hs * a_out,
        c_amb_c_per_x=cf * a_per_x,
        c_amb_c_per_y=cf * a_per_y,
        c_amb_per=cf * a_out,
    )


class RCNetwork(eqx.Module):
    """A thermal RC network ``C·dT/dt = P − G·(T − T_amb)``.

    Attributes:
        conductance: (N, N) SPD conductance matrix G, W/K (Laplacian of the node-to-node conductances plus the
            conductances to ambient on the diagonal).
        capacitance: (N,) node capacitances to ground, J/K.
        g_ambient: (N,) conductance of each node to ambient, W/K.
        power_nodes: indices of the nodes that receive the block powers (the silicon blocks).
        names: node names (static).
    """

    conductance: jnp.ndarray
    capacitance: jnp.ndarray
    g_ambient: jnp.ndarray
    ambient_K: jnp.ndarray
    n_blocks: int = eqx.field(static=True)
    names: tuple = eqx.field(static=True)

    @property
    def n_nodes(self) -> int:
        return self.conductance.shape[-1]

    def node_power(self, block_power_W):
        """Power vector over all nodes (block powers on the first ``n_blocks`` nodes)."""
        p = jnp.asarray(block_power_W)
        pad = self.n_nodes - self.n_blocks
        return jnp.concatenate([p, jnp.zeros(p.shape[:-1] + (pad,), p.dtype)], axis=-1)


@eqx.filter_jit
def block_network(flp: Floorplan, cfg: ThermalConfig = ThermalConfig()) -> RCNetwork:
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

    N = N_LAYERS * n + N_EXTRA
    A = jnp.zeros((N, N), w.dtype)
    for li in range(N_LAYERS):
        A = A.at[li * n:(li + 1) * n, li * n:(li + 1) * n].set(lateral[li])
    idx = jnp.arange(n)
    for li, v in enumerate((v_si, v_int, v_sp)):
        A = A.at[li * n + idx, (li + 1) * n + idx].set(v)
        A = A.at[(li + 1) * n + idx, li * n + idx].set(v)
    e0 = N_LAYERS * n
    A = A.at[2 * n:3 * n, e0:e0 + 4].set(to_sp).at[e0:e0 + 4, 2 * n:3 * n].set(to_sp.T)
    A = A.at[3 * n:4 * n, e0 + 4:e0 + 8].set(to_hs).at[e0 + 4:e0 + 8, 3 * n:4 * n].set(to_hs.T)
    k4 = jnp.arange(4)
    A = A.at[e0 + k4, e0 + 4 + k4].set(sp_to_sinkc).at[e0 + 4 + k4, e0 + k4].set(sp_to_sinkc)
    A = A.at[e0 + 4 + k4, e0 + 8 + k4].set(sinkc_to_sink).at[e0 + 8 + k4, e0 + 4 + k4].set(sinkc_to_sink)
    g_amb = jnp.concatenate([jnp.zeros(3 * n, w.dtype), g_amb_blk, jnp.zeros(4, w.dtype), g_amb_sinkc, g_amb_sink])
    G = jnp.diag(jnp.sum(A, axis=1) + g_amb) - A

    c_sink_blk = cfg.p_sink * cfg.t_sink * area + C_FACTOR * cfg.c_convec / cfg.s_sink ** 2 * area
    cap = jnp.concatenate([
        cfg.p_chip * cfg.t_chip * area, cfg.p_interface * cfg.t_interface * area,
        cfg.p_spreader * cfg.t_spreader * area, c_sink_blk,
        jnp.stack([pk.c_sp_per_x, pk.c_sp_per_x, pk.c_sp_per_y, pk.c_sp_per_y]),
        jnp.stack([pk.c_hs_c_per_x + pk.c_amb_c_per_x] * 2 + [pk.c_hs_c_per_y + pk.c_amb_c_per_y] * 2),
        jnp.broadcast_to(pk.c_hs_per + pk.c_amb_per, (4,)),
    ])
    return RCNetwork(G, cap, g_amb, jnp.asarray(cfg.ambient), n, node_names(flp.names))


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


@eqx.filter_jit
def solve_steady(net: RCNetwork, block_power_W) -> Temperatures:
    """Steady state ``G·(T − T_amb) = P`` by a Cholesky solve (differentiable in G and P)."""
    p = net.node_power(block_power_W)
    rise = jsl.cho_solve(jsl.cho_factor(net.conductance), p)
    return _temps(net, rise)


@eqx.filter_jit
def steady_state(flp: Floorplan, block_power_W, cfg: ThermalConfig = ThermalConfig()) -> Temperatures:
    """HotSpot block-model steady-state temperatures for ``block_power_W`` (n,) watts on floorplan ``flp``."""
    return solve_steady(block_network(flp, cfg), block_power_W)


class SteadySolver(eqx.Module):
    """A block network with its Cholesky factor precomputed: many power vectors, one factorization."""

    net: RCNetwork
    chol: jnp.ndarray

    def __init__(self, net: RCNetwork):
        self.net = net
        self.chol = jnp.linalg.cholesky(net.conductance)

    def __call__(self, block_power_W) -> Temperatures:
        p = self.net.node_power(block_power_W)
        rise = jsl.cho_solve((self.chol, True), p.T).T if p.ndim > 1 else jsl.cho_solve((self.chol, True), p)
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
    """Integrate ``C·dT/dt = P(t) − G·(T − T_amb)`` over a power trace (steps, n), one row per interval ``dt_s``.

    Implicit integration (unconditionally stable) with ``substeps`` equal sub-steps per interval:
    ``backward_euler`` (first order; its discrete energy balance is exact) or ``trapezoid`` (Crank–Nicolson,
    second order). ``initial_K`` is a scalar or an (N,) vector of node temperatures (default: ambient).
    HotSpot integrates the same ODE with adaptive RK4.
    """
    if method not in ("backward_euler", "trapezoid"):
        raise ValueError(f"method must be 'backward_euler' or 'trapezoid', got {method!r}")
    if substeps < 1:
        raise ValueError(f"substeps must be >= 1, got {substeps}")
    G, C = net.conductance, net.capacitance
    h = jnp.asarray(dt_s) / substeps
    theta = 1.0 if method == "backward_euler" else 0.5
    lhs = jnp.diag(C / h) + theta * G
    lu = jsl.lu_factor(lhs)
    rhs_mat = jnp.diag(C / h) - (1.0 - theta) * G
    x0 = jnp.zeros(net.n_nodes, G.dtype) if initial_K is None else jnp.broadcast_to(
        jnp.asarray(initial_K, G.dtype) - net.ambient_K, (net.n_nodes,))
    powers = net.node_power(jnp.asarray(power_trace_W, G.dtype))

    def interval(carry, p):
        x, e_amb = carry

        def sub(state, _):
            x, e_amb = state
            x_new = jsl.lu_solve(lu, rhs_mat @ x + p)
            e_amb = e_amb + h * jnp.dot(net.g_ambient, theta * x_new + (1 - theta) * x)
            return (x_new, e_amb), None

        (x, e_amb), _ = jax.lax.scan(sub, (x, e_amb), None, length=substeps)
        return (x, e_amb), (x, e_amb)

    _, (xs, e_amb) = jax.lax.scan(interval, (x0, jnp.zeros((), G.dtype)), powers)
    T = net.ambient_K + xs
    blk = T[:, :net.n_blocks]
    e_in = jnp.cumsum(jnp.sum(powers, axis=-1)) * jnp.asarray(dt_s)
    stored = (xs - x0) @ C
    return Transient(blk, T, jnp.max(blk, axis=-1), e_in, e_amb, stored)
