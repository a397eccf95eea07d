"""Memory footprints of training and inference: weights, gradients, optimizer state, activations, KV cache (bytes).

Sources:
- [ZeRO] Rajbhandari, Rasley, Ruwase & He, "ZeRO: memory optimizations toward training trillion parameter models",
  SC 2020, §3.1: mixed-precision Adam keeps fp16 parameters (2 B) and gradients (2 B) plus fp32 master parameters,
  momentum and variance (K = 12 B) per parameter — 16 B/parameter; stages 1/2/3 partition optimizer state /
  + gradients / + parameters over the ``N_d`` data-parallel ranks.
- [Korthikanti] Korthikanti et al., "Reducing activation recomputation in large transformer models", MLSys 2023
  (arXiv 2205.05198, 2022), §4: activation bytes per transformer layer ``s·b·h·(34 + 5·a·s/h)`` (16-bit activations,
  1-byte dropout masks); with tensor parallelism ``t``: ``s·b·h·(10 + 24/t + 5·a·s/(h·t))``; with sequence
  parallelism: ``s·b·h/t·(34 + 5·a·s/h)``; selective recomputation drops the ``5·a·s/h`` attention term; full
  recomputation stores only the layer input ``2·s·b·h`` (``/t`` with sequence parallelism).
- KV cache: keys and values of every layer, ``2·b·s·L·h_kv·d_head`` elements (Pope et al., "Efficiently scaling
  transformer inference", MLSys 2023, §2).
"""

from __future__ import annotations

from .._checks import check_choice, check_positive
from ..hardware import DTYPE_BYTES

RECOMPUTE_MODES = ("none", "selective", "full")
OPTIMIZERS = {"adam": 8.0, "adamw": 8.0, "sgd_momentum": 4.0, "sgd": 0.0, "adafactor": 0.0, "lion": 4.0}


def _bytes(dtype):
    if isinstance(dtype, str):
        check_choice("dtype", dtype, DTYPE_BYTES)
        return DTYPE_BYTES[dtype]
    check_positive("bytes_per_element", dtype)
    return dtype


def weights_bytes(n_params, dtype="bf16", shards=1):
    """Parameter storage: ``n_params · bytes(dtype) / shards`` (``shards`` = ZeRO-3/FSDP partitions, or TP·PP)."""
    return n_params * _bytes(dtype) / shards


def gradients_bytes(n_params, dtype="bf16", shards=1):
    """Gradient storage: ``n_params · bytes(dtype) / shards`` (``shards`` = ZeRO-2 partitions)."""
    return n_params * _bytes(dtype) / shards


def optimizer_state_bytes(n_params, optimizer="adam", master_weights=True, shards=1):
    """Optimizer state per [ZeRO] §3.1: fp32 moments (Adam: momentum + variance = 8 B/param) plus fp32 master
    weights (4 B/param) in mixed precision; ``shards`` = ZeRO-1 partitions. Adam mixed precision = 12 B/param.

    Adafactor's factored second moment is sub-linear in the parameter count and counted as 0 here.
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    per = OPTIMIZERS[optimizer] + (4.0 if master_weights else 0.0)
    return n_params * per / shards


def training_state_bytes(n_params, zero_stage=0, dp=1, optimizer="adam", param_dtype="bf16"):
    """Weights + gradients + optimizer state per data-parallel rank with ZeRO stage 0–3 ([ZeRO] Fig. 1).

    Mixed-precision Adam, stage 0: ``16·Ψ``; stage 1: ``4Ψ + 12Ψ/N_d``; stage 2: ``2Ψ + 14Ψ/N_d``; stage 3: ``16Ψ/N_d``.
    """
    check_choice("zero_stage", zero_stage, (0, 1, 2, 3))
    return (weights_bytes(n_params, param_dtype, dp if zero_stage >= 3 else 1)
            + gradients_bytes(n_params, param_dtype, dp if zero_stage >= 2 else 1)
            + optimizer_state_bytes(n_params, optimizer, True, dp if zero_stage >= 1 else 1))


def transformer_activation_bytes(seq_len, batch, hidden, n_heads, n_layers=1, tp=1, sequence_parallel=False,
                                 recompute="none"):
    """Activation memory of ``n_layers`` transformer layers kept for the backward pass ([Korthikanti] §4, Table 2).

    Args:
        seq_len, batch, hidden, n_heads: ``s``, ``b``, ``h``, ``a`` in the paper's notation.
        tp: tensor-parallel degree ``t``.
        sequence_parallel: also split LayerNorm/dropout activations along the sequence (Megatron sequence parallel).
        recompute: ``"none"``, ``"selective"`` (recompute the attention core: drops ``5as/h``) or ``"full"``
            (store only each layer's input).
    """
    check_choice("recompute", recompute, RECOMPUTE_MODES)
    sbh = seq_len * batch * hidden
    attn = 5.0 * n_heads * seq_len / hidden
    if recompute == "full":
        per_layer = 2.0 * sbh / (tp if sequence_parallel else 1)
    else:
        a = 0.0 if recompute == "selective" else attn
        if sequence_parallel:
            per_layer = sbh / tp * (34.0 + a)
        else:
            per_layer = sbh * (10.0 + 24.0 / tp + a / tp)
    return n_layers * per_layer


def kv_cache_bytes(batch, seq_len, n_layers, n_kv_heads, head_dim, dtype="bf16", tp=1):
    """KV-cache size: ``2 · batch · seq_len · n_layers · n_kv_heads · head_dim · bytes(dtype) / tp`` (keys and values;
    ``tp`` splits the heads across tensor-parallel ranks)."""
    return 2.0 * batch * seq_len * n_layers * n_kv_heads * head_dim * _bytes(dtype) / tp
