"""Multi-GPU / multi-chip systems as tuples of network dimensions, with cited presets.

Bandwidths are per GPU, per direction. Sources:
- [A100] NVIDIA A100 datasheet (2021): NVLink3 600 GB/s bidirectional (12 links × 25 GB/s per direction);
  DGX A100 user guide: 6 NVSwitches, 8 × ConnectX-6 200 Gb/s HDR InfiniBand (one per GPU).
- [H100] NVIDIA H100 datasheet (2023) / HGX H100 brief: NVLink4 900 GB/s bidirectional (18 links), third-generation
  NVSwitch with NVLink SHARP (NVLS) in-network reduction; 8 × ConnectX-7 400 Gb/s NDR. H200: same fabric.
- [B200] NVIDIA DGX B200 datasheet / HGX B200 brief (2024): 8 Blackwell GPUs, fifth-generation NVLink 1.8 TB/s
  bidirectional per GPU (18 links × 50 GB/s per direction = 900 GB/s), two NVLink-5 switch chips with SHARP
  (NVLS); 8 × ConnectX-7 400 Gb/s.
- [GB200] NVIDIA GB200 NVL72 brief (2024): 72 Blackwell GPUs in one NVLink5 domain, 1.8 TB/s bidirectional per GPU,
  NVLink Switch with SHARP; 400 Gb/s ConnectX-7 per GPU for scale-out.
- [TPUv4] Jouppi et al., "TPU v4: an optically reconfigurable supercomputer", ISCA 2023: 4096 chips, 3D torus
  16×16×16, 6 ICI links per chip at 45 GB/s per direction (2 links per torus dimension).
- [TPUv5e] Google Cloud TPU v5e documentation: 256 chips, 2D torus 16×16, ICI 1600 Gb/s per chip (4 links × 50 GB/s);
  pod all-reduce bandwidth 51.2 TB/s, bisection 1.6 TB/s.
- [PCIe] PCI-SIG PCIe 4.0 x16: 32 GB/s per direction raw (≈ 25 GB/s achievable after protocol overhead).
- [DGX1] NVIDIA DGX-1 with V100 whitepaper (2017): hybrid cube-mesh of NVLink2 links (6 per GPU, 25 GB/s per
  direction each).
- Per-step latencies: NCCL ``tuning.cc`` Simple-protocol ring ``hwLat``: NVLink 3.4 µs (PCIe 5.7 µs, network
  14 µs) unless a calibrated value is stated.

The NVSwitch dimensions of the HGX/DGX A100, H100, H200 and B200 presets run NCCL's fitted cost model
(:class:`NcclParams`, ``nccl_constants.json``): per-protocol latencies, bandwidth shares, link efficiency, local
throughput and NVLS throughput fitted to measured nccl-tests on A100 and H100 HGX boxes (even power-of-two sizes;
odd sizes held out, ``docs/network.md``). H200 has the H100's NVLink4/NVSwitch fabric and SMs and uses the H100 fit
unchanged; B200 uses the H100 fit with NVLink5 bandwidth, NVLS efficiency scaled by NCCL's own Blackwell/Hopper
ratio (0.74/0.85, NCCL ``src/graph/tuning.cc`` ``nvlsEfficiency``) and the local throughput scaled by HBM
bandwidth (8.0/3.35 TB/s) -- assumptions, no B200 data here. The older constants below (vTrain-fitted) still serve
the DGX-1 and PCIe presets.
"""

from __future__ import annotations

import equinox as eqx

from .._checks import check_positive
from ._hierarchical import (
    Dimension,
    HierarchicalCollectiveTime,
    hierarchical_collective_time,
)

GB = 1e9
# Calibrated on vTrain A100 all-reduce (odd GPU counts 3, 5, 7; reported on 2, 4, 6, 8): see docs/network.md.
NVLINK_EFFICIENCY = 1.0  # fit hit the upper bound: NVLink runs at its nominal rate, the local term takes the rest
NVLINK_LATENCY_S = 4.1e-6  # per ring step, Simple protocol (NCCL's own NVLink estimate: 3.4 µs)
NVLINK_OVERHEAD_S = 43e-6  # launch + synchronisation per collective as seen by the measuring framework
NVLINK_LOCAL_BPS = 541e9  # per-GPU local processing throughput of the communication kernel (A100 80GB)
#: the same throughput as a fraction of the GPU's HBM bandwidth (541 / 2039 GB/s), used for other GPUs
LOCAL_FRACTION_OF_HBM = NVLINK_LOCAL_BPS / 2039e9
#: NVLS (NVLink SHARP) reduction throughput per H100: calibrated to the single published 8×H100 NVLS busbw
#: (≈ 480 GB/s, nccl-tests issue 212); one point, so this is a calibration, not a validation.
NVLS_H100_BPS = 397e9
IB_EFFICIENCY = 0.9
IB_LATENCY_S = 14e-6


class System(eqx.Module):
    """A system: named network dimensions (innermost first) and the accelerator preset name of each rank."""

    name: str = eqx.field(static=True)
    dims: tuple
    accelerator: str = eqx.field(static=True)
    description: str = eqx.field(static=True, default="")

    @property
    def n_ranks(self):
        n = 1.0
        for d in self.dims:
            n = n * d.size
        return n

    def with_sizes(self, *sizes) -> System:
        """Same system with new dimension sizes (``None`` keeps a size); e.g. ``with_sizes(8, 16)`` = 16 nodes."""
        if len(sizes) > len(self.dims):
            raise ValueError(f"{self.name} has {len(self.dims)} dimensions, got {len(sizes)} sizes")
        dims = tuple(d if s is None else d.replace(size=s) for d, s in zip(self.dims, sizes + (None,) * (
            len(self.dims) - len(sizes))))
        return System(self.name, dims, self.accelerator, self.description)

    def with_nodes(self, nodes, gpus_per_node=None) -> System:
        """Scale-out count along the outermost dimension (and optionally GPUs per node along the innermost)."""
        check_positive("nodes", nodes)
        return self.with_sizes(gpus_per_node, *([None] * (len(self.dims) - 2)), nodes) if len(self.dims) > 1 \
            else self.with_sizes(gpus_per_node)

    def collective_time(self, op, size_B, **kw) -> HierarchicalCollectiveTime:
        return hierarchical_collective_time(op, size_B, self.dims, **kw)


def _local_Bps(accelerator):
    """A100-calibrated local throughput; Hopper/Blackwell scale it by HBM bandwidth (an assumption checked only
    against the published 8×H100 ring busbw; the unscaled constant gives 305 GB/s there vs 370 published)."""
    if accelerator in ("a100_80gb", "a100_40gb", "v100"):  # V100 validated with the unscaled A100 constant
        return NVLINK_LOCAL_BPS
    from ..hardware import preset

    return float(preset(accelerator).main_memory.bandwidth_Bps) * LOCAL_FRACTION_OF_HBM


def _nvswitch(size, bw, accelerator, *, in_network=False, in_network_Bps=0.0, latency=NVLINK_LATENCY_S):
    return Dimension("switch", size, bw, latency, efficiency=NVLINK_EFFICIENCY, overhead_s=NVLINK_OVERHEAD_S,
                     in_network=in_network, in_network_Bps=in_network_Bps, local_Bps=_local_Bps(accelerator),
                     tree="chain")  # NCCL: inside one node the "tree" is a chain


#: NVLS efficiency of Blackwell relative to Hopper in NCCL's tuning model (tuning.cc ``nvlsEfficiency``)
NVLS_BLACKWELL_OVER_HOPPER = 0.74 / 0.85


def _nccl_nvswitch(size, bw, fabric, *, nvls=False, nvls_scale=1.0, local_scale=1.0):
    """An NVSwitch dimension running NCCL's cost model with the fitted constants of ``fabric``."""
    from ._nccl import NcclParams, nccl_fabric_constants

    c = nccl_fabric_constants(fabric)
    params = NcclParams.from_dict(c)
    nvls_Bps = float(c.get("nvls_Bps", 0.0)) * nvls_scale * bw / float(c["datasheet_Bps"])
    return Dimension("switch", size, bw, float(c["hop_s"][2]), efficiency=float(c["efficiency"]),
                     in_network=nvls and nvls_Bps > 0, in_network_Bps=nvls_Bps if nvls else 0.0,
                     in_network_reference_Bps=bw if nvls else 0.0,
                     local_Bps=float(c["local_Bps"]) * local_scale, tree="chain", nccl=params)


def _ib(nodes, bw, *, in_network=False):
    return Dimension("switch", nodes, bw, IB_LATENCY_S, efficiency=IB_EFFICIENCY, in_network=in_network)


def dgx_a100(nodes=1) -> System:
    """DGX/HGX A100 [A100]: 8 GPUs on NVSwitch (NVLink3, 300 GB/s per direction; no NVLS), 8 × 200 Gb/s IB
    (25 GB/s per GPU). NVSwitch dimension: NCCL model, A100 fit."""
    return System("dgx_a100", (_nccl_nvswitch(8, 300 * GB, "a100_nvswitch"), _ib(nodes, 25 * GB)), "a100_80gb",
                  "8x A100 NVLink3/NVSwitch + 8x HDR 200G IB")


def hgx_h100(nodes=1) -> System:
    """HGX/DGX H100 [H100]: 8 GPUs on NVSwitch with NVLS (NVLink4, 450 GB/s per direction), 8 × 400 Gb/s IB
    (50 GB/s per GPU). NVSwitch dimension: NCCL model, H100 fit."""
    return System("hgx_h100", (_nccl_nvswitch(8, 450 * GB, "h100_nvswitch", nvls=True), _ib(nodes, 50 * GB)),
                  "h100_sxm", "8x H100 NVLink4/NVSwitch (NVLS) + 8x NDR 400G IB")


def hgx_h200(nodes=1) -> System:
    """HGX/DGX H200 [H100]: the HGX H100 fabric (NVLink4 450 GB/s per direction, NVLS) with H200 GPUs; the H100
    fit is used unchanged (same fabric and SMs; assumption)."""
    return System("hgx_h200", (_nccl_nvswitch(8, 450 * GB, "h100_nvswitch", nvls=True), _ib(nodes, 50 * GB)),
                  "h200", "8x H200 NVLink4/NVSwitch (NVLS) + 8x NDR 400G IB")


def hgx_b200(nodes=1) -> System:
    """HGX/DGX B200 [B200]: 8 Blackwell GPUs on NVLink5 switches (900 GB/s per direction, NVLS), 8 × 400 Gb/s IB.
    H100 fit with NVLink5 bandwidth, Blackwell NVLS efficiency and HBM-scaled local throughput (assumptions)."""
    nv = _nccl_nvswitch(8, 900 * GB, "h100_nvswitch", nvls=True, nvls_scale=NVLS_BLACKWELL_OVER_HOPPER,
                        local_scale=8.0 / 3.35)
    return System("hgx_b200", (nv, _ib(nodes, 50 * GB)), "b200", "8x B200 NVLink5/NVSwitch (NVLS) + 8x NDR 400G IB")


def gb200_nvl72(racks=1, *, nodes=None) -> System:
    """GB200 NVL72 [GB200]: 72 GB200 GPUs in one NVLink5 domain (1.8 TB/s bidirectional = 900 GB/s per direction
    per GPU through the NVLink Switch trays, SHARP), one 400 Gb/s ConnectX-7 NIC per GPU for scale-out (50 GB/s;
    DGX GB200 user guide). The NVLink dimension is the HGX B200 one (same NVLink5 switch chips: H100 NCCL fit with
    NVLink5 bandwidth, Blackwell NVLS efficiency, HBM-scaled local throughput; assumptions) with 72 ranks.
    ``nodes`` (= ``racks``) is the scale-out count, as for the other GPU servers."""
    nv = _nccl_nvswitch(72, 900 * GB, "h100_nvswitch", nvls=True, nvls_scale=NVLS_BLACKWELL_OVER_HOPPER,
                        local_scale=8.0 / 3.35)
    return System("gb200_nvl72", (nv, _ib(racks if nodes is None else nodes, 50 * GB)), "gb200",
                  "72x GB200 NVLink5 NVL72 rack (NVLS) + 72x NDR 400G scale-out")


def tpu_v4_pod(x=16, y=16, z=16) -> System:
    """TPU v4 pod [TPUv4]: 3D torus (default 16×16×16 = 4096 chips), 2 × 45 GB/s per chip per dimension."""
    dims = tuple(Dimension("ring", s, 2 * 45 * GB, 1e-6) for s in (x, y, z))
    return System("tpu_v4_pod", dims, "tpu_v4", "TPU v4 3D-torus pod")


def tpu_v5e_pod(x=16, y=16) -> System:
    """TPU v5e pod [TPUv5e]: 2D torus (default 16×16 = 256 chips), 2 × 50 GB/s per chip per dimension."""
    dims = tuple(Dimension("ring", s, 2 * 50 * GB, 1e-6) for s in (x, y))
    return System("tpu_v5e_pod", dims, "tpu_v5e", "TPU v5e 2D-torus pod")


def pcie_box(gpus=8) -> System:
    """PCIe-only server [PCIe]: GPUs behind PCIe 4.0 x16 switches, 25 GB/s achievable per direction, no NVLink."""
    return System("pcie_box", (Dimension("switch", gpus, 25 * GB, 5.7e-6, overhead_s=NVLINK_OVERHEAD_S,
                                           tree="chain"),),
                  "a100_40gb", "8x PCIe GPUs, no NVLink")


def dgx1_v100(gpus=8) -> System:
    """DGX-1 V100 [DGX1]: hybrid cube-mesh NVLink2; the ring bandwidth available to the first ``gpus`` GPUs is
    ``rings × 25 GB/s`` with ``rings`` = arc-disjoint directed Hamiltonian cycles of the induced subgraph (see
    :func:`dgx1_ring_count`); with no NVLink ring the ring runs at PCIe speed."""
    from ._graphs import dgx1_ring_count

    rings = dgx1_ring_count(int(gpus))
    bw = rings * 25 * GB if rings > 0 else 10 * GB
    return System("dgx1_v100", (_nvswitch(gpus, bw, "v100"),), "v100", f"DGX-1 V100 hybrid cube-mesh ({rings} NVLink rings)")


PRESETS = {
    "dgx_a100": dgx_a100, "hgx_a100": dgx_a100, "a100": dgx_a100,
    "hgx_h100": hgx_h100, "dgx_h100": hgx_h100, "h100": hgx_h100,
    "hgx_h200": hgx_h200, "dgx_h200": hgx_h200, "h200": hgx_h200,
    "hgx_b200": hgx_b200, "dgx_b200": hgx_b200, "b200": hgx_b200,
    "gb200_nvl72": gb200_nvl72, "nvl72": gb200_nvl72,
    "tpu_v4_pod": tpu_v4_pod, "tpu_v4": tpu_v4_pod,
    "tpu_v5e_pod": tpu_v5e_pod, "tpu_v5e": tpu_v5e_pod,
    "pcie_box": pcie_box, "pcie": pcie_box,
    "dgx1_v100": dgx1_v100, "v100": dgx1_v100,
}


def system_preset(name: str, **kw) -> System:
    """A system preset by name (case-insensitive, ``-``/``_`` interchangeable); keyword arguments go to the factory
    (``nodes=`` for GPU servers, torus sizes for TPU pods)."""
    key = str(name).lower().replace("-", "_")
    if key not in PRESETS:
        raise ValueError(f"unknown system preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[key](**kw)
