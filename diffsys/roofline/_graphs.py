"""Op graphs: named lists of :class:`OpCost` stacked into arrays and evaluated with ``jax.vmap``.

* :func:`transformer_layer_ops` — one pre-norm transformer layer (Vaswani et al. 2017) for training (forward,
  backward) and inference (prefill, decode), with tensor parallelism, GQA/MQA, gated MLPs and IO-aware attention;
* :func:`resnet50_layers` — ResNet-50 v1.5 (He et al., CVPR 2016, Table 1; stride on the 3×3 conv as in torchvision);
* :func:`vit_b16_layers` — ViT-B/16 at 224×224 (Dosovitskiy et al., ICLR 2021, Table 1).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from .._checks import check_choice
from ._core import Roofline
from ._efficiency import as_efficiency
from ._ops import (
    OpCost, _op, attention, bytes_of, concat_gemm, conv2d, elementwise, embedding, gemm, layernorm, matmul_backward,
    pad_gemm, reduction, rmsnorm, softmax, stack_gemm,
)
from ._optime import op_time

TRANSFORMER_MODES = ("forward", "backward", "train", "prefill", "decode")


class OpGraph(eqx.Module):
    """A sequence of ops: ``names`` (static) and ``ops`` (an :class:`OpCost` whose fields have a leading axis of
    length ``n_ops``; trailing axes appear when the sizes were arrays)."""

    names: tuple = eqx.field(static=True)
    ops: OpCost

    @classmethod
    def from_ops(cls, named_ops) -> "OpGraph":
        """Build from ``[(name, OpCost), ...]`` (scalar ops; stacked into arrays)."""
        named_ops = list(named_ops)
        if not named_ops:
            raise ValueError("an OpGraph needs at least one op")
        names = tuple(n for n, _ in named_ops)
        ops = [_op(*o) for _, o in named_ops]
        shape = jnp.broadcast_shapes(*(f.shape for o in ops for f in o[:4]),
                                     *(o.gemm.m.shape[:-1] for o in ops if o.gemm is not None))
        stacked = [jnp.stack([jnp.broadcast_to(o[j], shape) for o in ops]) for j in range(4)]
        rows = max((o.gemm.m.shape[-1] for o in ops if o.gemm is not None), default=0)
        gemm = None
        if rows:
            padded = [pad_gemm(o.gemm, shape, rows) for o in ops]
            gemm = stack_gemm(padded)
        return cls(names, OpCost(*stacked, gemm))

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i) -> OpCost:
        if isinstance(i, str):
            i = self.names.index(i)
        o = self.ops
        return OpCost(*(f[i] for f in o[:4]), None if o.gemm is None else o.gemm.map(lambda g: g[i]))

    def items(self):
        """``[(name, OpCost), ...]``."""
        return [(n, self[i]) for i, n in enumerate(self.names)]

    def total(self) -> OpCost:
        """The whole graph as one op (sums; ``matrix`` is the FLOP-weighted mean)."""
        o = self.ops
        gemm = None if o.gemm is None else o.gemm.map(lambda g: jnp.concatenate(list(g), axis=-1))
        return _op(jnp.sum(o.flops, axis=0), jnp.sum(o.bytes_read, axis=0), jnp.sum(o.bytes_written, axis=0),
                   _matrix_mean(o), gemm)

    def __add__(self, other: "OpGraph") -> "OpGraph":
        a, b = self.ops, other.ops
        gemm = None
        if a.gemm is not None or b.gemm is not None:
            rows = max(g.m.shape[-1] for g in (a.gemm, b.gemm) if g is not None)
            gemm = concat_gemm([pad_gemm(g, o.flops.shape, rows) for g, o in ((a.gemm, a), (b.gemm, b))], 0)
        return OpGraph(self.names + other.names,
                       OpCost(*(jnp.concatenate([x, y], axis=0) for x, y in zip(a[:4], b[:4])), gemm))

    def prefixed(self, prefix: str) -> "OpGraph":
        return OpGraph(tuple(f"{prefix}{n}" for n in self.names), self.ops)

    def repeated(self, times: int, fmt: str = "{i}.") -> "OpGraph":
        """``times`` copies, names prefixed with ``fmt.format(i=i)``."""
        out = self.prefixed(fmt.format(i=0))
        for i in range(1, times):
            out = out + self.prefixed(fmt.format(i=i))
        return out


def _matrix_mean(ops: OpCost):
    f = jnp.sum(ops.flops, axis=0)
    mf = jnp.sum(ops.flops * ops.matrix, axis=0)
    return jnp.where(f > 0, mf / jnp.where(f > 0, f, 1.0), 1.0)


class GraphTime(NamedTuple):
    """Roofline of a graph: totals and the per-op :class:`Roofline` (fields of shape ``(n_ops,)``)."""

    time_s: jnp.ndarray
    energy_J: jnp.ndarray
    flops: jnp.ndarray
    bytes: jnp.ndarray
    per_op: Roofline


def graph_time(graph: OpGraph, accel, dtype="bf16", efficiency=None, temperature=0.0, *, overhead_s=0.0,
               sparse=False) -> GraphTime:
    """Sum of :func:`op_time` over the graph's ops (run back to back), evaluated with ``jax.vmap`` over the ops."""
    eff = None if efficiency is None else as_efficiency(efficiency, accel, dtype)
    per = jax.vmap(lambda o: op_time(o, accel, dtype, eff, temperature, overhead_s=overhead_s,
                                     sparse=sparse))(graph.ops)
    return GraphTime(jnp.sum(per.time_s, axis=0), jnp.sum(per.energy_J, axis=0), jnp.sum(graph.ops.flops, axis=0),
                     jnp.sum(graph.ops.bytes, axis=0), per)


# -- transformer ------------------------------------------------------------------------------------------------
def _attention_backward(batch, seq_q, seq_kv, n_heads, head_dim, n_kv_heads, causal, flash, bpe) -> OpCost:
    """Attention backward. IO-aware (Dao et al. 2022, Alg. 4): recompute S, then dV, dP, dQ, dK — 5 matmuls vs 2
    forward (2.5× the forward matrix FLOPs); reads Q, K, V, O, dO and writes dQ, dK, dV. Naive: 4 matmuls (2×) and
    the stored P is read back while dP/dS round-trip through memory."""
    fwd = attention(batch, seq_q, seq_kv, n_heads, head_dim, n_kv_heads, causal=causal, flash=flash,
                    bytes_per_element=bpe)
    mm = fwd.flops * fwd.matrix
    vec = fwd.flops - mm
    q = batch * n_heads * seq_q * head_dim * bpe
    kv = 2.0 * batch * n_kv_heads * seq_kv * head_dim * bpe
    if flash:
        mm_b, read, written = 2.5 * mm, 3.0 * q + kv, q + kv
    else:
        s = batch * n_heads * seq_q * seq_kv * bpe
        mm_b, read, written = 2.0 * mm, 2.0 * q + kv + 3.0 * s, q + kv + 2.0 * s
    return _op(mm_b + vec, read, written, mm_b / (mm_b + vec))


def transformer_layer_ops(batch, seq_len, d_model, n_heads, n_kv_heads=None, d_ff=None, *, mode="train",
                          kv_len=None, causal=True, flash=True, gated_mlp=False, norm="layernorm", tp=1,
                          bytes_per_element=2, activation_flops=8.0) -> OpGraph:
    """Ops of one pre-norm transformer layer on one device (sizes may be traced; structure is static).

    Args:
        batch, seq_len: sequences and tokens per sequence (prefill/training); for ``mode="decode"`` one new token
            per sequence attends to ``kv_len`` cached tokens (default ``seq_len``).
        d_model, n_heads, n_kv_heads: hidden size, query heads, key/value heads (GQA/MQA; default MHA).
        d_ff: MLP hidden size (default ``4·d_model``); ``gated_mlp`` = SwiGLU-style (two up projections;
            Shazeer 2020).
        mode: ``"forward"`` / ``"prefill"`` (same ops), ``"backward"``, ``"train"`` (forward + backward, names
            prefixed ``fwd.``/``bwd.``), ``"decode"``.
        causal, flash: attention masking and kernel (see :func:`attention`).
        norm: ``"layernorm"`` or ``"rmsnorm"``.
        tp: tensor-parallel degree (Megatron-LM, Shoeybi et al. 2019): heads and MLP columns split ``tp`` ways.
        activation_flops: FLOPs per element of the MLP activation (GELU ≈ 8).
    """
    check_choice("mode", mode, TRANSFORMER_MODES)
    check_choice("norm", norm, ("layernorm", "rmsnorm"))
    if mode == "train":
        kw = dict(n_kv_heads=n_kv_heads, d_ff=d_ff, kv_len=kv_len, causal=causal, flash=flash, gated_mlp=gated_mlp,
                  norm=norm, tp=tp, bytes_per_element=bytes_per_element, activation_flops=activation_flops)
        fwd = transformer_layer_ops(batch, seq_len, d_model, n_heads, mode="forward", **kw)
        bwd = transformer_layer_ops(batch, seq_len, d_model, n_heads, mode="backward", **kw)
        return fwd.prefixed("fwd.") + bwd.prefixed("bwd.")
    bpe = bytes_of(bytes_per_element)
    hkv = n_heads if n_kv_heads is None else n_kv_heads
    ff = 4.0 * d_model if d_ff is None else d_ff
    head_dim = d_model / n_heads
    heads, kv_heads, ff_local = n_heads / tp, hkv / tp, ff / tp
    seq_q = 1.0 if mode == "decode" else seq_len
    seq_kv = (seq_len if kv_len is None else kv_len) if mode == "decode" else seq_len
    tokens = batch * seq_q
    up_cols = (2.0 if gated_mlp else 1.0) * ff_local
    qkv_cols = (heads + 2.0 * kv_heads) * head_dim
    normf = layernorm if norm == "layernorm" else rmsnorm
    act_inputs = 2 if gated_mlp else 1

    def lin(n, k):
        return gemm(tokens, n, k, 1, bpe)

    if mode in ("forward", "prefill", "decode"):
        ops = [
            ("norm1", normf(tokens, d_model, bpe)),
            ("qkv_proj", lin(qkv_cols, d_model)),
            ("attention", attention(batch, seq_q, seq_kv, heads, head_dim, kv_heads, causal=causal, flash=flash,
                                    bytes_per_element=bpe)),
            ("out_proj", lin(d_model, heads * head_dim)),
            ("residual1", elementwise(tokens * d_model, 1.0, 2, 1, bpe)),
            ("norm2", normf(tokens, d_model, bpe)),
            ("mlp_up", lin(up_cols, d_model)),
            ("activation", elementwise(tokens * ff_local, activation_flops, act_inputs, 1, bpe)),
            ("mlp_down", lin(d_model, ff_local)),
            ("residual2", elementwise(tokens * d_model, 1.0, 2, 1, bpe)),
        ]
        return OpGraph.from_ops(ops)
    # backward: each linear layer -> dX and dW GEMMs; norms/elementwise read the saved input and the incoming grad
    def lin_b(n, k):
        return matmul_backward(tokens, n, k, 1, bpe)

    def norm_b():
        f = normf(tokens, d_model, bpe)
        return _op(2.0 * f.flops, 2.0 * f.bytes_read, f.bytes_written + 2.0 * d_model * bpe, 0.0)

    ops = [
        ("residual2", elementwise(tokens * d_model, 1.0, 2, 1, bpe)),
        ("mlp_down", lin_b(d_model, ff_local)),
        ("activation", elementwise(tokens * ff_local, 2.0 * activation_flops, 1 + act_inputs, act_inputs, bpe)),
        ("mlp_up", lin_b(up_cols, d_model)),
        ("norm2", norm_b()),
        ("residual1", elementwise(tokens * d_model, 1.0, 2, 1, bpe)),
        ("out_proj", lin_b(d_model, heads * head_dim)),
        ("attention", _attention_backward(batch, seq_q, seq_kv, heads, head_dim, kv_heads, causal, flash, bpe)),
        ("qkv_proj", lin_b(qkv_cols, d_model)),
        ("norm1", norm_b()),
    ]
    return OpGraph.from_ops(ops)


# -- CNN / ViT --------------------------------------------------------------------------------------------------
def _bn_relu(batch, hw, c, bpe, relu=True, residual=False):
    """Inference BatchNorm (+ ReLU, + residual add) fused into one elementwise pass over the activation."""
    return elementwise(batch * hw * hw * c, 2.0 + relu + residual, 1 + residual, 1, bpe)


def resnet50_layers(batch=1, image_size=224, bytes_per_element=2, num_classes=1000) -> OpGraph:
    """ResNet-50 v1.5 inference: convolutions, BN+ReLU passes, pooling and the classifier (He et al. 2016).

    About 4.1 GMAC (8.2 GFLOP) per 224×224 image.
    """
    bpe = bytes_of(bytes_per_element)
    ops = []
    s = image_size
    ops.append(("conv1", conv2d(batch, s, s, 3, 64, 7, 2, 3, bytes_per_element=bpe)))
    s = s / 2
    ops.append(("conv1.bn_relu", _bn_relu(batch, s, 64, bpe)))
    ops.append(("maxpool", _op(9.0 * batch * (s / 2) ** 2 * 64, batch * s * s * 64 * bpe,
                               batch * (s / 2) ** 2 * 64 * bpe, 0.0)))
    s = s / 2
    c_in = 64
    for stage, (blocks, mid, out, stride) in enumerate(((3, 64, 256, 1), (4, 128, 512, 2), (6, 256, 1024, 2),
                                                         (3, 512, 2048, 2)), start=2):
        for b in range(blocks):
            st = stride if b == 0 else 1
            p = f"conv{stage}_{b + 1}."
            s_out = s / st
            ops.append((p + "conv_a", conv2d(batch, s, s, c_in, mid, 1, 1, 0, bytes_per_element=bpe)))
            ops.append((p + "bn_relu_a", _bn_relu(batch, s, mid, bpe)))
            ops.append((p + "conv_b", conv2d(batch, s, s, mid, mid, 3, st, 1, bytes_per_element=bpe)))
            ops.append((p + "bn_relu_b", _bn_relu(batch, s_out, mid, bpe)))
            ops.append((p + "conv_c", conv2d(batch, s_out, s_out, mid, out, 1, 1, 0, bytes_per_element=bpe)))
            if b == 0:
                ops.append((p + "downsample", conv2d(batch, s, s, c_in, out, 1, st, 0, bytes_per_element=bpe)))
                ops.append((p + "downsample.bn", _bn_relu(batch, s_out, out, bpe, relu=False)))
            ops.append((p + "bn_add_relu", _bn_relu(batch, s_out, out, bpe, residual=True)))
            c_in, s = out, s_out
    ops.append(("avgpool", reduction(batch * c_in, s * s, 1.0, bpe)))
    ops.append(("fc", gemm(batch, num_classes, c_in, 1, bpe)))
    return OpGraph.from_ops(ops)


def vit_b16_layers(batch=1, image_size=224, patch=16, bytes_per_element=2, num_classes=1000, flash=True,
                   depth=12, d_model=768, n_heads=12, d_ff=3072) -> OpGraph:
    """ViT-B/16 inference (Dosovitskiy et al. 2021): patch embedding, ``depth`` encoder layers (non-causal,
    LayerNorm, GELU MLP), final norm and the classification head. About 17.6 GMAC per 224×224 image."""
    bpe = bytes_of(bytes_per_element)
    grid = image_size / patch
    tokens = grid * grid + 1.0  # + class token
    embed = OpGraph.from_ops([
        ("patch_embed", conv2d(batch, image_size, image_size, 3, d_model, patch, patch, 0, bytes_per_element=bpe)),
        ("pos_embed", elementwise(batch * tokens * d_model, 1.0, 2, 1, bpe)),
    ])
    layer = transformer_layer_ops(batch, tokens, d_model, n_heads, d_ff=d_ff, mode="forward", causal=False,
                                  flash=flash, bytes_per_element=bpe)
    head = OpGraph.from_ops([
        ("final_norm", layernorm(batch * tokens, d_model, bpe)),
        ("head", gemm(batch, num_classes, d_model, 1, bpe)),
    ])
    return embed + layer.repeated(depth, "block{i}.") + head


def lm_embedding_ops(batch, seq_len, d_model, vocab, bytes_per_element=2) -> OpGraph:
    """Token embedding lookup and the LM head (logits GEMM + softmax) of a language model."""
    tokens = batch * seq_len
    return OpGraph.from_ops([
        ("embedding", embedding(tokens, d_model, bytes_per_element)),
        ("lm_head", gemm(tokens, vocab, d_model, 1, bytes_per_element)),
        ("logits_softmax", softmax(tokens, vocab, bytes_per_element)),
    ])
