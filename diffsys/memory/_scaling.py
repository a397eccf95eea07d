"""How SRAM and DRAM access energy, latency and area scale with capacity: CACTI-style power laws.

CACTI (Muralimanohar, Balasubramonian & Jouppi, "Optimizing NUCA organizations and wiring alternatives for large
caches with CACTI 6.0", MICRO 2007; Balasubramonian, Kahng, Muralimanohar, Shafiee & Srinivas, "CACTI 7", ACM TACO
2017) shows that for large arrays the H-tree wires dominate, so access energy and latency grow roughly as a power
``≈ 0.3–0.5`` of capacity while area grows linearly. Here each quantity is a fitted power law
``y(C) = y₀ · (C/C₀)^β`` whose default constants come from published measurements:

* energy: 64-bit SRAM reads at 45 nm of 10 pJ (8 KB), 20 pJ (32 KB) and 100 pJ (1 MB) (Horowitz, "Computing's energy
  problem (and what we can do about it)", ISSCC 2014). The default fit uses the 8 KB and 1 MB points only
  (β = log 10 / log 128 = 0.475); the 32 KB point is held out for validation (the test reports the error).
* latency: load-to-use latencies of AMD Zen 2 (L1D 32 KiB: 4 cycles, L3 16 MiB slice: ~39 cycles; AMD Software
  Optimization Guide for family 17h; AnandTech measurements). Fit on those two points (β = 0.365); L2 512 KiB at
  12 cycles is held out for validation. Cycles at a 1 GHz reference clock, i.e. nanoseconds.
* area: bits × bitcell area / array efficiency (β = 1): TSMC N7 high-density 6T bitcell 0.027 µm² (Chang et al.,
  ISSCC 2017), N5 0.021 µm² (Chang et al., ISSCC 2020 / TSMC IEDM 2019), array efficiency ~0.7 (macro periphery).
* DRAM: access energy per bit by interface (O'Connor et al., "Fine-grained DRAM", MICRO 2017: HBM2 3.9 pJ/bit,
  GDDR5 14 pJ/bit; DDR4 and LPDDR figures from the same paper's survey).

``node_scale`` multiplies energy/latency for another technology node (e.g. from Stillmaker & Baas, "Scaling
equations for the accurate prediction of CMOS device performance from 180 nm to 7 nm", Integration 2017).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp

from .._checks import check_choice

KiB, MiB = 2.0**10, 2.0**20

#: Horowitz 2014, 64-bit (8-byte) SRAM read energy (J) vs array capacity (bytes), 45 nm.
HOROWITZ_SRAM_READ_J = {8 * 1000.0: 10e-12, 32 * 1000.0: 20e-12, 1e6: 100e-12}
#: AMD Zen 2 load-to-use latency (cycles) vs capacity (bytes).
ZEN2_LATENCY_CYCLES = {32 * KiB: 4.0, 512 * KiB: 12.0, 16 * MiB: 39.0}
#: 6T high-density bitcell area (µm²) by node.
BITCELL_UM2 = {"n16": 0.074, "n7": 0.027, "n5": 0.021, "n3": 0.0199}
#: DRAM interface access energy (J/bit): O'Connor et al. 2017 (HBM2, GDDR5) and survey values (estimates for the rest).
DRAM_ENERGY_J_PER_BIT = {"ddr4": 15e-12, "lpddr4": 6e-12, "lpddr5": 5e-12, "gddr5": 14e-12, "gddr6": 7.5e-12,
                         "hbm2": 3.9e-12, "hbm2e": 3.6e-12, "hbm3": 3.4e-12, "hbm3e": 3.2e-12}


class PowerLaw(NamedTuple):
    """``y(C) = y0 · (C / c0)^beta``."""

    y0: float
    c0: float
    beta: float

    def __call__(self, capacity):
        return self.y0 * (capacity / self.c0) ** self.beta

    @classmethod
    def fit(cls, c1, y1, c2, y2) -> "PowerLaw":
        """Power law through two points."""
        beta = math.log(y2 / y1) / math.log(c2 / c1)
        return cls(y1, c1, beta)


#: SRAM read energy per 8-byte access, fitted on Horowitz's 8 KB and 1 MB points.
SRAM_READ_ENERGY = PowerLaw.fit(8e3, 10e-12, 1e6, 100e-12)
#: SRAM load-to-use latency in ns at 1 GHz, fitted on Zen 2 L1D and L3.
SRAM_LATENCY = PowerLaw.fit(32 * KiB, 4e-9, 16 * MiB, 39e-9)


class SRAMCost(NamedTuple):
    energy_J_per_B: jnp.ndarray
    latency_s: jnp.ndarray
    area_mm2: jnp.ndarray


def sram_energy_J_per_B(capacity_B, node_scale=1.0):
    """Read energy per byte of an SRAM array of ``capacity_B`` (45 nm reference × ``node_scale``)."""
    return SRAM_READ_ENERGY(capacity_B) / 8.0 * node_scale


def sram_latency_s(capacity_B, clock_Hz=1e9, node_scale=1.0):
    """Load-to-use latency of an SRAM cache of ``capacity_B``: fitted cycles ÷ ``clock_Hz``."""
    cycles = SRAM_LATENCY(capacity_B) * 1e9
    return cycles / clock_Hz * node_scale


def sram_area_mm2(capacity_B, node="n5", array_efficiency=0.7):
    """Macro area: ``8·C · bitcell / array_efficiency`` (µm² -> mm²)."""
    check_choice("node", node, BITCELL_UM2)
    return 8.0 * capacity_B * BITCELL_UM2[node] / array_efficiency * 1e-6


def sram_cost(capacity_B, node="n5", clock_Hz=1e9, node_scale=1.0, array_efficiency=0.7) -> SRAMCost:
    """Energy per byte, latency and area of an SRAM of ``capacity_B`` bytes."""
    return SRAMCost(sram_energy_J_per_B(capacity_B, node_scale), sram_latency_s(capacity_B, clock_Hz, node_scale),
                    sram_area_mm2(capacity_B, node, array_efficiency))


def dram_energy_J_per_B(kind="hbm3"):
    """Access energy per byte of a DRAM interface (``DRAM_ENERGY_J_PER_BIT`` × 8)."""
    check_choice("kind", kind, DRAM_ENERGY_J_PER_BIT)
    return DRAM_ENERGY_J_PER_BIT[kind] * 8.0
