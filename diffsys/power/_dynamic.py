"""Dynamic and static (leakage) power, and per-event energies.

* Dynamic (switching) power ``P = α·C·V²·f`` (Weste & Harris, *CMOS VLSI Design*, 4th ed., §5.1; Chandrakasan,
  Sheng & Brodersen, "Low-power CMOS digital design", IEEE JSSC 1992).
* Leakage power exponential in temperature, ``P = P_ref·(V/V_ref)·exp(β·(T − T_ref))``, the form of HotSpot 6's
  ``calc_leakage`` (``α_leak·A·exp(β·(T − T_base))`` with α_leak = 1.5e4 W/m², β = 0.036 /K, T_base = 383.15 K;
  Su, Liu, Abadir & Lee, "Full chip leakage estimation considering power supply and temperature variations",
  ISLPED 2003, for the exponential fit).
* Per-event energies from M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
  Fig. 1.1.9 (45 nm, 0.9 V), scaled to another node by the first-order CMOS rule ``E ∝ C·V²`` with ``C ∝ L``
  (Dennard et al., IEEE JSSC 1974): ``E(L, V) = E₄₅·(L/45 nm)·(V/0.9 V)²``. This overestimates savings below
  ~14 nm where wires dominate (Stillmaker & Baas, Integration 58, 2017, give fitted factors).
"""

from __future__ import annotations

import jax.numpy as jnp

from .._checks import check_choice, check_positive

#: Horowitz ISSCC 2014, 45 nm at 0.9 V: energy per operation in pJ.
HOROWITZ_45NM_PJ = {
    "int8_add": 0.03, "int16_add": 0.05, "int32_add": 0.1,
    "fp16_add": 0.4, "fp32_add": 0.9,
    "int8_mult": 0.2, "int32_mult": 3.1,
    "fp16_mult": 1.1, "fp32_mult": 3.7,
    "sram_8KB_read_32b": 10.0, "sram_32KB_read_32b": 20.0, "sram_1MB_read_32b": 100.0,
    "dram_read_64b": 1300.0,  # 1.3–2.6 nJ per 64-bit access; lower end
}

#: Energy per FLOP (pJ) at 45 nm: half a fused multiply-add (mult + add) of that width [Horowitz 2014]. bf16 is
#: taken equal to fp16; fp8 from the int8 multiplier/adder; fp64 as 4× fp32 (multiplier area grows ~quadratically
#: with mantissa width — an estimate, Horowitz lists no fp64 figure).
PJ_PER_FLOP_45NM = {
    "fp64": 4 * (3.7 + 0.9) / 2, "fp32": (3.7 + 0.9) / 2, "tf32": (3.7 + 0.9) / 2 * 0.6,
    "bf16": (1.1 + 0.4) / 2, "fp16": (1.1 + 0.4) / 2, "fp8": (0.2 + 0.03) / 2, "int8": (0.2 + 0.03) / 2,
    "fp4": (0.2 + 0.03) / 4,
}

#: Energy per byte (pJ/B) at 45 nm per memory level [Horowitz 2014: 32-bit SRAM reads, 64-bit DRAM access].
PJ_PER_BYTE_45NM = {"sram_8KB": 10.0 / 4, "sram_32KB": 20.0 / 4, "sram_1MB": 100.0 / 4, "dram": 1300.0 / 8}

#: Energy per bit (pJ/b) of die-to-die and off-package links (not scaled with the logic node):
#: UCIe advanced package 0.5 pJ/b (UCIe 1.0 specification, 2022); NVLink-C2C 1.3 pJ/b (NVIDIA Grace Hopper
#: whitepaper, 2022); HBM3 interface ~3.4 pJ/b incl. DRAM core (O'Connor et al., MICRO 2017, HBM2 3.9 pJ/b);
#: long-reach 112G SerDes ~5 pJ/b (IEEE 802.3ck-era transceivers, e.g. Intel/Broadcom ISSCC 2021 papers).
PJ_PER_BIT_LINK = {"ucie_advanced": 0.5, "nvlink_c2c": 1.3, "hbm3": 3.4, "serdes_lr": 5.0}


def dynamic_power(activity, capacitance_F, voltage_V, frequency_Hz):
    """Switching power ``α·C·V²·f`` in watts (``activity`` = transitions per cycle, ``capacitance_F`` switched)."""
    return activity * capacitance_F * voltage_V ** 2 * frequency_Hz


def leakage_power(ref_power_W, temperature_K, *, ref_temperature_K=383.15, beta_per_K=0.036, voltage_V=1.0,
                  ref_voltage_V=1.0):
    """Leakage ``P_ref·(V/V_ref)·exp(β·(T − T_ref))`` in watts (HotSpot 6's exponential leakage form)."""
    return ref_power_W * (voltage_V / ref_voltage_V) * jnp.exp(beta_per_K * (temperature_K - ref_temperature_K))


def hotspot_leakage(area_m2, temperature_K):
    """HotSpot 6 ``calc_leakage``: ``1.5e4 W/m² · A · exp(0.036·(T − 383.15 K))``."""
    return 1.5e4 * area_m2 * jnp.exp(0.036 * (temperature_K - 383.15))


def scale_energy(energy_45nm, node_nm, voltage_V=None):
    """Scale a 45 nm / 0.9 V energy to ``node_nm`` at ``voltage_V`` (default: 0.9 V) by ``E ∝ L·V²``."""
    check_positive("node_nm", node_nm)
    v = 0.9 if voltage_V is None else voltage_V
    return energy_45nm * (node_nm / 45.0) * (v / 0.9) ** 2


def energy_per_flop_J(dtype: str = "bf16", node_nm=45.0, voltage_V=None):
    """Energy of one FLOP of ``dtype`` (J) at a logic node, from the Horowitz 45 nm table."""
    check_choice("dtype", dtype, PJ_PER_FLOP_45NM)
    return scale_energy(PJ_PER_FLOP_45NM[dtype], node_nm, voltage_V) * 1e-12


def energy_per_byte_J(level: str = "dram", node_nm=45.0, voltage_V=None):
    """Energy per byte (J) of a memory level (``sram_8KB``, ``sram_32KB``, ``sram_1MB``, ``dram``). DRAM is not
    scaled with the logic node."""
    check_choice("level", level, PJ_PER_BYTE_45NM)
    e = PJ_PER_BYTE_45NM[level]
    return (e if level == "dram" else scale_energy(e, node_nm, voltage_V)) * 1e-12


def energy_per_bit_J(link: str = "nvlink_c2c"):
    """Energy per bit (J) of a link kind (see :data:`PJ_PER_BIT_LINK`)."""
    check_choice("link", link, PJ_PER_BIT_LINK)
    return PJ_PER_BIT_LINK[link] * 1e-12
