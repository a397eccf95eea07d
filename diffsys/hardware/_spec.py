"""Hardware specs as pytrees: :class:`MemoryLevel`, :class:`PowerSpec`, :class:`Accelerator`.

Numeric fields are JAX float arrays (so a spec can be traced, vmapped and differentiated); names and the list of
memory levels are static structure. Units are SI: FLOP/s, bytes, bytes/s, seconds, joules, watts, hertz, mm².
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp

from .._checks import check_choice, check_positive, check_range
from .._pytree import as_float

#: Matrix-unit (tensor core / MXU) data types, in the order used by :meth:`Accelerator.peak_flops`.
MATRIX_DTYPES = ("fp64", "tf32", "fp32", "bf16", "fp16", "fp8", "int8", "fp4")
#: Vector-unit (CUDA core / VPU) data types.
VECTOR_DTYPES = ("fp64", "fp32", "bf16", "fp16")
#: Bytes per element of each dtype.
#: Wider dtypes a kernel falls back to when a unit lacks ``dtype`` (fp8 GEMMs run as bf16 on A100, ...).
_FALLBACK = {"fp4": ("fp8", "bf16", "fp16", "tf32", "fp32"), "fp8": ("bf16", "fp16", "tf32", "fp32"),
             "int8": ("fp16", "bf16", "fp32"), "fp16": ("bf16", "tf32", "fp32"), "bf16": ("fp16", "tf32", "fp32"),
             "tf32": ("fp32",), "fp32": ("tf32", "fp64"), "fp64": ()}
DTYPE_BYTES = {"fp64": 8, "fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "fp4": 0.5}


class MemoryLevel(eqx.Module):
    """One level of the memory hierarchy (register file/SMEM, L2, HBM, host DRAM, ...).

    ``capacity_B`` and ``bandwidth_Bps`` are the *aggregate* figures for the device; ``latency_s`` is the unloaded
    access latency; ``energy_J_per_B`` the access energy per byte moved; ``area_mm2`` is NaN when unknown.
    """

    name: str = eqx.field(static=True)
    capacity_B: jnp.ndarray = eqx.field(converter=as_float)
    bandwidth_Bps: jnp.ndarray = eqx.field(converter=as_float)
    latency_s: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    energy_J_per_B: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    area_mm2: jnp.ndarray = eqx.field(converter=as_float, default=math.nan)

    def __check_init__(self):
        check_positive(f"MemoryLevel({self.name}).capacity_B", self.capacity_B)
        check_positive(f"MemoryLevel({self.name}).bandwidth_Bps", self.bandwidth_Bps)
        check_positive(f"MemoryLevel({self.name}).latency_s", self.latency_s, allow_zero=True, allow_inf=False)
        check_positive(f"MemoryLevel({self.name}).energy_J_per_B", self.energy_J_per_B, allow_zero=True,
                       allow_inf=False)


class PowerSpec(eqx.Module):
    """Board power: thermal design power, idle draw and the fraction of TDP that is static (leakage)."""

    tdp_W: jnp.ndarray = eqx.field(converter=as_float)
    idle_W: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    static_fraction: jnp.ndarray = eqx.field(converter=as_float, default=0.3)

    def __check_init__(self):
        check_positive("PowerSpec.tdp_W", self.tdp_W)
        check_range("PowerSpec.idle_W", self.idle_W, 0.0, None)
        check_range("PowerSpec.static_fraction", self.static_fraction, 0.0, 1.0)


def _as_calibration(name, cal) -> dict:
    """Validate and convert ``{kind: {dtype: {constant: number}}}`` to array leaves."""
    if not isinstance(cal, dict):
        raise ValueError(f"{name}.calibration must be a mapping kind -> dtype -> constants, got {type(cal).__name__}")
    out = {}
    for kind, table in cal.items():
        if not isinstance(table, dict):
            raise ValueError(f"{name}.calibration[{kind!r}] must map dtype -> constants")
        out[kind] = {}
        for dtype, consts in table.items():
            if dtype != "*":
                check_choice(f"{name}.calibration[{kind!r}] dtype", dtype, DTYPE_BYTES)
            if not isinstance(consts, dict):
                raise ValueError(f"{name}.calibration[{kind!r}][{dtype!r}] must map constant names to numbers")
            out[kind][dtype] = {c: as_float(v) for c, v in consts.items()}
    return out


class Accelerator(eqx.Module):
    """A compute device: peak throughput per dtype, memory hierarchy, power and interconnect.

    Attributes:
        name: display name.
        matrix_flops: dense peak FLOP/s (OP/s for int8) of the matrix units per dtype (keys ⊆ ``MATRIX_DTYPES``).
        vector_flops: peak FLOP/s of the vector units per dtype (keys ⊆ ``VECTOR_DTYPES``).
        memory: levels ordered from the fastest/smallest to the slowest/largest; the last *device* level is the
            main memory (HBM/DRAM), see :attr:`main_memory`.
        power: board power spec.
        sparsity_speedup: speed-up of the matrix units with 2:4 structured sparsity (1 when unsupported).
        frequency_Hz: boost clock.
        num_cores: streaming multiprocessors / compute units / TensorCores.
        link_bandwidth_Bps: scale-up interconnect bandwidth per device per direction (NVLink, ICI, Infinity Fabric).
        nic_bandwidth_Bps: scale-out network bandwidth per device per direction.
        energy_J_per_flop: energy of one bf16 matrix FLOP (other dtypes scale, see ``diffsys.power``).
        compute_memory_overlap: fraction of the shorter of a kernel's compute and memory times hidden under the
            longer, in [0, 1]. 1 (default): loads overlap the math, the roofline max (Williams et al. 2009) and
            the GEMM kernel model's multistage pipeline; 0: the two run back to back, ``t_compute + t_memory``
            (Calculon's ``processing_mode: no_overlap``, Isaev et al. SC 2023). Applies to
            :func:`diffsys.roofline.op_time` and :func:`diffsys.roofline.gemm_time`.
        main_memory_index: index into ``memory`` of the main memory level (static).
        calibration: fitted kernel constants, ``{kind: {dtype: {name: array}}}`` (kind = ``"gemm"``,
            ``"attention"``, ...). Array leaves, so they can be swept, fitted and differentiated like any other
            field; presets load them from ``diffsys/hardware/calibration/<kind>.json`` (with provenance), and a
            kind or dtype that is absent means "use the model's documented defaults". See
            :meth:`kernel_constants`.
    """

    name: str = eqx.field(static=True)
    matrix_flops: dict
    vector_flops: dict
    memory: tuple
    power: PowerSpec
    sparsity_speedup: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    frequency_Hz: jnp.ndarray = eqx.field(converter=as_float, default=1.0e9)
    num_cores: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    link_bandwidth_Bps: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    nic_bandwidth_Bps: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    energy_J_per_flop: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    compute_memory_overlap: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    main_memory_index: int = eqx.field(static=True, default=-1)
    calibration: dict = eqx.field(default_factory=dict)

    def __init__(
        self,
        name,
        matrix_flops,
        vector_flops,
        memory,
        power,
        sparsity_speedup=1.0,
        frequency_Hz=1.0e9,
        num_cores=1.0,
        link_bandwidth_Bps=0.0,
        nic_bandwidth_Bps=0.0,
        energy_J_per_flop=0.0,
        main_memory_index=-1,
        calibration=None,
        compute_memory_overlap=1.0,
    ):
        self.name = name
        for key in matrix_flops:
            check_choice(f"{name}.matrix_flops key", key, MATRIX_DTYPES)
        for key in vector_flops:
            check_choice(f"{name}.vector_flops key", key, VECTOR_DTYPES)
        self.matrix_flops = {k: as_float(v) for k, v in matrix_flops.items()}
        self.vector_flops = {k: as_float(v) for k, v in vector_flops.items()}
        self.memory = tuple(memory)
        if not self.memory:
            raise ValueError(f"{name}.memory must list at least one MemoryLevel")
        self.power = power
        self.sparsity_speedup = sparsity_speedup
        self.frequency_Hz = frequency_Hz
        self.num_cores = num_cores
        self.link_bandwidth_Bps = link_bandwidth_Bps
        self.nic_bandwidth_Bps = nic_bandwidth_Bps
        self.energy_J_per_flop = energy_J_per_flop
        self.compute_memory_overlap = compute_memory_overlap
        n = len(self.memory)
        if not -n <= main_memory_index < n:
            raise ValueError(f"{name}.main_memory_index must be in [{-n}, {n - 1}], got {main_memory_index}")
        self.main_memory_index = main_memory_index % n
        self.calibration = _as_calibration(name, calibration or {})

    def __check_init__(self):
        for k, v in {**self.matrix_flops, **{f"vector_{k}": v for k, v in self.vector_flops.items()}}.items():
            check_positive(f"{self.name}.flops[{k}]", v, allow_inf=False)
        check_range(f"{self.name}.sparsity_speedup", self.sparsity_speedup, 1.0, 4.0)
        check_positive(f"{self.name}.frequency_Hz", self.frequency_Hz, allow_inf=False)
        check_positive(f"{self.name}.num_cores", self.num_cores, allow_inf=False)
        check_positive(f"{self.name}.link_bandwidth_Bps", self.link_bandwidth_Bps, allow_zero=True)
        check_positive(f"{self.name}.nic_bandwidth_Bps", self.nic_bandwidth_Bps, allow_zero=True)
        check_positive(f"{self.name}.energy_J_per_flop", self.energy_J_per_flop, allow_zero=True, allow_inf=False)
        check_range(f"{self.name}.compute_memory_overlap", self.compute_memory_overlap, 0.0, 1.0)

    # -- accessors ---------------------------------------------------------------------------------------------
    def peak_flops(self, dtype: str = "bf16", *, matrix: bool = True, sparse: bool = False):
        """Peak FLOP/s for ``dtype`` on the matrix (default) or vector units; ``sparse`` applies 2:4 sparsity.

        A dtype the matrix units lack falls back to the next wider supported one (fp8 -> bf16 on A100), as real
        kernels do; a dtype no unit supports raises ``ValueError``.
        """
        table = self.matrix_flops if matrix else self.vector_flops
        order = MATRIX_DTYPES if matrix else VECTOR_DTYPES
        check_choice("dtype", dtype, DTYPE_BYTES)
        chain = [dtype, *_FALLBACK[dtype]]
        supported = [d for d in chain if d in table]
        if not supported:
            raise ValueError(f"{self.name} has no {'matrix' if matrix else 'vector'} unit for {dtype}; "
                             f"supported: {[d for d in order if d in table]}")
        peak = table[supported[0]]
        return peak * self.sparsity_speedup if (sparse and matrix) else peak

    def matrix_dtype(self, dtype: str = "bf16") -> str:
        """The dtype the matrix units run ``dtype`` as: ``dtype`` itself or its first supported fallback (fp8 ->
        bf16 on A100); ``dtype`` unchanged when no matrix unit supports it or a fallback."""
        check_choice("dtype", dtype, DTYPE_BYTES)
        return next((d for d in (dtype, *_FALLBACK[dtype]) if d in self.matrix_flops), dtype)

    def unit_peaks(self, dtype: str = "bf16", sparse: bool = False):
        """(matrix, vector) peak FLOP/s for ``dtype``; a unit lacking the dtype (and its fallbacks) is replaced by
        the other one (an fp32 GEMM on V100 runs on the CUDA cores); raises ``ValueError`` when neither has it."""
        try:
            p_mat = self.peak_flops(dtype, sparse=sparse)
        except ValueError:
            p_mat = None
        try:
            p_vec = self.peak_flops(dtype, matrix=False)
        except ValueError:
            if p_mat is None:
                raise
            p_vec = None
        return (p_vec if p_mat is None else p_mat), (p_mat if p_vec is None else p_vec)

    def kernel_constants(self, kind: str, dtype: str = "bf16"):
        """Calibrated constants of kernel model ``kind`` for ``dtype`` (a dict of arrays), or ``None``.

        The dtype is resolved as :meth:`peak_flops` resolves it (an fp8 GEMM on A100 runs as bf16, so it uses the
        bf16 constants); a dtype entry ``"*"`` applies to every dtype of that kind without its own entry.
        """
        table = self.calibration.get(kind)
        if not table:
            return None
        return table.get(self.matrix_dtype(dtype), table.get("*"))

    def with_calibration(self, kind: str, constants: dict | None) -> "Accelerator":
        """A copy with the constants of ``kind`` replaced (``{dtype: {name: value}}``; ``None`` removes them)."""
        cal = {k: v for k, v in self.calibration.items() if k != kind}
        if constants is not None:
            cal[kind] = _as_calibration(self.name, {kind: constants})[kind]
        return eqx.tree_at(lambda a: a.calibration, self, cal)

    @property
    def main_memory(self) -> MemoryLevel:
        """The device's main memory (HBM/DRAM)."""
        return self.memory[self.main_memory_index]

    def level(self, name: str) -> MemoryLevel:
        """The memory level called ``name``."""
        for lvl in self.memory:
            if lvl.name == name:
                return lvl
        raise ValueError(f"{self.name} has no memory level {name!r}; levels: {[m.name for m in self.memory]}")

    @property
    def level_names(self) -> tuple:
        return tuple(m.name for m in self.memory)
