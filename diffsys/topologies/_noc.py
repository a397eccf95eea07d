"""On-chip network (k-ary n-cube mesh/torus) latency versus load: zero-load pipeline + per-channel queueing.

Model (Dally & Towles, *Principles and Practices of Interconnection Networks*, 2004: §3.3 channel load and
throughput, §23.2 latency = zero-load + contention; Ogras, Bogdan & Marculescu, "An analytical approach for
network-on-chip performance analysis", IEEE TCAD 29(12), 2010, for per-channel M/G/1 queues):

- Routes: dimension-order routing (dimension 0 = x first), minimal direction on tori (ties go +), as BookSim2's
  ``dor``. Routes depend only on ``(k, n, topology)`` and are built once (host numpy), like a jax-md neighbour list.
- Channel load ``γ_c`` (flits/cycle) = Σ over (src, dst) flows through ``c`` of ``rate·T[src, dst]·packet_size``
  (:func:`channel_loads`). Saturation throughput ``λ_sat = capacity / max_c γ_c(λ=1)`` (Dally & Towles eq. 3.4).
- Zero-load latency of a flow with ``h`` links: ``(h + 1)·(t_route + t_VA + t_SA + 1) + h·t_link + 2 + 1 +
  (packet_size - 1)`` cycles: every router on the path (source and destination included) costs the routing,
  VC-allocation and switch-allocation delays plus one cycle of switch traversal; every link ``t_link`` cycles; the
  injection and ejection channels one cycle each; one cycle from packet creation to the head of the source queue;
  and the tail flit follows the head by ``packet_size - 1`` cycles (serialization). These are BookSim2's ``iq``
  router stages (``routing_delay``, ``vc_alloc_delay``, ``sw_alloc_delay``; channel latency 1).
- Contention: each channel (network, injection and ejection) is an M/D/1 queue with service time
  ``packet_size / capacity`` cycles and utilization ``γ_c / capacity`` (:func:`channel_queueing_latency`, built on
  :func:`diffsys.primitives.mg1_wait`); a packet waits at each channel of its route. Past saturation the wait
  continues linearly (finite gradients) and ``saturated`` is flagged.
- Channel capacity: 1 flit/cycle, reduced when the buffers cannot cover the credit round trip:
  ``min(1, num_vcs·vc_buf_size / (credit_delay + 2·t_link + t_VA + t_SA + 1))`` (Dally & Towles §16.3).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice, check_integer, check_range
from .._pytree import as_float
from ..primitives import logsumexp_max, mg1_wait, smooth_min
from ._traffic import as_traffic_matrix

NOC_TOPOLOGIES = ("mesh", "torus")
#: share of the same-input load that does not contend (1 = perfectly serialized); fitted on the 4x4-mesh transpose
#: BookSim curve (loads <= 80% of saturation) and reported on the 6x6-mesh uniform curve (docs/network.md).
SERIALIZED_FRACTION = 0.86


class RouteTable(NamedTuple):
    """Dimension-order routes of every (src, dst) flow of a k-ary n-cube (host numpy arrays, built once).

    ``flow_channels[f, j]`` is the j-th network channel of flow ``f = src·N + dst`` (padded with the dummy channel
    ``num_channels``); channel ``c = (node·n + dim)·2 + (0 for +, 1 for -)`` leaves ``node``.
    """

    k: int
    n: int
    topology: str
    num_nodes: int
    num_channels: int
    flow_channels: np.ndarray  # (N*N, max_hops) int32
    hops: np.ndarray  # (N*N,) links traversed
    channel_exists: np.ndarray  # (num_channels,) bool (mesh edges have no outgoing channel)
    flow_path: np.ndarray  # (N*N, max_hops + 1) network channels then the ejection channel, in the unified
    #                        index space [network C | injection N | ejection N | dummy]
    flow_turn: np.ndarray  # (N*N, max_hops + 1) id of the (input channel, output channel) turn taken at each step
    num_turns: int
    turn_out: np.ndarray  # (num_turns,) unified id of each turn's output channel (padding turn -> dummy)


@functools.lru_cache(maxsize=64)
def dor_routes(k: int, n: int, topology: str = "mesh") -> RouteTable:
    """Dimension-order routes for a k-ary n-mesh or n-torus (cached; structural, not traced)."""
    check_choice("topology", topology, NOC_TOPOLOGIES)
    check_integer("k", k, 2)
    check_integer("n", n, 1)
    k, n = int(k), int(n)
    N = k**n
    C = N * n * 2
    coords = np.stack([(np.arange(N) // k**i) % k for i in range(n)], axis=1)
    routes, hops = [], []
    for s in range(N):
        for d in range(N):
            cur = coords[s].copy()
            chans = []
            for dim in range(n):
                delta = coords[d, dim] - cur[dim]
                if topology == "torus":
                    fwd = delta % k
                    step, count = (1, fwd) if fwd <= k - fwd else (-1, k - fwd)
                else:
                    step, count = (1 if delta >= 0 else -1), abs(delta)
                for _ in range(count):
                    node = int(sum(cur[i] * k**i for i in range(n)))
                    chans.append((node * n + dim) * 2 + (0 if step > 0 else 1))
                    cur[dim] = (cur[dim] + step) % k
            routes.append(chans)
            hops.append(len(chans))
    max_h = max(max(hops), 1)
    table = np.full((N * N, max_h), C, dtype=np.int32)
    for f, chans in enumerate(routes):
        table[f, : len(chans)] = chans
    exists = np.ones(C, bool)
    if topology == "mesh":
        for node in range(N):
            for dim in range(n):
                exists[(node * n + dim) * 2 + 0] = coords[node, dim] < k - 1
                exists[(node * n + dim) * 2 + 1] = coords[node, dim] > 0
    dummy = C + 2 * N
    path = np.full((N * N, max_h + 1), dummy, dtype=np.int32)
    turn_keys = np.full((N * N, max_h + 1), -1, dtype=np.int64)
    for f, chans in enumerate(routes):
        s_, d_ = divmod(f, N)
        seq = list(chans) + [C + N + d_]
        prev = [C + s_] + seq[:-1]
        path[f, : len(seq)] = seq
        turn_keys[f, : len(seq)] = np.asarray(prev, np.int64) * (dummy + 1) + np.asarray(seq, np.int64)
    valid = turn_keys >= 0
    uniq, inv = np.unique(turn_keys[valid], return_inverse=True)
    turns = np.full(turn_keys.shape, len(uniq), dtype=np.int32)  # padding -> its own (ignored) id
    turns[valid] = inv
    turn_out = np.append(uniq % (dummy + 1), dummy).astype(np.int32)
    return RouteTable(k, n, topology, N, C, table, np.asarray(hops, np.int32), exists, path, turns,
                      len(uniq) + 1, turn_out)


def channel_loads(flow_rates, routes: RouteTable):
    """Load of every network channel (same unit as ``flow_rates``, e.g. flits/cycle).

    Args:
        flow_rates: ``(N, N)`` rate from each source to each destination (e.g. ``λ·packet_size·T``); may carry
            leading batch axes via ``vmap``.
        routes: :func:`dor_routes` table.

    Returns:
        ``(num_channels,)`` loads.
    """
    r = jnp.reshape(jnp.asarray(flow_rates), (-1,))
    per_hop = jnp.broadcast_to(r[:, None], routes.flow_channels.shape)
    loads = jnp.zeros(routes.num_channels + 1, per_hop.dtype).at[routes.flow_channels.ravel()].add(per_hop.ravel())
    return loads[:-1]


def routing_incidence(routes: RouteTable) -> np.ndarray:
    """Dense ``(N·N, num_channels)`` matrix: entry ``[f, c]`` = 1 when flow ``f = src·N + dst`` uses channel ``c``.

    Any routing (including split/adaptive routing with fractional entries, or graphs that are not k-ary n-cubes,
    e.g. chiplet meshes with diagonal links) can be written in this form and used with
    :func:`channel_loads_from_incidence`."""
    inc = np.zeros((routes.num_nodes**2, routes.num_channels + 1))
    rows = np.repeat(np.arange(routes.num_nodes**2), routes.flow_channels.shape[1])
    np.add.at(inc, (rows, routes.flow_channels.ravel()), 1.0)
    return inc[:, :-1]


def channel_loads_from_incidence(flow_rates, incidence):
    """Channel loads ``= vec(flow_rates) @ incidence`` for an arbitrary routing incidence matrix
    (``(F, C)``, entries = share of flow ``f`` carried by channel ``c``; differentiable in both arguments)."""
    return jnp.reshape(jnp.asarray(flow_rates), (-1,)) @ jnp.asarray(incidence)


class ChannelQueueing(NamedTuple):
    wait_cycles: jnp.ndarray  # (num_channels,) mean wait at each channel
    utilization: jnp.ndarray  # (num_channels,)
    saturated: jnp.ndarray  # bool: some channel at or past rho_max


def channel_queueing_latency(loads, service_cycles, capacity=1.0, *, scv=0.0, rho_max=0.99) -> ChannelQueueing:
    """Per-channel M/G/1 waiting time for channel ``loads`` (flits/cycle) and packet service ``service_cycles``.

    Utilization ``ρ = load / capacity``; wait ``ρ(1+scv)/(2(1-ρ))·service`` (``scv = 0``: M/D/1, fixed-size
    packets), continued linearly past ``rho_max`` (:func:`diffsys.primitives.mg1_wait`)."""
    rho = jnp.asarray(loads) / capacity
    q = mg1_wait(rho, jnp.asarray(service_cycles) / capacity, scv=scv, rho_max=rho_max)
    return ChannelQueueing(q.wait_s, rho, jnp.any(q.saturated))


def contention_wait(rho_channel, rho_turn, service_cycles, *, scv=0.0, rho_max=0.99, serialized_fraction=1.0):
    """Mean wait of a packet at an output channel shared by several input channels.

    Packets that enter through the same input channel are already serialized behind each other, so only the load
    from *other* inputs (and the residual of the packet in service) delays it: the M/G/1 wait with the arriving
    work ``ρ_channel - ρ_turn`` in the numerator and the channel's total ``ρ`` in the denominator,
    ``(ρ_c - ρ_turn)(1 + scv)/(2(1 - ρ_c))·S`` (the input-port contention of Ogras, Bogdan & Marculescu 2010,
    eq. 7, reduced to a single class per input). Continues linearly past ``rho_max`` like
    :func:`diffsys.primitives.mg1_wait`.
    """
    rho_c = jnp.asarray(rho_channel)
    other = jnp.clip(rho_c - serialized_fraction * jnp.asarray(rho_turn), 0.0, None)
    base = mg1_wait(rho_c, service_cycles, scv=scv, rho_max=rho_max).wait_s  # ρ(1+scv)/(2(1-ρ))·S
    return base * jnp.where(rho_c > 0, other / jnp.where(rho_c > 0, rho_c, 1.0), 0.0)


class NocParams(eqx.Module):
    """Router/link parameters (cycles, flits) of an input-queued VC router network (BookSim2 ``iq`` names)."""

    routing_delay: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    vc_alloc_delay: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    sw_alloc_delay: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    credit_delay: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    link_delay: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    packet_size: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    num_vcs: jnp.ndarray = eqx.field(converter=as_float, default=16.0)
    vc_buf_size: jnp.ndarray = eqx.field(converter=as_float, default=8.0)

    def __check_init__(self):
        for name in ("routing_delay", "vc_alloc_delay", "sw_alloc_delay", "credit_delay"):
            check_range(f"NocParams.{name}", getattr(self, name), 0.0, None)
        check_range("NocParams.link_delay", self.link_delay, 1.0, None)
        check_range("NocParams.packet_size", self.packet_size, 1.0, None)
        check_range("NocParams.num_vcs", self.num_vcs, 1.0, None)
        check_range("NocParams.vc_buf_size", self.vc_buf_size, 1.0, None)

    @property
    def router_delay(self):
        """Cycles a head flit spends in one router: route + VC alloc + switch alloc + switch traversal."""
        return self.routing_delay + self.vc_alloc_delay + self.sw_alloc_delay + 1.0

    @property
    def channel_capacity(self):
        """Flits/cycle one channel sustains given the credit round trip (Dally & Towles §16.3)."""
        rtt = self.credit_delay + 2.0 * self.link_delay + self.vc_alloc_delay + self.sw_alloc_delay + 1.0
        return jnp.minimum(1.0, self.num_vcs * self.vc_buf_size / rtt)


class NocMetrics(NamedTuple):
    latency_cycles: jnp.ndarray  # average packet latency (creation -> tail ejected), packets weighted by rate
    zero_load_latency_cycles: jnp.ndarray
    network_latency_cycles: jnp.ndarray  # latency minus the source-queue wait
    accepted_rate: jnp.ndarray  # packets/node/cycle delivered (min of offered and saturation)
    saturation_rate: jnp.ndarray  # injection rate (packets/node/cycle) at which the busiest channel saturates
    max_channel_utilization: jnp.ndarray
    hops_avg: jnp.ndarray  # links per packet
    saturated: jnp.ndarray  # bool
    feasible: jnp.ndarray  # bool: not saturated


def noc_latency(injection_rate, params: NocParams, traffic="uniform", *, k: int, n: int = 2, topology="mesh",
                temperature=0.0, rho_max=0.99, scv=0.0, serialized_fraction=SERIALIZED_FRACTION) -> NocMetrics:
    """Average packet latency (cycles) of a k-ary n-mesh/torus under DOR at ``injection_rate`` packets/node/cycle.

    ``traffic`` is a pattern name (:data:`PATTERNS`) or an ``(N, N)`` matrix (rows = per-source destination
    distribution; a row's sum scales that node's injection). ``k``, ``n``, ``topology`` are structural (static).
    ``temperature > 0`` smooths the max over channels (relative to the max load) and the accepted-rate min.
    """
    routes = dor_routes(k, n, topology)
    T = as_traffic_matrix(traffic, k, n) if isinstance(traffic, str) else _raw_matrix(traffic, routes.num_nodes)
    lam = jnp.asarray(injection_rate, dtype=jnp.result_type(float))
    P = params.packet_size
    cap = params.channel_capacity
    T = jnp.asarray(T, dtype=lam.dtype)
    N, C = routes.num_nodes, routes.num_channels
    # --- per unit injection rate (independent of λ: computed once per traffic matrix, also under vmap over λ) ---
    flows = jnp.reshape(T, (-1,))
    total = jnp.sum(flows)
    turn_unit = jnp.zeros(routes.num_turns, lam.dtype).at[routes.flow_turn.ravel()].add(
        jnp.broadcast_to(flows[:, None], routes.flow_turn.shape).ravel())  # packets through each turn
    chan_unit = jnp.zeros(C + 2 * N + 1, lam.dtype).at[routes.turn_out].add(turn_unit)  # network + ejection
    src = jnp.sum(T, axis=1)
    chan_unit = chan_unit.at[C: C + N].set(src)[:-1]  # injection channels
    hops_avg = jnp.sum(flows * jnp.asarray(routes.hops, lam.dtype)) / total
    # --- per λ: utilizations, waits, averages (O(turns + channels)) ---
    rho_chan = lam * P * chan_unit / cap
    rho_out = jnp.concatenate([rho_chan, jnp.zeros(1, lam.dtype)])[routes.turn_out]
    w_turn = contention_wait(rho_out, lam * P * turn_unit / cap, P / cap, scv=scv, rho_max=rho_max,
                             serialized_fraction=serialized_fraction)
    w_turn = jnp.where(routes.turn_out < C + 2 * N, w_turn, 0.0)
    net_wait = jnp.sum(turn_unit * w_turn) / total  # packets weighted by the turns they take
    w_inj = mg1_wait(rho_chan[C: C + N], P / cap, scv=scv, rho_max=rho_max).wait_s
    inj_wait = jnp.sum(src * w_inj) / total
    t0_avg = (hops_avg + 1.0) * params.router_delay + hops_avg * params.link_delay + 3.0 + (P - 1.0)
    net_lat = t0_avg + net_wait
    lat = net_lat + inj_wait
    # saturation: every channel load scales linearly with λ
    unit = P * chan_unit
    if isinstance(temperature, (int, float)) and temperature == 0:
        max_unit = jnp.max(unit)
    else:
        max_unit = logsumexp_max(unit, temperature=temperature * jnp.max(unit))
    lam_sat = cap / max_unit
    accepted = smooth_min(lam, lam_sat, temperature * lam_sat if not (
        isinstance(temperature, (int, float)) and temperature == 0) else 0.0)
    saturated = lam >= lam_sat * rho_max
    return NocMetrics(latency_cycles=lat, zero_load_latency_cycles=t0_avg, network_latency_cycles=net_lat,
                      accepted_rate=accepted, saturation_rate=lam_sat, max_channel_utilization=jnp.max(rho_chan),
                      hops_avg=hops_avg, saturated=saturated, feasible=~saturated)


def _raw_matrix(traffic, N):
    T = jnp.asarray(traffic, dtype=jnp.result_type(float))
    if T.shape != (N, N):
        raise ValueError(f"traffic matrix must have shape ({N}, {N}), got {T.shape}")
    return T
