"""Multi-dimensional (hierarchical) networks and collectives in the style of ASTRA-sim.

A system is a tuple of :class:`Dimension` s, innermost first (e.g. NVLink inside a node, then InfiniBand across
nodes). A collective over all ranks runs dimension by dimension (Rashidi et al., "ASTRA-SIM: Enabling SW/HW
co-design exploration for distributed DL training platforms", ISPASS 2020; the hierarchical all-reduce of
Jia et al. 2018 / NCCL's tree across nodes):

- all-reduce: reduce-scatter along dims 0..k-2 (the buffer shrinks by each dim's size), all-reduce along the last
  dim, all-gather back along dims k-2..0;
- reduce-scatter / all-gather: the first / second half of that schedule (with a reduce-scatter / all-gather on the
  last dim);
- all-to-all, broadcast, reduce: the op along every dim on the full buffer;
- send/recv: over the outermost dimension with more than one rank.

Each phase uses :func:`collective_time` with the algorithms the dimension's ``kind`` supports, so the per-dimension
algorithm/protocol choice is an exact argmin or a softmin like the flat model.

A dimension's ``algorithm`` leaf makes that choice a design variable (ASTRA-sim's per-dimension collective
implementation, COSMIC's "collective algorithm" parameter; Won et al. 2025): an index into
:data:`DIMENSION_ALGORITHM_CHOICES`, ``0`` = NCCL's own choice, ``k`` = ``ALGORITHMS[k-1]`` forced (its fastest
protocol). A fractional index blends the two nearest choices' times (:func:`diffsys.primitives.choice_weights`), so
the choice is swept as a categorical and relaxed for gradient search. A forced algorithm the dimension's kind or the
op does not support (``direct`` for an all-reduce on a ring, ``bruck`` for an all-gather) falls back to NCCL's
choice for that phase, and the flat multi-node ring stays a candidate only while every dimension's choice is
``auto`` or ``ring``.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice, check_integer, check_positive, check_range
from .._pytree import as_float, as_optional_float
from ..primitives import choice_weights, logsumexp_max, logsumexp_min
from ._nccl import NcclParams
from ._collectives import (
    ALGORITHMS,
    NCCL_ALGORITHMS,
    NCCL_MODE_ALGORITHMS,
    TREE_SHAPES,
    VALID_ALGORITHMS,
    _min_last,
    bus_factor,
    collective_time,
    is_concrete,
    normalize_op,
    time_temperature,
)

DIMENSION_KINDS = ("switch", "ring", "fully_connected")
#: algorithms each dimension kind can run (ASTRA-sim: Ring -> ring, FullyConnected -> direct, Switch -> all).
KIND_ALGORITHMS = {
    "switch": ("ring", "tree", "halving_doubling", "direct", "bruck", "in_network"),
    "ring": ("ring",),
    "fully_connected": ("direct", "ring"),
}
#: values of :attr:`Dimension.algorithm`: index 0 = NCCL's choice, ``k`` = ``ALGORITHMS[k-1]`` forced
DIMENSION_ALGORITHM_CHOICES = ("auto",) + ALGORITHMS


class Dimension(eqx.Module):
    """One network dimension.

    Attributes:
        kind: ``"switch"`` (crossbar/NVSwitch/IB fat tree with full bisection), ``"ring"`` (bidirectional ring or
            torus dimension), ``"fully_connected"`` (point-to-point links to every peer).
        size: ranks along this dimension (float leaf).
        bandwidth_Bps: per-rank unidirectional bandwidth into this dimension (sum over its links), bytes/s.
        latency_s: per-step latency (Simple protocol), s.
        nic_bandwidth_Bps: per-rank NIC/injection limit; the dimension runs at ``min(bandwidth, nic)``
            (``inf`` = none).
        efficiency: achieved fraction of the bandwidth (0, 1].
        overhead_s: fixed launch cost of one collective on this dimension, s.
        in_network: whether the switch reduces in the network (NVLS / SHARP) -- structural (static).
        in_network_Bps: per-rank in-network reduction throughput (0 = same as ``bandwidth_Bps``).
        in_network_reference_Bps: the ``bandwidth_Bps`` at which ``in_network_Bps`` holds (0 = it is absolute).
            When set, the in-network throughput follows the links: ``in_network_Bps · bandwidth_Bps /
            in_network_reference_Bps``. NVLS moves its data through the same NVLink ports as the other algorithms,
            and NCCL's tuning model takes its bandwidth as a fraction of the NVLink bandwidth (``nvlsEfficiency``,
            NCCL ``src/graph/tuning.cc``); the fitted presets set it to their datasheet bandwidth.
        local_Bps: per-rank local processing throughput of the communication kernel (see
            :func:`collective_time`; ``inf`` = free).
        tree: shape of the tree algorithm on this dimension -- ``"binary"`` (across nodes) or ``"chain"`` (inside
            one node, as NCCL builds it; see :func:`collective_time`) -- structural (static).
        nccl: :class:`NcclParams` of NCCL's fitted cost model for this dimension (``None`` = the generic
            alpha-beta model). With it ``latency_s`` is the Simple step latency and ``in_network_Bps`` the
            per-GPU NVLS throughput (not scaled by ``efficiency``).
        algorithm: collective algorithm on this dimension as a design variable -- an index into
            :data:`DIMENSION_ALGORITHM_CHOICES` (``0`` = NCCL's choice; fractional = relaxed blend; see the module
            docstring). ``None`` (default) = NCCL's choice without the cost of evaluating the others.
    """

    kind: str = eqx.field(static=True)
    size: jnp.ndarray = eqx.field(converter=as_float)
    bandwidth_Bps: jnp.ndarray = eqx.field(converter=as_float)
    latency_s: jnp.ndarray = eqx.field(converter=as_float, default=1e-6)
    nic_bandwidth_Bps: jnp.ndarray = eqx.field(converter=as_float, default=float("inf"))
    efficiency: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    overhead_s: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    in_network_Bps: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    in_network: bool = eqx.field(static=True, default=False)
    in_network_reference_Bps: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    local_Bps: jnp.ndarray = eqx.field(converter=as_float, default=float("inf"))
    tree: str = eqx.field(static=True, default="binary")
    nccl: NcclParams | None = None
    algorithm: jnp.ndarray | None = eqx.field(converter=as_optional_float, default=None)

    def __check_init__(self):
        check_choice("Dimension.kind", self.kind, DIMENSION_KINDS)
        check_choice("Dimension.tree", self.tree, TREE_SHAPES)
        check_range("Dimension.size", self.size, 1.0, None)
        check_positive("Dimension.bandwidth_Bps", self.bandwidth_Bps)
        check_range("Dimension.latency_s", self.latency_s, 0.0, None)
        check_positive("Dimension.nic_bandwidth_Bps", self.nic_bandwidth_Bps)
        check_range("Dimension.efficiency", self.efficiency, 0.0, 1.0, lo_open=True)
        check_range("Dimension.overhead_s", self.overhead_s, 0.0, None)
        check_range("Dimension.in_network_Bps", self.in_network_Bps, 0.0, None)
        check_range("Dimension.in_network_reference_Bps", self.in_network_reference_Bps, 0.0, None)
        check_positive("Dimension.local_Bps", self.local_Bps)
        if self.algorithm is not None:
            check_range("Dimension.algorithm", self.algorithm, 0.0, len(DIMENSION_ALGORITHM_CHOICES) - 1.0)
        if self.nccl is not None and not isinstance(self.nccl, NcclParams):
            raise TypeError(f"Dimension.nccl must be an NcclParams or None, got {type(self.nccl).__name__}")

    @property
    def effective_bandwidth_Bps(self):
        return jnp.minimum(self.bandwidth_Bps, self.nic_bandwidth_Bps) * self.efficiency

    @property
    def in_network_throughput_Bps(self):
        """``in_network_Bps`` at this dimension's link bandwidth (scaled when ``in_network_reference_Bps`` is set)."""
        ref = self.in_network_reference_Bps
        return self.in_network_Bps * jnp.where(ref > 0, self.bandwidth_Bps / jnp.where(ref > 0, ref, 1.0), 1.0)

    def replace(self, **changes) -> Dimension:
        fields = {k: getattr(self, k) for k in ("kind", "size", "bandwidth_Bps", "latency_s", "nic_bandwidth_Bps",
                                                 "efficiency", "overhead_s", "in_network_Bps", "in_network",
                                                 "in_network_reference_Bps", "local_Bps", "tree", "nccl",
                                                 "algorithm")}
        fields.update(changes)
        return Dimension(**fields)



class HierarchicalCollectiveTime(NamedTuple):
    time_s: jnp.ndarray
    algbw_Bps: jnp.ndarray
    busbw_Bps: jnp.ndarray
    per_dimension_s: jnp.ndarray  # (..., len(dims)) time of the dimension-wise schedule in each dimension
    n_ranks: jnp.ndarray
    flat_ring_s: jnp.ndarray  # time of one ring through all ranks (inf where not applicable)


def _dim_algorithms(dim: Dimension, op: str, has_in_network: bool, algorithm):
    if algorithm != "auto":
        allowed = KIND_ALGORITHMS[dim.kind] if algorithm == "all" else (
            (algorithm,) if isinstance(algorithm, str) else tuple(algorithm))
    else:
        allowed = NCCL_ALGORITHMS[op] + ("in_network",) if dim.kind == "switch" else KIND_ALGORITHMS[dim.kind]
    algs = tuple(a for a in allowed if a in VALID_ALGORITHMS[op] and a in KIND_ALGORITHMS[dim.kind]
                 and (a != "in_network" or has_in_network))
    if not algs:  # fall back to whatever the op allows on this kind
        algs = tuple(a for a in KIND_ALGORITHMS[dim.kind] if a in VALID_ALGORITHMS[op] and a != "in_network")
    return algs or ("direct",)


def _phase_result(op, size_B, dim: Dimension, algorithm, *, protocol, temperature, reduce_Bps, imbalance,
                  dtype=None):
    """:func:`collective_time` of one phase on one dimension with the candidate algorithms ``algorithm`` names."""
    has_in = dim.in_network and dim.kind == "switch"
    bw = dim.effective_bandwidth_Bps
    if dim.nccl is not None:
        if algorithm not in ("auto", "all"):
            wanted = (algorithm,) if isinstance(algorithm, str) else tuple(algorithm)
            algorithm = tuple(a for a in wanted if a in NCCL_MODE_ALGORITHMS[op]
                              and (a != "in_network" or has_in)) or "auto"
        return collective_time(op, size_B, dim.size, bw, dim.latency_s, algorithm=algorithm, protocol=protocol,
                               temperature=temperature, overhead_s=dim.overhead_s, reduce_Bps=reduce_Bps,
                               in_network_Bps=dim.in_network_throughput_Bps if has_in else None, imbalance=imbalance,
                               local_Bps=dim.local_Bps, nccl=dim.nccl, dtype=dtype)
    algs = _dim_algorithms(dim, op, has_in, algorithm)
    in_bw = jnp.where(dim.in_network_Bps > 0, dim.in_network_throughput_Bps * dim.efficiency, bw)
    return collective_time(op, size_B, dim.size, bw, dim.latency_s, algorithm=algs, protocol=protocol,
                           temperature=temperature, overhead_s=dim.overhead_s, reduce_Bps=reduce_Bps,
                           in_network_Bps=in_bw if has_in else None, imbalance=imbalance, local_Bps=dim.local_Bps,
                           tree=dim.tree)


def _phase(op, size_B, dim: Dimension, *, algorithm, **kw):
    """Time of one phase on one dimension: NCCL's choice, or the dimension's ``algorithm`` leaf (module docstring)
    when the call leaves the choice to the dimensions (``algorithm="auto"``)."""
    auto = _phase_result(op, size_B, dim, algorithm, **kw)
    if dim.algorithm is None or algorithm != "auto":
        return auto.time_s
    has_in = dim.in_network and dim.kind == "switch"
    same = dim.nccl is not None or (_dim_algorithms(dim, op, has_in, "auto")
                                    == _dim_algorithms(dim, op, has_in, "all"))
    every = auto if same else _phase_result(op, size_B, dim, "all", **kw)
    # fastest protocol of each algorithm (inf where the op or the kind excludes it: NCCL's choice stands in)
    forced = _min_last(every.per_algorithm_s)
    forced = jnp.where(dim.size <= 1.0, 0.0, forced)
    choices = jnp.concatenate([auto.time_s[..., None],
                               jnp.where(jnp.isfinite(forced), forced, auto.time_s[..., None])], axis=-1)
    w = choice_weights(dim.algorithm, len(DIMENSION_ALGORITHM_CHOICES), kw["temperature"])
    return jnp.sum(w * choices, axis=-1)


def _flat_ring_weight(dims, algorithm, temperature):
    """Weight of the flat multi-node ring candidate: 1 unless a dimension's ``algorithm`` leaf forces something other
    than ``auto`` or ``ring`` (the product of each such dimension's weight on those two choices)."""
    m = 1.0
    if algorithm != "auto":
        return m
    keep = np.zeros(len(DIMENSION_ALGORITHM_CHOICES))
    keep[[0, DIMENSION_ALGORITHM_CHOICES.index("ring")]] = 1.0
    for d in dims:
        if d.algorithm is not None:
            m = m * jnp.sum(choice_weights(d.algorithm, len(keep), temperature) * keep, axis=-1)
    return m


def _sequential(op, S, dims, kw):
    """Per-dimension times of the dimension-by-dimension schedule (list aligned with ``dims``)."""
    per = []
    if op in ("all_reduce", "reduce_scatter", "all_gather"):
        shard = S
        for i, d in enumerate(dims):
            last = i == len(dims) - 1
            if op == "all_reduce":
                if last:
                    per.append(_phase("all_reduce", shard, d, **kw))
                else:
                    rs = _phase("reduce_scatter", shard, d, **kw)
                    ag = _phase("all_gather", shard, d, **kw)
                    # when every outer dimension has one rank this dimension is the last one that communicates:
                    # it runs a full all-reduce (and may use its own algorithm choice, e.g. NVLS)
                    outer = 1.0
                    for o in dims[i + 1:]:
                        outer = outer * o.size
                    ar = _phase("all_reduce", shard, d, **kw)
                    per.append(jnp.where(outer <= 1.0, ar, rs + ag))
            else:
                per.append(_phase(op, shard, d, **kw))
            shard = shard / d.size
    elif op == "send_recv":
        # outermost dimension that has more than one rank carries the message
        t_prev = jnp.zeros_like(S)
        for d in dims:
            t = _phase("send_recv", S, d, **kw)
            t_prev = jnp.where(d.size > 1, t, t_prev)
            per.append(jnp.zeros_like(S))
        per[-1] = t_prev
    else:
        for d in dims:
            per.append(_phase(op, S, d, **kw))
    return per


def hierarchical_collective_time(op: str, size_B, dims: tuple, *, algorithm="auto", protocol="auto",
                                 temperature=0.0, reduce_Bps=None, imbalance=1.0,
                                 schedule="sequential", dtype=None) -> HierarchicalCollectiveTime:
    """Time of a collective over all ``prod(d.size)`` ranks of a multi-dimensional network (see module docstring).

    ``size_B`` follows the nccl-tests convention for the *whole* communicator. ``schedule``:
    ``"sequential"`` runs the dimensions one after another (ASTRA-sim's baseline); ``"concurrent"`` splits the
    buffer into one part per dimension, part ``j`` starting its schedule at dimension ``j``, so every dimension's
    links are busy at once (the multi-dimensional torus all-reduce of TPU pods; Themis, Rashidi et al. ISCA 2022);
    its time is the busiest dimension's total (smooth max at ``temperature > 0``). ``dtype`` (element type name)
    only matters for dimensions with NCCL constants (no NVLS reduction of 8-bit types). For all-reduce, reduce-scatter
    and all-gather over several dimensions a flat ring through all ranks (pipelined across dimensions, NCCL's
    multi-node ring) is a further candidate: the result is the min (softmin) of the two. Returns
    :class:`HierarchicalCollectiveTime` with nccl-tests' algbw/busbw for the total rank count.
    """
    op = normalize_op(op)
    check_choice("schedule", schedule, ("sequential", "concurrent"))
    dims = tuple(dims)
    if not dims:
        raise ValueError("dims must contain at least one Dimension")
    for i, d in enumerate(dims):
        if not isinstance(d, Dimension):
            raise TypeError(f"dims[{i}] must be a Dimension, got {type(d).__name__}")
    check_range("size_B", size_B, 0.0, None)
    if isinstance(temperature, (int, float)) and temperature == 0:  # exact mode: dimension sizes are counts
        for i, d in enumerate(dims):
            if is_concrete(d.size):
                check_integer(f"dims[{i}].size", np.asarray(d.size), 1)
    S = jnp.asarray(size_B, dtype=jnp.result_type(float))
    kw = {"algorithm": algorithm, "protocol": protocol, "temperature": temperature, "reduce_Bps": reduce_Bps,
          "imbalance": imbalance, "dtype": dtype}
    D = len(dims)
    if schedule == "concurrent" and D > 1 and op in ("all_reduce", "reduce_scatter", "all_gather"):
        busy = [jnp.zeros_like(S) for _ in dims]
        for r in range(D):
            order = list(range(r, D)) + list(range(r))
            part = _sequential(op, S / D, tuple(dims[j] for j in order), kw)
            for j, t in zip(order, part):
                busy[j] = busy[j] + t
        per_dim = jnp.stack(jnp.broadcast_arrays(*busy), axis=-1)
        if isinstance(temperature, (int, float)) and temperature == 0:
            time_s = jnp.max(per_dim, axis=-1)
        else:
            time_s = logsumexp_max(per_dim, axis=-1,
                                   temperature=time_temperature(temperature, jnp.mean(per_dim, -1))[..., None]
                                   if jnp.ndim(per_dim) > 1 else time_temperature(temperature,
                                                                                       jnp.mean(per_dim)))
    else:
        per_dim = jnp.stack(jnp.broadcast_arrays(*_sequential(op, S, dims, kw)), axis=-1)
        time_s = jnp.sum(per_dim, axis=-1)
    n = 1.0
    for d in dims:
        n = n * d.size
    use_flat = (D > 1 and op in ("all_reduce", "reduce_scatter", "all_gather")
                and (algorithm in ("auto", "all") or "ring" in ((algorithm,) if isinstance(algorithm, str)
                                                                else tuple(algorithm))))
    if use_flat:
        flat = _flat_ring(op, S, dims, n, protocol=protocol, temperature=temperature, reduce_Bps=reduce_Bps)
        seq = time_s
        if isinstance(temperature, (int, float)) and temperature == 0:
            time_s = jnp.minimum(time_s, flat)
        else:
            both = jnp.stack(jnp.broadcast_arrays(time_s, flat), axis=-1)
            t = time_temperature(temperature, jnp.mean(both, -1))
            time_s = logsumexp_min(both, axis=-1, temperature=t[..., None] if jnp.ndim(t) else t)
        if any(d.nccl is not None for d in dims):
            # one communicating dimension: the flat ring is that dimension's own ring, already among its
            # candidates (and the generic flat-ring model must not undercut NCCL's fitted constants there)
            outer = 1.0
            for d in dims[1:]:
                outer = outer * d.size
            time_s = jnp.where(outer <= 1.0, seq, time_s)
        m = _flat_ring_weight(dims, algorithm, temperature)
        if not isinstance(m, float):
            time_s = m * time_s + (1.0 - m) * seq
    else:
        flat = jnp.full_like(time_s, jnp.inf)
    safe = jnp.where(time_s > 0, time_s, 1.0)
    algbw = jnp.where(time_s > 0, S / safe, 0.0)
    return HierarchicalCollectiveTime(time_s=time_s, algbw_Bps=algbw, busbw_Bps=algbw * bus_factor(op, n),
                                      per_dimension_s=per_dim, n_ranks=jnp.asarray(n), flat_ring_s=flat)


def _flat_ring(op, S, dims, n, *, protocol, temperature, reduce_Bps):
    """One ring through all ranks, pipelined across dimensions (NCCL's multi-node ring).

    Every ring link carries the same bytes; the ``∏_{j<i} n_j`` ranks under one dimension-``i`` boundary share
    that boundary's crossings, so the bottleneck bandwidth is ``min_i B_i·∏_{j<i} n_j`` over dimensions with more
    than one rank. Of the ring's ``2(N-1)`` all-reduce steps, ``2(∏_{j>=i} n_j - ∏_{j>i} n_j)`` cross dimension
    ``i`` and pay its latency (NCCL ``tuning.cc`` splits ring latency into intra- and inter-node steps the same
    way); the per-step latency passed on is their average.
    """
    inner = 1.0
    bottleneck = jnp.inf
    for d in dims:
        b = d.effective_bandwidth_Bps * inner
        bottleneck = jnp.minimum(bottleneck, jnp.where(d.size > 1, b, jnp.inf))
        inner = inner * d.size
    steps_lat = 0.0
    for i, d in enumerate(dims):
        outer_incl = 1.0
        for o in dims[i:]:
            outer_incl = outer_incl * o.size
        outer_excl = outer_incl / d.size
        steps_lat = steps_lat + (outer_incl - outer_excl) * d.latency_s
    alpha = steps_lat / jnp.maximum(n - 1.0, 1.0)
    bottleneck = jnp.where(jnp.isfinite(bottleneck), bottleneck, dims[0].effective_bandwidth_Bps)
    overhead = dims[0].overhead_s
    local = dims[0].local_Bps
    for d in dims[1:]:
        overhead = jnp.maximum(overhead, d.overhead_s)
        local = jnp.minimum(local, d.local_Bps)
    # with NCCL constants on the innermost dimension the ring pays NCCL's per-protocol base latencies too (its
    # step latency is the average α above; LL / LL128 keep their fitted ratios to it)
    return collective_time(op, S, n, bottleneck, alpha, algorithm="ring", protocol=protocol,
                           temperature=temperature, overhead_s=overhead, reduce_Bps=reduce_Bps,
                           local_Bps=local, nccl=dims[0].nccl).time_s
