"""Hierarchical roofline: one bandwidth ceiling per memory level (L1/SMEM, L2, HBM, host).

``time = max(F / (P·η_c), max_l  Q_l / (B_l·η_l)) + overhead`` where ``Q_l`` are the bytes moved through level ``l``
(Yang, Kurth & Williams, "Hierarchical Roofline analysis for GPUs: accelerating performance optimization for the
NERSC-9 Perlmutter system", Concurrency and Computation: Practice and Experience, 2020; Ilic, Pratas & Sousa,
"Cache-aware roofline model", IEEE CAL 2014). The smooth twin replaces the max by a log-sum-exp at a temperature
relative to the mean of the times. Energy sums ``F·e_flop + Σ_l Q_l·e_l``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from .._checks import check_range
from ..primitives import logsumexp_max, safe_divide
from ._efficiency import as_efficiency
from ._ops import OpCost
from ._optime import compute_time


class HierarchicalRoofline(NamedTuple):
    """Metrics of a hierarchical roofline evaluation; per-level fields have a trailing axis of length L."""

    time_s: jnp.ndarray
    compute_time_s: jnp.ndarray
    level_times_s: jnp.ndarray  # (..., L)
    binding: jnp.ndarray  # int: 0 = compute, l + 1 = memory level l
    compute_bound: jnp.ndarray
    achieved_flops: jnp.ndarray
    arithmetic_intensity: jnp.ndarray  # (..., L) FLOP per byte of each level
    energy_J: jnp.ndarray
    compute_energy_J: jnp.ndarray
    level_energy_J: jnp.ndarray  # (..., L)


def hierarchical_roofline(flops, level_bytes, peak_flops, level_bandwidths_Bps, *, compute_efficiency=1.0,
                          level_efficiencies=1.0, overhead_s=0.0, energy_J_per_flop=0.0, level_energies_J_per_B=0.0,
                          temperature=0.0) -> HierarchicalRoofline:
    """Hierarchical roofline of an op doing ``flops`` work and moving ``level_bytes[..., l]`` through level ``l``.

    All per-level arguments broadcast against a trailing axis of length L.
    """
    flops = jnp.asarray(flops)
    q = jnp.asarray(level_bytes)
    t_c = flops / (peak_flops * compute_efficiency)
    t_l = q / (jnp.asarray(level_bandwidths_Bps) * level_efficiencies)
    all_t = jnp.concatenate([t_c[..., None] * jnp.ones_like(t_l[..., :1]), t_l], axis=-1)
    scale = jnp.mean(jnp.abs(all_t), axis=-1) + 1e-30
    if isinstance(temperature, (int, float)) and temperature == 0:
        t = jnp.max(all_t, axis=-1)
    else:
        t = scale * logsumexp_max(all_t / scale[..., None], axis=-1, temperature=temperature)
    t = t + overhead_s
    binding = jnp.argmax(all_t, axis=-1)
    e_l = q * level_energies_J_per_B
    e_c = flops * energy_J_per_flop
    return HierarchicalRoofline(
        time_s=t,
        compute_time_s=t_c,
        level_times_s=t_l,
        binding=binding,
        compute_bound=binding == 0,
        achieved_flops=safe_divide(flops, t),
        arithmetic_intensity=safe_divide(flops[..., None], q, jnp.inf),
        energy_J=e_c + jnp.sum(e_l, axis=-1),
        compute_energy_J=e_c,
        level_energy_J=e_l,
    )


def gemm_level_bytes(m, n, k, accel, bytes_per_element=2, *, batch=1, register_B_per_core=256 * 1024,
                     temperature=0.0):
    """Bytes a well-tiled GEMM moves through each memory level of ``accel`` (``(L,)``, fastest level first).

    The traffic *into* level ``l`` is set by the capacity of the level just above it (closer to the compute
    units), via :func:`diffsys.memory.gemm_traffic`: a per-core buffer (registers for the first level, then each
    per-core level's share ``capacity / num_cores``) or the whole capacity of a shared level (L2, caches named
    ``l2``/``vmem``/``cmem``; the main memory's traffic is set by the last on-chip level). Each level sees at least
    the compulsory traffic.
    """
    from ..memory import gemm_traffic

    levels = accel.memory
    shared = {"l2", "l3", "llc", "vmem", "cmem", "sram"}
    out = []
    above = register_B_per_core  # per-core buffer feeding level 0
    for lvl in levels:
        out.append(gemm_traffic(m, n, k, above, bytes_per_element, batch=batch, temperature=temperature).bytes)
        above = lvl.capacity_B if lvl.name in shared else lvl.capacity_B / accel.num_cores
    return jnp.stack(jnp.broadcast_arrays(*out), axis=-1)


def hierarchical_op_time(op: OpCost, accel, dtype="bf16", efficiency=None, temperature=0.0, *, level_bytes=None,
                         overhead_s=0.0, sparse=False) -> HierarchicalRoofline:
    """Hierarchical roofline of ``op`` on every memory level of ``accel``.

    ``level_bytes``: ``(..., L)`` bytes per level (e.g. :func:`gemm_level_bytes`); default: the op's compulsory
    bytes at every level (each byte read from main memory also crosses every on-chip level). Memory efficiencies
    use each level's bandwidth×latency knee (:func:`default_efficiency`) unless ``efficiency`` is given.
    """
    check_range("temperature", temperature, 0.0, None)
    L = len(accel.memory)
    flops = jnp.asarray(op.flops)
    if level_bytes is None:
        level_bytes = jnp.asarray(op.bytes)[..., None] * jnp.ones((L,))
    level_bytes = jnp.asarray(level_bytes)
    effs = [as_efficiency(efficiency, accel, dtype, level=lvl.name) for lvl in accel.memory]
    eta = jnp.stack([e.memory(level_bytes[..., i]) for i, e in enumerate(effs)], axis=-1)
    t_c = compute_time(op, accel, dtype, effs[0], sparse=sparse)
    ok = t_c > 0
    rate = jnp.where(ok, flops / jnp.where(ok, t_c, 1.0), 1.0)
    return hierarchical_roofline(
        flops, level_bytes, rate, jnp.stack([lvl.bandwidth_Bps for lvl in accel.memory]),
        level_efficiencies=eta, overhead_s=overhead_s, energy_J_per_flop=accel.energy_J_per_flop,
        level_energies_J_per_B=jnp.stack([lvl.energy_J_per_B for lvl in accel.memory]), temperature=temperature)


#: Host-link presets (per direction): PCIe 4.0 x16 ≈ 32 GB/s, PCIe 5.0 x16 ≈ 64 GB/s (PCI-SIG base specifications
#: 4.0/5.0, 16/32 GT/s per lane, 128b/130b); NVLink-C2C 450 GB/s per direction (NVIDIA Grace Hopper whitepaper, 2023).
HOST_LINKS_Bps = {"pcie4": 32e9, "pcie5": 64e9, "nvlink_c2c": 450e9}


def with_host_level(accel, link="pcie5", *, capacity_B=512 * 2**30, bandwidth_Bps=None, latency_s=1e-6,
                    energy_J_per_B=80e-12):
    """``accel`` with a host-memory level appended (for offloading: weights/optimizer/KV cache in CPU memory).

    The level's bandwidth is the host link's (``HOST_LINKS_Bps[link]`` unless ``bandwidth_Bps`` is given);
    ``energy_J_per_B`` ≈ 10 pJ/bit for link + DDR5 access (an estimate). The main-memory index is unchanged.
    """
    from .._checks import check_choice
    from ..hardware import Accelerator, MemoryLevel

    if bandwidth_Bps is None:
        check_choice("link", link, HOST_LINKS_Bps)
        bandwidth_Bps = HOST_LINKS_Bps[link]
    host = MemoryLevel("host", capacity_B, bandwidth_Bps, latency_s, energy_J_per_B)
    return Accelerator(accel.name + "+host", accel.matrix_flops, accel.vector_flops, (*accel.memory, host),
                       accel.power, sparsity_speedup=accel.sparsity_speedup, frequency_Hz=accel.frequency_Hz,
                       num_cores=accel.num_cores, link_bandwidth_Bps=accel.link_bandwidth_Bps,
                       nic_bandwidth_Bps=accel.nic_bandwidth_Bps, energy_J_per_flop=accel.energy_J_per_flop,
                       main_memory_index=accel.main_memory_index, compute_memory_overlap=accel.compute_memory_overlap)
