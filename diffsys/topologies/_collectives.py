"""Collective-communication time: alpha-beta-gamma cost models with NCCL-style protocol and algorithm selection.

Every algorithm's time is ``steps·α + bytes_on_the_busiest_link/β + bytes_reduced/γ`` with

- ``α`` = ``latency_s`` (per step, one message hop; scaled per protocol),
- ``β`` = ``bandwidth_Bps·efficiency`` (per rank, per direction; scaled per protocol),
- ``γ`` = ``reduce_Bps`` (local reduction throughput; ``None`` = free).

Sources:
- Thakur, Rabenseifner & Gropp, "Optimization of collective communication operations in MPICH", IJHPCA 19(1), 2005:
  ring, recursive doubling/halving, Rabenseifner reduce-scatter+all-gather all-reduce, pairwise / Bruck all-to-all,
  scatter+all-gather (van de Geijn) broadcast.
- Chan, Heimlich, Purkayastha & van de Geijn, "Collective communication: theory, practice, and experience",
  CCPE 19(13), 2007: lower bounds and the pipelined (chunked) ring/chain broadcast.
- Sanders, Speck & Träff, "Two-tree algorithms for full bandwidth broadcast, reduction and scan", Parallel
  Computing 35(12), 2009: the double binary tree NCCL uses for all-reduce (``2·log2 n`` latency, ``2·S/β`` bytes).
- NCCL ``src/graph/tuning.cc`` and the NCCL user guide: LL (8-byte lines carrying a 4-byte flag, lowest latency;
  tuning.cc credits it with 1/4 of the Simple bandwidth for all-reduce and reduce and 1/3 for the other
  collectives -- half the wire carries flags, and the flag polling and in-register reduction cost the rest), LL128 (128-byte lines with 8 bytes of flags: 120/128 of bandwidth), Simple (full
  bandwidth, memory fences: highest per-step latency); per-step NVLink ring latencies LL 0.6 µs, LL128 1.9 µs,
  Simple 3.4 µs, whose ratios to Simple are the protocol latency factors below. NCCL's own selection is an argmin of
  the same cost over (algorithm, protocol) per message size; ``algorithm="auto"`` reproduces that argmin (exact)
  or a softmin (relaxed, ``temperature > 0``). Inside one node NCCL's "tree" is a chain through the node's GPUs
  (binary trees span nodes only): tuning.cc charges it ``2·(nRanks/nNodes - 1)`` intra-node steps, and
  Jeaugey, "Massively scale your deep learning training with NCCL 2.4" (NVIDIA blog, 2019) describes the
  intra-node chain; ``tree="chain"`` selects that shape.
- NVLink SHARP (NVLS) / InfiniBand SHARP in-network reduction: the switch reduces, each rank sends its buffer once
  and receives the result once (Graham et al., "Scalable Hierarchical Aggregation Protocol (SHArP)", COMHPC 2016).
- nccl-tests ``doc/PERFORMANCE.md``: ``algbw = size/time``; ``busbw = algbw·2(n-1)/n`` (all-reduce),
  ``·(n-1)/n`` (reduce-scatter, all-gather, all-to-all), ``·1`` (broadcast, reduce, send/recv). ``size`` is the
  full buffer: the all-reduce buffer, the all-gather *output*, the reduce-scatter *input*, the per-rank all-to-all
  send buffer.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice, check_integer, check_positive, check_range
from ..primitives import (
    logsumexp_min,
    soft_argmin_weights,
    soft_ceil,
)

OPS = ("all_reduce", "reduce_scatter", "all_gather", "all_to_all", "broadcast", "reduce", "send_recv")
ALGORITHMS = ("ring", "tree", "halving_doubling", "direct", "bruck", "in_network")
PROTOCOLS = ("ll", "ll128", "simple")
#: fraction of link bandwidth carrying payload per protocol (NCCL tuning.cc: LL 1/3 of the Simple bandwidth -- 1/4
#: for reductions, see :data:`LL_REDUCTION_BANDWIDTH_FRACTION` --, LL128 120/128 bytes, Simple all).
PROTOCOL_BANDWIDTH_FRACTION = {"ll": 1.0 / 3.0, "ll128": 120.0 / 128.0, "simple": 1.0}
#: LL bandwidth fraction for all-reduce and reduce (NCCL tuning.cc: ``busBw * 1.0/4.0`` for these collectives).
LL_REDUCTION_BANDWIDTH_FRACTION = 1.0 / 4.0
TREE_SHAPES = ("binary", "chain")
#: per-step latency relative to Simple (NCCL tuning.cc NVLink ring hwLat: 0.6, 1.9, 3.4 µs).
PROTOCOL_LATENCY_FACTOR = {"ll": 0.6 / 3.4, "ll128": 1.9 / 3.4, "simple": 1.0}

#: algorithms defined for each op (others are structurally excluded, not masked).
VALID_ALGORITHMS = {
    "all_reduce": ("ring", "tree", "halving_doubling", "direct", "in_network"),
    "reduce_scatter": ("ring", "halving_doubling", "direct", "in_network"),
    "all_gather": ("ring", "halving_doubling", "direct", "in_network"),
    "all_to_all": ("direct", "bruck", "ring"),
    "broadcast": ("ring", "tree", "halving_doubling", "direct"),
    "reduce": ("ring", "tree", "halving_doubling", "direct"),
    "send_recv": ("direct",),
}
#: what NCCL chooses among (``algorithm="auto"``); ``in_network`` joins when ``in_network_Bps`` is given.
NCCL_ALGORITHMS = {
    "all_reduce": ("ring", "tree"),
    "reduce_scatter": ("ring",),
    "all_gather": ("ring",),
    "all_to_all": ("direct",),
    "broadcast": ("ring",),
    "reduce": ("ring",),
    "send_recv": ("direct",),
}
_OP_ALIASES = {"allreduce": "all_reduce", "alltoall": "all_to_all", "allgather": "all_gather",
               "reducescatter": "reduce_scatter", "sendrecv": "send_recv", "all2all": "all_to_all"}


class CollectiveTime(NamedTuple):
    """Result of :func:`collective_time`. ``weights[a, p]`` is the selection weight of algorithm ``ALGORITHMS[a]``
    with protocol ``PROTOCOLS[p]`` (one-hot when exact); ``per_algorithm_s`` the time of each (``inf`` if excluded)."""

    time_s: jnp.ndarray
    algbw_Bps: jnp.ndarray
    busbw_Bps: jnp.ndarray
    weights: jnp.ndarray
    per_algorithm_s: jnp.ndarray


#: smallest time scale a relative temperature is taken of (s); keeps the softmin's temperature away from 0 when
#: every candidate time is 0 (one rank), where ``x/t`` would give NaN gradients
MIN_TIME_SCALE_S = 1e-12


def time_temperature(temperature, mean_time):
    """A dimensionless temperature turned into seconds: ``temperature · max(mean_time, 1 ps)``."""
    return temperature * jnp.maximum(jnp.abs(mean_time), MIN_TIME_SCALE_S)


def normalize_op(op: str) -> str:
    """Canonical op name (accepts nccl-tests spellings such as ``alltoall``)."""
    key = str(op).lower().replace("-", "_")
    key = _OP_ALIASES.get(key, key)
    check_choice("op", key, OPS)
    return key


def bus_factor(op: str, n_ranks):
    """nccl-tests bus-bandwidth factor: ``busbw = algbw · bus_factor`` (doc/PERFORMANCE.md)."""
    op = normalize_op(op)
    n = jnp.asarray(n_ranks, dtype=jnp.result_type(float))
    if op == "all_reduce":
        return 2.0 * (n - 1.0) / n
    if op in ("reduce_scatter", "all_gather", "all_to_all"):
        return (n - 1.0) / n
    return jnp.ones_like(n)


def _pipelined(stages, alpha, bytes_per_link, beta, chunk_B):
    """Chunked pipeline over ``stages`` hops: ``(stages - 1 + m)(α + c/β)`` with ``m = bytes/c`` chunks, each chunk
    paying the step latency (Chan et al. 2007, §6; Pješivac-Grbović et al. 2007).

    With ``chunk_B=None`` chunks are streamed with many in flight (NCCL keeps several chunks per channel
    outstanding), so only the pipeline fill pays latency: ``stages·α + bytes/β`` (NCCL's own cost model)."""
    s1 = jnp.maximum(stages - 1.0, 0.0)
    if chunk_B is None:
        return (s1 + 1.0) * alpha + bytes_per_link / beta
    c = jnp.asarray(chunk_B, dtype=jnp.result_type(float))
    m = jnp.maximum(bytes_per_link / c, 1.0)
    return (s1 + m) * (alpha + bytes_per_link / m / beta)


def _protocol_bandwidth_fraction(op, protocol):
    if protocol == "ll" and op in ("all_reduce", "reduce"):
        return LL_REDUCTION_BANDWIDTH_FRACTION
    return PROTOCOL_BANDWIDTH_FRACTION[protocol]


def _algorithm_time(op, alg, S, n, alpha, beta, gamma_inv, in_net_beta, imbalance, chunk_B, temperature,
                    tree="binary"):
    """Time of one algorithm for one op (α, β already protocol-adjusted). ``gamma_inv`` = s per reduced byte."""
    f = (n - 1.0) / n  # fraction of the buffer that crosses each rank's link in a ring/halving phase
    lg = jnp.log2(n)
    lgc = soft_ceil(lg, temperature)  # rounds of recursive halving/doubling (non-power-of-two: next power)
    if op == "send_recv":
        return alpha + S / beta
    if op == "all_reduce":
        if alg == "ring":
            return 2 * (n - 1) * alpha + 2 * f * S / beta + f * S * gamma_inv
        if alg == "tree":  # double binary tree, pipelined: depth 2·log2 n (up + down), 2·S per rank (Sanders 2009);
            # NCCL's intra-node chain: depth 2(n-1) (tuning.cc), same bytes
            depth = 2 * (n - 1) if tree == "chain" else 2 * lgc
            return _pipelined(depth, alpha, 2 * S, beta, chunk_B) + S * gamma_inv
        if alg == "halving_doubling":  # Rabenseifner: recursive-halving RS + recursive-doubling AG
            return 2 * lgc * alpha + 2 * f * S / beta + f * S * gamma_inv
        if alg == "direct":  # two-shot: direct RS then direct AG over a full crossbar
            return 2 * alpha + 2 * f * S / beta + f * S * gamma_inv
        if alg == "in_network":  # NVLS/SHARP: send S up, receive S down (full duplex), switch reduces
            return 2 * alpha + S / in_net_beta
    if op in ("reduce_scatter", "all_gather"):
        red = f * S * gamma_inv if op == "reduce_scatter" else 0.0
        if alg == "ring":
            return (n - 1) * alpha + f * S / beta + red
        if alg == "halving_doubling":
            return lgc * alpha + f * S / beta + red
        if alg == "direct":
            return alpha + f * S / beta + red
        if alg == "in_network":  # multicast (AG) / multimem reduce (RS): one exchange with the switch
            return alpha + f * S / in_net_beta
    if op == "all_to_all":
        load = imbalance * f * S  # bytes leaving the busiest rank (imbalance = max/mean, MoE routing skew)
        if alg == "direct":  # all sends posted at once through a crossbar (NCCL: grouped send/recv)
            return alpha + load / beta
        if alg == "ring":  # pairwise exchange, n-1 rounds (Thakur 2005 §4.6)
            return (n - 1) * alpha + load / beta
        if alg == "bruck":  # log2 n rounds, each moving half the buffer (Bruck et al. 1997)
            return lgc * alpha + imbalance * 0.5 * lgc * S / beta
    if op in ("broadcast", "reduce"):
        red = S * gamma_inv if op == "reduce" else 0.0
        if alg == "ring":  # pipelined chain (NCCL ring broadcast/reduce)
            return _pipelined(n - 1, alpha, S, beta, chunk_B) + red
        if alg == "tree":  # binomial tree (chain: n-1 hops), whole message per round
            if tree == "chain":
                return _pipelined(n - 1, alpha, S, beta, chunk_B) + S * gamma_inv * (op == "reduce")
            return lgc * (alpha + S / beta) + lgc * S * gamma_inv * (op == "reduce")
        if alg == "halving_doubling":  # scatter + all-gather (van de Geijn), or RS + gather for reduce
            return (lgc + n - 1) * alpha + 2 * f * S / beta + f * S * gamma_inv * (op == "reduce")
        if alg == "direct":  # root exchanges with every rank through a crossbar
            return alpha + (n - 1) * S / beta + (n - 1) * S * gamma_inv * (op == "reduce")
    raise ValueError(f"algorithm {alg!r} is not defined for op {op!r}")  # pragma: no cover


def _resolve_algorithms(op, algorithm, has_in_network):
    if algorithm == "auto":
        algs = NCCL_ALGORITHMS[op] + (("in_network",) if has_in_network and "in_network" in VALID_ALGORITHMS[op]
                                      else ())
    elif algorithm == "all":
        algs = tuple(a for a in VALID_ALGORITHMS[op] if a != "in_network" or has_in_network)
    else:
        algs = (algorithm,) if isinstance(algorithm, str) else tuple(algorithm)
        for a in algs:
            check_choice(f"algorithm for {op}", a, VALID_ALGORITHMS[op])
        if "in_network" in algs and not has_in_network:
            raise ValueError("algorithm 'in_network' needs in_network_Bps (the switch's reduction bandwidth) > 0")
    return algs


def _resolve_protocols(protocol):
    if protocol == "auto":
        return PROTOCOLS
    protos = (protocol,) if isinstance(protocol, str) else tuple(protocol)
    for p in protos:
        check_choice("protocol", p, PROTOCOLS + ("auto",))
    return protos


def is_concrete(x) -> bool:
    """True when ``x`` has a value now (not a tracer inside jit/vmap/grad)."""
    try:
        np.asarray(x, dtype=float)
        return True
    except Exception:  # noqa: BLE001 -- tracers raise various errors
        return False


def _check_inputs(size_B, n_ranks, bandwidth_Bps, latency_s, temperature):
    check_range("size_B", size_B, 0.0, None)
    check_range("n_ranks", n_ranks, 1.0, None)
    # exact mode: a rank count given by the user (Python / NumPy number) must be an integer; JAX arrays are values
    # computed inside a model (possibly relaxed) and are not checked
    if isinstance(temperature, (int, float)) and temperature == 0 and isinstance(n_ranks, (int, float, np.number,
                                                                                          np.ndarray)):
        check_integer("n_ranks", n_ranks, 1)
    check_positive("bandwidth_Bps", bandwidth_Bps)
    check_range("latency_s", latency_s, 0.0, None)


def collective_time(op: str, size_B, n_ranks, bandwidth_Bps, latency_s, *, algorithm="auto", protocol="auto",
                    temperature=0.0, efficiency=1.0, overhead_s=0.0, reduce_Bps=None, in_network_Bps=None,
                    imbalance=1.0, chunk_B=None, local_Bps=None, tree="binary", nccl=None,
                    dtype=None) -> CollectiveTime:
    """Time of one collective over ``n_ranks`` ranks joined by a full-bisection fabric (switch / crossbar).

    Args:
        op: one of :data:`OPS` (nccl-tests spellings like ``alltoall`` are accepted).
        size_B: buffer size in bytes, nccl-tests convention (see module docstring).
        n_ranks: number of ranks (float; relaxable). Exact mode (``temperature == 0``) rejects non-integer Python /
            NumPy values (user input); JAX arrays computed inside a model are not checked.
        bandwidth_Bps: per-rank unidirectional bandwidth into the fabric (bytes/s).
        latency_s: per-step latency α of the Simple protocol (s); LL/LL128 scale it by NCCL's ratios.
        algorithm: ``"auto"`` (NCCL's candidates, + ``in_network`` when ``in_network_Bps`` is given), ``"all"``
            (every algorithm defined for the op), one name from :data:`ALGORITHMS` or a tuple of names.
        protocol: ``"auto"`` (LL, LL128, Simple), one of :data:`PROTOCOLS` or a tuple.
        temperature: 0 = exact min over (algorithm, protocol); > 0 = softmin with a temperature relative to the
            mean candidate time (dimensionless), also softening ``ceil(log2 n)``.
        efficiency: achieved fraction of ``bandwidth_Bps`` (0, 1].
        overhead_s: fixed launch/setup cost added once (NCCL ``baseLat``).
        reduce_Bps: local reduction throughput γ⁻¹ (bytes/s); ``None`` = reductions are free.
        in_network_Bps: per-rank throughput of switch reduction/multicast (NVLS, SHARP); ``None`` = unavailable.
        imbalance: max/mean bytes per rank for all-to-all (MoE dispatch/combine skew, >= 1).
        chunk_B: pipeline chunk for tree/chain algorithms; ``None`` = streamed (only the pipeline fill pays α).
        local_Bps: per-rank local processing throughput for the whole buffer, independent of ``n`` (the
            communication kernel reading its input and writing its output on the few SMs NCCL gives it); adds
            ``size_B/local_Bps``. ``None`` = free. An empirical term: it is what makes measured ring busbw grow with
            ``n`` on an NVSwitch box (docs/network.md).
        tree: shape of the ``"tree"`` algorithm: ``"binary"`` (double binary tree, depth ``log2 n``; NCCL across
            nodes) or ``"chain"`` (depth ``n - 1``; NCCL inside one node).
        nccl: :class:`NcclParams` -- use NCCL's fitted cost model (per-protocol base and step latencies,
            bandwidth shares, pipelined transfers, NVLS, peer-to-peer all-to-all; see ``_nccl.py``) instead of the
            generic alpha-beta model. ``latency_s`` is then the Simple protocol's step latency (LL / LL128 keep
            their fitted ratios to it), ``in_network_Bps`` the per-GPU NVLS throughput, ``efficiency`` scales
            the link bandwidth, ``local_Bps`` enters the pipelined transfer; ``tree`` and ``chunk_B`` are unused.
        dtype: element type name (nccl-tests ``-d``: ``half``, ``bfloat16``, ``float``, ``int8``, ...); only used to
            exclude NVLS reductions of 8-bit types. ``None`` = a 16-bit float.

    Returns:
        :class:`CollectiveTime` (``time_s``, ``algbw_Bps``, ``busbw_Bps``, selection ``weights``,
        ``per_algorithm_s``). Differentiable in size, ranks, bandwidths and latencies.
    """
    op = normalize_op(op)
    _check_inputs(size_B, n_ranks, bandwidth_Bps, latency_s, temperature)
    check_range("efficiency", efficiency, 0.0, 1.0, lo_open=True)
    check_range("imbalance", imbalance, 1.0, None)
    if reduce_Bps is not None:
        check_positive("reduce_Bps", reduce_Bps)
    if in_network_Bps is not None:
        check_positive("in_network_Bps", in_network_Bps)
    if chunk_B is not None:
        check_positive("chunk_B", chunk_B)
    if local_Bps is not None:
        check_positive("local_Bps", local_Bps)
    check_choice("tree", tree, TREE_SHAPES)
    if nccl is not None:
        return _nccl_collective_time(op, size_B, n_ranks, bandwidth_Bps, latency_s, nccl, algorithm=algorithm,
                                     protocol=protocol, temperature=temperature, efficiency=efficiency,
                                     overhead_s=overhead_s, reduce_Bps=reduce_Bps, in_network_Bps=in_network_Bps,
                                     imbalance=imbalance, local_Bps=local_Bps, dtype=dtype)
    algs = _resolve_algorithms(op, algorithm, in_network_Bps is not None)
    protos = _resolve_protocols(protocol)

    dt = jnp.result_type(float)
    S = jnp.asarray(size_B, dtype=dt)
    n = jnp.maximum(jnp.asarray(n_ranks, dtype=dt), 1.0)
    beta0 = jnp.asarray(bandwidth_Bps, dtype=dt) * efficiency
    alpha0 = jnp.asarray(latency_s, dtype=dt)
    gamma_inv = 0.0 if reduce_Bps is None else 1.0 / jnp.asarray(reduce_Bps, dtype=dt)
    in_net = beta0 if in_network_Bps is None else jnp.asarray(in_network_Bps, dtype=dt) * efficiency
    soft_t = temperature  # for soft_ceil (lattice units)

    cands, index = [], []
    for a in algs:
        for p in protos:
            alpha = alpha0 * PROTOCOL_LATENCY_FACTOR[p]
            frac = _protocol_bandwidth_fraction(op, p)
            t = _algorithm_time(op, a, S, n, alpha, beta0 * frac, gamma_inv, in_net * frac, imbalance, chunk_B,
                                soft_t, tree)
            cands.append(jnp.broadcast_to(t, jnp.broadcast_shapes(jnp.shape(t), S.shape, n.shape)))
            index.append(ALGORITHMS.index(a) * len(PROTOCOLS) + PROTOCOLS.index(p))
    local = 0.0 if local_Bps is None else S / jnp.asarray(local_Bps, dtype=dt)
    return _select(op, S, n, jnp.stack(cands, axis=-1), index, None, temperature, overhead_s, shift=local)


@jax.custom_jvp
def _min_last(x):
    """``min`` over the last axis whose derivative is the argmin candidate's. ``jnp.min``'s own rule divides by the
    count of candidates equal to the min, which is 0 (a NaN gradient) where XLA recomputes the candidates with other
    rounding in the backward pass under ``vmap``; the forward pass stays a plain ``min`` (an argmin reduction or a
    gather there runs ~2-3x slower on XLA:CPU)."""
    return jnp.min(x, axis=-1)


@_min_last.defjvp
def _min_last_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    pick = jax.nn.one_hot(jnp.argmin(x, axis=-1), x.shape[-1], dtype=bool)
    return jnp.min(x, axis=-1), jnp.sum(jnp.where(pick, dx, 0.0), axis=-1)


def _select(op, S, n, times, index, rule_weights, temperature, overhead_s, shift=0.0):
    """NCCL's choice among candidate ``times[..., k]`` (flat indices ``index`` into ALGORITHMS × PROTOCOLS): exact
    argmin at temperature 0, softmin above; ``rule_weights`` replaces the argmin where NCCL uses a fixed rule.
    ``shift`` is a time common to every candidate, added after the choice."""
    dt = times.dtype
    if rule_weights is not None:
        w = rule_weights
        best = jnp.sum(w * times, axis=-1)
    else:
        temp = time_temperature(temperature, jnp.mean(times, axis=-1)) if not (
            isinstance(temperature, (int, float)) and temperature == 0) else 0.0
        if isinstance(temp, (int, float)):
            best = _min_last(times)
            w = soft_argmin_weights(times, axis=-1, temperature=0.0)
        else:
            best = logsumexp_min(times, axis=-1, temperature=temp[..., None] if jnp.ndim(temp) else temp)
            w = soft_argmin_weights(times, axis=-1, temperature=temp[..., None] if jnp.ndim(temp) else temp)
    best = best + shift
    times = times + jnp.asarray(shift)[..., None]
    single = n <= 1.0
    time_s = jnp.where(single, 0.0, best) + jnp.where(single, 0.0, overhead_s)
    full_w = jnp.zeros(times.shape[:-1] + (len(ALGORITHMS) * len(PROTOCOLS),), dt)
    full_t = jnp.full(times.shape[:-1] + (len(ALGORITHMS) * len(PROTOCOLS),), jnp.inf, dt)
    idx = np.asarray(index)
    full_w = full_w.at[..., idx].set(w)
    full_t = full_t.at[..., idx].set(times + overhead_s)
    shape = times.shape[:-1] + (len(ALGORITHMS), len(PROTOCOLS))
    safe_t = jnp.where(time_s > 0, time_s, 1.0)
    algbw = jnp.where(time_s > 0, S / safe_t, 0.0)
    return CollectiveTime(time_s=time_s, algbw_Bps=algbw, busbw_Bps=algbw * bus_factor(op, n),
                          weights=full_w.reshape(shape), per_algorithm_s=full_t.reshape(shape))


#: algorithms of NCCL's cost model per op (``nccl=`` mode); ``in_network`` = NVLS
NCCL_MODE_ALGORITHMS = {
    "all_reduce": ("ring", "tree", "in_network"),
    "reduce_scatter": ("ring", "in_network"),
    "all_gather": ("ring", "in_network"),
    "all_to_all": ("direct",),
    "broadcast": ("ring",),
    "reduce": ("ring",),
    "send_recv": ("direct",),
}


def _nccl_collective_time(op, size_B, n_ranks, bandwidth_Bps, latency_s, params, *, algorithm, protocol,
                          temperature, efficiency, overhead_s, reduce_Bps, in_network_Bps, imbalance, local_Bps,
                          dtype):
    """:func:`collective_time` with NCCL's cost model (``_nccl.py``)."""
    from ._nccl import NcclParams, nccl_candidates, nvls_supported

    if not isinstance(params, NcclParams):
        raise TypeError(f"nccl must be an NcclParams, got {type(params).__name__}")
    has_nvls = in_network_Bps is not None and nvls_supported(op, dtype)
    allowed = NCCL_MODE_ALGORITHMS[op]
    if algorithm in ("auto", "all"):
        algs = tuple(a for a in allowed if a != "in_network" or has_nvls)
    else:
        algs = (algorithm,) if isinstance(algorithm, str) else tuple(algorithm)
        for a in algs:
            check_choice(f"algorithm for {op} (NCCL model)", a, allowed)
        if "in_network" in algs and not has_nvls:
            raise ValueError("algorithm 'in_network' (NVLS) needs in_network_Bps > 0 and a dtype NVLS can reduce")
    protos = _resolve_protocols(protocol)
    dt = jnp.result_type(float)
    S = jnp.asarray(size_B, dtype=dt)
    n = jnp.maximum(jnp.asarray(n_ranks, dtype=dt), 1.0)
    beta = jnp.asarray(bandwidth_Bps, dtype=dt) * efficiency
    # latency_s is the Simple step latency; LL / LL128 keep their fitted ratios to it
    hop = params.hop_s * (jnp.asarray(latency_s, dtype=dt) / params.hop_s[2])
    params = eqx.tree_at(lambda p: p.hop_s, params, hop)
    cands, pairs, rule_w = nccl_candidates(op, algs, protos, S, n, beta, params, in_network_Bps=in_network_Bps,
                                           local_Bps=local_Bps, reduce_Bps=reduce_Bps, imbalance=imbalance,
                                           temperature=temperature)
    if not cands:
        raise ValueError(f"no NCCL algorithm/protocol left for {op} with algorithm={algorithm!r}, "
                         f"protocol={protocol!r}")
    shape = jnp.broadcast_shapes(S.shape, n.shape, *(jnp.shape(t) for t in cands))
    times = jnp.stack([jnp.broadcast_to(t, shape) for t in cands], axis=-1)
    index = [ALGORITHMS.index(a) * len(PROTOCOLS) + PROTOCOLS.index(p) for a, p in pairs]
    if rule_w is not None:
        rule_w = jnp.broadcast_to(rule_w, shape + (len(cands),))
    return _select(op, S, n, times, index, rule_w, temperature, overhead_s)


def chosen_algorithm(result: CollectiveTime) -> tuple[str, str]:
    """(algorithm, protocol) with the largest selection weight, for a single (unbatched) result."""
    w = np.asarray(result.weights)
    a, p = np.unravel_index(int(np.argmax(w)), w.shape)
    return ALGORITHMS[a], PROTOCOLS[p]
