"""Chiplet package spec: per-chiplet compute and SRAM, die geometry, off-package memory, packaging technology.

Default figures (an inference MCM of fixed total silicon split into ``n`` chiplets):

- compute energy 0.3 pJ/FLOP and SRAM access 0.6 pJ/B: M. Horowitz, "Computing's energy problem (and what we can
  do about it)", ISSCC 2014 (45 nm: fp16 FMA ≈ 1.5 pJ, 64-bit read of an 8 KB SRAM ≈ 10 pJ), scaled by ≈ 2.5x / 2x
  to a 7 nm-class node (an assumption, stated here);
- DRAM (HBM2) 3.9 pJ/bit = 31 pJ/B: M. O'Connor et al., "Fine-Grained DRAM", MICRO 2017, Table 1;
- on-chip wire/NoC transport 0.1 pJ/bit/mm = 0.8 pJ/B/mm: S. W. Keckler et al., "GPUs and the Future of Parallel
  Computing", IEEE Micro 31(5), 2011 (on-chip wires ≈ 0.1-0.2 pJ/bit/mm);
- UCIe flit of 256 B as the queueing service unit (UCIe 1.0 specification, 256 B flit mode).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from .._checks import check_integer, check_positive, check_range
from .._pytree import as_float
from ._packaging import Packaging
from ._packaging import packaging as packaging_preset


class ChipletPackage(eqx.Module):
    """Numeric parameters of a multi-chip module (every field is a traced leaf; the grid shape lives in the graph).

    Attributes:
        packaging: die-to-die technology (:class:`Packaging`).
        peak_flops: peak FLOP/s of one chiplet.
        sram_B: on-chip SRAM of one chiplet, bytes.
        sram_bandwidth_Bps: SRAM bandwidth of one chiplet, bytes/s.
        energy_J_per_flop: compute energy per FLOP.
        sram_energy_J_per_B: SRAM access energy per byte.
        static_W: leakage/idle power of one chiplet, W.
        dram_bandwidth_Bps: total off-package memory bandwidth of the package, bytes/s.
        dram_energy_J_per_B: DRAM access + PHY energy per byte.
        chiplet_area_mm2: die area of one chiplet, mm².
        aspect_ratio: die width / height (1 = square; relaxable).
        d2d_edge_fraction: fraction of each die edge given to die-to-die PHYs (the rest: DRAM PHY, I/O, power).
        corner_mm: shoreline consumed at a die corner by one diagonal link (half from each adjacent edge), mm.
        noc_energy_J_per_B_mm: on-chip transport energy of D2D traffic inside a die, J/B/mm.
        hop_latency_s: on-chip traversal latency of an intermediate die (router + wires), s.
        packet_B: packet (flit) size used as the service unit of the link queue, bytes.
        psum_bytes_factor: bytes of a partial sum per output byte (fp32 partials of bf16 outputs = 2).
        overlap: ω ∈ [0, 1], how much of a chiplet's input transfer is hidden behind its compute within a layer
            (0: a die computes a layer after its inputs arrived, layer-synchronous execution without double
            buffering; 1: fully double-buffered, time = max(arrival, compute)).
    """

    packaging: Packaging
    peak_flops: jnp.ndarray = eqx.field(converter=as_float)
    sram_B: jnp.ndarray = eqx.field(converter=as_float)
    sram_bandwidth_Bps: jnp.ndarray = eqx.field(converter=as_float)
    energy_J_per_flop: jnp.ndarray = eqx.field(converter=as_float, default=0.3e-12)
    sram_energy_J_per_B: jnp.ndarray = eqx.field(converter=as_float, default=0.6e-12)
    static_W: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    dram_bandwidth_Bps: jnp.ndarray = eqx.field(converter=as_float, default=1.6e12)
    dram_energy_J_per_B: jnp.ndarray = eqx.field(converter=as_float, default=31e-12)
    chiplet_area_mm2: jnp.ndarray = eqx.field(converter=as_float, default=100.0)
    aspect_ratio: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    d2d_edge_fraction: jnp.ndarray = eqx.field(converter=as_float, default=0.5)
    corner_mm: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    noc_energy_J_per_B_mm: jnp.ndarray = eqx.field(converter=as_float, default=0.8e-12)
    hop_latency_s: jnp.ndarray = eqx.field(converter=as_float, default=1e-9)
    packet_B: jnp.ndarray = eqx.field(converter=as_float, default=256.0)
    psum_bytes_factor: jnp.ndarray = eqx.field(converter=as_float, default=2.0)
    overlap: jnp.ndarray = eqx.field(converter=as_float, default=0.0)

    def __check_init__(self):
        for f in ("peak_flops", "sram_B", "sram_bandwidth_Bps", "dram_bandwidth_Bps", "chiplet_area_mm2",
                  "aspect_ratio", "packet_B"):
            check_positive(f"ChipletPackage.{f}", getattr(self, f))
        for f in ("energy_J_per_flop", "sram_energy_J_per_B", "static_W", "dram_energy_J_per_B", "corner_mm",
                  "noc_energy_J_per_B_mm", "hop_latency_s", "psum_bytes_factor"):
            check_positive(f"ChipletPackage.{f}", getattr(self, f), allow_zero=True)
        check_range("ChipletPackage.d2d_edge_fraction", self.d2d_edge_fraction, 0.0, 1.0, lo_open=True)
        check_range("ChipletPackage.overlap", self.overlap, 0.0, 1.0)

    @property
    def width_mm(self):
        return jnp.sqrt(self.chiplet_area_mm2 * self.aspect_ratio)

    @property
    def height_mm(self):
        return jnp.sqrt(self.chiplet_area_mm2 / self.aspect_ratio)

    @classmethod
    def split(cls, num_chiplets: int, packaging="organic", *, total_peak_flops=128e12, total_sram_B=64 * 2**20,
              total_area_mm2=400.0, total_static_W=8.0, bytes_per_flop_sram=1.0, **kwargs) -> ChipletPackage:
        """A package whose fixed total compute, SRAM, area and leakage are split evenly over ``num_chiplets`` dies.

        Defaults describe a 128 TFLOP/s, 64 MiB, 400 mm² inference accelerator with 1.6 TB/s of DRAM; keeping the
        totals fixed makes 4-, 9- and 16-chiplet packages comparable (only the die-to-die cost changes).
        ``packaging`` is a preset name or a :class:`Packaging`.
        """
        check_integer("num_chiplets", num_chiplets, 1)
        n = int(num_chiplets)
        pk = packaging_preset(packaging) if isinstance(packaging, str) else packaging
        return cls(packaging=pk, peak_flops=total_peak_flops / n, sram_B=total_sram_B / n,
                   sram_bandwidth_Bps=bytes_per_flop_sram * total_peak_flops / n, static_W=total_static_W / n,
                   chiplet_area_mm2=total_area_mm2 / n, **kwargs)
