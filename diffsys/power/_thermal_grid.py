"""HotSpot-style *grid* thermal model: ``rows × cols`` cells in each of the four layers (silicon, TIM, spreader,
sink) over the die, plus the same 12 spreader/sink periphery nodes as the block model.

Each cell is treated exactly like a block of the block model (Huang et al., IEEE TVLSI 2006, §IV): lateral
conductances ``k·t·Δy/Δx`` between neighbouring cells, vertical slab conductances ``k·A/t`` between a cell's layers,
sink-to-ambient through the sink slab and its area share of ``r_convec``, and die-edge cells tied to the periphery
nodes through the shared spreading resistances ``r_sp1``/``r_hs1``. A 1 × 1 grid is therefore identical to the block
model of a one-block die, and finer grids resolve hot spots inside large blocks.

Block powers are spread over the cells in proportion to the overlapped area, and cell temperatures are mapped back
to blocks by HotSpot's ``grid_map_mode`` (``avg``: area-weighted mean, ``min``, ``max``, ``center``: the cell under
the block centre). Both maps are differentiable in the block geometry (the overlaps are piecewise-linear).

Solvers (lineax): a dense Cholesky solve for small grids, and for large grids (64 × 64 × 4 = 16 k nodes) matrix-free
preconditioned conjugate gradients (``lineax.CG`` on the symmetric positive-definite conductance operator), where the
preconditioner is the exact inverse of the network without the periphery ties — diagonalised by a 2-D DCT-II per
layer (uniform lateral conductances with adiabatic die edges) and a 4 × 4 solve per mode for the vertical coupling.
Both run with ``throw=False``; the solver's result code is the ``converged`` field (a non-converged solve is also
logged at WARNING), and gradients are lineax's implicit ones (one adjoint solve).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jax.scipy.fft import dctn, idctn

from .._status import log_unconverged, succeeded

from ._floorplan import Floorplan
from ._thermal_block import C_FACTOR, N_EXTRA, _r, package_rc
from ._thermal_config import DEFAULT_CONFIG, ThermalConfig

logger = logging.getLogger(__name__)

N_LAYERS = 4
LAYER_NAMES = ("silicon", "interface", "spreader", "sink")


def _overlap_1d(a0, a1, b0, b1):
    return jnp.maximum(jnp.minimum(a1, b1) - jnp.maximum(a0, b0), 0.0)


def cell_overlap(flp: Floorplan, rows: int, cols: int):
    """(n, rows, cols) overlapped area (m²) of every block with every cell of a ``rows × cols`` grid over the die."""
    flp = flp.at_origin()
    W, L = flp.chip_width_m, flp.chip_height_m
    xe = jnp.linspace(0.0, 1.0, cols + 1) * W
    ye = jnp.linspace(0.0, 1.0, rows + 1) * L
    ox = _overlap_1d(flp.x_m[:, None], (flp.x_m + flp.width_m)[:, None], xe[None, :-1], xe[None, 1:])  # (n, cols)
    oy = _overlap_1d(flp.y_m[:, None], (flp.y_m + flp.height_m)[:, None], ye[None, :-1], ye[None, 1:])  # (n, rows)
    return oy[:, :, None] * ox[:, None, :]


class GridNetwork(eqx.Module):
    """Conductances of the grid model (uniform per layer) and the block↔cell maps."""

    gx: jnp.ndarray  # (4,) east-west conductance between neighbouring cells of each layer, W/K
    gy: jnp.ndarray  # (4,) north-south
    gv: jnp.ndarray  # (3,) vertical conductance per cell between layers l and l+1
    g_amb_cell: jnp.ndarray  # sink cell to ambient
    to_sp: jnp.ndarray  # (4,) W, E, N, S: conductance from an edge spreader cell to its periphery node
    to_hs: jnp.ndarray  # (4,) from an edge sink cell to the sink inner periphery node
    sp_to_sinkc: jnp.ndarray  # (4,)
    sinkc_to_sink: jnp.ndarray  # (4,)
    g_amb_extra: jnp.ndarray  # (12,)
    cap_cell: jnp.ndarray  # (4,) capacitance per cell of each layer
    cap_extra: jnp.ndarray  # (12,)
    overlap: jnp.ndarray  # (n, rows, cols) block-cell overlap areas
    block_area: jnp.ndarray  # (n,)
    center_cell: jnp.ndarray  # (n, rows, cols) one-hot of the cell under each block centre
    ambient_K: jnp.ndarray
    rows: int = eqx.field(static=True)
    cols: int = eqx.field(static=True)
    names: tuple = eqx.field(static=True)

    @property
    def n_nodes(self) -> int:
        return N_LAYERS * self.rows * self.cols + N_EXTRA

    # -- operator ------------------------------------------------------------------------------------------------
    def _edge_masks(self):
        R, C = self.rows, self.cols
        col = jnp.arange(C)
        row = jnp.arange(R)
        west = jnp.broadcast_to(col == 0, (R, C)).astype(self.gx.dtype)
        east = jnp.broadcast_to(col == C - 1, (R, C)).astype(self.gx.dtype)
        south = jnp.broadcast_to((row == 0)[:, None], (R, C)).astype(self.gx.dtype)
        north = jnp.broadcast_to((row == R - 1)[:, None], (R, C)).astype(self.gx.dtype)
        return west, east, north, south

    def apply(self, cells, extra):
        """``G·x`` for cell rises (4, R, C) and periphery rises (12,)."""
        gx, gy = self.gx[:, None, None], self.gy[:, None, None]
        out = jnp.zeros_like(cells)
        dx = cells[:, :, 1:] - cells[:, :, :-1]
        out = out.at[:, :, 1:].add(gx * dx).at[:, :, :-1].add(-gx * dx)
        dy = cells[:, 1:, :] - cells[:, :-1, :]
        out = out.at[:, 1:, :].add(gy * dy).at[:, :-1, :].add(-gy * dy)
        gv = self.gv[:, None, None]
        dz = cells[1:] - cells[:-1]
        out = out.at[1:].add(gv * dz).at[:-1].add(-gv * dz)
        out = out.at[3].add(self.g_amb_cell * cells[3])
        masks = self._edge_masks()
        ex_out = jnp.zeros_like(extra)
        for d, m in enumerate(masks):
            for layer, g, node in ((2, self.to_sp[d], d), (3, self.to_hs[d], 4 + d)):
                diff = cells[layer] - extra[node]
                out = out.at[layer].add(g * m * diff)
                ex_out = ex_out.at[node].add(-jnp.sum(g * m * diff))
        k = jnp.arange(4)
        d1 = extra[k] - extra[4 + k]
        ex_out = ex_out.at[k].add(self.sp_to_sinkc * d1).at[4 + k].add(-self.sp_to_sinkc * d1)
        d2 = extra[4 + k] - extra[8 + k]
        ex_out = ex_out.at[4 + k].add(self.sinkc_to_sink * d2).at[8 + k].add(-self.sinkc_to_sink * d2)
        ex_out = ex_out + self.g_amb_extra * extra
        return out, ex_out

    def _flat(self, cells, extra):
        return jnp.concatenate([cells.ravel(), extra])

    def _unflat(self, x):
        n = N_LAYERS * self.rows * self.cols
        return x[:n].reshape(N_LAYERS, self.rows, self.cols), x[n:]

    def matvec(self, x):
        return self._flat(*self.apply(*self._unflat(x)))

    def dense(self):
        """The (N, N) conductance matrix (small grids only)."""
        eye = jnp.eye(self.n_nodes, dtype=self.gx.dtype)
        return jax.vmap(self.matvec)(eye).T

    # -- preconditioner: exact inverse without the periphery ties ---------------------------------------------
    def _precond_factors(self):
        R, C = self.rows, self.cols
        lam_c = 2.0 - 2.0 * jnp.cos(jnp.pi * jnp.arange(C) / C)
        lam_r = 2.0 - 2.0 * jnp.cos(jnp.pi * jnp.arange(R) / R)
        diag = self.gx[:, None, None] * lam_c[None, None, :] + self.gy[:, None, None] * lam_r[None, :, None]
        M = jnp.zeros((R, C, 4, 4), self.gx.dtype)
        for layer in range(4):
            M = M.at[:, :, layer, layer].set(diag[layer])
        for layer in range(3):
            g = self.gv[layer]
            M = M.at[:, :, layer, layer].add(g).at[:, :, layer + 1, layer + 1].add(g)
            M = M.at[:, :, layer, layer + 1].add(-g).at[:, :, layer + 1, layer].add(-g)
        M = M.at[:, :, 3, 3].add(self.g_amb_cell)
        return jnp.linalg.inv(M)

    def _extra_diag(self):
        R, C = self.rows, self.cols
        side = jnp.array([R, R, C, C], self.gx.dtype)
        d_sp = self.to_sp * side + self.sp_to_sinkc
        d_hc = self.to_hs * side + self.sp_to_sinkc + self.sinkc_to_sink + self.g_amb_extra[4:8]
        d_ho = self.sinkc_to_sink + self.g_amb_extra[8:]
        return jnp.concatenate([d_sp, d_hc, d_ho])

    def precondition(self, x, minv, ediag):
        cells, extra = self._unflat(x)
        c = dctn(cells, type=2, axes=(1, 2), norm="ortho")
        c = jnp.einsum("rcij,jrc->irc", minv, c)
        cells = idctn(c, type=2, axes=(1, 2), norm="ortho")
        return self._flat(cells, extra / ediag)


@eqx.filter_jit
def grid_network(flp: Floorplan, cfg: ThermalConfig = DEFAULT_CONFIG, rows: int | None = None,
                 cols: int | None = None) -> GridNetwork:
    """Build the grid model of ``flp`` (``rows × cols`` default to ``cfg.grid_rows × cfg.grid_cols``)."""
    rows = cfg.grid_rows if rows is None else rows
    cols = cfg.grid_cols if cols is None else cols
    if rows < 1 or cols < 1:
        raise ValueError(f"grid rows and cols must be >= 1, got {rows} x {cols}")
    flp = flp.at_origin()
    W, L = flp.chip_width_m, flp.chip_height_m
    dx, dy = W / cols, L / rows
    a = dx * dy
    ks = jnp.stack([cfg.k_chip, cfg.k_interface, cfg.k_spreader, cfg.k_sink])
    ts = jnp.stack([cfg.t_chip, cfg.t_interface, cfg.t_spreader, cfg.t_sink])
    ps = jnp.stack([cfg.p_chip, cfg.p_interface, cfg.p_spreader, cfg.p_sink])
    gx = ks * ts * dy / dx
    gy = ks * ts * dx / dy
    gv = ks[:3] * a / ts[:3]
    g_amb_cell = 1.0 / (_r(cfg.k_sink, cfg.t_sink, a) + cfg.r_convec * cfg.s_sink ** 2 / a)
    pk = package_rc(cfg, W, L)
    # an edge cell's centre-to-edge conductance is 2·gx (half a cell); shared spreading resistance as in the block
    # model: g_i / (1 + r1·Σg) with Σg over the cells on that edge
    hx_sp, hy_sp = 2 * gx[2], 2 * gy[2]
    hx_hs, hy_hs = 2 * gx[3], 2 * gy[3]
    to_sp = jnp.stack([hx_sp / (1 + pk.r_sp1_x * rows * hx_sp), hx_sp / (1 + pk.r_sp1_x * rows * hx_sp),
                       hy_sp / (1 + pk.r_sp1_y * cols * hy_sp), hy_sp / (1 + pk.r_sp1_y * cols * hy_sp)])
    to_hs = jnp.stack([hx_hs / (1 + pk.r_hs1_x * rows * hx_hs), hx_hs / (1 + pk.r_hs1_x * rows * hx_hs),
                       hy_hs / (1 + pk.r_hs1_y * cols * hy_hs), hy_hs / (1 + pk.r_hs1_y * cols * hy_hs)])
    sp_to_sinkc = jnp.stack([1 / pk.r_sp_per_x, 1 / pk.r_sp_per_x, 1 / pk.r_sp_per_y, 1 / pk.r_sp_per_y])
    sinkc_to_sink = jnp.stack([1 / (pk.r_hs + pk.r_hs2_x)] * 2 + [1 / (pk.r_hs + pk.r_hs2_y)] * 2)
    g_amb_extra = jnp.concatenate([
        jnp.zeros(4, gx.dtype),
        jnp.stack([1 / (pk.r_hs_c_per_x + pk.r_amb_c_per_x)] * 2 + [1 / (pk.r_hs_c_per_y + pk.r_amb_c_per_y)] * 2),
        jnp.broadcast_to(1 / (pk.r_hs_per + pk.r_amb_per), (4,))])
    cap_cell = C_FACTOR * ps * ts * a  # HotSpot 6 getcap: the lumping factor on every material capacitance
    cap_cell = cap_cell.at[3].add(C_FACTOR * cfg.c_convec / cfg.s_sink ** 2 * a)
    cap_extra = jnp.concatenate([
        jnp.stack([pk.c_sp_per_x, pk.c_sp_per_x, pk.c_sp_per_y, pk.c_sp_per_y]),
        jnp.stack([pk.c_hs_c_per_x + pk.c_amb_c_per_x] * 2 + [pk.c_hs_c_per_y + pk.c_amb_c_per_y] * 2),
        jnp.broadcast_to(pk.c_hs_per + pk.c_amb_per, (4,))])
    ov = cell_overlap(flp, rows, cols)
    cx = flp.x_m + flp.width_m / 2
    cy = flp.y_m + flp.height_m / 2
    ci = jnp.clip(jnp.floor(cx / dx), 0, cols - 1)
    ri = jnp.clip(jnp.floor(cy / dy), 0, rows - 1)
    center = ((jnp.arange(rows)[None, :, None] == ri[:, None, None])
              & (jnp.arange(cols)[None, None, :] == ci[:, None, None])).astype(gx.dtype)
    return GridNetwork(gx, gy, gv, g_amb_cell, to_sp, to_hs, sp_to_sinkc, sinkc_to_sink, g_amb_extra, cap_cell,
                       cap_extra, ov, flp.area_m2, center, jnp.asarray(cfg.ambient), rows, cols, flp.names)


class GridTemperatures(NamedTuple):
    block_K: jnp.ndarray  # (n,) silicon-layer block temperatures (by the map mode)
    cells_K: jnp.ndarray  # (4, rows, cols) every layer's cells
    extra_K: jnp.ndarray  # (12,) periphery nodes
    layer_block_K: jnp.ndarray  # (4, n) block temperatures of every layer
    peak_K: jnp.ndarray  # hottest silicon cell
    residual: jnp.ndarray  # relative residual of the linear solve
    converged: jnp.ndarray  # bool: the linear solve succeeded (CG: relative residual ≤ tol within maxiter)
    solver_steps: jnp.ndarray  # CG iterations (0 for the dense solve)


def map_to_blocks(net: GridNetwork, cells_K, mode: str = "avg"):
    """Block temperatures (4, n) of every layer from cell temperatures (4, rows, cols) by HotSpot's
    ``grid_map_mode``: ``avg`` (area-weighted), ``min``/``max`` over the overlapped cells, ``center``."""
    if mode not in ("avg", "min", "max", "center"):
        raise ValueError(f"map_mode must be one of ['avg', 'center', 'max', 'min'], got {mode!r}")
    if mode == "avg":
        return jnp.einsum("nrc,lrc->ln", net.overlap, cells_K) / net.block_area
    if mode == "center":
        return jnp.einsum("nrc,lrc->ln", net.center_cell, cells_K)
    mask = net.overlap > 1e-3 * (net.block_area[:, None, None] / (net.rows * net.cols) + 0.0)
    big = jnp.where(mask[None], cells_K[:, None], jnp.inf if mode == "min" else -jnp.inf)
    return jnp.min(big, axis=(2, 3)) if mode == "min" else jnp.max(big, axis=(2, 3))


@eqx.filter_jit
def grid_steady_state(net: GridNetwork, block_power_W, *, map_mode: str = "avg", solver: str = "auto",
                      tol: float | None = None, maxiter: int = 80) -> GridTemperatures:
    """Steady state of the grid model for block powers (n,) W.

    ``solver``: ``dense`` (``lineax.Cholesky``, for ≲ 3000 nodes), ``cg`` (``lineax.CG`` with the DCT
    preconditioner, any size) or ``auto``. CG stops at a relative residual ``‖Gx − b‖₂ ≤ tol·‖b‖₂`` (default
    ``tol``: 1e-4 in float32, whose round-off floor is ~3e-4 at 64 × 64, and 1e-8 in float64); the DCT
    preconditioner makes it converge in ~30 iterations on ev6 at 64 × 64 (float32 peak within 1e-4 K of a float64
    solve to 1e-12), hence the ``maxiter`` default. ``converged`` reports the solver's result code.
    """
    if map_mode not in ("avg", "min", "max", "center"):
        raise ValueError(f"map_mode must be one of ['avg', 'center', 'max', 'min'], got {map_mode!r}")
    if solver not in ("auto", "dense", "cg"):
        raise ValueError(f"solver must be 'auto', 'dense' or 'cg', got {solver!r}")
    p = jnp.asarray(block_power_W)
    p_cells = jnp.einsum("n,nrc->rc", p / net.block_area, net.overlap)
    cells0 = jnp.zeros((N_LAYERS, net.rows, net.cols), p_cells.dtype).at[0].set(p_cells)
    b = net._flat(cells0, jnp.zeros(N_EXTRA, p_cells.dtype))
    if solver == "auto":
        solver = "dense" if net.n_nodes <= 3000 else "cg"
    spd = (lx.symmetric_tag, lx.positive_semidefinite_tag)
    if solver == "dense":
        op = lx.MatrixLinearOperator(net.dense(), spd)
        sol = lx.linear_solve(op, b, lx.Cholesky(), throw=False)
        x, ok, steps = sol.value, succeeded(sol.result), jnp.zeros((), jnp.int32)
    else:
        if tol is None:
            tol = 1e-8 if b.dtype == jnp.float64 else 1e-4
        minv = jax.lax.stop_gradient(net._precond_factors())
        ediag = jax.lax.stop_gradient(net._extra_diag())
        struct = jax.ShapeDtypeStruct(b.shape, b.dtype)
        cg_solver = lx.CG(rtol=0.0, atol=tol, norm=_two_norm, max_steps=maxiter)

        def pcg(matvec, rhs):
            # lineax's CG stops when ‖r‖ <= atol and ‖Δx‖ <= atol (rtol = 0, 2-norm). Solve the scaled system
            # (R·G)·y = rhs/‖rhs‖ with R ≈ ‖x‖/‖rhs‖ (from one preconditioner application) and x = R·‖rhs‖·y, so
            # that the test reads ‖Gx − rhs‖ <= tol·‖rhs‖ (jax.scipy's CG criterion) and ‖Δx‖ <= ~tol·‖x‖. PCG's
            # iterates do not depend on the preconditioner's scale; 16× keeps every step length α small enough for
            # lineax's breakdown guard (|pᵀAp| > 100·N·eps·|rᵀz|, i.e. α < 5 in float32 at 16 k nodes).
            bn = jax.lax.stop_gradient(_two_norm(rhs)) + jnp.finfo(rhs.dtype).tiny
            R = jax.lax.stop_gradient(_two_norm(net.precondition(rhs, minv, ediag)) / bn)
            R = jnp.where(R > 0, R, 1.0)  # a zero right-hand side (no power, a zero cotangent)
            op = lx.FunctionLinearOperator(lambda v: R * matvec(v), struct, spd)
            pre = lx.FunctionLinearOperator(lambda v: net.precondition(v, minv, ediag) * (16.0 / R), struct, spd)
            sol = lx.linear_solve(op, rhs / bn, cg_solver, options={"preconditioner": pre}, throw=False)
            return sol.value * (R * bn), (succeeded(sol.result), jnp.asarray(sol.stats["num_steps"], jnp.int32))

        # the adjoint solve (gradients) reuses the same never-throwing normalised CG (G is symmetric)
        x, (ok, steps) = jax.lax.custom_linear_solve(net.matvec, b, pcg, symmetric=True, has_aux=True)
    converged = ok & jnp.all(jnp.isfinite(x))
    log_unconverged(logger, converged, f"grid thermal {solver} solve ({net.rows} x {net.cols})")
    res = jnp.linalg.norm(net.matvec(x) - b) / (jnp.linalg.norm(b) + 1e-30)
    cells, extra = net._unflat(x)
    cells_K = net.ambient_K + cells
    layer_blocks = map_to_blocks(net, cells_K, map_mode)
    return GridTemperatures(layer_blocks[0], cells_K, net.ambient_K + extra, layer_blocks, jnp.max(cells_K[0]), res,
                            converged, steps)


def _two_norm(x):
    return jnp.sqrt(jnp.sum(x * x))


def grid_node_names(names) -> tuple:
    """Names written to a steady file by the grid model (block mapping of every layer, then periphery nodes)."""
    names = tuple(names)
    return (names + tuple(f"iface_{b}" for b in names) + tuple(f"hsp_{b}" for b in names)
            + tuple(f"hsink_{b}" for b in names) + tuple(f"inode_{i}" for i in range(N_EXTRA)))


def plot_heatmap(flp: Floorplan, cells_K, path=None, *, title: str = "silicon layer", ax=None, cmap="inferno"):
    """Heat map of a (rows, cols) temperature field over the die with the block outlines and names, drawn on ``ax``
    (a new figure when None); saves a PNG when ``path`` is given. Returns the matplotlib figure."""
    import numpy as np
    from matplotlib.patches import Rectangle

    from .._plotting import figure_and_axes, save_figure

    flp = flp.at_origin()
    W, L = float(flp.chip_width_m), float(flp.chip_height_m)
    field = np.asarray(cells_K, float)
    fig, ax = figure_and_axes(ax, figsize=(6.4, 5.2))
    im = ax.imshow(field, origin="lower", extent=(0, W * 1e3, 0, L * 1e3), cmap=cmap, aspect="equal")
    for i, name in enumerate(flp.names):
        x, y = float(flp.x_m[i]) * 1e3, float(flp.y_m[i]) * 1e3
        w, h = float(flp.width_m[i]) * 1e3, float(flp.height_m[i]) * 1e3
        ax.add_patch(Rectangle((x, y), w, h, fill=False, lw=0.6, ec="white"))
        if w * h > 0.02 * W * L * 1e6:
            ax.text(x + w / 2, y + h / 2, name, ha="center", va="center", fontsize=6, color="white")
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="temperature (K)")
    return save_figure(fig, path, dpi=150, bbox_inches="tight")
