"""Congestion-aware, packaging-adaptive multi-chip-module model: partitioned layers → D2D traffic → EdP.

For every layer ``l`` of a :class:`~diffsys.chiplet.LayerChain` the chiplets share the work in fractions ``p``
(softmax of the design's ``partition_logits`` of the layer's group, so non-uniform partitions are continuous design
variables) under one of three strategies (a categorical per group):

- ``token``: each chiplet computes a contiguous slice ``p_i`` of the output rows/tokens; it needs the same slice of
  the input (attention additionally needs all keys/values) and *all* weights;
- ``channel``: a slice of the output channels (heads for attention); needs the whole input, ``p_i`` of the weights;
- ``reduction``: a slice of the input channels; needs ``p_i`` of the input and weights and produces full-size partial
  sums that are reduce-scattered to the output-channel owners (partial-sum traffic).

Die-to-die traffic between consecutive layers follows from the producer layout (token or channel slices with the
previous fractions ``q``) and the consumer need: matching slice kinds exchange only the overlap of their intervals,
crossing kinds exchange ``q_s·p_d``, a full need gathers ``q_s`` at every active chiplet. Weights (and the first
input) come from the off-package memory interfaces of the chosen placement. Link loads are ``R @ traffic`` with the
precomputed routing tensor of the chosen diagonal pattern (:class:`~diffsys.chiplet.D2DGraph`).

Per layer: compute time by roofline per chiplet, the *arrival* time of each chiplet's inputs (its inbound
die-to-die bytes over its ingress bandwidth, the sum of the bandwidths of the links that end at it), DRAM time (max
over memory interfaces), serialization time (max over links of bytes / link bandwidth), path latency (mean hops ×
per-hop latency) and congestion (traffic-weighted M/D/1 waiting time per link, with the link utilization taken over
the layer's busy window). A chiplet finishes a layer at ``(1 - ω)·(arrival + compute) + ω·max(arrival, compute)``
with ``ω = package.overlap`` (0: it computes after its inputs arrived; 1: transfers hidden behind compute, double
buffering). Layer time = max(slowest chiplet, DRAM, serialization) + latency + congestion; layers run one after
another. The per-chiplet term couples a chiplet's work share to its connectivity: a die with fewer or narrower links
(a package corner) receives its inputs later, which is what a non-uniform partition can balance.
EdP = energy × latency. Sources: roofline (Williams et al., CACM 2009); M/D/1 (Kleinrock 1975) as in analytical NoC
models (Dally & Towles 2004, §23); layer-wise partitioning of MCM accelerators (Shao et al., "Simba", MICRO 2019;
Tan et al., "NN-Baton", ISCA 2021).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_positive
from .._pytree import as_float
from ..primitives import (
    logsumexp_max,
    md1_wait,
    relative_temperature,
    relu,
    safe_divide,
    soft_argmin_weights,
    tie_safe_max,
)
from ..roofline import roofline
from ._graph import DIAG, EW, NS, D2DGraph
from ._package import ChipletPackage
from ._workloads import LayerChain

STRATEGIES = ("token", "channel", "reduction")
# input need per (layer kind, strategy): fractions of the input needed as (token slice, channel slice, full copy)
_NEED = np.array([[[1, 0, 0], [0, 0, 1], [0, 1, 0]],  # linear
                  [[1 / 3, 0, 2 / 3], [0, 1, 0], [0, 1, 0]]])  # attention: Q slice + all K, V | heads | heads
_OUT_TOKEN = np.array([[1, 0, 0], [1, 0, 0]], float)  # output layout is token-sliced (else channel-sliced)
_PSUM = np.array([[0, 0, 1], [0, 0, 0]], float)  # partial sums produced


class MCMDesign(eqx.Module):
    """Design variables of a chiplet package (all float leaves; categorical choices are indices).

    Attributes:
        partition_logits: ``(G, n)`` logits of the work fractions of each partition group (softmax over chiplets;
            zeros = uniform; ``-inf`` switches a chiplet off).
        strategy: ``(G,)`` index into ``STRATEGIES`` per group.
        diagonals: index into the graph's diagonal patterns.
        memory: index into the graph's memory placements.
        redistribution: on-chip redistribution fraction ``ρ ∈ [0, 1]``: the share of every flow moved on-chip to the
            port of the graph's alternative route (``D2DGraph.build(alt_routing=...)``); 0 = no redistribution.
        diagonal_share: ``δ ∈ [0, 1]``, the share of every flow routed with the built diagonal links; the rest takes
            the mesh-only route (a diagonal link has only ``corner_mm`` of shoreline, so an adaptive router sends it
            a share of the traffic, not all of it). 1 = every flow takes the diagonals where its route allows.
    """

    partition_logits: jnp.ndarray = eqx.field(converter=as_float)
    strategy: jnp.ndarray = eqx.field(converter=as_float)
    diagonals: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    memory: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    redistribution: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    diagonal_share: jnp.ndarray = eqx.field(converter=as_float, default=1.0)

    @property
    def fractions(self):
        return jax.nn.softmax(self.partition_logits, axis=-1)


class MCMMetrics(NamedTuple):
    """Metrics of one package evaluation (SI units)."""

    edp_Js: jnp.ndarray
    latency_s: jnp.ndarray
    energy_J: jnp.ndarray
    compute_time_s: jnp.ndarray  # Σ per-layer compute (roofline, slowest chiplet)
    communication_time_s: jnp.ndarray  # Σ (max(compute, DRAM, serialization) - compute + path latency)
    congestion_time_s: jnp.ndarray  # Σ queueing delay
    die_time_s: jnp.ndarray  # Σ per-layer slowest chiplet (arrival of its inputs and compute, per ``overlap``)
    serialization_time_s: jnp.ndarray  # Σ per-layer busiest link (bytes / bandwidth)
    dram_time_s: jnp.ndarray  # Σ per-layer busiest memory interface
    energy_compute_J: jnp.ndarray
    energy_sram_J: jnp.ndarray
    energy_d2d_J: jnp.ndarray  # D2D PHY energy (per link crossing)
    energy_noc_J: jnp.ndarray  # on-chip transport of D2D traffic (to/from the port, through intermediate dies)
    energy_dram_J: jnp.ndarray
    energy_static_J: jnp.ndarray
    d2d_link_bytes: jnp.ndarray  # Σ bytes × links crossed
    d2d_injected_bytes: jnp.ndarray  # Σ bytes leaving their source die
    dram_bytes: jnp.ndarray
    max_link_utilization: jnp.ndarray  # max over layers and links of link busy time / layer busy window
    link_bytes: jnp.ndarray  # (L,) bytes per directed candidate link over the whole run
    sram_peak_B: jnp.ndarray  # largest per-chiplet per-layer working set (inputs + outputs + weights)
    feasible: jnp.ndarray
    violation: jnp.ndarray


def _rel(temperature, scale):
    """A temperature relative to ``scale``; a Python 0 stays a Python 0 so the exact branch alone is compiled."""
    if isinstance(temperature, (int, float)) and temperature == 0:
        return 0.0
    return relative_temperature(temperature, scale)


def _overlap(q, p):
    """Interval overlap ``O[s, d]`` of two partitions of [0, 1] into consecutive slices of sizes ``q`` and ``p``."""
    qe, pe = jnp.cumsum(q), jnp.cumsum(p)
    qs, ps = qe - q, pe - p
    return jnp.maximum(jnp.minimum(qe[:, None], pe[None, :]) - jnp.maximum(qs[:, None], ps[None, :]), 0.0)


class MCMModel:
    """Factory capturing the static structure (workload, grid, routing); call it with a design and a package.

    ``model(design, package, temperature=0.0) -> MCMMetrics``. ``temperature = 0`` is the exact model (categorical
    indices rounded, exact maxima); ``> 0`` relaxes the maxima (log-sum-exp, relative to the compared times) and the
    categorical choices (softmax over options by squared index distance) for gradient search.

    Args:
        workload: the layer chain.
        graph: a :class:`D2DGraph` (or pass ``rows``/``cols`` and graph keywords instead).
        activity_eps: a chiplet with fraction ``p`` counts as active with weight ``p / (p + eps)`` (exactly 0 at
            ``p = 0``, ≈ 1 otherwise); active chiplets receive whole copies (token weights, full inputs).
    """

    def __init__(self, workload: LayerChain, graph: D2DGraph | None = None, *, rows=None, cols=None,
                 activity_eps: float = 1e-4, **graph_kwargs):
        if graph is None:
            if rows is None or cols is None:
                raise ValueError("MCMModel needs a graph or rows and cols")
            graph = D2DGraph.build(rows, cols, **graph_kwargs)
        check_positive("activity_eps", activity_eps)
        self.workload = workload
        self.graph = graph
        self.activity_eps = float(activity_eps)
        w = workload
        g = w.group
        pairs = sorted({(int(g[i - 1]), int(g[i])) for i in range(1, w.num_layers)})
        self.pairs = pairs
        self._pair_index = np.array([0] + [pairs.index((int(g[i - 1]), int(g[i]))) for i in range(1, w.num_layers)])
        self._has_prev = np.array([0.0] + [1.0] * (w.num_layers - 1))
        self._cross = [k for k, (a, b) in enumerate(pairs) if a != b]
        onehot = lambda idx, k: np.eye(k, dtype=np.float32)[np.asarray(idx)]
        f32 = np.float32
        self._c = {
            "flops": w.flops.astype(f32), "weight": w.weight_B.astype(f32), "inb": w.in_B.astype(f32),
            "outb": w.out_B.astype(f32), "group": g, "kind": w.kind,
            "prev_group": np.concatenate([[g[0]], g[:-1]]), "prev_kind": np.concatenate([[w.kind[0]], w.kind[:-1]]),
            "first": np.eye(1, w.num_layers, 0, dtype=f32)[0],
            "G_layer": onehot(g, w.num_groups), "G_prev": onehot(np.concatenate([[g[0]], g[:-1]]), w.num_groups),
            "P_layer": onehot(self._pair_index, max(len(pairs), 1)),
            "route": graph.route.astype(f32), "route_mem": graph.route_mem.astype(f32),
            "enabled": graph.enabled.astype(f32), "corners": graph.corners.astype(f32),
            "mem_M": graph.mem_M.astype(f32), "mem_share": graph.mem_share.astype(f32),
            "is_ew": (graph.kind == EW).astype(f32), "is_ns": (graph.kind == NS).astype(f32),
            "is_diag": (graph.kind == DIAG).astype(f32), "link_dst": graph.link_dst.astype(f32),
        }
        # pattern 0 is the mesh-only route (the default pattern list starts with "none"): diagonal_share mixes with it
        self._mesh_first = graph.route.shape[0] > 1 and not np.any(graph.enabled[0][graph.kind == DIAG])
        if graph.route_alt is not None:
            self._c["route_alt"] = graph.route_alt.astype(f32)
            self._c["route_mem_alt"] = graph.route_mem_alt.astype(f32)

    # -- helpers ------------------------------------------------------------------------------------------------
    @property
    def num_groups(self) -> int:
        return self.workload.num_groups

    @property
    def num_chiplets(self) -> int:
        return self.graph.n

    def uniform_design(self, strategy="token", diagonals="none", memory=None) -> MCMDesign:
        """Uniform fractions, one strategy for every group, a named diagonal pattern and memory placement."""
        s = STRATEGIES.index(strategy) if isinstance(strategy, str) else strategy
        mem = 0 if memory is None else self.graph.placement_names.index(memory)
        return MCMDesign(partition_logits=jnp.zeros((self.num_groups, self.num_chiplets)),
                         strategy=jnp.full((self.num_groups,), float(s)) if np.ndim(s) == 0 else jnp.asarray(s),
                         diagonals=float(self.graph.pattern_names.index(diagonals)), memory=float(mem))

    @staticmethod
    def _choice(index, k, temperature):
        """Weights over ``k`` options for a (possibly fractional) index: exact one-hot or softmax(-distance²/t)."""
        d2 = (jnp.asarray(index)[..., None] - jnp.arange(k, dtype=jnp.result_type(float, index))) ** 2
        return soft_argmin_weights(d2, temperature=temperature)

    def _select(self, table, index, temperature):
        """Pick ``table[index]`` along axis 0: a gather when exact, a soft mixture otherwise."""
        k = table.shape[0]
        if k == 1:  # a single option: no selection (keeps the table shared across a vmapped batch)
            return jnp.asarray(table[0])
        if isinstance(temperature, (int, float)) and temperature == 0:
            i = jnp.clip(jnp.round(index), 0, k - 1).astype(jnp.int32)
            return jnp.take(table, i, axis=0)
        w = self._choice(index, k, temperature)
        return jnp.tensordot(w, table, axes=1)

    # -- the model ----------------------------------------------------------------------------------------------
    def __call__(self, design: MCMDesign, package: ChipletPackage, temperature=0.0) -> MCMMetrics:
        c = self._c
        pk = package.packaging
        dt = jnp.result_type(float)
        p = jax.nn.softmax(jnp.asarray(design.partition_logits, dt), axis=-1)  # (G, n)
        act = p / (p + self.activity_eps)
        ws = self._choice(design.strategy, len(STRATEGIES), temperature)  # (G, 3)

        enabled = self._select(c["enabled"], design.diagonals, temperature)  # (L,)
        corners = self._select(c["corners"], design.diagonals, temperature)
        delta = jnp.clip(jnp.asarray(design.diagonal_share, dt), 0.0, 1.0)

        def routed(key):  # the chosen pattern's route, a share 1 - delta on the mesh-only route (pattern 0)
            t = self._select(c[key], design.diagonals, temperature)
            return t if not self._mesh_first else delta * t + (1 - delta) * jnp.asarray(c[key][0])

        R, Rw_all = routed("route"), routed("route_mem")  # (L, n, n), (P, L, n)
        if "route_alt" in c:  # on-chip redistribution: a share rho of every flow takes the alternative route
            rho_r = jnp.clip(jnp.asarray(design.redistribution, dt), 0.0, 1.0)
            R = (1 - rho_r) * R + rho_r * routed("route_alt")
            Rw_all = (1 - rho_r) * Rw_all + rho_r * routed("route_mem_alt")
        Rw = self._select(Rw_all, design.memory, temperature)  # (L, n)
        M = self._select(c["mem_M"], design.memory, temperature)  # (n, n)
        share = self._select(c["mem_share"], design.memory, temperature)  # (n,)

        # link bandwidth per direction from the shoreline each link gets
        shore = (c["is_ew"] * package.height_mm + c["is_ns"] * package.width_mm) * package.d2d_edge_fraction \
            - corners * package.corner_mm / 2
        shore = shore * (1 - c["is_diag"]) + c["is_diag"] * package.corner_mm * enabled
        shore_ok = jnp.maximum(shore, 0.0)
        bw = 0.5 * pk.bandwidth_density_Bps_per_mm * shore_ok  # (L,)

        # routed unit patterns
        Rq = jnp.einsum("esd,gs->ged", R, p)  # outer(p_a, ·) routed, (G, L, n)
        Rp_dst = jnp.einsum("esd,gd->ges", R, p)  # outer(·, p_b) routed, (G, L, n)
        pairs = np.asarray(self.pairs)
        a, b = pairs[:, 0], pairs[:, 1]
        U_out = jnp.einsum("ked,kd->ke", Rq[a], p[b])  # (P, L)
        U_full = jnp.einsum("ked,kd->ke", Rq[a], act[b])
        inj_out = 1.0 - jnp.sum(p[a] * p[b], -1)
        inj_full = jnp.sum(act[b], -1) - jnp.sum(p[a] * act[b], -1)
        # in_*: bytes arriving at each die (per unit of the pattern) from other dies; sum over dies = inj_*
        in_out = p[b] * (1.0 - p[a])  # (P, n)
        in_full = act[b] * (1.0 - p[a])
        U_ov = jnp.zeros_like(U_out)
        inj_ov = jnp.zeros_like(inj_out)
        in_ov = jnp.zeros_like(in_out)
        if self._cross:
            cr = np.asarray(self._cross)
            O = jax.vmap(_overlap)(p[a[cr]], p[b[cr]])  # (C, n, n)
            U_ov = U_ov.at[cr].set(jnp.einsum("esd,ksd->ke", R, O))
            inj_ov = inj_ov.at[cr].set(1.0 - jnp.trace(O, axis1=1, axis2=2))
            in_ov = in_ov.at[cr].set(jnp.sum(O, axis=1) - jnp.diagonal(O, axis1=1, axis2=2))
        U_psum = jnp.einsum("ges,gs->ge", Rp_dst, act)  # outer(act, p) routed, (G, L)
        inj_psum = jnp.sum(act, -1) - jnp.sum(act * p, -1)
        in_psum = p * (jnp.sum(act, -1, keepdims=True) - act)  # (G, n)
        U_wact = act @ Rw.T  # (G, L)
        U_wp = p @ Rw.T
        offM = 1.0 - jnp.diagonal(M)
        inj_wact = act @ offM
        inj_wp = p @ offM
        in_wact = act * offM[None, :]
        in_wp = p * offM[None, :]

        # per-layer coefficients
        kind = c["kind"]
        Gl, Gp, Pl = c["G_layer"], c["G_prev"], c["P_layer"]
        wl, wprev = Gl @ ws, Gp @ ws  # (nl, 3)
        need = jnp.einsum("ls,lsk->lk", wl, jnp.asarray(_NEED, dt)[kind])  # (nl, 3) tok / ch / full
        beta_tok = jnp.einsum("ls,ls->l", wprev, jnp.asarray(_OUT_TOKEN, dt)[c["prev_kind"]])
        beta_ch = 1.0 - beta_tok
        c_ov = (beta_tok * need[:, 0] + beta_ch * need[:, 1]) * c["inb"] * (1 - c["first"])
        c_out = (beta_tok * need[:, 1] + beta_ch * need[:, 0]) * c["inb"] * (1 - c["first"])
        c_full = need[:, 2] * c["inb"] * (1 - c["first"])
        c_psum = jnp.einsum("ls,ls->l", wl, jnp.asarray(_PSUM, dt)[kind]) * c["outb"] * package.psum_bytes_factor
        w_tok = wl[:, 0]
        c_wact = c["weight"] * w_tok
        c_wp = c["weight"] * (1 - w_tok) + c["inb"] * c["first"]  # first input read from DRAM, token-sliced

        loads = (c_ov[:, None] * (Pl @ U_ov) + c_out[:, None] * (Pl @ U_out) + c_full[:, None] * (Pl @ U_full)
                 + c_psum[:, None] * (Gl @ U_psum) + c_wact[:, None] * (Gl @ U_wact)
                 + c_wp[:, None] * (Gl @ U_wp))  # (nl, L)
        injected = (c_ov * (Pl @ inj_ov) + c_out * (Pl @ inj_out) + c_full * (Pl @ inj_full)
                    + c_psum * (Gl @ inj_psum) + c_wact * (Gl @ inj_wact) + c_wp * (Gl @ inj_wp))  # (nl,)
        col = lambda x: x[:, None]
        in_bytes = (col(c_ov) * (Pl @ in_ov) + col(c_out) * (Pl @ in_out) + col(c_full) * (Pl @ in_full)
                    + col(c_psum) * (Gl @ in_psum) + col(c_wact) * (Gl @ in_wact) + col(c_wp) * (Gl @ in_wp))
        pg = Gl @ p  # (nl, n) fractions of each layer
        actg = Gl @ act

        # DRAM: bytes per memory interface and per layer
        dram_node = c_wact[:, None] * (actg @ M.T) + c_wp[:, None] * (pg @ M.T)  # (nl, n)
        dram_bw = share * package.dram_bandwidth_Bps
        t_dram_node = safe_divide(dram_node, dram_bw[None, :])
        rt = temperature
        t_dram = logsumexp_max(t_dram_node, axis=-1, temperature=_rel(rt, tie_safe_max(t_dram_node)))

        # compute: roofline per chiplet
        need_w = w_tok[:, None] * actg + (1 - w_tok)[:, None] * pg
        sram_bytes = pg * (c["inb"] + c["outb"])[:, None] + need_w * c["weight"][:, None]
        if isinstance(rt, (int, float)) and rt == 0:  # exact roofline max without compiling the smooth branch
            t_chip = jnp.maximum(c["flops"][:, None] * pg / package.peak_flops,
                                 sram_bytes / package.sram_bandwidth_Bps)
        else:
            t_chip = roofline(c["flops"][:, None] * pg, sram_bytes, package.peak_flops, package.sram_bandwidth_Bps,
                              temperature=rt).time_s  # (nl, n)
        t_comp = logsumexp_max(t_chip, axis=-1, temperature=_rel(rt, tie_safe_max(t_chip)))

        # per-chiplet arrival of the inputs over the die's ingress links, then its compute (overlap ω)
        in_bw = (bw * enabled) @ c["link_dst"]  # (n,) bytes/s into each die
        t_arr = safe_divide(in_bytes, in_bw[None, :])  # (nl, n)
        both = jnp.stack([t_arr, t_chip], -1)
        t_hidden = logsumexp_max(both, axis=-1, temperature=_rel(rt, tie_safe_max(both)))
        ov = package.overlap
        t_die = (1.0 - ov) * (t_arr + t_chip) + ov * t_hidden
        t_dies = logsumexp_max(t_die, axis=-1, temperature=_rel(rt, tie_safe_max(t_die)))

        # links: serialization, latency, congestion
        t_link = safe_divide(loads, bw[None, :])  # (nl, L)
        t_ser = logsumexp_max(t_link, axis=-1, temperature=_rel(rt, tie_safe_max(t_link)))
        stack = jnp.stack([t_dies, t_dram, t_ser], -1)
        t_busy = logsumexp_max(stack, axis=-1, temperature=_rel(rt, tie_safe_max(stack)))
        rho = safe_divide(t_link, t_busy[:, None])
        service = safe_divide(package.packet_B, bw)
        wait = md1_wait(rho, service[None, :]).wait_s  # (nl, L)
        link_bytes_l = jnp.sum(loads, -1)
        t_cong = safe_divide(jnp.sum(loads * wait, -1), injected)
        mean_hops = safe_divide(link_bytes_l, injected)
        t_lat = mean_hops * (pk.latency_s + package.hop_latency_s)
        t_layer = t_busy + t_lat + t_cong

        latency = jnp.sum(t_layer)
        compute_time = jnp.sum(t_comp)
        congestion_time = jnp.sum(t_cong)
        comm_time = latency - compute_time - congestion_time

        d2d_link_bytes = jnp.sum(link_bytes_l)
        d2d_injected = jnp.sum(injected)
        dram_bytes = jnp.sum(dram_node)
        edge_mm = jnp.sqrt(package.chiplet_area_mm2)
        e_compute = jnp.sum(c["flops"]) * package.energy_J_per_flop
        e_sram = jnp.sum(sram_bytes) * package.sram_energy_J_per_B
        e_d2d = d2d_link_bytes * 8.0 * pk.energy_J_per_bit
        transit = relu(d2d_link_bytes - d2d_injected)
        e_noc = (transit * edge_mm + d2d_injected * edge_mm) * package.noc_energy_J_per_B_mm
        e_dram = dram_bytes * package.dram_energy_J_per_B
        e_static = self.num_chiplets * package.static_W * latency
        energy = e_compute + e_sram + e_d2d + e_noc + e_dram + e_static

        # feasibility: reach of mesh and (built) diagonal links; positive mesh shoreline
        diag_on = jnp.max(enabled * c["is_diag"]) if self.graph.num_links else 0.0
        longest = pk.die_gap_mm * (1.0 + (np.sqrt(2.0) - 1.0) * diag_on)
        violation = relu(longest - pk.reach_mm) + jnp.sum(relu(-shore) * (1 - c["is_diag"]))
        sram_peak = tie_safe_max(sram_bytes)
        return MCMMetrics(
            edp_Js=energy * latency, latency_s=latency, energy_J=energy, compute_time_s=compute_time,
            communication_time_s=comm_time, congestion_time_s=congestion_time, die_time_s=jnp.sum(t_dies),
            serialization_time_s=jnp.sum(t_ser), dram_time_s=jnp.sum(t_dram), energy_compute_J=e_compute,
            energy_sram_J=e_sram, energy_d2d_J=e_d2d, energy_noc_J=e_noc, energy_dram_J=e_dram,
            energy_static_J=e_static, d2d_link_bytes=d2d_link_bytes, d2d_injected_bytes=d2d_injected,
            dram_bytes=dram_bytes, max_link_utilization=tie_safe_max(rho), link_bytes=jnp.sum(loads, 0),
            sram_peak_B=sram_peak, feasible=violation <= 0, violation=violation,
        )
