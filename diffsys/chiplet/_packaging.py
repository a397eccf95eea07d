"""Die-to-die packaging technologies: bandwidth per mm of shoreline, energy per bit, latency, reach.

Sources (figures used by the presets):

- UCIe 1.0 specification (UCIe Consortium, March 2022), key performance targets, and D. Das Sharma, G. Pasdast,
  Z. Qian, K. Aygun, "Universal Chiplet Interconnect Express (UCIe): An Open Industry Standard for Innovations With
  Chiplets at Package Level", IEEE Trans. CPMT 12(9), 2022, Table I:

  ============================  =======================  ========================
  figure                        standard package (2D)    advanced package (2.5D)
  ============================  =======================  ========================
  bump pitch                    100-130 µm               25-55 µm
  bandwidth shoreline           28-224 GB/s/mm           165-1317 GB/s/mm
  energy efficiency target      0.5 pJ/bit               0.25 pJ/bit
  latency target (Tx + Rx)      < 2 ns                   < 2 ns
  channel reach                 <= 25 mm                 <= 2 mm
  ============================  =======================  ========================

  The presets take the 16 GT/s point of those ranges (organic: 16 lanes x 16 GT/s per ~0.57 mm module ->
  112 GB/s/mm; interposer: 64 lanes x 16 GT/s at 45 µm pitch -> 658 GB/s/mm).
- Embedded bridge (EMIB): an "advanced package" in UCIe terms; R. Mahajan et al., "Embedded Multi-die Interconnect
  Bridge (EMIB)", ECTC 2016, report 55 µm bump pitch and ~0.3 pJ/bit class links; we use 0.3 pJ/bit and the
  55 µm, 16 GT/s shoreline (~500 GB/s/mm).
- 3D hybrid bonding: D. Das Sharma et al., "High-performance, power-efficient three-dimensional system-in-package
  designs with universal chiplet interconnect express", Nature Electronics 7, 2024 (UCIe-3D): < 0.05 pJ/bit at
  9 µm pitch and ~0.01 pJ/bit approaching 1 µm, area bandwidth density ~4 TB/s/mm² at 9 µm. Chiplets in a grid on an
  active base die are connected through a face-to-face bonded overlap strip; we take a 1 mm strip, i.e.
  4000 GB/s per mm of edge (an assumption, stated here), 0.03 pJ/bit (middle of 0.01-0.05), 0.5 ns.

Bandwidth density counts both directions of a link together; the model gives each direction half.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp

from .._checks import check_choice, check_positive
from .._pytree import as_float


class Packaging(eqx.Module):
    """A die-to-die packaging technology (all numeric fields are traced, so they can be swept or differentiated).

    Attributes:
        name: display name (static).
        bandwidth_density_Bps_per_mm: D2D bandwidth per mm of die edge (shoreline), both directions, bytes/s/mm.
        energy_J_per_bit: PHY + adapter energy per bit per die-to-die hop, J/bit.
        latency_s: PHY + adapter latency of one die-to-die crossing (Tx + Rx), s.
        reach_mm: longest supported channel (trace) length, mm.
        die_gap_mm: spacing between neighbouring dies (mesh link trace length), mm.
    """

    name: str = eqx.field(static=True)
    bandwidth_density_Bps_per_mm: jnp.ndarray = eqx.field(converter=as_float)
    energy_J_per_bit: jnp.ndarray = eqx.field(converter=as_float)
    latency_s: jnp.ndarray = eqx.field(converter=as_float)
    reach_mm: jnp.ndarray = eqx.field(converter=as_float)
    die_gap_mm: jnp.ndarray = eqx.field(converter=as_float, default=1.0)

    def __check_init__(self):
        check_positive(f"Packaging({self.name}).bandwidth_density_Bps_per_mm", self.bandwidth_density_Bps_per_mm)
        check_positive(f"Packaging({self.name}).energy_J_per_bit", self.energy_J_per_bit, allow_zero=True)
        check_positive(f"Packaging({self.name}).latency_s", self.latency_s, allow_zero=True)
        check_positive(f"Packaging({self.name}).reach_mm", self.reach_mm)
        check_positive(f"Packaging({self.name}).die_gap_mm", self.die_gap_mm, allow_zero=True)


_GB = 1e9
_PRESETS = {
    # UCIe 1.0 standard package, 16 GT/s (Das Sharma et al., IEEE Trans. CPMT 2022, Table I).
    "organic": {"bandwidth_density_Bps_per_mm": 112 * _GB, "energy_J_per_bit": 0.5e-12, "latency_s": 2e-9,
                    "reach_mm": 25.0, "die_gap_mm": 2.0},
    # UCIe 1.0 advanced package on a silicon interposer (CoWoS-class), 16 GT/s, 45 µm pitch.
    "interposer": {"bandwidth_density_Bps_per_mm": 658 * _GB, "energy_J_per_bit": 0.25e-12, "latency_s": 2e-9,
                       "reach_mm": 2.0, "die_gap_mm": 0.2},
    # Embedded silicon bridge (EMIB-class), 55 µm pitch (Mahajan et al., ECTC 2016).
    "bridge": {"bandwidth_density_Bps_per_mm": 500 * _GB, "energy_J_per_bit": 0.3e-12, "latency_s": 2e-9,
                   "reach_mm": 2.0, "die_gap_mm": 0.2},
    # UCIe-3D hybrid bonding on an active base die (Das Sharma et al., Nature Electronics 2024).
    "hybrid_bonding": {"bandwidth_density_Bps_per_mm": 4000 * _GB, "energy_J_per_bit": 0.03e-12, "latency_s": 0.5e-9,
                           "reach_mm": math.inf, "die_gap_mm": 0.0},
}

PACKAGING_NAMES = tuple(_PRESETS)


def packaging(name: str, **overrides) -> Packaging:
    """A packaging preset by name (``organic``, ``interposer``, ``bridge``, ``hybrid_bonding``); see module docs."""
    check_choice("packaging name", name, PACKAGING_NAMES)
    fields = dict(_PRESETS[name])
    fields.update(overrides)
    return Packaging(name=name, **fields)
