"""Readers and writers for Calculon's JSON formats (Isaev et al., "Calculon: a methodology and tool for high-level
co-design of systems and large language models", SC 2023; Apache-2.0, https://github.com/calculon-ai/calculon).

Three inputs, as for ``calculon llm MODEL EXECUTION SYSTEM OUT``:

- *model*: ``hidden, feedforward, seq_size, attn_heads, attn_size, num_blocks`` -> :class:`diffsys.llm.Transformer`
  (GeLU MLP, vocabulary 51,200 and tied embeddings as in Calculon's parameter count).
- *execution*: parallel degrees and execution options -> :class:`diffsys.llm.Parallelism` (every field is either
  mapped or rejected with a message saying why; see :data:`EXECUTION_FIELDS`).
- *system*: compute peaks and efficiency tables, two memory tiers, networks -> :class:`diffsys.llm.Cluster`.
  Calculon's size-dependent efficiency tables (``gflops_efficiency``, ``MB_efficiency``) are read and checked but
  diffsys times kernels with its own roofline/GEMM kernel model (one GEMM model for the library); the networks'
  bandwidth, latency, efficiency and size are honoured on :mod:`diffsys.topologies` dimensions, whose collective
  model is used (the ``ops`` tables and ``processor_usage`` are read and checked only). ``processing_mode`` sets
  :attr:`~diffsys.hardware.Accelerator.compute_memory_overlap`: ``roofline`` -> 1 (the max of compute and memory
  time), ``no_overlap`` (Calculon's files, and the default here) -> 0 (their sum, in every op and GEMM kernel).
"""

from __future__ import annotations

import json
import math

import jax.numpy as jnp

from .._checks import check_choice, check_keys, check_number
from ..hardware import Accelerator, MemoryLevel

MODEL_FIELDS = ("hidden", "feedforward", "seq_size", "attn_heads", "attn_size", "num_blocks")
#: Execution fields and how diffsys treats them.
EXECUTION_FIELDS = {
    "num_procs": "Cluster.n_gpus", "tensor_par": "Parallelism.tp", "pipeline_par": "Parallelism.pp",
    "data_par": "Parallelism.dp", "tensor_par_net": "Parallelism.tp_net", "pipeline_par_net": "Parallelism.pp_net",
    "data_par_net": "Parallelism.dp_net", "batch_size": "Parallelism.global_batch",
    "microbatch_size": "Parallelism.microbatch", "datatype": "Cluster.dtype",
    "fused_activation": "Parallelism.fused_activation 1/0 (0: the MLP activation is a memory-bound kernel of its own)",
    "attention_type": "multihead -> n_kv_heads = attn_heads; multiquery -> n_kv_heads = 1",
    "activation_recompute": "none/attn_only/full -> Parallelism.recompute 0/1/2",
    "pipeline_interleaving": "Parallelism.interleave",
    "optimizer_sharding": "true -> zero_stage 2 (optimizer state and 2-byte gradients sharded over data_par, "
                          "as Calculon); false -> zero_stage 0 with 4-byte fp32 gradients",
    "tensor_par_comm_type": "ar -> all-reduce; rs_ag -> Parallelism.sequence_parallel = 1; p2p_rs_ag -> all-reduce "
                            "with Parallelism.pp_scatter_gather = 1 (pipeline messages split over tensor_par)",
    "tensor_par_overlap": "none -> Parallelism.tp_overlap 0; ring -> 1 (all tiles hidden); pipe -> (t-1)/t (one of "
                          "the t communication tiles exposed)",
    "seq_par_ag_redo": "Parallelism.seq_par_ag_redo 1/0 (needs rs_ag, not with full recompute)",
    "data_par_overlap": "Parallelism.dp_overlap 0/1",
    "weight_offload": "Parallelism.weight_offload 0/1", "activations_offload": "Parallelism.activation_offload 0/1",
    "optimizer_offload": "Parallelism.optimizer_offload 0/1",
    "training": "Parallelism.training 1/0 (false: the forward pass only, as Calculon)",
}
SYSTEM_FIELDS = ("matrix", "vector", "mem1", "mem2", "processing_mode", "networks")
NETWORK_FIELDS = ("bandwidth", "efficiency", "size", "latency", "ops", "must_be_filled", "processor_usage")
_DTYPES = {"float16": "fp16", "bfloat16": "bf16", "float8": "fp8", "float32": "fp32"}
_DTYPE_BYTES = {"fp16": 2, "bf16": 2, "fp8": 1, "fp32": 4}
CALCULON_VOCAB = 51200  # Calculon's parameter count uses a 51,200-token embedding


#: sane maxima of Calculon's fields (far above any real system, e.g. the 8e10 GiB "unlimited" memory of
#: a100_80e.json; they keep float32 arithmetic finite)
_MAX_INT = 2**31 - 1
_MAX = {"tflops": 1e6, "GBps": 1e6, "GiB": 1e12, "bandwidth": 1e6, "latency": 10.0, "size": 2**20}


def _load(src, what):
    if isinstance(src, dict):
        return dict(src)
    from .._files import read_structured

    data = read_structured(src, f"{what} file")
    if not isinstance(data, dict):
        raise ValueError(f"{what} {src}: expected a JSON object")
    return data


def _number(where, value, lo, hi, *, lo_open=True, unit="", integer=False):
    return check_number(where, value, lo, hi, lo_open=lo_open, unit=unit, integer=integer)


def _table(where, table, eff_name):
    """A Calculon efficiency table ``[[threshold, efficiency], ...]`` with thresholds >= 0, efficiencies in (0, 1]."""
    if not isinstance(table, list) or not table:
        raise ValueError(f"{where} must be a non-empty list of [threshold, {eff_name}] pairs, got {table!r}")
    rows = []
    for i, row in enumerate(table):
        if not isinstance(row, list) or len(row) != 2:
            raise ValueError(f"{where}[{i}] must be a [threshold, {eff_name}] pair, got {row!r}")
        rows.append((_number(f"{where}[{i}][0] (threshold)", row[0], 0.0, None, lo_open=False),
                     _number(f"{where}[{i}][1] ({eff_name})", row[1], 0.0, 1.0)))
    return rows


def _section(d, key, where):
    v = d[key]
    if not isinstance(v, dict):
        raise ValueError(f"{where}.{key} must be an object, got {v!r}")
    return v


def _require(d, keys, where):
    missing = [k for k in keys if k not in d]
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing}")


def read_calculon_model(src, *, attention_type="multihead"):
    """A Calculon model JSON (path or dict) as a :class:`diffsys.llm.Transformer`."""
    from ..llm import Transformer

    d = _load(src, "Calculon model")
    check_keys("Calculon model", d, MODEL_FIELDS)
    _require(d, MODEL_FIELDS, "Calculon model")
    check_choice("attention_type", attention_type, ("multihead", "multiquery"))
    for k in MODEL_FIELDS:
        _number(f"Calculon model: {k}", d[k], 1, _MAX_INT, lo_open=False, integer=True)
        if not isinstance(d[k], int):
            raise ValueError(f"Calculon model: {k} must be a positive integer, got {d[k]!r}")
    heads = d["attn_heads"]
    return Transformer(name=str(d.get("name", "calculon")), hidden=d["hidden"], ffn=d["feedforward"],
                       n_layers=d["num_blocks"], n_heads=heads, n_kv_heads=heads if attention_type == "multihead"
                       else 1, head_dim=d["attn_size"], vocab=CALCULON_VOCAB, seq_len=d["seq_size"],
                       max_seq_len=d["seq_size"], mlp="gelu", tied_embeddings=True)


def _efficiency_at(table, size):
    """Calculon's efficiency table lookup: the efficiency of the largest threshold ``<= size``."""
    rows = sorted(((float(a), float(b)) for a, b in table), reverse=True)
    for thr, eff in rows:
        if size >= thr:
            return eff
    return rows[-1][1]


#: library presets that lend a Calculon system its micro-architecture (SM count, clock, caches, latencies and the
#: calibrated kernel constants), which Calculon's system format does not describe
_BASE_PRESETS = ("v100", "a100_80gb", "h100_sxm", "b200")


def calculon_accelerator(dt, matrix_Bps, vector_Bps, hbm_B, hbm_Bps, matrix_efficiency=None, memory_efficiency=None,
                         overlap=1.0):
    """The :class:`~diffsys.hardware.Accelerator` of a Calculon system computing in ``dt``.

    Calculon's system format gives peaks, efficiency tables, the two memory tiers and the networks (Isaev et al.
    2023, Sec. 3.1), but not the micro-architecture that the library's GEMM kernel model needs (streaming
    multiprocessors, clock, L2, latencies). Those come from the library preset whose ``dt`` matrix peak is nearest
    to the file's (log distance), together with its calibrated kernel constants; the file's matrix and vector peaks,
    HBM capacity and bandwidth replace the preset's. The efficiency tables' asymptotes (the efficiency of the
    largest ops, Calculon's top row) set the kernel model's achievable fractions of peak, ``compute_efficiency``
    and ``memory_efficiency`` (the rows for small ops are superseded by the kernel model's own size dependence:
    tile waves, pipeline fill, launch time). ``overlap``: the accelerator's ``compute_memory_overlap`` (Calculon's
    ``processing_mode``: 1 for ``roofline``, 0 for ``no_overlap``).
    """
    from ..hardware import preset

    runs = "bf16" if dt == "fp8" else dt
    bases = [preset(n) for n in _BASE_PRESETS]
    base = min(bases, key=lambda a: abs(math.log(float(a.peak_flops(runs)) / matrix_Bps)))
    mem = tuple(lvl if i != base.main_memory_index else MemoryLevel(
        lvl.name, hbm_B, hbm_Bps, lvl.latency_s, lvl.energy_J_per_B, lvl.area_mm2) for i, lvl in enumerate(base.memory))
    cal = {kind: dict(table) for kind, table in base.calibration.items()}
    for table in cal.values():  # the calibrated matrix-unit constants also serve the other 2-byte dtype
        if dt not in table and ("bf16" in table or "fp16" in table):
            table[dt] = dict(table.get("bf16", table.get("fp16")))
    if "gemm" in cal and dt in cal["gemm"]:
        g = dict(cal["gemm"][dt])
        if matrix_efficiency is not None:
            g["compute_efficiency"] = matrix_efficiency
        if memory_efficiency is not None:
            g["memory_efficiency"] = memory_efficiency
        cal["gemm"][dt] = g
    vec = {**({} if dt == "fp8" else {dt: vector_Bps}), "fp32": vector_Bps}
    # Calculon has one vector rate per datatype and uses it for all vector work (incl. fp32 softmax/norms)
    return Accelerator(f"calculon-{dt}", {dt: matrix_Bps}, vec, mem, base.power, frequency_Hz=base.frequency_Hz,
                       num_cores=base.num_cores, link_bandwidth_Bps=base.link_bandwidth_Bps,
                       nic_bandwidth_Bps=base.nic_bandwidth_Bps, energy_J_per_flop=base.energy_J_per_flop,
                       main_memory_index=base.main_memory_index, calibration=cal, compute_memory_overlap=overlap)


def read_calculon_system(src, n_gpus=None, dtype="float16"):
    """A Calculon system JSON (path or dict) as a :class:`diffsys.llm.Cluster` computing in ``dtype``.

    ``networks[0]`` is the scale-up domain (its ``size`` = GPUs per node), ``networks[1]`` (if present) the
    scale-out network. Bandwidths are GB/s per processor, ``mem1``/``mem2`` capacities GiB and bandwidths GB/s.
    """
    from ..llm import Cluster, two_level_network

    d = _load(src, "Calculon system")
    check_keys("Calculon system", d, SYSTEM_FIELDS)
    _require(d, ("matrix", "mem1", "networks"), "Calculon system")
    check_choice("Calculon system: datatype", dtype, _DTYPES)
    dt = _DTYPES[dtype]
    where = "Calculon system"
    matrix = _section(d, "matrix", where)
    if dtype not in matrix:
        raise ValueError(f"Calculon system: no matrix entry for datatype {dtype!r}; has {sorted(matrix)}")
    mat = _section(matrix, dtype, f"{where}.matrix")
    check_keys(f"Calculon system: matrix.{dtype}", mat, ("tflops", "gflops_efficiency"))
    _require(mat, ("tflops",), f"Calculon system: matrix.{dtype}")
    peak = _number(f"{where}: matrix.{dtype}.tflops", mat["tflops"], 0.0, _MAX["tflops"], unit="TFLOP/s") * 1e12
    _table(f"{where}: matrix.{dtype}.gflops_efficiency", mat.get("gflops_efficiency", [[0, 1.0]]), "efficiency")
    vectors = _section(d, "vector", where) if "vector" in d else {}
    vec = _section(vectors, dtype, f"{where}.vector") if dtype in vectors else {"tflops": peak / 8e12}
    vec_tflops = _number(f"{where}: vector.{dtype}.tflops", vec.get("tflops"), 0.0, _MAX["tflops"], unit="TFLOP/s")
    mem1 = _section(d, "mem1", where)
    mem2 = _section(d, "mem2", where) if "mem2" in d else {"GiB": 0.0, "GBps": 1.0}
    for name, mem in (("mem1", mem1), ("mem2", mem2)):
        check_keys(f"Calculon system: {name}", mem, ("GiB", "GBps", "MB_efficiency"))
        _require(mem, ("GiB", "GBps"), f"{where}: {name}")
        _number(f"{where}: {name}.GiB", mem["GiB"], 0.0, _MAX["GiB"], lo_open=name == "mem1", unit="GiB")
        _number(f"{where}: {name}.GBps", mem["GBps"], 0.0, _MAX["GBps"], unit="GB/s")
        if "MB_efficiency" in mem:
            _table(f"{where}: {name}.MB_efficiency", mem["MB_efficiency"], "efficiency")
    mode = d.get("processing_mode", "no_overlap")
    check_choice("Calculon system: processing_mode", mode, ("no_overlap", "roofline"))
    nets = d["networks"]
    if not isinstance(nets, list) or not nets:
        raise ValueError("Calculon system: networks must be a non-empty list")
    for i, n in enumerate(nets):
        at = f"{where}: networks[{i}]"
        if not isinstance(n, dict):
            raise ValueError(f"{at} must be an object with bandwidth, efficiency, size, latency")
        check_keys(at, n, NETWORK_FIELDS)
        _require(n, ("bandwidth", "efficiency", "size", "latency"), at)
        _number(f"{at}.bandwidth", n["bandwidth"], 0.0, _MAX["bandwidth"], unit="GB/s")
        _number(f"{at}.efficiency", n["efficiency"], 0.0, 1.0)
        _number(f"{at}.size", n["size"], 1, _MAX["size"], lo_open=False, unit="processors", integer=True)
        _number(f"{at}.latency", n["latency"], 0.0, _MAX["latency"], lo_open=False, unit="s")
        if "processor_usage" in n:
            _number(f"{at}.processor_usage", n["processor_usage"], 0.0, 1.0, lo_open=False)
        if "must_be_filled" in n and not isinstance(n["must_be_filled"], bool):
            raise ValueError(f"{at}.must_be_filled must be true or false, got {n['must_be_filled']!r}")
        if "ops" in n and not isinstance(n["ops"], dict):
            raise ValueError(f"{at}.ops must be an object, got {n['ops']!r}")
    up = nets[0]
    out = nets[1] if len(nets) > 1 else nets[0]
    acc = calculon_accelerator(dt, peak, vec_tflops * 1e12, float(mem1["GiB"]) * 2**30, float(mem1["GBps"]) * 1e9,
                               _efficiency_at(mat.get("gflops_efficiency", [[0, 1.0]]), float("inf")),
                               _efficiency_at(mem1.get("MB_efficiency", [[0, 1.0]]), float("inf")),
                               overlap=1.0 if mode == "roofline" else 0.0)
    n_procs = n_gpus or int(up["size"])
    # the file's link figures on the topologies dimensions (which carry the library's NCCL kernel constants)
    network = two_level_network(
        "dgx_a100", nodes=max(1, math.ceil(n_procs / int(up["size"]))), gpus_per_node=int(up["size"]),
        scaleup_bandwidth_Bps=float(up["bandwidth"]) * 1e9, scaleup_latency_s=float(up["latency"]),
        scaleup_efficiency=float(up["efficiency"]), scaleout_bandwidth_Bps=float(out["bandwidth"]) * 1e9,
        scaleout_latency_s=float(out["latency"]), scaleout_efficiency=float(out["efficiency"]))
    return Cluster(name="calculon", accelerator=acc, n_gpus=n_procs, network=network,
                   offload_bandwidth_Bps=float(mem2["GBps"]) * 1e9,
                   offload_capacity_B=float(mem2["GiB"]) * 2**30, dtype=dt)


def _bool(d, k):
    v = d[k]
    if not isinstance(v, bool):
        raise ValueError(f"Calculon execution: {k} must be true or false, got {v!r}")
    return v


def read_calculon_execution(src):
    """A Calculon execution JSON as ``(Parallelism, info)`` where ``info`` holds ``num_procs``, ``datatype`` and
    ``attention_type``. Every field is honoured or rejected with a clear message (see :data:`EXECUTION_FIELDS`)."""
    from ..llm import Parallelism

    d = _load(src, "Calculon execution")
    check_keys("Calculon execution", d, EXECUTION_FIELDS)
    _require(d, ("num_procs", "tensor_par", "pipeline_par", "data_par", "batch_size", "microbatch_size"),
             "Calculon execution")
    ints = {}
    for k in ("num_procs", "tensor_par", "pipeline_par", "data_par", "batch_size", "microbatch_size",
              "pipeline_interleaving"):
        v = d.get(k, 1)
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= _MAX_INT:
            raise ValueError(f"Calculon execution: {k} must be an integer in [1, {_MAX_INT}], got {v!r}")
        ints[k] = v
    if ints["num_procs"] != ints["tensor_par"] * ints["pipeline_par"] * ints["data_par"]:
        raise ValueError(f"Calculon execution: tensor_par·pipeline_par·data_par = "
                         f"{ints['tensor_par'] * ints['pipeline_par'] * ints['data_par']} != num_procs "
                         f"({ints['num_procs']})")
    nets = {}
    for k in ("tensor_par_net", "pipeline_par_net", "data_par_net"):
        v = d.get(k, -1)
        if isinstance(v, bool) or not isinstance(v, int) or v not in (-1, 0, 1):
            raise ValueError(f"Calculon execution: {k} must be 0 (scale-up) or 1 (scale-out), got {v!r}")
        nets[k] = v
    dtype = d.get("datatype", "float16")
    check_choice("Calculon execution: datatype", dtype, _DTYPES)
    fused = _bool(d, "fused_activation") if "fused_activation" in d else True
    attention = d.get("attention_type", "multihead")
    check_choice("Calculon execution: attention_type", attention, ("multihead", "multiquery"))
    recompute = d.get("activation_recompute", "none")
    check_choice("Calculon execution: activation_recompute", recompute, ("none", "attn_only", "full"))
    comm = d.get("tensor_par_comm_type", "ar")
    check_choice("Calculon execution: tensor_par_comm_type", comm, ("ar", "rs_ag", "p2p_rs_ag"))
    tp_overlap = d.get("tensor_par_overlap", "none")
    check_choice("Calculon execution: tensor_par_overlap", tp_overlap, ("none", "ring", "pipe"))
    if tp_overlap != "none" and ints["tensor_par"] == 1:
        raise ValueError("Calculon execution: tensor_par_overlap must be 'none' when tensor_par == 1")
    redo = _bool(d, "seq_par_ag_redo") if "seq_par_ag_redo" in d else False
    if redo and (comm != "rs_ag" or recompute == "full"):
        raise ValueError("Calculon execution: seq_par_ag_redo=true needs tensor_par_comm_type='rs_ag' and "
                         f"activation_recompute other than 'full' (got {comm!r}, {recompute!r})")
    training = _bool(d, "training") if "training" in d else True
    if not training and (recompute != "none" or d.get("data_par_overlap") or d.get("optimizer_offload")):
        raise ValueError("Calculon execution: training=false needs activation_recompute 'none', data_par_overlap "
                         f"and optimizer_offload false (got {recompute!r}, {d.get('data_par_overlap', False)}, "
                         f"{d.get('optimizer_offload', False)})")
    sharding = _bool(d, "optimizer_sharding") if "optimizer_sharding" in d else False
    if sharding and ints["data_par"] == 1:
        raise ValueError("Calculon execution: optimizer_sharding=true needs data_par > 1")
    if ints["pipeline_par"] == 1 and ints["pipeline_interleaving"] != 1:
        raise ValueError("Calculon execution: pipeline_interleaving must be 1 when pipeline_par == 1")
    flags = {k: (_bool(d, k) if k in d else False) for k in ("data_par_overlap", "weight_offload",
                                                              "activations_offload", "optimizer_offload")}
    if flags["data_par_overlap"] and ints["data_par"] == 1:
        raise ValueError("Calculon execution: data_par_overlap=true needs data_par > 1")
    t = ints["tensor_par"]
    par = Parallelism(
        tp=ints["tensor_par"], pp=ints["pipeline_par"], dp=ints["data_par"], microbatch=ints["microbatch_size"],
        global_batch=ints["batch_size"], interleave=ints["pipeline_interleaving"],
        sequence_parallel=1.0 if comm == "rs_ag" else 0.0,
        recompute={"none": 0.0, "attn_only": 1.0, "full": 2.0}[recompute],
        zero_stage=2.0 if sharding else 0.0, grad_bytes=float(_DTYPE_BYTES[_DTYPES[dtype]]) if sharding else 4.0,
        tp_overlap={"none": 0.0, "ring": 1.0, "pipe": (t - 1) / t}[tp_overlap],
        dp_overlap=1.0 if flags["data_par_overlap"] else 0.0,
        weight_offload=float(flags["weight_offload"]), activation_offload=float(flags["activations_offload"]),
        optimizer_offload=float(flags["optimizer_offload"]),
        tp_net=nets["tensor_par_net"], pp_net=nets["pipeline_par_net"], dp_net=nets["data_par_net"],
        fused_activation=1.0 if fused else 0.0, seq_par_ag_redo=1.0 if redo else 0.0,
        pp_scatter_gather=1.0 if comm == "p2p_rs_ag" else 0.0, training=1.0 if training else 0.0,
    )
    return par, {"num_procs": ints["num_procs"], "datatype": dtype, "attention_type": attention}


#: Calculon's output keys the drop-in writes, with Calculon's units and meaning (seconds per iteration, bytes per
#: processor, samples per second); diffsys's own figures follow under ``diffsys_*`` keys and ``"diffsys"``
STATS_FIELDS = (
    "block_fw_flops", "block_re_flops", "block_agrad_flops", "block_wgrad_flops", "block_optim_flops",
    "baseblock_fw_tp_size", "edgeblock_fw_tp_size", "baseblock_bw_tp_size", "edgeblock_bw_tp_size",
    "baseblock_recomm_size", "edgeblock_recomm_size", "block_fw_pp_size", "block_bw_pp_size", "block_dp_size",
    "block_weight_space", "block_act_working_space", "block_act_storage_space", "block_act_checkpoint_size",
    "block_weight_grad_space", "block_weight_grad_space_no_sharding", "block_act_grad_space",
    "block_optimizer_space", "weight_space_with_offload", "act_space_with_offload",
    "act_checkpoint_size_with_offload", "act_grad_space_with_offload", "weight_grad_space_with_offload",
    "optimizer_space_with_offload", "weight_space", "act_space", "act_checkpoint_size", "act_grad_space",
    "weight_grad_space", "optimizer_space", "fw_time", "bw_time", "optim_step_time", "recompute_time",
    "recomm_link_time", "recomm_exposed_time", "bubble_time", "tp_comm_link_time", "pp_comm_link_time",
    "dp_comm_link_time", "tp_comm_exposed_time", "pp_comm_exposed_time", "dp_comm_exposed_time", "total_time",
    "proc_mem_tier1_cap_req", "proc_mem_tier2_cap_req", "useful_flops", "compute_efficiency", "system_efficiency",
    "total_efficiency", "sample_rate")
DIFFSYS_FIELDS = ("diffsys_mem_GiB", "diffsys_offload_GiB", "diffsys_offload_exposed_time", "diffsys_tokens_per_s",
                  "diffsys_mfu", "diffsys_hfu", "diffsys_fits")


def calculon_stats(metrics, exe: dict, memory: dict) -> dict:
    """Calculon's statistics (:data:`STATS_FIELDS`, Calculon's units: s, bytes per processor, samples/s) from
    :class:`diffsys.llm.TrainingMetrics` and :func:`calculon_accounting`, plus diffsys's own memory accounting and
    figures under ``diffsys_*`` keys (:data:`DIFFSYS_FIELDS`; GiB where the name says so) and its full breakdown
    (SI units) under ``"diffsys"``.

    Times (diffsys's training step): ``fw_time``/``bw_time``/``recompute_time`` are the critical stage's compute
    over all microbatches, ``*_comm_exposed_time`` the exposed communication, ``recomm_exposed_time`` the exposed
    TP re-communication of full recompute and ``seq_par_ag_redo``, ``*_link_time`` the same collectives before
    overlap hides any of them (pipeline messages are never hidden, as in Calculon), ``total_time`` one iteration
    (the sum of the parts, as Calculon's). ``compute_efficiency``/``total_efficiency``: Calculon's ideal time of
    the block's useful FLOPs at the matrix peak over the compute / the iteration time. Memory, FLOP and message-size
    keys are Calculon's accounting (:func:`calculon_accounting`): blocks only, no embedding or logits; diffsys's own
    total (embeddings, fp32 logits, its activation model) is ``diffsys_mem_GiB``.

    Not written: Calculon's per-block times (``block_*_time``, ``*_mem_accessed``, ``*block_*_tp_time*``), the
    overlap and offload bandwidth requirements (``*_bw_overlap_req*``, ``*_offload_bw_req``) and the per-pass offload
    times: they come from Calculon's own per-layer compute/memory split and efficiency tables, which diffsys's kernel
    model does not have (its exposed offload time is ``diffsys_offload_exposed_time``).
    """
    f = {k: float(jnp.asarray(v)) for k, v in metrics._asdict().items()}
    if not math.isfinite(f["memory_violation"]) and f["offload_B"] == 0:
        # a system without a second tier (mem2 0 GiB): the tier-2 term of the violation is 0/0; only tier 1 counts
        f["memory_violation"] = max(f["memory_B"] / f["memory_capacity_B"] - 1.0, 0.0)
    out = _stats(f, exe, memory)
    out["diffsys"] = {k: (bool(v) if k in ("divisible", "fits", "feasible") else v) for k, v in f.items()}
    if not math.isfinite(out["total_time"]):
        raise ValueError("Calculon run: non-finite total_time (check the inputs)")
    bad = sorted(k for k, v in {**out, **out["diffsys"]}.items() if isinstance(v, float) and not math.isfinite(v))
    if bad:
        raise ValueError(f"Calculon run: non-finite result(s) {bad} (check the inputs)")
    return out


#: the :class:`diffsys.llm.TrainingMetrics` fields the Calculon statistics are made of
METRIC_FIELDS = ("compute_fwd_s", "compute_bwd_s", "optimizer_s", "recompute_s", "bubble_s", "tp_comm_s",
                 "tp_recomm_s", "tp_comm_link_s", "tp_recomm_link_s", "pp_comm_s", "dp_comm_s", "dp_comm_link_s",
                 "time_s", "memory_B", "offload_B", "offload_s", "tokens_per_s", "mfu",
                 "hfu", "fits")


def _stats(f: dict, exe: dict, memory: dict) -> dict:
    """:data:`STATS_FIELDS` and :data:`DIFFSYS_FIELDS` from the metric values ``f`` (floats, names of
    :data:`METRIC_FIELDS`), the execution and its :func:`calculon_accounting`."""
    gib = 2.0**30
    out = {k: memory[k] for k in STATS_FIELDS if k in memory}
    out.update({
        "fw_time": f["compute_fwd_s"], "bw_time": f["compute_bwd_s"], "optim_step_time": f["optimizer_s"],
        "recompute_time": f["recompute_s"], "recomm_link_time": f["tp_recomm_link_s"],
        "recomm_exposed_time": f["tp_recomm_s"], "bubble_time": f["bubble_s"],
        "tp_comm_link_time": f["tp_comm_link_s"], "pp_comm_link_time": f["pp_comm_s"],
        "dp_comm_link_time": f["dp_comm_link_s"], "tp_comm_exposed_time": f["tp_comm_s"] - f["tp_recomm_s"],
        "pp_comm_exposed_time": f["pp_comm_s"], "dp_comm_exposed_time": f["dp_comm_s"], "total_time": f["time_s"],
    })
    compute = out["fw_time"] + out["bw_time"] + out["optim_step_time"]
    out["system_efficiency"] = compute / out["total_time"]
    # Calculon's efficiencies: the ideal time of the useful FLOPs at the matrix peak over the compute time / the
    # iteration time (its compute_efficiency, total_efficiency)
    out["compute_efficiency"] = memory["ideal_compute_time"] / compute
    out["total_efficiency"] = memory["ideal_compute_time"] / out["total_time"]
    out["sample_rate"] = float(exe["batch_size"]) / out["total_time"]
    out = {k: out[k] for k in STATS_FIELDS}
    out.update({"diffsys_mem_GiB": f["memory_B"] / gib, "diffsys_offload_GiB": f["offload_B"] / gib,
                "diffsys_offload_exposed_time": f["offload_s"], "diffsys_tokens_per_s": f["tokens_per_s"],
                "diffsys_mfu": f["mfu"], "diffsys_hfu": f["hfu"], "diffsys_fits": bool(f["fits"])})
    return out


def check_calculon_placement(exe: dict, system: dict) -> None:
    """Calculon's checks of an execution on a system (Isaev et al. 2023; the conditions under which Calculon reports
    an execution as failed), raising ``ValueError`` naming the condition:

    - each network tier holds the product of the parallel degrees assigned to it (``*_par_net``) within its
      ``size``, and fills it exactly when ``must_be_filled``;
    - ``pipeline_interleaving`` divides the blocks per processor; offloading needs at least 3 blocks per processor;
    - ``microbatch_size·seq_size`` divides by ``tensor_par`` for ``rs_ag``/``p2p_rs_ag`` (checked by the caller
      with the model).
    """
    nets = system["networks"]
    size = [1] * len(nets)
    used = [False] * len(nets)
    for deg, net in (("tensor_par", "tensor_par_net"), ("pipeline_par", "pipeline_par_net"),
                     ("data_par", "data_par_net")):
        k = exe.get(net, 0)
        k = 0 if k < 0 else k
        if k >= len(nets):
            raise ValueError(f"Calculon execution: {net}={k} but the system has {len(nets)} network(s)")
        if exe[deg] > 1:
            used[k] = True
            size[k] *= exe[deg]
    for i, (u, n) in enumerate(zip(used, nets)):
        if u and size[i] > n["size"]:
            raise ValueError(f"Calculon execution: network tier {i} (size {n['size']}) isn't big enough for "
                             f"{size[i]} processors")
        if u and n.get("must_be_filled", False) and n["size"] % size[i]:
            raise ValueError(f"Calculon execution: network tier {i} (size {n['size']}) must be filled, but "
                             f"{size[i]} processors use it")


def write_calculon_stats(stats: dict, dest) -> None:
    """Write stats as JSON to a path (atomically: no partial file on failure), or to stdout when ``dest`` is
    ``"-"``."""
    from .._files import write_text

    text = json.dumps(stats, indent=2, sort_keys=False, allow_nan=False)
    if str(dest) == "-":
        print(text)
    else:
        write_text(dest, text + "\n", "Calculon output")


def run_calculon(model_src, execution_src, system_src, *, check_memory=True) -> dict:
    """Evaluate a Calculon (model, execution, system) triple with :func:`diffsys.llm.training_step`: Calculon's
    statistics (:func:`calculon_stats`). As Calculon, an execution whose memory (Calculon's accounting) exceeds a
    tier's capacity is an error (``check_memory=False`` reports it instead, ``fits`` false)."""
    from ..llm import check_parallelism, training_step

    par, info = read_calculon_execution(execution_src)
    exe = _load(execution_src, "Calculon execution")
    mdict = _load(model_src, "Calculon model")
    sdict = _load(system_src, "Calculon system")
    model = read_calculon_model(mdict, attention_type=info["attention_type"])
    cluster = read_calculon_system(sdict, n_gpus=info["num_procs"], dtype=info["datatype"])
    check_parallelism(model, cluster, par)
    check_calculon_placement(exe, sdict)
    _check_blocks(mdict, exe)
    memory = calculon_accounting(mdict, exe, sdict)
    stats = calculon_stats(training_step(model, cluster, par), exe, memory)
    cap1, cap2 = _capacities(sdict)
    stats["fits"] = memory["proc_mem_tier1_cap_req"] <= cap1 and memory["proc_mem_tier2_cap_req"] <= cap2
    if check_memory and not stats["fits"]:
        raise ValueError(f"Calculon run: mem tier1 needs {memory['proc_mem_tier1_cap_req'] / 2**30:.2f} GiB of "
                         f"{cap1 / 2**30:g}, tier2 {memory['proc_mem_tier2_cap_req'] / 2**30:.2f} GiB of "
                         f"{cap2 / 2**30:g} (Calculon's accounting)")
    return stats


def _capacities(system: dict):
    """Tier-1 and tier-2 capacities of a Calculon system (bytes; ``GiB`` in the file)."""
    return float(system["mem1"]["GiB"]) * 2**30, float(system.get("mem2", {"GiB": 0.0})["GiB"]) * 2**30


def _check_blocks(model: dict, exe: dict) -> None:
    """Calculon's conditions on blocks per processor and on the sequence split (see
    :func:`check_calculon_placement`)."""
    L, p = int(model["num_blocks"]), int(exe["pipeline_par"])
    bpp = -(-L // p)
    v = int(exe.get("pipeline_interleaving", 1))
    if v > bpp or bpp % v:
        raise ValueError(f"Calculon execution: pipeline_interleaving={v} must divide the {bpp} blocks per processor")
    if any(exe.get(k, False) for k in ("weight_offload", "activations_offload", "optimizer_offload")) and bpp <= 2:
        raise ValueError(f"Calculon execution: offloading needs at least 3 blocks per processor, got {bpp}")
    if exe.get("tensor_par_comm_type", "ar") != "ar" and (
            int(exe["microbatch_size"]) * int(model["seq_size"])) % int(exe["tensor_par"]):
        raise ValueError("Calculon execution: microbatch_size·seq_size must divide by tensor_par for "
                         f"{exe['tensor_par_comm_type']}")


def _block_accounting(h, f, s, a, d, t, b, e, *, sp, overlap, rc, redo, fused, multiquery, sharding=1,
                      training=True):
    """One transformer block per microbatch and processor by Calculon's layer-by-layer accounting (Isaev et al.
    2023, Sec. 3.3): memory in bytes and FLOPs.

    Each layer of a block (Fork, LayerNorm, TP communication, Q/K/V, the two batched matmuls, softmax, dropout,
    projection, MLP GEMMs, activation, residual) holds its input as an activation. ``work`` sums the inputs of the
    layers that do not reuse another layer's tensor (the memory of one block while it runs), ``stored`` those kept
    for the backward pass (a layer whose output is not kept, or whose input is recomputed or re-gathered, keeps
    nothing), ``grads`` the gradients of the layer outputs. Dropout masks take one byte per element. ``sp``:
    sequence parallelism (``rs_ag``) — LayerNorm/dropout/residual tensors split by ``t``; ``overlap``: TP
    communication fused into the GEMMs (``tensor_par_overlap`` ring/pipe); ``rc``: ``activation_recompute``
    (``attn_only`` recomputes the attention core, ``full`` every layer); ``redo``: ``seq_par_ag_redo``, the
    gathered inputs of the QKV / fc1 GEMMs re-gathered rather than stored (Korthikanti et al. 2023, Sec. 4.2.2).
    Forward only (``training`` false), as Calculon: every layer's input counts as stored and nothing has a gradient.

    FLOPs per layer (forward, activation gradient, weight gradient): a GEMM ``2mnk`` each; a batched matmul
    ``2mnk`` and ``4mnk``; LayerNorm ``9/14/7`` per element; GeLU ``8/13`` (fused or not); softmax ``5/8``; dropout
    ``1/1``; the residual add ``1/2``; a fork of ``u`` users ``0/u``; a TP reduction ``(t-1)/t`` per element (the
    all-reduce / reduce-scatter sum; none for the overlapped GEMMs, which sum in their communication); the Adam step
    11 per weight, over ``sharding`` data-parallel ranks. ``re_flops`` is Calculon's ``block_re_flops``: at every
    recomputed layer it adds the running forward total of the block up to that layer (as Calculon sums it).
    """
    B = b * s  # tokens of a microbatch
    A = B * h  # a full activation
    X = A / t if sp else A  # LayerNorm / dropout / residual tensors
    hd = a * d
    kv = d if multiquery else hd / t  # K/V output width per rank
    S = b * a / t * s * s  # attention scores
    full, attn_rc = rc == "full", rc in ("full", "attn_only")
    ag = {"attn": attn_rc or redo, "mlp": full or redo}  # the gathered GEMM input is recomputed / re-gathered
    acc = dict.fromkeys(("work", "stored", "grads", "fw", "re", "agrad", "wgrad"), 0.0)

    def layer(act, grad=0.0, *, reused=False, keep=True, fw=0.0, agrad=0.0, wgrad=0.0, recompute=full):
        acc["work"] += 0.0 if reused else act
        acc["stored"] += act if keep or not training else 0.0
        acc["fw"] += fw
        if training:
            acc["grads"] += grad
            acc["agrad"] += agrad
            acc["wgrad"] += wgrad
            acc["re"] += acc["fw"] if recompute else 0.0

    def gemm(m, n, k, act, grad=0.0, **kw):
        layer(act, grad, fw=2 * m * n * k, agrad=2 * m * n * k, wgrad=2 * m * n * k, **kw)

    def reduction():  # the sum of an all-reduce / reduce-scatter, per element of a full activation
        return A * (t - 1) / t if t > 1 else 0.0

    def comm_in():  # the f operator before a column-parallel GEMM: identity (AR) or all-gather (SP); none at t = 1
        act, grad = (0.0, 0.0) if t == 1 else (A * e / t, A * e / t) if sp else (0.0, A * e)
        layer(act, grad, agrad=reduction(), recompute=False)

    def comm_out():  # the g operator after a row-parallel GEMM: all-reduce (AR) or reduce-scatter (SP)
        act, grad = (0.0, 0.0) if t == 1 else (A * e / t, A * e / t) if sp else (A * e, 0.0)
        layer(act, grad, keep=False, fw=reduction(), recompute=False)

    for block in ("attn", "mlp"):
        layer(X * e, agrad=2 * X)  # fork of the residual stream (it holds the LayerNorm input)
        layer(X * e, X * e, reused=True, keep=False, fw=9 * X, agrad=14 * X, wgrad=7 * X)  # LayerNorm
        width = 3 * hd if block == "attn" else f  # the column-parallel GEMM(s): QKV or fc1
        if overlap:
            if multiquery and block == "attn":
                width = hd
            act, grad = (B * h / t, B * width / t) if sp else (B * h, 0.0)
            gemm(B, h, width / t, act * e, grad * e)
            if multiquery and block == "attn":
                layer(A * e, keep=not ag[block], agrad=2 * A, recompute=ag[block])  # K/V fork
                gemm(B, h, d, B * h * e, B * d * e, reused=True, keep=False)
                gemm(B, h, d, B * h * e, B * d * e, reused=True, keep=False)
        else:
            comm_in()
            if block == "attn":
                layer(A * e, keep=not ag[block], agrad=3 * A, recompute=ag[block])  # fork to Q, K, V
                gemm(B, h, hd / t, B * h * e, B * hd / t * e, reused=True, keep=False)
                gemm(B, h, kv, B * h * e, B * kv * e, reused=True, keep=False)
                gemm(B, h, kv, B * h * e, B * kv * e, reused=True, keep=False)
            else:
                gemm(B, h, f / t, B * h * e, B * f / t * e, keep=not ag[block])  # fc1
        if block == "attn":
            bmm = b * a / t * 2 * s * s * d  # each batched matmul's forward FLOPs
            qk = b * a / t * 2 * s * d  # Q and K of the score matmul
            acc["work"] += qk * e
            acc["stored"] += qk * e - (S * e if attn_rc else 0.0)  # its output (the scores) is not kept
            layer(0.0, S * e, fw=bmm, agrad=2 * bmm, recompute=attn_rc)  # Q·Kᵀ
            layer(S * e, S * e, keep=True, fw=5 * S, agrad=8 * S, recompute=attn_rc)  # softmax
            acc["stored"] -= S * e if attn_rc else 0.0
            layer(S, S, keep=not attn_rc, fw=S, agrad=S, recompute=attn_rc)  # attention dropout mask (1 B)
            layer(b * a / t * (s * s + s * d) * e, b * a / t * s * d * e, fw=bmm, agrad=2 * bmm)  # scores · V
            out_in, n_out = B * hd / t, hd / t  # projection input
        else:
            F = f * B / t
            layer(0.0 if fused else F * e, 0.0 if fused else F * e, fw=8 * F, agrad=13 * F)  # activation
            out_in, n_out = B * f / t, f / t  # fc2 input
        if overlap:
            act, grad = (out_in, 2 * B * h / t) if sp else (0.0, 2 * B * h)
            gemm(B, n_out, h, act * e, grad * e)
        else:
            gemm(B, n_out, h, out_in * e, B * h * e)  # projection / fc2
            comm_out()
        layer(X, X, fw=X, agrad=X)  # dropout mask (1 B)
        layer(2 * X * e, X * e, reused=True, keep=False, fw=X, agrad=2 * X)  # residual add
    weights = 4 * h + (3 * hd / t if not multiquery else hd / t + 2 * d) * h + hd / t * h + 2 * h * f / t
    optim = 11.0 * weights / sharding if training else 0.0
    return {**acc, "weights": weights, "optim": optim}


def _tp_message_bytes(A_bytes, t, comm, *, edge, rc, redo, training):
    """Calculon's TP message bytes of one block per microbatch: ``(forward, backward, re-communication)``.

    Each of the block's two halves has an ``f`` (before the column-parallel GEMM: identity forward and all-reduce
    backward, or all-gather / reduce-scatter with sequence parallelism) and a ``g`` (after the row-parallel GEMM:
    all-reduce forward and identity backward, or reduce-scatter / all-gather), each of one full activation
    (``A_bytes``; Korthikanti et al. 2023, Fig. 5). ``p2p_rs_ag`` splits them (as ``rs_ag``) only in a chunk's edge
    block. Re-communication: the ``f`` all-gathers again when their inputs are recomputed or re-gathered (the
    attention's with ``attn_only``/``full`` recompute or ``seq_par_ag_redo``, the MLP's with ``full`` or
    ``seq_par_ag_redo``), the ``g`` operators with ``full`` recompute.
    """
    if t == 1:
        return 0.0, 0.0, 0.0
    split = comm == "rs_ag" or (comm == "p2p_rs_ag" and edge)
    fw = 2 * A_bytes * (1 + split)
    bw = fw if training else 0.0
    regather = (rc in ("full", "attn_only") or redo) + (rc == "full" or redo)
    re = (regather * split * A_bytes + 2 * (rc == "full") * A_bytes) if training else 0.0
    return fw, bw, re


def calculon_accounting(model: dict, exe: dict, system: dict | None = None) -> dict:
    """Per-processor memory, FLOPs and message sizes of a Calculon (model, execution) pair by Calculon's
    accounting (bytes, FLOPs).

    Per block (:func:`_block_accounting`): weights ``W`` (no biases, no embeddings) at the datatype's bytes; weight
    gradients at the datatype's bytes divided by ``data_par`` with optimizer sharding, plus one unsharded fp32 copy
    of a block's gradients before the reduction; Adam state ``12·W`` bytes (fp32 master copy and two moments;
    ``8·W`` for fp32) divided by ``data_par`` with optimizer sharding (Rajbhandari et al. 2020). Activations: one
    block's working set plus the stored activations of the other blocks of the ``min(m, p)`` in-flight
    microbatches of 1F1B (``× (1 + (p-1)/(v·p))`` interleaved; Narayanan et al. 2021, Sec. 2.2); full recompute
    keeps one full-size ``b·s·h`` checkpoint per block and in-flight microbatch instead; one block's activation
    gradients. Offloading keeps two blocks' worth of the offloaded kind in tier 1 and the rest in tier 2
    (Isaev et al. 2023, Sec. 3.5). Forward only (``training: false``): the weights and one block's working set; no
    gradients, optimizer state or checkpoints.

    FLOPs and message sizes per block and microbatch (:func:`_block_accounting`, :func:`_tp_message_bytes`):
    pipeline messages of one activation (``/t`` with ``rs_ag``/``p2p_rs_ag``), the data-parallel message the
    block's weights; ``useful_flops`` = forward + activation and weight gradients + the optimizer step of one block
    (Calculon's meaning: per block, microbatch and processor, recompute excluded).

    Returns Calculon's memory keys (``weight_space, act_space, act_checkpoint_size, act_grad_space,
    weight_grad_space, optimizer_space, proc_mem_tier1_cap_req, proc_mem_tier2_cap_req``, the ``block_*`` terms and
    the ``*_with_offload`` tier-1 shares), its FLOP and size keys (``block_{fw,re,agrad,wgrad,optim}_flops``,
    ``{base,edge}block_{fw,bw}_tp_size``, ``{base,edge}block_recomm_size``, ``block_{fw,bw}_pp_size``,
    ``block_dp_size``, ``useful_flops``), and with ``system`` (a Calculon system dict) the ideal compute time of
    Calculon's efficiencies, ``ideal_compute_time``.
    """
    h, f, s, a, d, L = (int(model[k]) for k in MODEL_FIELDS[:6])
    t, p, dpar = int(exe["tensor_par"]), int(exe["pipeline_par"]), int(exe["data_par"])
    b, v = int(exe["microbatch_size"]), int(exe.get("pipeline_interleaving", 1))
    m = int(exe["batch_size"]) // dpar // b
    e = float(_DTYPE_BYTES[_DTYPES[exe.get("datatype", "float16")]])
    rc = exe.get("activation_recompute", "none")
    comm = exe.get("tensor_par_comm_type", "ar")
    redo = bool(exe.get("seq_par_ag_redo", False))
    shard = dpar if exe.get("optimizer_sharding", False) else 1
    attn_rc = rc in ("full", "attn_only")
    training = bool(exe.get("training", True))
    blk = _block_accounting(
        h, f, s, a, d, t, b, e, sp=comm == "rs_ag", overlap=exe.get("tensor_par_overlap", "none") != "none",
        rc=rc, redo=redo, fused=bool(exe.get("fused_activation", True)),
        multiquery=exe.get("attention_type", "multihead") == "multiquery", sharding=shard, training=training)
    work, stored, grads, W = blk["work"], blk["stored"], blk["grads"], blk["weights"]
    bpp = -(-L // p)  # blocks per processor (the remainder's stages hold one block more)
    w_block = W * e
    wg_block, wg_full = (W * e / shard, W * 4.0) if training else (0.0, 0.0)
    opt_block = (8.0 * W + (4.0 * W if e < 4 else 0.0)) / shard if training else 0.0
    in_flight = min(m, p) * ((1 + (p - 1) / (v * p)) if v > 1 else 1.0)
    ckpt_block = b * s * h * e if rc == "full" else 0.0
    if rc == "full":
        stored = 0.0
    weight_space = w_block * bpp
    act_space = work if rc == "full" or not training else work + stored * (bpp * in_flight - 1)
    ckpt = bpp * ckpt_block * in_flight
    wgrad_space = wg_full if bpp == 1 else wg_full + wg_block * (bpp - 1)
    act_min = work + stored if training else work  # tier-1 share of offloaded activations
    opt_space = opt_block * bpp
    tier1 = tier2 = 0.0
    if exe.get("weight_offload", False):
        tier1, tier2 = tier1 + 2 * w_block, tier2 + weight_space
    else:
        tier1 += weight_space
    if exe.get("activations_offload", False):
        tier1 += act_min if rc != "full" else work + 2 * ckpt_block
        tier2 += act_space if rc != "full" else ckpt
    else:
        tier1 += act_space + ckpt
    if exe.get("optimizer_offload", False):
        tier1 += wg_full + wg_block + 2 * opt_block
        tier2 += wg_block * bpp + opt_space
    else:
        tier1 += wgrad_space + opt_space
    tier1 += grads
    return {"weight_space": weight_space, "act_space": act_space, "act_checkpoint_size": ckpt,
            "act_grad_space": grads, "weight_grad_space": wgrad_space, "optimizer_space": opt_space,
            "proc_mem_tier1_cap_req": tier1, "proc_mem_tier2_cap_req": tier2,
            "block_weight_space": w_block, "block_act_working_space": work,
            "block_act_storage_space": stored, "block_act_checkpoint_size": ckpt_block,
            "block_weight_grad_space": wg_block, "block_weight_grad_space_no_sharding": wg_full,
            "block_act_grad_space": grads, "block_optimizer_space": opt_block,
            # the tier-1 share of each kind when it is offloaded (Calculon's ``*_with_offload``, reported always)
            "weight_space_with_offload": 2 * w_block,
            "act_space_with_offload": work + stored if rc != "full" else work,
            "act_checkpoint_size_with_offload": (2 * ckpt_block if rc == "full" else 0.0) if training else None,
            "act_grad_space_with_offload": grads,
            "weight_grad_space_with_offload": wg_full + wg_block if training else 0.0,
            "optimizer_space_with_offload": 2 * opt_block if training else 0.0,
            **_counts(blk, model, exe, system, e, bpp, m, w_block)}


def _counts(blk, model, exe, system, e, bpp, m, w_block) -> dict:
    """Calculon's per-block FLOPs and message sizes, ``useful_flops`` and (with a system) the ideal compute time
    ``bpp·m·useful_flops / matrix peak`` of its ``compute_efficiency`` and ``total_efficiency``."""
    t, p, dpar = int(exe["tensor_par"]), int(exe["pipeline_par"]), int(exe["data_par"])
    b, s, h = int(exe["microbatch_size"]), int(model["seq_size"]), int(model["hidden"])
    comm, rc = exe.get("tensor_par_comm_type", "ar"), exe.get("activation_recompute", "none")
    training = bool(exe.get("training", True))
    tp = {edge: _tp_message_bytes(b * s * h * e, t, comm, edge=edge, rc=rc,
                                  redo=bool(exe.get("seq_par_ag_redo", False)), training=training)
          for edge in (False, True)}
    split_pp = comm in ("rs_ag", "p2p_rs_ag")
    pp_size = ((b * s // t) * h * e if split_pp else b * s * h * e) if p > 1 else 0.0
    useful = blk["fw"] + blk["agrad"] + blk["wgrad"] + blk["optim"]
    out = {"block_fw_flops": blk["fw"], "block_re_flops": blk["re"], "block_agrad_flops": blk["agrad"],
           "block_wgrad_flops": blk["wgrad"], "block_optim_flops": blk["optim"],
           "baseblock_fw_tp_size": tp[False][0], "edgeblock_fw_tp_size": tp[True][0],
           "baseblock_bw_tp_size": tp[False][1], "edgeblock_bw_tp_size": tp[True][1],
           "baseblock_recomm_size": tp[False][2], "edgeblock_recomm_size": tp[True][2],
           "block_fw_pp_size": pp_size, "block_bw_pp_size": pp_size if training else 0.0,
           "block_dp_size": w_block if dpar > 1 and training else 0.0, "useful_flops": useful}
    if system is not None:
        peak = float(system["matrix"][exe.get("datatype", "float16")]["tflops"]) * 1e12
        out["ideal_compute_time"] = bpp * m * useful / peak
    return out
