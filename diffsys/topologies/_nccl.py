"""NCCL-faithful collective cost model for one NVSwitch (or any full-crossbar) domain.

The structure follows NCCL's own tuning model (``ncclTopoTuneModel`` and ``ncclTopoGetAlgoTime`` in
``src/graph/tuning.cc``, NVIDIA/nccl; read for its structure, not copied): the time of a collective with algorithm
``a`` and protocol ``p`` is a base latency, plus a per-step latency times the algorithm's step count, plus the bytes
on the busiest link over the protocol's share of the link bandwidth, and NCCL runs the (algorithm, protocol) pair of
least time. NCCL's published constants are the prior (``NCCL_PRIOR``); the constants shipped with the presets are
fitted to measured nccl-tests (``nccl_constants.json``, provenance inside; ``docs/network.md``).

Per candidate, with ``S`` the nccl-tests size, ``n`` ranks, ``f = (n-1)/n``, ``β`` the achieved per-rank link
bandwidth (datasheet × ``efficiency``), ``M`` the per-rank local throughput of the communication kernel
(``local_Bps``):

- ring all-reduce: ``2(n-1)`` steps, ``L = 2f·S`` bytes per link (Patarasuk & Yuan, JPDC 69(2), 2009);
  reduce-scatter / all-gather: ``n-1`` steps, ``L = f·S``; broadcast / reduce: ``n-1`` steps, ``L = S``;
- tree all-reduce inside a node: NCCL's chain, ``2(n-1)`` steps, ``L = 2S`` (tuning.cc;
  Jeaugey, "Massively scale your deep learning training with NCCL 2.4", NVIDIA blog 2019);
- NVLS (NVLink SHARP, ``in_network``; Simple protocol only, as in NCCL): all-reduce = ``multimem.ld_reduce`` of
  each rank's shard + ``multimem.st`` multicast of the result (NVIDIA Hopper tuning guide; PTX ISA ``multimem``):
  every GPU sends ``S + S/n`` and receives ``S/n + S``, so ``L = S(1 + 1/n)`` at the switch throughput ``β_N``
  (busbw ``2(n-1)/(n+1)·β_N``); all-gather (multicast) and reduce-scatter (switch reduction) move ``L = S``.
  Reductions in 8-bit types are not offered by ``multimem`` (PTX ISA), so NVLS is excluded for them;
- all-to-all: NCCL's grouped send/receive to every peer at once, ``L = f·S``; the protocol is not an argmin but
  NCCL's peer-to-peer rule: LL while the per-peer message ``S/n`` is at most ``NCCL_P2P_LL_THRESHOLD`` (16 KiB
  default), Simple above.

Time of one candidate: ``base_p + steps·hop_p + T_bw`` with ``T_bw = x = L/(β·φ_p) + S/M`` for LL and
``T_bw = (√c + √x)²`` for LL128 / Simple: a pipelined transfer cut into the latency-optimal number of chunks, each
chunk paying ``c``-worth of fill (the classic optimum ``T* = (√(k·α) + √(m/β))²`` of a chunked pipeline:
Johnsson & Ho, IEEE Trans. Computers 38(9), 1989; Chan et al., CCPE 19(13), 2007). NCCL grows its channel count
and chunk size with the message, which is what this optimum approximates; it makes the achieved bus bandwidth
approach its asymptote as ``1/(1 + 2√(c/x))``, the slow creep measured from 16 MiB to 512 MiB.
``φ_p`` is the protocol's bandwidth share (LL: 4 data bytes per 8-byte line and flag polling, NCCL credits
1/4–1/2; LL128: 120 of 128 bytes, NCCL uses 0.92; Simple: 1).
"""

from __future__ import annotations

import functools
import json
import os

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice
from .._pytree import as_float
from ..primitives import soft_argmin_weights

#: NCCL's own NVLink numbers (tuning.cc, NCCL 2.2x): ring baseLat LL/LL128/Simple 6.6/14.0/8.4 µs, ring hwLat
#: NVLink 0.6/1.9/3.4 µs per step, LL128 bandwidth × 0.92, NVLS hwLat 25 µs, nvlsEfficiency 0.85 (Hopper).
#: Used as the starting point (and weak prior) of the fit, and as constants for fabrics without a fit.
NCCL_PRIOR = {
    "base_s": (6.6e-6, 14.0e-6, 8.4e-6),
    "hop_s": (0.6e-6, 1.9e-6, 3.4e-6),
    "bw_fraction": (0.25, 0.92, 1.0),
    "pipeline_s": 1e-6,
    "p2p_base_s": (6.6e-6, 8.4e-6),
    "p2p_hop_s": 0.6e-6,
    "p2p_ll_fraction": 0.25,
    "p2p_ll_threshold_B": 16384.0,
    "nvls_base_s": 25e-6,
}
#: 8-bit element types: no NVLS (``multimem``) reduction for them (PTX ISA, ``multimem.ld_reduce`` types).
NO_NVLS_REDUCTION_DTYPES = ("int8", "uint8", "char", "fp8", "fp8_e4m3", "fp8_e5m2", "f8e4m3", "f8e5m2")
REDUCING_OPS = ("all_reduce", "reduce_scatter", "reduce")


def _as_float_array(x):
    """Field converter: numbers, arrays and (nested) lists of numbers become float arrays."""
    return as_float(np.asarray(x, dtype=float) if isinstance(x, (list, tuple)) else x)


class NcclParams(eqx.Module):
    """Per-protocol latencies and bandwidth shares of NCCL's cost model (protocol order ``ll, ll128, simple``).

    Attributes:
        base_s: base latency of one collective per protocol (NCCL ``baseLat``), s.
        hop_s: latency per algorithm step per protocol (NCCL ``hwLat``), s.
        bw_fraction: share of the link bandwidth each protocol achieves (Simple = 1).
        pipeline_s: pipeline-fill latency ``c`` of the chunked transfer (LL128, Simple), s.
        p2p_base_s: base latency of a grouped send/receive (all-to-all) with LL and with Simple, s.
        p2p_hop_s: extra latency per peer of a grouped send/receive, s.
        p2p_ll_fraction: share of the link bandwidth of peer-to-peer LL.
        p2p_ll_threshold_B: per-peer size up to which peer-to-peer uses LL (``NCCL_P2P_LL_THRESHOLD``), bytes.
        nvls_base_s: base latency of NVLS (NVLink SHARP) collectives, s.
    """

    base_s: jnp.ndarray = eqx.field(converter=_as_float_array)
    hop_s: jnp.ndarray = eqx.field(converter=_as_float_array)
    bw_fraction: jnp.ndarray = eqx.field(converter=_as_float_array)
    pipeline_s: jnp.ndarray = eqx.field(converter=_as_float_array)
    p2p_base_s: jnp.ndarray = eqx.field(converter=_as_float_array)
    p2p_hop_s: jnp.ndarray = eqx.field(converter=_as_float_array)
    p2p_ll_fraction: jnp.ndarray = eqx.field(converter=_as_float_array)
    p2p_ll_threshold_B: jnp.ndarray = eqx.field(converter=_as_float_array, default=16384.0)
    nvls_base_s: jnp.ndarray = eqx.field(converter=_as_float_array, default=25e-6)

    def __check_init__(self):
        for name, shape in (("base_s", (3,)), ("hop_s", (3,)), ("bw_fraction", (3,)), ("p2p_base_s", (2,))):
            if jnp.shape(getattr(self, name)) != shape:
                raise ValueError(f"NcclParams.{name} must have shape {shape}, got {jnp.shape(getattr(self, name))}")

    @classmethod
    def from_dict(cls, d: dict) -> NcclParams:
        names = cls.__dataclass_fields__
        return cls(**{k: np.asarray(v, dtype=float) for k, v in d.items() if k in names})


_CONSTANTS = os.path.join(os.path.dirname(__file__), "nccl_constants.json")


@functools.lru_cache(maxsize=None)
def _read_constants() -> dict:
    with open(_CONSTANTS) as f:
        data = json.load(f)
    if not isinstance(data, dict) or not isinstance(data.get("fabrics"), dict):
        raise ValueError(f"{_CONSTANTS}: expected an object with a 'fabrics' mapping")
    return data


def nccl_fabrics() -> tuple[str, ...]:
    """Fabric names with fitted NCCL constants (``nccl_constants.json``)."""
    return tuple(sorted(_read_constants()["fabrics"]))


def nccl_provenance() -> dict:
    """Data set, fit method, fit/report split and script of the shipped NCCL constants."""
    return dict(_read_constants().get("provenance", {}))


def nccl_fabric_constants(fabric: str) -> dict:
    """All fitted numbers of one fabric: the :class:`NcclParams` fields plus ``efficiency``, ``local_Bps`` and
    ``nvls_Bps`` (per-GPU NVLS throughput), as floats / tuples."""
    fabrics = _read_constants()["fabrics"]
    check_choice("fabric", fabric, tuple(sorted(fabrics)))
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in fabrics[fabric].items()}


def nccl_params(fabric: str | None = None) -> NcclParams:
    """:class:`NcclParams` of a fitted fabric (``None`` = NCCL's own published constants, :data:`NCCL_PRIOR`)."""
    return NcclParams.from_dict(NCCL_PRIOR if fabric is None else nccl_fabric_constants(fabric))


def nvls_supported(op: str, dtype) -> bool:
    """Whether NCCL can run ``op`` on NVLS for elements of ``dtype`` (``None`` = a 16-bit float)."""
    return not (op in REDUCING_OPS and dtype is not None and str(dtype).lower() in NO_NVLS_REDUCTION_DTYPES)


def _safe_sqrt(x):
    """``sqrt`` with a finite derivative at 0 (the zero-byte latency floor)."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


def pipelined_transfer(fill_s, serial_s):
    """``(√c + √x)²``: a pipelined transfer of ``x`` seconds of serial work in the latency-optimal number of chunks,
    each adding ``c`` of pipeline fill (Johnsson & Ho 1989; equals ``x`` when ``c = 0``)."""
    return serial_s + fill_s + 2.0 * _safe_sqrt(fill_s * serial_s)


#: ring-family step counts and link bytes (multiples of ``S``) per op, as functions of ``n``
def _ring_shape(op, alg, n):
    f = (n - 1.0) / n
    if op == "all_reduce":
        if alg == "tree":  # intra-node chain: up and down, the whole buffer each way
            return 2.0 * (n - 1.0), 2.0
        return 2.0 * (n - 1.0), 2.0 * f
    if op in ("reduce_scatter", "all_gather"):
        return n - 1.0, f
    return n - 1.0, 1.0  # broadcast / reduce: pipelined chain


def nccl_candidates(op, algs, protos, S, n, beta, params: NcclParams, *, in_network_Bps=None, local_Bps=None,
                    reduce_Bps=None, imbalance=1.0, temperature=0.0):
    """Candidate times of NCCL's (algorithm, protocol) pairs.

    Returns ``(times, pairs, weights)``: ``times[..., k]`` for ``pairs[k] = (algorithm, protocol)``; ``weights`` is
    ``None`` when NCCL takes the argmin, or NCCL's rule-based protocol weights (all-to-all, send/recv).
    """
    dt = S.dtype
    local = 0.0 if local_Bps is None else S / jnp.asarray(local_Bps, dtype=dt)
    gamma = 0.0 if reduce_Bps is None else 1.0 / jnp.asarray(reduce_Bps, dtype=dt)
    c = params.pipeline_s
    pidx = {"ll": 0, "ll128": 1, "simple": 2}
    f = (n - 1.0) / n
    if op in ("all_to_all", "send_recv"):
        peers = n - 1.0 if op == "all_to_all" else 1.0
        per_peer = S / n if op == "all_to_all" else S
        L = imbalance * f * S if op == "all_to_all" else S
        lat = peers * params.p2p_hop_s
        t_ll = params.p2p_base_s[0] + lat + L / (beta * params.p2p_ll_fraction)
        # all-to-all also copies each rank's own chunk and stages the grouped buffers (the local term); a single
        # send/receive moves the user buffer straight over the link
        own = local if op == "all_to_all" else 0.0
        t_simple = params.p2p_base_s[1] + lat + pipelined_transfer(c, L / beta + own)
        wanted = [p for p in ("ll", "simple") if p in protos]
        if not wanted:
            raise ValueError(f"{op} runs LL or Simple (NCCL peer-to-peer); got protocol {protos}")
        times = [t_ll if p == "ll" else t_simple for p in wanted]
        pairs = [("direct", p) for p in wanted]
        if len(wanted) == 1:
            return times, pairs, None
        # NCCL's rule: LL up to the threshold per peer; soft: a logistic step in log2(size) at a temperature
        ratio = jnp.log2(jnp.maximum(per_peer, 1.0)) - jnp.log2(params.p2p_ll_threshold_B)
        costs = jnp.stack(jnp.broadcast_arrays(ratio, jnp.zeros_like(ratio)), axis=-1)
        w = soft_argmin_weights(costs, axis=-1, temperature=temperature)
        return times, pairs, w
    times, pairs = [], []
    for a in algs:
        if a == "in_network":
            if "simple" not in protos or in_network_Bps is None:
                continue
            bn = jnp.asarray(in_network_Bps, dtype=dt)
            L = S * (1.0 + 1.0 / n) if op == "all_reduce" else S
            times.append(params.nvls_base_s + pipelined_transfer(c, L / bn + local))
            pairs.append(("in_network", "simple"))
            continue
        steps, k = _ring_shape(op, a, n)
        L = k * S
        red = f * S * gamma if op in ("all_reduce", "reduce_scatter") else S * gamma if op == "reduce" else 0.0
        for p in protos:
            i = pidx[p]
            x = L / (beta * params.bw_fraction[i]) + local + red
            bw_t = x if p == "ll" else pipelined_transfer(c, x)
            times.append(params.base_s[i] + steps * params.hop_s[i] + bw_t)
            pairs.append((a, p))
    return times, pairs, None
