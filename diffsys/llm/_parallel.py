"""Execution (parallelism) and cluster specs of a distributed LLM training or serving job.

:class:`Parallelism` holds the parallel degrees and every execution knob as float leaves, so a design space may
sweep or relax them; categorical knobs (recompute mode, ZeRO stage) are encoded as their index and evaluated for
every option (exact one-hot at temperature 0, softmax weights above). :class:`Cluster` is the machine: an
:class:`~diffsys.hardware.Accelerator` (whose roofline op model times every kernel), a two-level
:class:`~diffsys.topologies.System` (whose collective model times every collective), the second memory tier, and
two framework constants (per-kernel host overhead, elementwise traffic per stored activation byte) fitted in
``docs/llm.md``.

Rank order is Megatron-LM's (innermost first): tensor, context, data (expert parallelism carved out of it),
pipeline (Narayanan et al. 2021, Sec. 3.3: tensor parallelism inside a node, pipeline across nodes).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice, check_positive, check_range
from .._pytree import as_float
from ..hardware import Accelerator, preset as accelerator_preset
from ..primitives import choice_weights
from ..topologies import System, system_preset

RECOMPUTE_MODES = ("none", "selective", "full")
#: default host/framework time per kernel of :class:`Cluster` presets: 5 µs, an assumption for a current stack
#: (the vTrain fit of a 2022 Megatron-DeepSpeed stack gives 34 µs, see docs/llm.md)
DEFAULT_KERNEL_OVERHEAD_S = 5e-6
#: default elementwise bytes per stored activation byte: the fit on the even vTrain multi-node rows
#: (``examples/llm_validation.py``; docs/llm.md); updated only by re-running that fit
DEFAULT_ELEMENTWISE_TRAFFIC = 2.12
ZERO_STAGES = (0, 1, 2, 3)
#: training precisions of the matrix units (``Cluster.dtype``) and the low-precision recipe each selects
TRAINING_DTYPES = ("bf16", "fp8", "fp4")


def precision_recipe(accelerator: Accelerator, dtype: str) -> dict:
    """The training recipe of GEMM precision ``dtype`` on ``accelerator``: its name, the dtype attention and the
    output (logits) layer run in, the bytes per element of its low-precision GEMM operands (scales included) and
    the extra weight bytes per parameter of the low-precision weight copies.

    Transformer Engine recipes as Megatron-LM/NeMo use them (NVIDIA Transformer Engine documentation, "Using FP8 with
    Transformer Engine" and "FP8 recipes"; Megatron-Core ``--fp8-recipe``): only the linear layers (QKV, projection,
    MLP) run in the low precision; fused attention and the output layer stay in BF16. Master weights, fp32 main
    gradients and the Adam moments are unchanged (Micikevicius et al., "FP8 formats for deep learning", 2022,
    Sec. 4; Megatron-LM distributed-optimizer docs: 2 B bf16 weights + 4 B fp32 gradients + 12 B fp32 master and
    moments per parameter). Each GEMM operand is quantised into the row- and column-wise layouts its forward and
    backward GEMMs read (2 copies; the weights once per step, cached):

    - ``fp8`` on Hopper: per-tensor scaled FP8 (E4M3/E5M2), 1 B per element per copy;
    - ``fp8`` on Blackwell (an accelerator with an fp4 matrix unit): MXFP8, 1 B + one E8M0 scale per 32 elements
      (OCP Microscaling Formats (MX) specification v1.0, 2023);
    - ``fp4`` (Blackwell only): NVFP4, 0.5 B + one E4M3 scale per 16 elements (NVIDIA, "Pretraining large language
      models with NVFP4", arXiv 2509.25149, 2025; its few BF16 layers are not modelled).

    ``element_bytes`` is one copy's bytes per element (2 for bf16, which quantises nothing); ``weight_cache_bytes``
    the two cached weight copies per parameter (0 for bf16). A dtype the accelerator's matrix units lack raises
    ``ValueError`` naming the supported ones.
    """
    check_choice("dtype", dtype, TRAINING_DTYPES)
    if dtype == "bf16":
        return {"recipe": "bf16", "attention_dtype": "bf16", "element_bytes": 2.0, "weight_cache_bytes": 0.0}
    if accelerator.matrix_dtype(dtype) != dtype:
        have = [d for d in TRAINING_DTYPES if d in accelerator.matrix_flops]
        raise ValueError(f"dtype {dtype} needs {dtype} matrix units, which {accelerator.name} lacks; supported "
                         f"training dtypes there: {have}")
    blackwell = "fp4" in accelerator.matrix_flops
    name, q = (("nvfp4", 0.5 + 1.0 / 16) if dtype == "fp4" else ("mxfp8", 1.0 + 1.0 / 32) if blackwell
               else ("fp8_per_tensor", 1.0))
    return {"recipe": name, "attention_dtype": "bf16", "element_bytes": q, "weight_cache_bytes": 2 * q}


def _enc(value, options, name):
    if isinstance(value, str):
        check_choice(name, value, options)
        return float(options.index(value))
    return value


class Parallelism(eqx.Module):
    """Parallelization and execution choices of a training step (or a serving replica).

    Attributes:
        tp, pp, dp, cp, ep: tensor, pipeline, data, context and expert parallel degrees (``ep`` divides ``dp·cp``).
        microbatch: sequences per microbatch ``b``.
        global_batch: sequences per optimizer step ``B`` (microbatches per pipeline ``m = B / (dp·b)``).
        interleave: virtual pipeline stages per device ``v`` (Narayanan et al. 2021 interleaved 1F1B).
        sequence_parallel: 1 = Megatron sequence parallelism (reduce-scatter/all-gather, activations split by
            ``tp``; Korthikanti et al. 2022), 0 = all-reduce.
        recompute: 0 none, 1 selective (attention core only), 2 full (layer inputs checkpointed) — Korthikanti 2022.
        zero_stage: 0-3: ZeRO optimizer / gradient / parameter sharding over ``dp`` (Rajbhandari et al. 2020);
            stage 3 is FSDP.
        tp_overlap, dp_overlap: fraction of TP / DP communication that may hide behind compute (0..1).
        pp_overlap: fraction of each pipeline send/receive that may hide behind the compute of one virtual stage
            (0..1): Megatron-Core's ``overlap_p2p_comm`` posts the interleaved schedule's sends and receives
            asynchronously and waits for them one model chunk later (Narayanan et al. 2021, Sec. 2.2; NeMo's
            recipes set it with ``batch_p2p_comm: False``); 0 = blocking transfers (Calculon's model).
        flash_attention: 1 = fused attention (no ``s²`` activations or traffic; causal FLOPs halved in time).
        weight_offload, activation_offload, optimizer_offload: fraction (0..1) of each kind held in the second
            memory tier and streamed over its link (Calculon's offload model, Isaev et al. 2023).
        grad_bytes: bytes per stored gradient element (4: fp32 main gradients, Megatron-LM default).
        tp_net, pp_net, dp_net: network a group uses: -1 = from the rank placement (default), 0 = scale-up only,
            1 = scale-out only (Calculon's ``*_par_net`` fields).
        fused_activation: 1 = the MLP activation is fused into the preceding GEMM's epilogue (Megatron-LM's
            bias-GeLU fusion); 0 = a separate memory-bound kernel (Calculon's ``fused_activation``).
        seq_par_ag_redo: with sequence parallelism, 1 = keep only the sequence-sharded inputs of the QKV and fc1
            GEMMs and redo their all-gathers in the backward pass (Korthikanti et al. 2023, Sec. 4.2.2; Megatron-LM's
            default); 0 = keep the gathered inputs (Calculon's ``seq_par_ag_redo``).
        pp_scatter_gather: 1 = pipeline messages split over the tensor-parallel ranks and all-gathered on arrival
            (Narayanan et al. 2021, Sec. 4.1; Calculon's ``p2p_rs_ag``); implied by sequence parallelism.
        training: 1 = a training step (forward, backward, optimizer step); 0 = the forward pass of the same batch
            only (no backward, recompute, gradient traffic or optimizer step; memory holds the weights and one
            microbatch's working activations), Calculon's ``training`` (Isaev et al. 2023).
        document_length: mean tokens per document when several documents are packed into one sequence, as
            fine-tuning recipes do (NeMo's packed SFT): attention is block-diagonal over the documents, so each
            token attends only within its own (Krell et al., "Efficient sequence packing without
            cross-contamination", 2021). ``0`` (default) = one document per sequence; values at or above the
            sequence length mean the same.
    """

    tp: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    pp: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    dp: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    cp: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    ep: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    microbatch: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    global_batch: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    interleave: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    sequence_parallel: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    recompute: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    zero_stage: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    tp_overlap: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    dp_overlap: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    flash_attention: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    weight_offload: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    activation_offload: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    optimizer_offload: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    grad_bytes: jnp.ndarray = eqx.field(converter=as_float, default=4.0)
    tp_net: jnp.ndarray = eqx.field(converter=as_float, default=-1.0)
    pp_net: jnp.ndarray = eqx.field(converter=as_float, default=-1.0)
    dp_net: jnp.ndarray = eqx.field(converter=as_float, default=-1.0)
    fused_activation: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    seq_par_ag_redo: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    pp_scatter_gather: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    training: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    document_length: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    pp_overlap: jnp.ndarray = eqx.field(converter=as_float, default=0.0)

    def __init__(self, tp=1, pp=1, dp=1, cp=1, ep=1, microbatch=1, global_batch=None, interleave=1,
                 sequence_parallel=0, recompute="none", zero_stage=0, tp_overlap=0.0, dp_overlap=0.0,
                 flash_attention=0, weight_offload=0.0, activation_offload=0.0, optimizer_offload=0.0,
                 grad_bytes=4.0, tp_net=-1, pp_net=-1, dp_net=-1, fused_activation=1.0, seq_par_ag_redo=1.0,
                 pp_scatter_gather=0.0, training=1.0, document_length=0.0, pp_overlap=0.0):
        self.tp, self.pp, self.dp, self.cp, self.ep = tp, pp, dp, cp, ep
        self.microbatch = microbatch
        self.global_batch = microbatch * dp if global_batch is None else global_batch
        self.interleave = interleave
        self.sequence_parallel = float(sequence_parallel) if isinstance(sequence_parallel, bool) \
            else sequence_parallel
        self.recompute = _enc(recompute, RECOMPUTE_MODES, "Parallelism.recompute")
        self.zero_stage = zero_stage
        self.tp_overlap, self.dp_overlap = tp_overlap, dp_overlap
        self.flash_attention = float(flash_attention) if isinstance(flash_attention, bool) else flash_attention
        self.weight_offload, self.activation_offload = weight_offload, activation_offload
        self.optimizer_offload, self.grad_bytes = optimizer_offload, grad_bytes
        self.tp_net, self.pp_net, self.dp_net = tp_net, pp_net, dp_net
        self.fused_activation, self.seq_par_ag_redo = float(fused_activation) if isinstance(
            fused_activation, bool) else fused_activation, float(seq_par_ag_redo) if isinstance(
            seq_par_ag_redo, bool) else seq_par_ag_redo
        self.pp_scatter_gather = float(pp_scatter_gather) if isinstance(pp_scatter_gather, bool) \
            else pp_scatter_gather
        self.training = training  # a bool converts like any number
        self.document_length = document_length
        self.pp_overlap = pp_overlap

    def __check_init__(self):
        for f in ("tp", "pp", "dp", "cp", "ep", "microbatch", "global_batch", "interleave"):
            check_range(f"Parallelism.{f}", getattr(self, f), 1.0, None)
        check_range("Parallelism.recompute", self.recompute, 0.0, 2.0)
        check_range("Parallelism.zero_stage", self.zero_stage, 0.0, 3.0)
        for f in ("sequence_parallel", "tp_overlap", "dp_overlap", "flash_attention", "weight_offload",
                  "activation_offload", "optimizer_offload", "fused_activation", "seq_par_ag_redo",
                  "pp_scatter_gather", "training", "pp_overlap"):
            check_range(f"Parallelism.{f}", getattr(self, f), 0.0, 1.0)
        check_range("Parallelism.grad_bytes", self.grad_bytes, 1.0, 8.0)
        check_range("Parallelism.document_length", self.document_length, 0.0, None)
        for f in ("tp_net", "pp_net", "dp_net"):
            check_range(f"Parallelism.{f}", getattr(self, f), -1.0, 1.0)

    @property
    def n_gpus(self):
        """GPUs used: ``tp · pp · dp · cp``."""
        return self.tp * self.pp * self.dp * self.cp


class Cluster(eqx.Module):
    """A GPU cluster: accelerator, network (a :class:`diffsys.topologies.System`), second memory tier, prices.

    The physics lives in the shared families: every GEMM and memory-bound kernel is timed by the roofline op model
    of ``accelerator`` (:func:`diffsys.roofline.op_time`, whose constants are the accelerator's calibration), every
    collective by :func:`diffsys.topologies.hierarchical_collective_time` on ``network`` (its calibrated NVLink and
    InfiniBand dimensions). The cluster adds only what is specific to a training framework.

    Attributes:
        name: display name (static).
        accelerator: the device (:func:`diffsys.hardware.preset`).
        n_gpus: GPUs in the job.
        network: any :class:`diffsys.topologies.System`, dimensions innermost first: ``dims[0]`` the scale-up
            domain (its ``size`` = GPUs per node), ``dims[-1]`` the outermost (scale-out) network, any dimensions
            between them (a torus, NVL72 racks behind a rail, multi-tier fabrics) nested in rank order;
            bandwidths per GPU per direction (:func:`two_level_network`, :func:`diffsys.topologies.system_preset`).
        kernel_overhead_s: host/framework time per kernel that the kernel model does not contain (PyTorch dispatch,
            framework hooks between kernels), per layer-op.
        elementwise_traffic: HBM bytes moved by the unfused elementwise kernels (LayerNorm, dropout, residual,
            activation, softmax) per byte of the layer's stored activations (read + write of each tensor by its
            producer and consumers, forward; backward twice).
        offload_bandwidth_Bps, offload_capacity_B: link bandwidth to, and capacity of, the second memory tier
            (host DRAM / CXL) per GPU.
        memory_reserve_B: HBM not available to the model (CUDA context, allocator fragmentation).
        gpu_hour_usd: price of one GPU-hour (cost metric).
        sustained_clock: core clock of a training job relative to ``accelerator.frequency_Hz``, the clock its
            kernel calibrations were measured at (0..1]. Kernel microbenchmarks replay a few calls at the boost
            clock; a training job keeps every GPU at full load for hours under its power cap, and the clock settles
            lower (an H100 SXM5 boosts to 1980 MHz and guarantees 1590 MHz, ratio 0.80, at 700 W; NVIDIA H100
            datasheet). :func:`training_step` runs the matrix and vector units and the on-chip memories at this
            fraction (:func:`diffsys.power.scale_clock`); HBM and the links keep their own clocks, and MFU stays
            relative to the nominal peak. The presets' values and their fit: :data:`SUSTAINED_CLOCK_SOURCES`.
        dtype: compute dtype of the matrix units (static).
    """

    name: str = eqx.field(static=True)
    accelerator: Accelerator
    n_gpus: jnp.ndarray = eqx.field(converter=as_float)
    network: System
    kernel_overhead_s: jnp.ndarray = eqx.field(converter=as_float, default=DEFAULT_KERNEL_OVERHEAD_S)
    elementwise_traffic: jnp.ndarray = eqx.field(converter=as_float, default=DEFAULT_ELEMENTWISE_TRAFFIC)
    offload_bandwidth_Bps: jnp.ndarray = eqx.field(converter=as_float, default=25e9)
    offload_capacity_B: jnp.ndarray = eqx.field(converter=as_float, default=256 * 2**30)
    memory_reserve_B: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    gpu_hour_usd: jnp.ndarray = eqx.field(converter=as_float, default=2.0)
    sustained_clock: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    dtype: str = eqx.field(static=True, default="bf16")

    def __check_init__(self):
        n = f"Cluster({self.name})"
        check_range(f"{n}.n_gpus", self.n_gpus, 1.0, None)
        if not isinstance(self.network, System) or len(self.network.dims) < 1:
            raise ValueError(f"{n}.network must be a diffsys.topologies.System with at least one dimension, "
                             f"got {self.network!r}")
        check_positive(f"{n}.offload_bandwidth_Bps", self.offload_bandwidth_Bps)
        for f in ("kernel_overhead_s", "memory_reserve_B", "offload_capacity_B", "gpu_hour_usd"):
            check_positive(f"{n}.{f}", getattr(self, f), allow_zero=True)
        check_range(f"{n}.elementwise_traffic", self.elementwise_traffic, 0.0, None, lo_open=True)
        check_range(f"{n}.sustained_clock", self.sustained_clock, 0.0, 1.0, lo_open=True)
        self.accelerator.peak_flops(self.dtype)  # raises for an unsupported dtype

    @property
    def peak_flops(self):
        return self.accelerator.peak_flops(self.dtype)

    @property
    def attention_dtype(self) -> str:
        """Dtype of attention and the output layer: BF16 under an FP8/FP4 recipe (:func:`precision_recipe`),
        else ``dtype``."""
        return "bf16" if self.dtype in ("fp8", "fp4") and "bf16" in self.accelerator.matrix_flops else self.dtype

    @property
    def weight_cache_bytes(self) -> float:
        """Extra bytes per parameter of the quantised weight copies of an FP8/FP4 recipe (0 otherwise)."""
        return 2.0 * self.low_precision_bytes if self.low_precision_bytes < 2.0 else 0.0

    @property
    def low_precision_bytes(self) -> float:
        """Bytes per element of one quantised copy of a linear layer's GEMM operand under an FP8/FP4 recipe (scales
        included; :func:`precision_recipe`), 2 (BF16, nothing quantised) otherwise."""
        if self.dtype not in ("fp8", "fp4") or self.accelerator.matrix_dtype(self.dtype) != self.dtype:
            return 2.0
        return precision_recipe(self.accelerator, self.dtype)["element_bytes"]

    @property
    def hbm_capacity_B(self):
        return self.accelerator.main_memory.capacity_B

    @property
    def hbm_bandwidth_Bps(self):
        return self.accelerator.main_memory.bandwidth_Bps

    @property
    def gpus_per_node(self):
        """Size of the scale-up (NVLink) domain, ``network.dims[0].size``."""
        return self.network.dims[0].size

    @property
    def scaleup_bandwidth_Bps(self):
        """Per-GPU per-direction scale-up bandwidth, ``network.dims[0].bandwidth_Bps``."""
        return self.network.dims[0].bandwidth_Bps

    @property
    def scaleout_bandwidth_Bps(self):
        """Per-GPU per-direction scale-out bandwidth, ``network.dims[-1].bandwidth_Bps``."""
        return self.network.dims[-1].bandwidth_Bps


#: sweep paths of the network leaves of a :class:`Cluster` inside a :class:`TrainingDesign`
SCALEUP_BANDWIDTH_PATH = "cluster.network.dims.0.bandwidth_Bps"
SCALEOUT_BANDWIDTH_PATH = "cluster.network.dims.1.bandwidth_Bps"

_DIM_FIELDS = ("size", "bandwidth_Bps", "latency_s", "nic_bandwidth_Bps", "efficiency", "overhead_s",
               "in_network_Bps", "local_Bps")


def two_level_network(system="dgx_a100", *, nodes=1, **overrides) -> System:
    """A two-dimension :class:`~diffsys.topologies.System` (scale-up, scale-out) from a topologies preset.

    ``system``: a :func:`diffsys.topologies.system_preset` name or a :class:`~diffsys.topologies.System` whose
    first and last dimensions are used (the calibrated NVLink and InfiniBand constants live there, one calibration
    for the whole library). ``overrides``: ``scaleup_<field>`` / ``scaleout_<field>`` for any numeric
    :class:`~diffsys.topologies.Dimension` field (``scaleup_bandwidth_Bps``, ``scaleout_latency_s``,
    ``scaleup_efficiency``, ...) and ``gpus_per_node`` (= ``scaleup_size``).
    """
    base = system_preset(system, nodes=nodes) if isinstance(system, str) else system
    if not isinstance(base, System):
        raise ValueError(f"system must be a topologies preset name or a System, got {type(base).__name__}")
    up, out = base.dims[0], base.dims[-1]
    ch = {"scaleup": {}, "scaleout": {}}
    for key, val in overrides.items():
        if key == "gpus_per_node":
            key = "scaleup_size"
        side, _, field = key.partition("_")
        if side not in ch or field not in _DIM_FIELDS:
            raise ValueError(f"unknown network field {key!r}; use gpus_per_node or scaleup_/scaleout_ + one of "
                             f"{list(_DIM_FIELDS)}")
        ch[side][field] = val
    if "size" not in ch["scaleout"]:
        ch["scaleout"]["size"] = nodes
    return System(base.name, (up.replace(**ch["scaleup"]), out.replace(**ch["scaleout"])), base.accelerator,
                  base.description)


GB = 1e9

# name -> (accelerator preset, topologies system, overrides of its dimensions, $/GPU-hour, note)
_CLUSTERS = {
    "hgx_h100": ("h100", "hgx_h100", {}, 2.5,
                 "NVIDIA HGX/DGX H100: NVLink4 900 GB/s bidirectional (450/direction) via NVSwitch with NVLS; one "
                 "ConnectX-7 400 Gb/s NDR NIC per GPU (DGX H100 user guide; diffsys.topologies.system_preset)."),
    "dgx_a100": ("a100_80gb", "dgx_a100", {}, 1.5,
                 "NVIDIA DGX A100: NVLink3 600 GB/s bidirectional (300/direction) via NVSwitch; eight 200 Gb/s HDR "
                 "NICs (DGX A100 user guide; diffsys.topologies.system_preset)."),
    "hgx_h200": ("h200", "hgx_h200", {}, 3.5, "HGX H200: as HGX H100 with H200 GPUs."),
    "hgx_b200": ("b200", "hgx_b200", {}, 5.0,
                 "HGX/DGX B200: eight GPUs on NVLink5 switches (1.8 TB/s bidirectional, 900/direction, NVLS); one "
                 "400 Gb/s NIC per GPU (DGX B200 datasheet; diffsys.topologies.system_preset)."),
    "gb200_nvl72": ("gb200", "gb200_nvl72", {}, 6.0,
                    "GB200 NVL72: 72 GPUs in one NVLink5 domain (1.8 TB/s bidirectional, 900/direction, NVLS); one "
                    "400 Gb/s ConnectX-7 NIC per GPU (GB200 NVL72 datasheet, DGX GB200 user guide; "
                    "diffsys.topologies.system_preset). $/GPU-hour an assumption."),
}
#: Sustained training clock (``Cluster.sustained_clock``) of the presets that have been measured, with its
#: provenance; the others keep 1.0 (their kernel calibrations' clock).
_SUSTAINED_CLOCK = {
    "hgx_h100": (0.78, "fitted (relative least squares through the differentiable training step) on the five "
                       "single-stage NeMo 24.07 FP8 pre-training rows on DGX-H100, the pipelined and SFT rows held "
                       "out (examples/train_validation.py, docs/llm.md); the datasheet's base/boost clock ratio "
                       "is 1590/1980 = 0.80 (NVIDIA H100 Tensor Core GPU datasheet)"),
    "hgx_h200": (0.78, "the H100 value: the same GH100 die at the same 700 W cap (NVIDIA H200 datasheet)"),
}
#: Source of each preset's sustained training clock.
SUSTAINED_CLOCK_SOURCES = {k: v[1] for k, v in _SUSTAINED_CLOCK.items()}
#: other names of the presets (the DGX systems share the HGX boards' fabric)
_CLUSTER_ALIASES = {"dgx_h100": "hgx_h100", "dgx_h200": "hgx_h200", "dgx_b200": "hgx_b200", "hgx_a100": "dgx_a100",
                    "nvl72": "gb200_nvl72"}


def cluster_preset(name: str, n_gpus: int | None = None, **overrides) -> Cluster:
    """A cluster preset (``hgx_h100``, ``dgx_a100``, ``hgx_h200``, ``hgx_b200``, ``gb200_nvl72``; ``dgx_h100``,
    ``dgx_h200``, ``dgx_b200`` are the same boards) with ``n_gpus`` GPUs (default one node) and optional overrides:
    :class:`Cluster` fields, or network fields as in :func:`two_level_network` (``scaleup_bandwidth_Bps``,
    ``scaleout_latency_s``, ``gpus_per_node``, ...). Sources: :data:`CLUSTER_SOURCES`."""
    key = name.lower().replace("-", "_")
    key = _CLUSTER_ALIASES.get(key, key)
    if key not in _CLUSTERS:
        raise ValueError(f"unknown cluster preset {name!r}; known: {sorted(set(_CLUSTERS) | set(_CLUSTER_ALIASES))}")
    acc, system, net_kw, usd, _ = _CLUSTERS[key]
    if n_gpus is not None:
        check_range("n_gpus", n_gpus, 1, None)
    net_kw = dict(net_kw)
    fields = {}
    for k, v in overrides.items():
        if k in Cluster.__dataclass_fields__:
            fields[k] = v
        elif k == "gpus_per_node" or k.startswith(("scaleup_", "scaleout_")):
            net_kw[k] = v
        else:
            raise ValueError(f"cluster_preset: unknown field {k!r}")
    per_node = float(net_kw.get("gpus_per_node", system_preset(system).dims[0].size))
    n = per_node if n_gpus is None else n_gpus
    nodes = max(1, math.ceil(float(n) / per_node))
    base = dict(name=key, accelerator=accelerator_preset(acc), n_gpus=n,
                network=two_level_network(system, nodes=nodes, **net_kw), gpu_hour_usd=usd,
                sustained_clock=_SUSTAINED_CLOCK.get(key, (1.0,))[0])
    base.update(fields)
    return Cluster(**base)


#: Source of each cluster preset.
CLUSTER_SOURCES = {k: v[-1] for k, v in _CLUSTERS.items()}
#: accelerator preset of each cluster preset (aliases included)
CLUSTER_ACCELERATORS = {k: _CLUSTERS[_CLUSTER_ALIASES.get(k, k)][0] for k in (*_CLUSTERS, *_CLUSTER_ALIASES)}


def _concrete(x):
    try:
        return np.asarray(x, dtype=float)
    except Exception:
        return None


def check_parallelism(model, cluster, par, *, training=True) -> None:
    """Raise ``ValueError`` naming the field when *concrete* parallel degrees are inconsistent (exact mode):
    ``tp·pp·dp·cp`` must equal ``n_gpus``; ``tp`` must divide the heads; ``pp·interleave`` the layers; ``dp·b`` the
    global batch; ``cp`` the sequence; ``ep`` the experts and ``dp·cp``. Traced values are not checked."""
    vals = {k: _concrete(getattr(par, k)) for k in ("tp", "pp", "dp", "cp", "ep", "microbatch", "global_batch",
                                                     "interleave")}
    mvals = {k: _concrete(getattr(model, k)) for k in ("n_layers", "n_heads", "n_kv_heads", "seq_len",
                                                        "n_experts", "hidden")}
    n = _concrete(cluster.n_gpus)
    if any(v is None or v.ndim for v in (*vals.values(), *mvals.values(), n)):
        return

    def divides(name, d, total, what):
        d, total = float(d), float(total)
        if d < 1 or abs(total / d - round(total / d)) > 1e-9:
            raise ValueError(f"Parallelism.{name}={d:g} must divide {what} ({total:g})")

    v, mv = {k: float(x) for k, x in vals.items()}, {k: float(x) for k, x in mvals.items()}
    if float(n) < 1:
        raise ValueError(f"Cluster.n_gpus must be >= 1, got {float(n):g}")
    prod = v["tp"] * v["pp"] * v["dp"] * v["cp"]
    if abs(prod - float(n)) > 1e-9:
        raise ValueError(f"Parallelism: tp·pp·dp·cp = {prod:g} must equal Cluster.n_gpus = {float(n):g}")
    divides("tp", v["tp"], mv["n_heads"], "the attention heads (n_heads)")
    divides("pp", v["pp"] * v["interleave"], mv["n_layers"], "the layers (n_layers) as pp·interleave")
    if training:
        divides("dp", v["dp"] * v["microbatch"], v["global_batch"], "the global batch as dp·microbatch")
    divides("cp", v["cp"], mv["seq_len"], "the sequence length (seq_len)")
    divides("ep", v["ep"], mv["n_experts"], "the experts (n_experts)")
    divides("ep", v["ep"], v["dp"] * v["cp"], "dp·cp (expert parallelism is carved out of data parallelism)")
    if v["pp"] == 1 and v["interleave"] != 1:
        raise ValueError("Parallelism.interleave must be 1 when pp == 1")

