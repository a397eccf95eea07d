"""Accelerator presets from vendor datasheets (dense peaks; sparsity enters through ``sparsity_speedup``).

Sources (all accessed for the figures quoted in each builder's docstring):
- [V100] NVIDIA Tesla V100 datasheet (2018) and Volta architecture whitepaper (2017).
- [A100] NVIDIA A100 Tensor Core GPU datasheet (2021) and Ampere (GA100) architecture whitepaper (2020).
- [H100] NVIDIA H100 Tensor Core GPU datasheet (2023) and Hopper architecture whitepaper (2022).
- [H200] NVIDIA H200 Tensor Core GPU datasheet (2024).
- [B200] NVIDIA HGX B200 / DGX B200 datasheet (2024), per-GPU dense figures.
- [GB200] NVIDIA GB200 NVL72 datasheet (2024), per-GPU dense figures (half the sparse ones).
- [MI250X] AMD Instinct MI250X datasheet (2021).
- [MI300X] AMD Instinct MI300X datasheet (2023).
- [TPUv4] Jouppi et al., "TPU v4", ISCA 2023; Google Cloud TPU v4 documentation.
- [TPUv5e] Google Cloud TPU v5e documentation (2023).
- [TPUv5p] Google Cloud TPU v5p documentation (2023).
- [Orin] NVIDIA Jetson AGX Orin series datasheet (2023) and Ampere GA10x whitepaper.
- [OrinTRM] NVIDIA Jetson AGX Orin Series technical brief v1.2 (2022) and Orin module datasheet: 275 sparse INT8
  TOP/s = 170 GPU + 105 on the 2 DLA v2 engines; 12-core Arm Cortex-A78AE CPU at up to 2.2 GHz, 3 MB L2 + 6 MB L3.
- [A78] Arm Cortex-A78 / A78AE technical reference manual (2 × 128-bit NEON/FP pipes per core; SDOT int8 dot
  product): 16 fp32, 32 fp16 FLOP/cycle, 64 int8 OP/cycle per core.
- [SD8G3] Qualcomm Snapdragon 8 Gen 3 mobile platform product brief (2023): Kryo CPU 1 × Cortex-X4 at 3.3 GHz,
  5 × A720 (3.2/3.0 GHz), 2 × A520 at 2.3 GHz; Adreno 750 GPU; Hexagon NPU; LPDDR5X up to 4800 MHz (64-bit bus,
  76.8 GB/s). Qualcomm publishes no TOP/s or TFLOP/s for this part: the peaks below are estimates, marked so.
- [Horowitz] M. Horowitz, "Computing's energy problem", ISSCC 2014 (energy per op / per byte, 45 nm), scaled.

Where a vendor does not publish a figure (on-chip latencies, per-level energy), the preset uses a documented
estimate from microbenchmark literature (Jia et al., "Dissecting the NVIDIA Volta/Turing/Ampere GPU architecture via
microbenchmarking", 2018-2021) and says so; such fields are design parameters users will usually sweep anyway.
"""

from __future__ import annotations

from ._calibration import preset_calibration
from ._spec import Accelerator, MemoryLevel, PowerSpec

KiB, MiB, GiB = 2**10, 2**20, 2**30
GB, TB = 1e9, 1e12
T = 1e12

# Access energy per byte (J/B). HBM ~3.9 pJ/bit (HBM2, O'Connor et al. MICRO 2017 "Fine-grained DRAM"), HBM3 ~3.4;
# on-chip SRAM ~1 pJ/B for large L2 and ~0.3 pJ/B for L1/SMEM (Horowitz 2014 scaled to 7 nm; Jouppi et al. 2021).
_E_HBM2, _E_HBM3, _E_LPDDR5, _E_L2, _E_L1 = 31e-12, 27e-12, 40e-12, 1.0e-12, 0.3e-12


def _gpu(name, *, matrix, vector, hbm_B, hbm_Bps, l2_B, l2_Bps, l1_B, l1_Bps, tdp_W, idle_W, clock_Hz, cores,
         link_Bps, nic_Bps, pj_per_flop, sparsity=2.0, hbm_latency_s=500e-9, l2_latency_s=200e-9,
         l1_latency_s=30e-9, e_hbm=_E_HBM3, hbm_name="hbm"):
    memory = (
        MemoryLevel("l1", l1_B, l1_Bps, l1_latency_s, _E_L1),
        MemoryLevel("l2", l2_B, l2_Bps, l2_latency_s, _E_L2),
        MemoryLevel(hbm_name, hbm_B, hbm_Bps, hbm_latency_s, e_hbm),
    )
    return Accelerator(
        name, matrix, vector, memory, PowerSpec(tdp_W, idle_W, 0.3), sparsity_speedup=sparsity,
        frequency_Hz=clock_Hz, num_cores=cores, link_bandwidth_Bps=link_Bps, nic_bandwidth_Bps=nic_Bps,
        energy_J_per_flop=pj_per_flop * 1e-12, main_memory_index=2,
    )


def v100() -> Accelerator:
    """Tesla V100 SXM2 32 GB [V100]: 125 TFLOP/s fp16 tensor, 15.7 fp32, 7.8 fp64; HBM2 900 GB/s; 6 MB L2;
    80 SMs × 128 KB L1; 300 W; NVLink2 300 GB/s total (150 GB/s/direction); 1530 MHz boost."""
    return _gpu("V100-SXM2-32GB", matrix={"fp16": 125 * T}, vector={"fp64": 7.8 * T, "fp32": 15.7 * T,
                "fp16": 31.4 * T}, hbm_B=32 * GiB, hbm_Bps=900 * GB, l2_B=6 * MiB, l2_Bps=2.2 * TB,
                l1_B=80 * 128 * KiB, l1_Bps=14 * TB, tdp_W=300, idle_W=40, clock_Hz=1.53e9, cores=80,
                link_Bps=150 * GB, nic_Bps=12.5 * GB, pj_per_flop=0.8, sparsity=1.0, e_hbm=_E_HBM2)


def _a100(name, hbm_B, hbm_Bps):
    return _gpu(name, matrix={"fp64": 19.5 * T, "tf32": 156 * T, "bf16": 312 * T, "fp16": 312 * T,
                "int8": 624 * T}, vector={"fp64": 9.7 * T, "fp32": 19.5 * T, "bf16": 39 * T, "fp16": 78 * T},
                hbm_B=hbm_B, hbm_Bps=hbm_Bps, l2_B=40 * MiB, l2_Bps=5.1 * TB, l1_B=108 * 192 * KiB,
                l1_Bps=19.4 * TB, tdp_W=400, idle_W=50, clock_Hz=1.41e9, cores=108, link_Bps=300 * GB,
                nic_Bps=25 * GB, pj_per_flop=0.45, e_hbm=_E_HBM2)


def a100_40gb() -> Accelerator:
    """A100 SXM4 40 GB [A100]: 312 TFLOP/s bf16/fp16 dense, 156 tf32, 19.5 fp64 tensor; HBM2 1555 GB/s; 40 MB L2;
    108 SMs × 192 KB L1; 400 W; NVLink3 600 GB/s total (300 GB/s/direction); 1410 MHz; one 200 Gb/s HDR NIC."""
    return _a100("A100-SXM4-40GB", 40 * GiB, 1555 * GB)


def a100_80gb() -> Accelerator:
    """A100 SXM4 80 GB [A100]: as the 40 GB part with HBM2e at 2039 GB/s."""
    return _a100("A100-SXM4-80GB", 80 * GiB, 2039 * GB)


def _hopper(name, hbm_B, hbm_Bps):
    return _gpu(name, matrix={"fp64": 67 * T, "tf32": 494.7 * T, "bf16": 989.4 * T, "fp16": 989.4 * T,
                "fp8": 1978.9 * T, "int8": 1978.9 * T}, vector={"fp64": 34 * T, "fp32": 67 * T,
                "bf16": 134 * T, "fp16": 134 * T}, hbm_B=hbm_B, hbm_Bps=hbm_Bps, l2_B=50 * MiB, l2_Bps=12 * TB,
                l1_B=132 * 256 * KiB, l1_Bps=33 * TB, tdp_W=700, idle_W=70, clock_Hz=1.98e9, cores=132,
                link_Bps=450 * GB, nic_Bps=50 * GB, pj_per_flop=0.3)


def h100_sxm() -> Accelerator:
    """H100 SXM5 80 GB [H100]: 989.4 TFLOP/s bf16 dense, 1978.9 fp8, 494.7 tf32, 67 fp64 tensor; HBM3 3.35 TB/s;
    50 MB L2; 132 SMs × 256 KB L1; 700 W; NVLink4 900 GB/s total (450/direction); one 400 Gb/s NDR NIC per GPU."""
    return _hopper("H100-SXM5-80GB", 80 * GiB, 3.35 * TB)


def h200() -> Accelerator:
    """H200 SXM 141 GB [H200]: Hopper compute as H100 SXM; HBM3e 141 GB at 4.8 TB/s; 700 W."""
    return _hopper("H200-SXM-141GB", 141 * GB, 4.8 * TB)


def b200() -> Accelerator:
    """B200 (HGX B200) [B200]: 2.25 PFLOP/s bf16 dense, 4.5 fp8, 9 fp4, 1.1 tf32, 40 fp64; HBM3e 180 GB at 8 TB/s;
    1000 W; NVLink5 1.8 TB/s total (900/direction). L2 capacity is not in the datasheet: 126 MB estimate (two dies)."""
    return _gpu("B200", matrix={"fp64": 40 * T, "tf32": 1100 * T, "bf16": 2250 * T, "fp16": 2250 * T,
                "fp8": 4500 * T, "int8": 4500 * T, "fp4": 9000 * T}, vector={"fp64": 40 * T, "fp32": 80 * T,
                "bf16": 160 * T, "fp16": 160 * T}, hbm_B=180 * GB, hbm_Bps=8 * TB, l2_B=126 * MiB,
                l2_Bps=20 * TB, l1_B=148 * 256 * KiB, l1_Bps=50 * TB, tdp_W=1000, idle_W=100, clock_Hz=1.965e9,
                cores=148, link_Bps=900 * GB, nic_Bps=50 * GB, pj_per_flop=0.22)


def gb200() -> Accelerator:
    """B200 GPU of a GB200 superchip (GB200 NVL72) [GB200]: configured at 1200 W, 2.5 PFLOP/s bf16 dense, 5 fp8,
    10 fp4, 1.25 tf32, 45 fp64; HBM3e 186 GB (13.4 TB per 72 GPUs) at 8 TB/s; NVLink5 1.8 TB/s total
    (900/direction). SM count and L2 as the B200 preset (not in the datasheet)."""
    return _gpu("GB200", matrix={"fp64": 45 * T, "tf32": 1250 * T, "bf16": 2500 * T, "fp16": 2500 * T,
                "fp8": 5000 * T, "int8": 5000 * T, "fp4": 10000 * T}, vector={"fp64": 45 * T, "fp32": 90 * T,
                "bf16": 180 * T, "fp16": 180 * T}, hbm_B=186 * GB, hbm_Bps=8 * TB, l2_B=126 * MiB,
                l2_Bps=20 * TB, l1_B=148 * 256 * KiB, l1_Bps=50 * TB, tdp_W=1200, idle_W=120, clock_Hz=1.965e9,
                cores=148, link_Bps=900 * GB, nic_Bps=100 * GB, pj_per_flop=0.22)


def mi250x() -> Accelerator:
    """AMD Instinct MI250X [MI250X]: 383 TFLOP/s bf16/fp16 matrix, 95.7 fp64/fp32 matrix, 47.9 fp64/fp32 vector;
    HBM2e 128 GB at 3.2768 TB/s; 2 × 8 MB L2; 220 CUs; 560 W; 1700 MHz; Infinity Fabric 8 × 50 GB/s per direction."""
    return _gpu("MI250X", matrix={"fp64": 95.7 * T, "fp32": 95.7 * T, "bf16": 383 * T, "fp16": 383 * T,
                "int8": 383 * T}, vector={"fp64": 47.9 * T, "fp32": 47.9 * T, "fp16": 95.7 * T},
                hbm_B=128 * GiB, hbm_Bps=3.2768 * TB, l2_B=16 * MiB, l2_Bps=7 * TB, l1_B=220 * 80 * KiB,
                l1_Bps=20 * TB, tdp_W=560, idle_W=90, clock_Hz=1.7e9, cores=220, link_Bps=400 * GB,
                nic_Bps=25 * GB, pj_per_flop=0.6, sparsity=1.0, e_hbm=_E_HBM2)


def mi300x() -> Accelerator:
    """AMD Instinct MI300X [MI300X]: 1307.4 TFLOP/s bf16/fp16 dense, 2614.9 fp8/int8, 653.7 tf32, 163.4 fp32/fp64
    matrix; HBM3 192 GB at 5.3 TB/s; 256 MB Infinity Cache (modelled as the L2 level); 304 CUs; 750 W; 2100 MHz;
    Infinity Fabric 896 GB/s aggregate (448/direction)."""
    return _gpu("MI300X", matrix={"fp64": 163.4 * T, "fp32": 163.4 * T, "tf32": 653.7 * T, "bf16": 1307.4 * T,
                "fp16": 1307.4 * T, "fp8": 2614.9 * T, "int8": 2614.9 * T}, vector={"fp64": 81.7 * T,
                "fp32": 163.4 * T, "fp16": 163.4 * T}, hbm_B=192 * GB, hbm_Bps=5.3 * TB, l2_B=256 * MiB,
                l2_Bps=17 * TB, l1_B=304 * 64 * KiB, l1_Bps=40 * TB, tdp_W=750, idle_W=110, clock_Hz=2.1e9,
                cores=304, link_Bps=448 * GB, nic_Bps=50 * GB, pj_per_flop=0.35)


def _tpu(name, *, bf16, int8, hbm_B, hbm_Bps, sram_B, tdp_W, idle_W, clock_Hz, cores, ici_Bps, pj):
    memory = (
        MemoryLevel("vmem", sram_B, 20 * hbm_Bps, 20e-9, _E_L1),
        MemoryLevel("hbm", hbm_B, hbm_Bps, 500e-9, _E_HBM2),
    )
    return Accelerator(name, {"bf16": bf16, "int8": int8}, {"fp32": bf16 / 16, "bf16": bf16 / 8}, memory,
                       PowerSpec(tdp_W, idle_W, 0.3), frequency_Hz=clock_Hz, num_cores=cores,
                       link_bandwidth_Bps=ici_Bps, nic_bandwidth_Bps=12.5 * GB, energy_J_per_flop=pj * 1e-12,
                       main_memory_index=1)


def tpu_v4() -> Accelerator:
    """TPU v4 [TPUv4]: 275 TFLOP/s bf16 and int8; HBM2 32 GiB at 1200 GB/s; 128 MiB CMEM + 32 MiB VMEM (on-chip
    level here: 160 MiB); 2 TensorCores; 1050 MHz; 6 ICI links (3D torus), 45 GB/s per direction each;
    192 W max measured power (Jouppi et al. 2023, Table 2)."""
    return _tpu("TPU-v4", bf16=275 * T, int8=275 * T, hbm_B=32 * GiB, hbm_Bps=1200 * GB, sram_B=160 * MiB,
                tdp_W=192, idle_W=60, clock_Hz=1.05e9, cores=2, ici_Bps=6 * 45 * GB, pj=0.3)


def tpu_v5e() -> Accelerator:
    """TPU v5e [TPUv5e]: 197 TFLOP/s bf16, 394 TOP/s int8; HBM2 16 GB at 819 GB/s; 1 TensorCore; ICI 1600 Gb/s
    per chip (2D torus: 4 links × 50 GB/s aggregate, 100 GB/s per direction per dimension pair). Power is not
    published; 170 W estimate."""
    return _tpu("TPU-v5e", bf16=197 * T, int8=394 * T, hbm_B=16 * GB, hbm_Bps=819 * GB, sram_B=48 * MiB,
                tdp_W=170, idle_W=50, clock_Hz=1.5e9, cores=1, ici_Bps=100 * GB, pj=0.3)


def tpu_v5p() -> Accelerator:
    """TPU v5p [TPUv5p]: 459 TFLOP/s bf16, 918 TOP/s int8; HBM2e 95 GB at 2765 GB/s; 2 TensorCores; ICI 4800 Gb/s
    per chip (3D torus, 6 links, 300 GB/s per direction aggregate). Power is not published; 350 W estimate."""
    return _tpu("TPU-v5p", bf16=459 * T, int8=918 * T, hbm_B=95 * GB, hbm_Bps=2765 * GB, sram_B=96 * MiB,
                tdp_W=350, idle_W=90, clock_Hz=1.75e9, cores=2, ici_Bps=300 * GB, pj=0.3)


def jetson_orin() -> Accelerator:
    """Jetson AGX Orin 64 GB GPU [Orin]: 16 Ampere SMs at 1.3 GHz; 170 sparse int8 TOP/s on the GPU, i.e. 85 dense
    int8 and 42.5 dense fp16/bf16 tensor TFLOP/s; 5.3 TFLOP/s fp32 (2048 CUDA cores); LPDDR5 64 GB at 204.8 GB/s;
    4 MB L2; 15-60 W module power (60 W max mode as TDP)."""
    return _gpu("Jetson-AGX-Orin-64GB", matrix={"fp16": 42.5 * T, "bf16": 42.5 * T, "tf32": 10.6 * T,
                "int8": 85 * T}, vector={"fp32": 5.3 * T, "fp16": 10.6 * T}, hbm_B=64 * GB, hbm_Bps=204.8 * GB,
                l2_B=4 * MiB, l2_Bps=1.5 * TB, l1_B=16 * 192 * KiB, l1_Bps=4 * TB, tdp_W=60, idle_W=10,
                clock_Hz=1.3e9, cores=16, link_Bps=0.0, nic_Bps=1.25 * GB, pj_per_flop=0.6,
                e_hbm=_E_LPDDR5, hbm_name="dram")


def _edge(name, *, matrix, vector, dram_B, dram_Bps, sram_B, sram_Bps, tdp_W, idle_W, clock_Hz, cores, pj_per_flop):
    """An edge compute engine on a shared LPDDR5(X) memory: on-chip SRAM (L2/L3 or the engine's local buffer) and
    the SoC DRAM as main memory (the bandwidth the engine can draw from it), no scale-up link, no NIC."""
    memory = (MemoryLevel("sram", sram_B, sram_Bps, 30e-9, _E_L2), MemoryLevel("dram", dram_B, dram_Bps, 150e-9,
                                                                                  _E_LPDDR5))
    return Accelerator(name, matrix, vector, memory, PowerSpec(tdp_W, idle_W, 0.3), sparsity_speedup=1.0,
                       frequency_Hz=clock_Hz, num_cores=cores, energy_J_per_flop=pj_per_flop * 1e-12,
                       main_memory_index=1)


def jetson_orin_dla() -> Accelerator:
    """Jetson AGX Orin 64 GB, both DLA v2 engines together [OrinTRM]: 105 sparse int8 TOP/s, i.e. 52.5 dense int8;
    fp16 at half the int8 rate (26 TFLOP/s; *estimate*: NVIDIA documents fp16 support, not its rate); 1.6 GHz
    (*estimate*). They read the module's LPDDR5 (204.8 GB/s peak; the DLAs reach about half, *estimate*); 2 × 1 MiB
    local SRAM (*estimate*). Power is not published separately: 10 W at full load, 0.5 W idle (*estimates*, from
    the 15 W power mode in which the DLAs deliver their full rate)."""
    return _edge("Jetson-AGX-Orin-DLA", matrix={"fp16": 26 * T, "int8": 52.5 * T}, vector={"fp16": 1.0 * T},
                 dram_B=64 * GB, dram_Bps=102.4 * GB, sram_B=2 * MiB, sram_Bps=1.0 * TB, tdp_W=10, idle_W=0.5,
                 clock_Hz=1.6e9, cores=2, pj_per_flop=0.3)


def jetson_orin_cpu() -> Accelerator:
    """Jetson AGX Orin 64 GB CPU cluster [OrinTRM, A78]: 12 × Cortex-A78AE at 2.2 GHz; NEON peaks 12 × 2.2 GHz ×
    (32 fp16, 64 int8, 16 fp32) = 0.845 TFLOP/s fp16, 1.69 TOP/s int8, 0.42 TFLOP/s fp32; 3 MB L2 + 6 MB L3; the
    module's LPDDR5 (204.8 GB/s peak; a CPU cluster streams about 60 GB/s, *estimate* from STREAM-class numbers on
    Arm server cores); 15 W at full load, 1 W idle (*estimates*: NVIDIA gives module power only)."""
    return _edge("Jetson-AGX-Orin-CPU", matrix={"fp16": 0.845 * T, "int8": 1.69 * T},
                 vector={"fp32": 0.42 * T, "fp16": 0.845 * T}, dram_B=64 * GB, dram_Bps=60 * GB, sram_B=9 * MiB,
                 sram_Bps=0.5 * TB, tdp_W=15, idle_W=1.0, clock_Hz=2.2e9, cores=12, pj_per_flop=5.0)


def snapdragon_8g3_gpu() -> Accelerator:
    """Snapdragon 8 Gen 3 Adreno 750 GPU [SD8G3]: ~4.6 TFLOP/s fp32, 9.2 fp16 (*estimates*, from public
    benchmark databases; Qualcomm publishes none); LPDDR5X-9600 64-bit, 76.8 GB/s peak shared with the SoC;
    12 MiB on-GPU memory (*estimate*); 7 W sustained, 0.3 W idle (*estimates*: phone sustained-power envelopes)."""
    return _edge("Snapdragon-8Gen3-Adreno750", matrix={"fp16": 9.2 * T}, vector={"fp32": 4.6 * T, "fp16": 9.2 * T},
                 dram_B=16 * GB, dram_Bps=76.8 * GB, sram_B=12 * MiB, sram_Bps=1.0 * TB, tdp_W=7, idle_W=0.3,
                 clock_Hz=0.903e9, cores=6, pj_per_flop=0.8)


def snapdragon_8g3_npu() -> Accelerator:
    """Snapdragon 8 Gen 3 Hexagon NPU [SD8G3]: ~34 int8 TOP/s dense, 17 fp16 (*estimates*: Qualcomm quotes
    "98 % faster" than the 8 Gen 2 without a TOP/s figure; public estimates are 34-45 TOP/s); LPDDR5X 76.8 GB/s
    shared (the NPU reaches about 60 GB/s, *estimate*); 8 MiB tightly coupled memory (*estimate*); 5 W at full
    load, 0.2 W idle (*estimates*)."""
    return _edge("Snapdragon-8Gen3-Hexagon", matrix={"fp16": 17 * T, "int8": 34 * T}, vector={"fp16": 0.5 * T},
                 dram_B=16 * GB, dram_Bps=60 * GB, sram_B=8 * MiB, sram_Bps=1.0 * TB, tdp_W=5, idle_W=0.2,
                 clock_Hz=1.0e9, cores=1, pj_per_flop=0.25)


def snapdragon_8g3_cpu() -> Accelerator:
    """Snapdragon 8 Gen 3 Kryo CPU [SD8G3, A78-class pipes]: fp32 NEON peaks 3.3 GHz × 32 (X4, 4 pipes) + 5 × 3.0 GHz
    × 16 (A720) + 2 × 2.3 GHz × 8 (A520) = 0.38 TFLOP/s, 0.76 fp16, 1.5 int8 (SDOT); 12 MiB L3 + SLC; LPDDR5X
    76.8 GB/s shared (the CPU streams about 40 GB/s, *estimate*); 8 W at full load, 0.3 W idle (*estimates*)."""
    return _edge("Snapdragon-8Gen3-Kryo", matrix={"fp16": 0.76 * T, "int8": 1.5 * T},
                 vector={"fp32": 0.38 * T, "fp16": 0.76 * T}, dram_B=16 * GB, dram_Bps=40 * GB, sram_B=12 * MiB,
                 sram_Bps=0.4 * TB, tdp_W=8, idle_W=0.3, clock_Hz=3.3e9, cores=8, pj_per_flop=5.0)


PRESETS = {
    "v100": v100,
    "a100_40gb": a100_40gb,
    "a100_80gb": a100_80gb,
    "a100": a100_80gb,
    "h100_sxm": h100_sxm,
    "h100": h100_sxm,
    "h200": h200,
    "b200": b200,
    "gb200": gb200,
    "mi250x": mi250x,
    "mi300x": mi300x,
    "tpu_v4": tpu_v4,
    "tpu_v5e": tpu_v5e,
    "tpu_v5p": tpu_v5p,
    "jetson_orin": jetson_orin,
    "jetson_orin_dla": jetson_orin_dla,
    "jetson_orin_cpu": jetson_orin_cpu,
    "snapdragon_8g3_gpu": snapdragon_8g3_gpu,
    "snapdragon_8g3_npu": snapdragon_8g3_npu,
    "snapdragon_8g3_cpu": snapdragon_8g3_cpu,
}


def preset(name: str) -> Accelerator:
    """An accelerator preset by name (case-insensitive; ``-`` and ``_`` are interchangeable), with the calibrated
    kernel constants shipped for it (:mod:`diffsys.hardware._calibration`; the builders alone carry none)."""
    key = name.lower().replace("-", "_")
    if key not in PRESETS:
        raise ValueError(f"unknown accelerator preset {name!r}; known: {sorted(PRESETS)}")
    builder = PRESETS[key]
    acc = builder()
    for kind, table in preset_calibration(builder.__name__).items():
        acc = acc.with_calibration(kind, table)
    return acc
