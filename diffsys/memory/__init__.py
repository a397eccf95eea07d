"""Memory hierarchy models: tiling-aware traffic, miss-ratio curves, AMAT, SRAM/DRAM/HBM scaling and footprints."""

from ._footprint import (
    OPTIMIZERS as OPTIMIZERS,
    RECOMPUTE_MODES as RECOMPUTE_MODES,
    gradients_bytes as gradients_bytes,
    kv_cache_bytes as kv_cache_bytes,
    optimizer_state_bytes as optimizer_state_bytes,
    training_state_bytes as training_state_bytes,
    transformer_activation_bytes as transformer_activation_bytes,
    weights_bytes as weights_bytes,
)
from ._cache import (
    amat as amat,
    global_miss_ratios as global_miss_ratios,
    miss_ratio_from_reuse_histogram as miss_ratio_from_reuse_histogram,
    power_law_miss_ratio as power_law_miss_ratio,
    reuse_histogram as reuse_histogram,
)
from ._hbm import HBM_GENERATIONS as HBM_GENERATIONS, HBMConfig as HBMConfig, hbm_config as hbm_config
from ._scaling import (
    BITCELL_UM2 as BITCELL_UM2,
    DRAM_ENERGY_J_PER_BIT as DRAM_ENERGY_J_PER_BIT,
    HOROWITZ_SRAM_READ_J as HOROWITZ_SRAM_READ_J,
    SRAM_LATENCY as SRAM_LATENCY,
    SRAM_READ_ENERGY as SRAM_READ_ENERGY,
    ZEN2_LATENCY_CYCLES as ZEN2_LATENCY_CYCLES,
    PowerLaw as PowerLaw,
    SRAMCost as SRAMCost,
    dram_energy_J_per_B as dram_energy_J_per_B,
    sram_area_mm2 as sram_area_mm2,
    sram_cost as sram_cost,
    sram_energy_J_per_B as sram_energy_J_per_B,
    sram_latency_s as sram_latency_s,
)
from ._tiling import (
    Traffic as Traffic,
    conv2d_traffic as conv2d_traffic,
    gemm_traffic as gemm_traffic,
    gemm_traffic_lower_bound as gemm_traffic_lower_bound,
)
from ._model import (
    GemmTrafficSpec as GemmTrafficSpec,
    TrafficMetrics as TrafficMetrics,
    gemm_traffic_model as gemm_traffic_model,
)
