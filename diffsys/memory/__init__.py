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
