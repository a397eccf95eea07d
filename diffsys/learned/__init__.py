"""Learned components: residual corrections and surrogates (equinox; flax adapter) and hardware-aware NAS helpers."""

from ._flax import FlaxModule as FlaxModule, from_flax as from_flax
from ._mlp import (
    FitResult as FitResult,
    Residual as Residual,
    Surrogate as Surrogate,
    fit as fit,
    mlp as mlp,
    surrogate as surrogate,
)
from ._nas import (
    derive_architecture as derive_architecture,
    expected_cost as expected_cost,
    latency_penalty as latency_penalty,
    mixed_op_weights as mixed_op_weights,
    op_latency as op_latency,
)
