"""Accelerator co-design on the roofline model: the ``diffsys sweep --problem roofline`` problem.

The GEMMs of one GPT-3 175B layer (training, 4,096 tokens per microbatch) plus a batch-8 decode step, over
matrix-unit peak, HBM bandwidth, on-chip SRAM capacity and element width, with a silicon+HBM cost proxy as the second
objective. Each GEMM is a roofline (Williams et al., CACM 2009) of its FLOPs and the DRAM traffic of square
output-stationary tiles, three tiles in the SRAM (:func:`diffsys.memory.gemm_traffic`; Hong & Kung, STOC 1981).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._pytree import as_float
from ..memory import gemm_traffic
from ..primitives import Metrics, relu, soft_ceil
from ..roofline import roofline
from ..space import Continuous, DesignSpace, PowerOfTwo

# GPT-3 175B (Brown et al. 2020): hidden 12288, 96 heads, FFN 4h. GEMM shapes (M, N, K) of one layer's forward for a
# 4,096-token microbatch (QKV, attention projection, MLP up, MLP down) and the same weights at decode batch 8.
_H = 12288
LAYER_GEMMS = np.array([(4096, 3 * _H, _H), (4096, _H, _H), (4096, 4 * _H, _H), (4096, _H, 4 * _H),
                        (8, 3 * _H, _H), (8, _H, _H), (8, 4 * _H, _H), (8, _H, 4 * _H)], dtype=np.float32)

# Cost proxy (documented estimates): matrix-unit density 1.2 TFLOP/s per mm² (H100: 989 TFLOP/s bf16 dense on a
# ~814 mm² die of which roughly 800 mm² is SMs+L2, NVIDIA Hopper whitepaper 2022); SRAM 0.5 mm² per MiB at 5 nm
# (TSMC N5 high-density bit cell 0.021 µm², Chang et al. ISSCC 2020, ×2.5 for periphery); silicon $0.25/mm²
# (~$17k per 300 mm wafer); HBM3 stacks of 819 GB/s (JEDEC JESD238) at $150 each (industry estimate).
_TFLOPS_PER_MM2, _MM2_PER_MIB, _USD_PER_MM2, _STACK_BPS, _USD_PER_STACK = 1.2e12, 0.5, 0.25, 819e9, 150.0
#: Reticle limit 26 × 33 mm (ASML NXE/NXT field size).
RETICLE_MM2 = 858.0


class AcceleratorDesign(eqx.Module):
    """A hypothetical accelerator: bf16 matrix peak (FLOP/s), HBM bandwidth (B/s), SRAM (MiB), bytes per element
    (2 = bf16; 1 = fp8 at twice the matrix peak, as on H100)."""

    peak_flops: jax.Array = eqx.field(converter=as_float, default=989e12)
    hbm_bandwidth_Bps: jax.Array = eqx.field(converter=as_float, default=3.35e12)
    sram_MiB: jax.Array = eqx.field(converter=as_float, default=50.0)
    bytes_per_element: jax.Array = eqx.field(converter=as_float, default=2.0)


class AcceleratorMetrics(Metrics):
    """Time of the GEMM suite, the cost proxy and the die area (``feasible``: within the reticle)."""

    time_s: jax.Array
    cost_usd: jax.Array
    die_area_mm2: jax.Array


def accelerator_model(design: AcceleratorDesign, *, temperature=0.0) -> AcceleratorMetrics:
    """Roofline time of :data:`LAYER_GEMMS` on ``design``, its cost proxy and feasibility (the module docstring)."""
    peak, bw, bpe = design.peak_flops, design.hbm_bandwidth_Bps, design.bytes_per_element
    sram = design.sram_MiB * 2**20
    m, n, k = LAYER_GEMMS[:, 0], LAYER_GEMMS[:, 1], LAYER_GEMMS[:, 2]
    # off-chip traffic of the output-stationary square-tile schedule, three tiles in SRAM (diffsys.memory)
    traffic = gemm_traffic(m, n, k, sram, bpe, buffers=3, temperature=temperature).bytes
    # fp8 (1 byte) runs at twice the bf16 matrix peak (H100 datasheet)
    r = roofline(2 * m * n * k, traffic, peak * (2.0 / bpe), bw, temperature=temperature)
    area = peak / _TFLOPS_PER_MM2 + design.sram_MiB * _MM2_PER_MIB
    cost = area * _USD_PER_MM2 + soft_ceil(bw / _STACK_BPS, temperature) * _USD_PER_STACK
    return AcceleratorMetrics(jnp.sum(r.time_s), cost, area, feasible=area <= RETICLE_MM2,
                              violation=relu(area / RETICLE_MM2 - 1.0, temperature))


def accelerator_space() -> DesignSpace:
    """460,800 grid points: peak (160, log) × HBM bandwidth (160, log) × SRAM (9 powers of two) × element width (2)."""
    return DesignSpace({
        "peak_flops": Continuous(100e12, 4000e12, log=True, grid=160),
        "hbm_bandwidth_Bps": Continuous(0.5e12, 12e12, log=True, grid=160),
        "sram_MiB": PowerOfTwo(4, 1024),
        "bytes_per_element": Continuous(1.0, 2.0, grid=2),
    }, base=AcceleratorDesign())


def accelerator_problem():
    """Minimize the GEMM-suite time over :func:`accelerator_space` (feasible: within the reticle)."""
    from ..optimize import Problem

    return Problem(accelerator_model, accelerator_space(), objective="time_s", name="accelerator")
