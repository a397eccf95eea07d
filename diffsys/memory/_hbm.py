"""HBM stack count -> capacity, bandwidth and power.

Per-stack figures (1024-bit interface; bandwidth = 1024 · pin rate / 8):

| generation | standard | pin rate (Gb/s) | GB/s per stack | capacity per stack |
|---|---|---|---|---|
| HBM2 | JEDEC JESD235A (2016) | 2.0 | 256 | 8 GB (8-high × 8 Gb) |
| HBM2e | JEDEC JESD235C (2020) | 3.2 | 410 | 16 GB (8-high × 16 Gb) |
| HBM3 | JEDEC JESD238 (2022) | 6.4 | 819 | 16 GB (8-high × 16 Gb; up to 64 GB in the standard) |
| HBM3e | vendor datasheets (SK hynix, Micron, 2024) | 9.6 | 1229 | 24 GB (8-high × 24 Gb) |

Products often run below the maximum pin rate (H100 SXM: 5 HBM3 stacks at ~5.2 Gb/s = 3.35 TB/s), hence the
``pin_rate_Gbps`` argument. Power = access energy × bandwidth × utilisation + background power per stack
(O'Connor et al., MICRO 2017: HBM2 3.9 pJ/bit; background ~10 % of peak access power, an estimate).
"""

from __future__ import annotations

from typing import NamedTuple

from .._checks import check_choice, check_positive
from ._scaling import DRAM_ENERGY_J_PER_BIT

HBM_GENERATIONS = {
    # name: (max pin rate Gb/s, capacity per stack in bytes)
    "hbm2": (2.0, 8e9),
    "hbm2e": (3.2, 16e9),
    "hbm3": (6.4, 16e9),
    "hbm3e": (9.6, 24e9),
}
BUS_BITS = 1024
BACKGROUND_FRACTION = 0.1


class HBMConfig(NamedTuple):
    capacity_B: object
    bandwidth_Bps: object
    power_W: object
    energy_J_per_B: object


def hbm_config(n_stacks, generation="hbm3", *, pin_rate_Gbps=None, stack_capacity_B=None, utilization=1.0):
    """Capacity (bytes), peak bandwidth (bytes/s), power (W) at ``utilization`` and access energy of ``n_stacks``
    stacks (``n_stacks`` may be a traced float)."""
    check_choice("generation", generation, HBM_GENERATIONS)
    check_positive("n_stacks", n_stacks)
    rate, cap = HBM_GENERATIONS[generation]
    rate = rate if pin_rate_Gbps is None else check_positive("pin_rate_Gbps", pin_rate_Gbps)
    cap = cap if stack_capacity_B is None else check_positive("stack_capacity_B", stack_capacity_B)
    bw = n_stacks * BUS_BITS * rate * 1e9 / 8.0
    e_bit = DRAM_ENERGY_J_PER_BIT[generation]
    peak_access_W = bw * 8.0 * e_bit
    power = peak_access_W * (utilization + BACKGROUND_FRACTION)
    return HBMConfig(n_stacks * cap, bw, power, e_bit * 8.0)
