"""Calculon's execution searches (``llm-optimal-execution``, ``llm-all-executions``) on diffsys's training step.

The execution space is Calculon's (Isaev et al., "Calculon", SC 2023, Sec. 4): every tensor-parallel degree that
divides the processors, the hidden size and the heads; every pipeline degree that divides the processors and the
blocks; data parallelism the rest; every interleaving that divides the blocks per stage; the largest batch that is
a multiple of ``data_par`` and at most the maximum; the three recompute modes, optimizer sharding (``data_par >
1``), the three TP communication types, the sequence-parallel all-gather redo (``rs_ag`` without full
recompute), DP and TP overlap (degree > 1), the three offloads (when the system has a second memory tier;
activation offload not with full recompute), the fused-activation choices, every microbatch size dividing the
local batch with ``microbatch·seq`` divisible by ``tensor_par``, and every network for each group of degree > 1.
Executions that Calculon rejects (placement on the networks, blocks per processor, memory by Calculon's
accounting, :func:`~diffsys.io._calculon.calculon_accounting`) are skipped as Calculon skips them. The rest are
evaluated in one jitted, vmapped :func:`diffsys.llm.training_step` over fixed-size chunks (one compilation).
"""

from __future__ import annotations

import gzip
import itertools
import math

import numpy as np

from ._calculon import (METRIC_FIELDS, STATS_FIELDS, DIFFSYS_FIELDS, _DTYPE_BYTES, _DTYPES, _capacities, _load,
                        _stats, calculon_accounting, read_calculon_model, read_calculon_system)

#: Calculon's execution fields, in its order (the columns of its CSV files)
EXECUTION_KEYS = (
    "num_procs", "tensor_par", "pipeline_par", "data_par", "tensor_par_net", "pipeline_par_net", "data_par_net",
    "batch_size", "microbatch_size", "datatype", "fused_activation", "attention_type", "activation_recompute",
    "pipeline_interleaving", "optimizer_sharding", "tensor_par_comm_type", "tensor_par_overlap", "seq_par_ag_redo",
    "data_par_overlap", "weight_offload", "activations_offload", "optimizer_offload", "training")
CHUNK = 2048  # executions per vmapped call (padded), one compilation per search


def _factors(x):
    return [c for c in range(1, x + 1) if x % c == 0]


def _batch_size(dp, max_batch):
    """The largest multiple of ``dp`` that is at most ``max_batch`` (None when ``dp > max_batch``)."""
    return None if dp > max_batch else (max_batch // dp) * dp


def enumerate_executions(model: dict, system: dict, num_procs: int, max_batch_size: int, datatype: str,
                         fused_activation=(True,), *, tp_overlap=True, dp_overlap=True):
    """Every execution of Calculon's search space (module docstring), as dicts with :data:`EXECUTION_KEYS`."""
    h, heads, L, s = (int(model[k]) for k in ("hidden", "attn_heads", "num_blocks", "seq_size"))
    n_nets = len(system["networks"])
    mem2 = float(system.get("mem2", {"GiB": 0.0})["GiB"]) > 0
    tf = [True, False]
    for tp in (c for c in _factors(num_procs) if h % c == 0 and heads % c == 0):
        for pp in (c for c in _factors(min(num_procs // tp, L)) if num_procs % (tp * c) == 0 and L % c == 0):
            dp = num_procs // (tp * pp)
            batch = _batch_size(dp, max_batch_size)
            if batch is None:
                continue
            for v in ([1] if pp == 1 else _factors(L // pp)):
                for rc, shard, comm in itertools.product(("full", "attn_only", "none"), tf if dp > 1 else [False],
                                                         ("ar", "p2p_rs_ag", "rs_ag")):
                    redos = tf if comm == "rs_ag" and rc != "full" else [False]
                    for redo, dpo, tpo, wo, ao, oo, fa in itertools.product(
                            redos, tf if dp > 1 and dp_overlap else [False],
                            ("none", "ring", "pipe") if tp > 1 and tp_overlap else ("none",),
                            tf if mem2 else [False], tf if mem2 and rc != "full" else [False],
                            tf if mem2 else [False], fused_activation):
                        for mbs in (c for c in _factors(batch // dp) if (c * s) % tp == 0):
                            for tn, pn, dn in itertools.product(range(n_nets) if tp > 1 else [0],
                                                                range(n_nets) if pp > 1 else [0],
                                                                range(n_nets) if dp > 1 else [0]):
                                yield dict(zip(EXECUTION_KEYS, (
                                    num_procs, tp, pp, dp, tn, pn, dn, batch, mbs, datatype, fa, "multihead", rc,
                                    v, shard, comm, tpo, redo, dpo, wo, ao, oo, True)))


def _calculon_accepts(exe, model, system, n_blocks):
    """Calculon's non-memory conditions (network placement, interleaving and offload vs blocks per processor)."""
    nets = system["networks"]
    size = [1] * len(nets)
    for deg, net in (("tensor_par", "tensor_par_net"), ("pipeline_par", "pipeline_par_net"),
                     ("data_par", "data_par_net")):
        if exe[deg] > 1:
            size[exe[net]] *= exe[deg]
    for k, n in enumerate(nets):
        if size[k] > 1 and (size[k] > n["size"] or (n.get("must_be_filled", False) and n["size"] % size[k])):
            return False
    bpp = -(-n_blocks // exe["pipeline_par"])
    if bpp % exe["pipeline_interleaving"]:
        return False
    return not ((exe["weight_offload"] or exe["activations_offload"] or exe["optimizer_offload"]) and bpp <= 2)


_MEM_KEYS = ("tensor_par", "pipeline_par", "data_par", "batch_size", "microbatch_size", "datatype",
             "fused_activation", "activation_recompute", "pipeline_interleaving", "optimizer_sharding",
             "tensor_par_comm_type", "seq_par_ag_redo", "weight_offload", "activations_offload", "optimizer_offload")


def _parallelism_batch(exes):
    """One :class:`diffsys.llm.Parallelism` whose leaves are arrays over the executions (the reader's mapping,
    :func:`~diffsys.io._calculon.read_calculon_execution`; every field Calculon has no counterpart for at its
    default, broadcast over the executions)."""
    import equinox as eqx
    import jax

    from ..llm import Parallelism

    col = lambda k, fn=float: np.array([fn(e[k]) for e in exes], dtype=np.float64)
    t = col("tensor_par")
    comm = [e["tensor_par_comm_type"] for e in exes]
    ovl = np.array([{"none": 0.0, "ring": 1.0}.get(e["tensor_par_overlap"], -1.0) for e in exes])
    ovl = np.where(ovl < 0, (t - 1) / t, ovl)
    shard = col("optimizer_sharding")
    gbytes = np.array([float(_DTYPE_BYTES[_DTYPES[e["datatype"]]]) for e in exes])
    ones, zeros = np.ones(len(exes)), np.zeros(len(exes))
    par = Parallelism(
        tp=t, pp=col("pipeline_par"), dp=col("data_par"), cp=ones, ep=ones, microbatch=col("microbatch_size"),
        global_batch=col("batch_size"), interleave=col("pipeline_interleaving"),
        sequence_parallel=np.array([c == "rs_ag" for e, c in zip(exes, comm)], dtype=np.float64),
        recompute=np.array([{"none": 0.0, "attn_only": 1.0, "full": 2.0}[e["activation_recompute"]] for e in exes]),
        zero_stage=2.0 * shard, tp_overlap=ovl, dp_overlap=col("data_par_overlap"), flash_attention=zeros,
        weight_offload=col("weight_offload"), activation_offload=col("activations_offload"),
        optimizer_offload=col("optimizer_offload"), grad_bytes=np.where(shard > 0, gbytes, 4.0),
        tp_net=col("tensor_par_net"), pp_net=col("pipeline_par_net"), dp_net=col("data_par_net"),
        fused_activation=col("fused_activation"), seq_par_ag_redo=col("seq_par_ag_redo"),
        pp_scatter_gather=np.array([c == "p2p_rs_ag" for c in comm], dtype=np.float64),
        training=col("training"))
    return jax.tree_util.tree_map(lambda x: np.broadcast_to(np.asarray(x, dtype=np.float64), t.shape), par,
                                  is_leaf=eqx.is_array)


def evaluate_executions(model_src, system_src, exes, *, chunk=CHUNK):
    """:data:`~diffsys.io._calculon.METRIC_FIELDS` of :func:`diffsys.llm.training_step` for each execution (one
    jitted ``vmap`` over chunks of ``chunk`` executions, the last one padded): a dict of numpy arrays."""
    import jax
    import jax.numpy as jnp

    from ..llm import training_step

    mdict = _load(model_src, "Calculon model")
    sdict = _load(system_src, "Calculon system")
    if not exes:
        return {k: np.zeros(0) for k in METRIC_FIELDS}
    model = read_calculon_model(mdict, attention_type=exes[0]["attention_type"])
    cluster = read_calculon_system(sdict, n_gpus=exes[0]["num_procs"], dtype=exes[0]["datatype"])

    @jax.jit
    def run(par):
        met = jax.vmap(lambda p: training_step(model, cluster, p))(par)
        return {k: jnp.asarray(getattr(met, k), dtype=jnp.float32) for k in METRIC_FIELDS}

    outs = []
    for i in range(0, len(exes), chunk):
        part = exes[i:i + chunk]
        pad = part + [part[-1]] * (chunk - len(part))
        res = run(_parallelism_batch(pad))
        outs.append({k: np.asarray(v)[:len(part)] for k, v in res.items()})
    return {k: np.concatenate([o[k] for o in outs]) for k in METRIC_FIELDS}


def search_executions(model_src, num_procs, max_batch_size, datatype, system_src, fused_activation=(True,), *,
                      tp_overlap=True, dp_overlap=True):
    """All executions Calculon accepts, evaluated: ``(rows, counts)`` where each row is ``(execution, stats)``
    (:func:`~diffsys.io._calculon.calculon_stats` keys without the ``"diffsys"`` breakdown) and ``counts`` has
    ``total``, ``good`` and ``bad`` (as Calculon's log)."""
    mdict = _load(model_src, "Calculon model")
    sdict = _load(system_src, "Calculon system")
    if datatype not in _DTYPES:
        raise ValueError(f"datatype must be one of {sorted(_DTYPES)}, got {datatype!r}")
    cap1, cap2 = _capacities(sdict)
    L = int(mdict["num_blocks"])
    mem_cache = {}
    good, total = [], 0
    for exe in enumerate_executions(mdict, sdict, int(num_procs), int(max_batch_size), datatype, fused_activation,
                                    tp_overlap=tp_overlap, dp_overlap=dp_overlap):
        total += 1
        if not _calculon_accepts(exe, mdict, sdict, L):
            continue
        key = tuple(exe[k] for k in _MEM_KEYS) + (exe["tensor_par_overlap"] != "none",)
        mem = mem_cache.get(key)
        if mem is None:
            mem = mem_cache[key] = calculon_accounting(mdict, exe, sdict)
        if mem["proc_mem_tier1_cap_req"] <= cap1 and mem["proc_mem_tier2_cap_req"] <= cap2:
            good.append((exe, mem))
    met = evaluate_executions(mdict, sdict, [e for e, _ in good])
    rows = []
    for i, (exe, mem) in enumerate(good):
        f = {k: float(met[k][i]) for k in METRIC_FIELDS}
        if math.isfinite(f["time_s"]) and f["time_s"] > 0:
            rows.append((exe, _stats(f, exe, mem)))
    return rows, {"total": total, "good": len(rows), "bad": total - len(rows)}


def optimal_executions(rows, top_n=1):
    """The ``top_n`` rows with the highest ``sample_rate`` (Calculon's ranking), best first."""
    return sorted(rows, key=lambda r: -r[1]["sample_rate"])[:top_n]


def _fmt(v):
    return str(v)


def write_optimal(best, dest) -> None:
    """Calculon's ``llm-optimal-execution`` output: JSON ``{"0": {"execution": ..., "stats": ...}, ...}`` or CSV
    (``.csv``/``.csv.gz``: a leading index column, the execution keys, the stats keys)."""
    import json

    from .._files import write_text

    out = {str(i): {"execution": e, "stats": st} for i, (e, st) in enumerate(best)}
    dest = str(dest)
    if dest.endswith((".json", ".json.gz")):
        text = json.dumps(out, indent=2, allow_nan=False) + "\n"
    elif dest.endswith((".csv", ".csv.gz")):
        keys = list(EXECUTION_KEYS) + list(STATS_FIELDS) + list(DIFFSYS_FIELDS)
        lines = ["," + ",".join(keys)]
        lines += [",".join([str(i)] + [_fmt({**e, **st}[k]) for k in keys]) for i, (e, st) in enumerate(best)]
        text = "\n".join(lines) + "\n"
    else:
        raise ValueError(f"output {dest!r}: use a .json, .json.gz, .csv or .csv.gz file")
    _write(dest, text, write_text)


def write_all(rows, dest) -> None:
    """Calculon's ``llm-all-executions`` CSV (``.csv``/``.csv.gz``): execution keys then stats keys, one row per
    accepted execution."""
    from .._files import write_text

    dest = str(dest)
    if not dest.endswith((".csv", ".csv.gz")):
        raise ValueError(f"output {dest!r}: llm-all-executions writes a .csv or .csv.gz file")
    keys = list(EXECUTION_KEYS) + list(STATS_FIELDS) + list(DIFFSYS_FIELDS)
    lines = [",".join(keys)] + [",".join(_fmt({**e, **st}[k]) for k in keys) for e, st in rows]
    _write(dest, "\n".join(lines) + "\n", write_text)


def _write(dest, text, write_text):
    if dest.endswith(".gz"):
        with gzip.open(dest, "wt") as fh:
            fh.write(text)
    else:
        write_text(dest, text, "Calculon output")
