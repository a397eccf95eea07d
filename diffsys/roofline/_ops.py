"""Op library: FLOP and main-memory byte counts of the operations deep-learning workloads are made of.

Every function returns an :class:`OpCost` whose fields are JAX arrays computed with plain arithmetic on the sizes,
so sizes may be Python numbers, arrays (a batch of ops) or traced values (a design being swept or differentiated).
Byte counts are the *compulsory* main-memory traffic of a well-tiled kernel (each operand read once, each result
written once), the usual roofline assumption; :mod:`diffsys.memory` gives the SRAM-capacity-aware traffic.

Conventions: a multiply-add counts 2 FLOPs; ``bytes_per_element`` is the width of activations/weights (2 for
bf16/fp16); ``matrix`` is the fraction of the FLOPs that run on the matrix units (tensor cores / MXU), the rest run on
the vector units.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp

from .._checks import check_choice, check_positive
from ..hardware import DTYPE_BYTES
from ..primitives import floor_ste


class OpCost(NamedTuple):
    """Work and main-memory traffic of one op (or of a batch of ops when the fields are arrays).

    Attributes:
        flops: floating-point operations (a multiply-add counts 2).
        bytes_read: bytes read from main memory.
        bytes_written: bytes written to main memory.
        matrix: fraction of ``flops`` executed on the matrix units (1 for GEMM/conv, 0 for elementwise ops).
        gemm: ``None``, or the GEMM kernels this op is made of (:class:`GemmKernels`, fields of shape ``(..., G)``:
            ``count`` launches of a ``batch``-batched ``m×n×k`` GEMM moving ``bytes`` each). :func:`op_time` times
            these with the calibrated kernel model (:func:`diffsys.roofline.gemm_time`) and any remaining work of
            the op with the roofline; kernels with ``count = 0`` are padding.
    """

    flops: jnp.ndarray
    bytes_read: jnp.ndarray
    bytes_written: jnp.ndarray
    matrix: jnp.ndarray = 1.0
    gemm: "GemmKernels | None" = None

    @property
    def bytes(self):
        """Total main-memory traffic, ``bytes_read + bytes_written``."""
        return self.bytes_read + self.bytes_written

    @property
    def arithmetic_intensity(self):
        """FLOPs per byte of main-memory traffic."""
        return self.flops / self.bytes

    def __add__(self, other):  # type: ignore[override]
        """Sum of two ops (a fused sequence); ``matrix`` becomes the FLOP-weighted mean."""
        if not isinstance(other, OpCost):
            return NotImplemented
        return add_ops(self, other)

    def scale(self, factor) -> "OpCost":
        """``factor`` copies of this op (e.g. the same layer repeated; GEMM kernels are launched ``factor`` times)."""
        g = self.gemm
        if g is not None:
            g = eqx.tree_at(lambda x: x.count, g, g.count * jnp.asarray(factor, dtype=g.count.dtype)[..., None])
        return OpCost(self.flops * factor, self.bytes_read * factor, self.bytes_written * factor, self.matrix, g)


class GemmKernels(eqx.Module):
    """GEMM kernels of an op (:attr:`OpCost.gemm`): per kernel ``(..., G)`` its sizes ``m, n, k``, the problems
    ``batch`` per launch, the ``count`` of launches and the main-memory ``bytes`` of one launch. ``only`` (static)
    says that the op is these kernels and nothing else, so :func:`op_time` skips the roofline of the rest."""

    m: jnp.ndarray
    n: jnp.ndarray
    k: jnp.ndarray
    batch: jnp.ndarray
    count: jnp.ndarray
    bytes: jnp.ndarray
    only: bool = eqx.field(static=True, default=True)

    @property
    def arrays(self) -> tuple:
        """``(m, n, k, batch, count, bytes)``."""
        return self.m, self.n, self.k, self.batch, self.count, self.bytes

    def map(self, fn, only=None) -> "GemmKernels":
        """``fn`` applied to every array (``only`` kept unless given)."""
        return GemmKernels(*(fn(x) for x in self.arrays), self.only if only is None else only)

    @property
    def flops(self):
        """FLOPs of all launches of each kernel."""
        return 2.0 * self.count * self.batch * self.m * self.n * self.k


def _op(flops, bytes_read, bytes_written, matrix=1.0, gemm=None) -> OpCost:
    f = jnp.asarray(flops, dtype=jnp.result_type(float, flops))
    r = jnp.asarray(bytes_read, dtype=f.dtype)
    w = jnp.asarray(bytes_written, dtype=f.dtype)
    shape = jnp.broadcast_shapes(f.shape, r.shape, w.shape)
    m = jnp.broadcast_to(jnp.asarray(matrix, dtype=f.dtype), shape)
    if gemm is not None:
        full = jnp.broadcast_shapes(gemm.m.shape[:-1], shape) + gemm.m.shape[-1:]
        gemm = gemm.map(lambda x: jnp.broadcast_to(jnp.asarray(x, dtype=f.dtype), full))
    return OpCost(f, r, w, m, gemm)


def pad_gemm(gemm, shape, rows) -> GemmKernels:
    """``gemm`` (or ``None``: an op without GEMM kernels) broadcast to batch ``shape`` and zero-padded to ``rows``
    kernels."""
    if gemm is None:
        return GemmKernels(*(jnp.zeros((*shape, rows)) for _ in range(6)), only=False)
    have = gemm.m.shape[-1]
    return gemm.map(lambda x: jnp.concatenate([jnp.broadcast_to(x, (*shape, have)),
                                               jnp.zeros((*shape, rows - have), x.dtype)], -1))


def concat_gemm(kernels, axis=-1) -> GemmKernels:
    """Kernels side by side (``axis`` = the kernel axis, or the leading op axis of a stacked graph)."""
    return GemmKernels(*(jnp.concatenate([g.arrays[j] for g in kernels], axis) for j in range(6)),
                       only=all(g.only for g in kernels))


def stack_gemm(kernels) -> GemmKernels:
    """Kernels of several ops stacked on a new leading op axis."""
    return GemmKernels(*(jnp.stack([g.arrays[j] for g in kernels]) for j in range(6)),
                       only=all(g.only for g in kernels))


def add_ops(*ops: OpCost) -> OpCost:
    """Sum of ops; ``matrix`` is the FLOP-weighted mean fraction; the GEMM kernels of the parts are concatenated
    (each keeps its own kernel time in :func:`op_time`)."""
    flops = sum(o.flops for o in ops)
    mflops = sum(o.flops * o.matrix for o in ops)
    matrix = jnp.where(flops > 0, mflops / jnp.where(flops > 0, flops, 1.0), 1.0)
    gemm = None
    if any(o.gemm is not None for o in ops):
        shape = jnp.broadcast_shapes(*(jnp.shape(f) for o in ops for f in o[:4]),
                                     *(o.gemm.m.shape[:-1] for o in ops if o.gemm is not None))
        gemm = concat_gemm([pad_gemm(o.gemm, shape, 0 if o.gemm is None else o.gemm.m.shape[-1]) for o in ops])
        if any(o.gemm is None for o in ops):  # work outside any GEMM kernel
            gemm = GemmKernels(*gemm.arrays, only=False)
    return _op(flops, sum(o.bytes_read for o in ops), sum(o.bytes_written for o in ops), matrix, gemm)


def bytes_of(dtype_or_bytes) -> float:
    """Bytes per element of a dtype name (``"bf16"`` -> 2) or a number passed through."""
    if isinstance(dtype_or_bytes, str):
        check_choice("dtype", dtype_or_bytes, DTYPE_BYTES)
        return DTYPE_BYTES[dtype_or_bytes]
    check_positive("bytes_per_element", dtype_or_bytes)
    return dtype_or_bytes


# -- dense linear algebra ---------------------------------------------------------------------------------------
def gemm(m, n, k, batch=1, bytes_per_element=2, *, bytes_out=None, shared_b=False) -> OpCost:
    """Batched GEMM ``C[b] = A[b] (m×k) · B[b] (k×n)``: ``2·batch·m·n·k`` FLOPs.

    Reads ``A`` and ``B`` once and writes ``C`` once. ``shared_b`` = one ``B`` for the whole batch (a linear layer
    applied to ``batch`` independent inputs). ``bytes_out`` is the output element width (default: the input's).
    """
    bpe = bytes_of(bytes_per_element)
    bo = bpe if bytes_out is None else bytes_of(bytes_out)
    b_copies = 1.0 if shared_b else batch
    read = (batch * m * k + b_copies * k * n) * bpe
    written = batch * m * n * bo
    # a shared weight is one GEMM of batch·m rows; otherwise a batched GEMM
    rows, kb = (batch * m, 1.0) if shared_b else (m, batch)
    kernel = GemmKernels(*(jnp.asarray(c, dtype=jnp.result_type(float, c))[..., None]
                           for c in (rows, n, k, kb, 1.0, read + written)))
    return _op(2.0 * batch * m * n * k, read, written, 1.0, kernel)


def matmul_backward(m, n, k, batch=1, bytes_per_element=2) -> OpCost:
    """Backward of ``Y = X W`` (X: m×k, W: k×n): ``dX = dY Wᵀ`` and ``dW = Xᵀ dY`` — two GEMMs of the forward's size."""
    return add_ops(gemm(m, k, n, batch, bytes_per_element), gemm(k, n, m, batch, bytes_per_element))


# -- attention --------------------------------------------------------------------------------------------------
def attention_pairs(seq_q, seq_kv, causal=False):
    """Number of (query, key) pairs scored per head.

    Causal masking with the ``seq_q`` queries at the end of a ``seq_kv`` context keeps
    ``seq_q·seq_kv - seq_q·(seq_q - 1)/2`` pairs (``s(s+1)/2`` for self-attention, ``seq_kv`` for one decode step).
    """
    full = seq_q * seq_kv
    if not causal:
        return full * 1.0
    return full - seq_q * (seq_q - 1.0) / 2.0


def attention(batch, seq_q, seq_kv, n_heads, head_dim, n_kv_heads=None, *, causal=False, flash=True,
              bytes_per_element=2, softmax_flops_per_score=5.0) -> OpCost:
    """Scaled dot-product attention ``softmax(Q Kᵀ/√d) V`` (scores and weighted sum; projections excluded).

    Args:
        batch, seq_q, seq_kv: batch size, query and key/value sequence lengths.
        n_heads, head_dim: query heads and their width; ``n_kv_heads`` key/value heads (``None`` = ``n_heads``
            (MHA); 1 = MQA, Shazeer 2019; in between = GQA, Ainslie et al. 2023).
        causal: causal mask. The IO-aware kernel skips masked blocks (half the work for self-attention); the naive
            one computes the full score matrix and then masks it.
        flash: IO-aware tiled kernel (FlashAttention, Dao et al., NeurIPS 2022): scores stay on chip, main memory
            sees Q, K, V once and O once. ``False``: standard attention, which writes the scores S and
            probabilities P to main memory and reads them back (Dao et al. 2022, Algorithm 0: Θ(N·d + N²) traffic).
        softmax_flops_per_score: vector FLOPs per score (scale, max, subtract, exp, sum/divide).
    """
    bpe = bytes_of(bytes_per_element)
    hkv = n_heads if n_kv_heads is None else n_kv_heads
    pairs = attention_pairs(seq_q, seq_kv, causal and flash)
    score_elems = batch * n_heads * pairs
    mm_flops = 4.0 * score_elems * head_dim  # QKᵀ and PV
    sm_flops = softmax_flops_per_score * score_elems
    q_o = batch * n_heads * seq_q * head_dim * bpe
    kv = 2.0 * batch * hkv * seq_kv * head_dim * bpe
    if flash:
        read, written = q_o + kv, q_o
    else:
        s = batch * n_heads * seq_q * seq_kv * bpe  # full score matrix is materialised
        read, written = q_o + kv + 2.0 * s, q_o + 2.0 * s  # write S, read S, write P, read P
    flops = mm_flops + sm_flops
    return _op(flops, read, written, mm_flops / flops)


# -- memory-bound ops -------------------------------------------------------------------------------------------
def elementwise(n, flops_per_element=1.0, n_inputs=1, n_outputs=1, bytes_per_element=2) -> OpCost:
    """An elementwise map over ``n`` elements (activation, residual add, dropout, ...); vector units only."""
    bpe = bytes_of(bytes_per_element)
    return _op(flops_per_element * n, n_inputs * n * bpe, n_outputs * n * bpe, 0.0)


def reduction(rows, row_len, flops_per_element=1.0, bytes_per_element=2, bytes_out=None) -> OpCost:
    """Reduce ``rows`` rows of ``row_len`` elements to one value per row (sum, max, mean)."""
    bpe = bytes_of(bytes_per_element)
    bo = bpe if bytes_out is None else bytes_of(bytes_out)
    return _op(flops_per_element * rows * row_len, rows * row_len * bpe, rows * bo, 0.0)


def softmax(rows, row_len, bytes_per_element=2) -> OpCost:
    """Row softmax (max, subtract, exp, sum, divide: 5 FLOPs/element); reads and writes the matrix once (fused)."""
    bpe = bytes_of(bytes_per_element)
    n = rows * row_len
    return _op(5.0 * n, n * bpe, n * bpe, 0.0)


def layernorm(tokens, hidden, bytes_per_element=2) -> OpCost:
    """LayerNorm (Ba et al. 2016) over ``hidden`` for ``tokens`` rows: mean, variance, normalise, scale and shift
    (~8 FLOPs/element); reads x, γ, β and writes y (fused kernel)."""
    bpe = bytes_of(bytes_per_element)
    n = tokens * hidden
    return _op(8.0 * n, (n + 2.0 * hidden) * bpe, n * bpe, 0.0)


def rmsnorm(tokens, hidden, bytes_per_element=2) -> OpCost:
    """RMSNorm (Zhang & Sennrich 2019): sum of squares, rsqrt, scale (~4 FLOPs/element); reads x, γ, writes y."""
    bpe = bytes_of(bytes_per_element)
    n = tokens * hidden
    return _op(4.0 * n, (n + hidden) * bpe, n * bpe, 0.0)


def embedding(tokens, hidden, bytes_per_element=2, index_bytes=4) -> OpCost:
    """Embedding lookup: gather ``tokens`` rows of width ``hidden`` (reads indices and rows, writes the rows)."""
    bpe = bytes_of(bytes_per_element)
    return _op(0.0 * tokens, tokens * (hidden * bpe + index_bytes), tokens * hidden * bpe, 0.0)


# -- convolutions -----------------------------------------------------------------------------------------------
def conv_output_size(size, kernel, stride=1, padding=None):
    """``floor((size + 2·padding - kernel)/stride) + 1`` (straight-through floor: exact value, smooth gradient).

    ``padding=None`` uses ``(kernel - 1)//2`` ("same" for odd kernels).
    """
    pad = (kernel - 1) // 2 if padding is None else padding
    return floor_ste((size + 2.0 * pad - kernel) / stride) + 1.0


def conv2d(batch, height, width, c_in, c_out, kernel, stride=1, padding=None, groups=1, bytes_per_element=2) -> OpCost:
    """2-D convolution (NHWC, square ``kernel``), computed as an implicit GEMM.

    FLOPs ``2·B·H_out·W_out·C_out·(C_in/groups)·k²``; reads the input and the weights once, writes the output once.
    """
    bpe = bytes_of(bytes_per_element)
    ho = conv_output_size(height, kernel, stride, padding)
    wo = conv_output_size(width, kernel, stride, padding)
    out = batch * ho * wo * c_out
    flops = 2.0 * out * (c_in / groups) * kernel * kernel
    read = (batch * height * width * c_in + kernel * kernel * (c_in / groups) * c_out) * bpe
    # grouped/depthwise convolutions cannot use the matrix units efficiently; count them as vector work
    return _op(flops, read, out * bpe, 1.0 if groups == 1 else 0.0)


def depthwise_conv2d(batch, height, width, channels, kernel, stride=1, padding=None, bytes_per_element=2) -> OpCost:
    """Depthwise 2-D convolution (one ``kernel×kernel`` filter per channel; MobileNet, Howard et al. 2017)."""
    return conv2d(batch, height, width, channels, channels, kernel, stride, padding, groups=channels,
                  bytes_per_element=bytes_per_element)
