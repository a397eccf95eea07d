"""Kernel times of the LLM models, all from the roofline op model of the cluster's accelerator.

The LLM family has no efficiency model of its own: a GEMM is :func:`diffsys.roofline.op_time` of
:func:`diffsys.roofline.gemm` (the calibrated GEMM kernel model, :func:`diffsys.roofline.gemm_time`, with the
accelerator's ``calibration["gemm"]`` constants), a memory-bound kernel is the same op model on an elementwise op;
attention kernels come from :func:`diffsys.roofline.prefill_attention_time` / ``decode_attention_time``. The only addition is the cluster's
``kernel_overhead_s``, the host/framework time between kernels that a kernel model does not contain.
"""

from __future__ import annotations

import jax.numpy as jnp

from ..primitives import relative_temperature, smooth_max
from ..roofline import elementwise, gemm, gemm_time, op_time

ACT_BYTES = 2.0  # bf16/fp16 activations and weights


def gemm_roofline(m, n, k, cluster, *, batch=1.0, temperature=0.0, weight_bytes=None, dtype=None,
                  quantize_input=True):
    """Roofline (:class:`diffsys.roofline.Roofline`) of one GEMM ``(m×k)·(k×n)`` (a batch of ``batch``) on the
    cluster's accelerator; no framework overhead. ``dtype``: the matrix dtype when it is not ``cluster.dtype``
    (a BF16 GEMM inside an FP8 recipe).

    ``quantize_input=False``: a low-precision GEMM whose activation operand the framework has already quantised
    (Transformer Engine; the training step times those kernels itself), so the kernel model's own dynamic
    quantisation pass is left out.

    ``weight_bytes``: bytes per element of the ``k×n`` operand when it differs from the activations' (quantised
    weights in inference). The kernel is timed at the compute dtype and its memory time is rescaled by the ratio of
    the operand bytes, ``t = t - max(t_c, t_m) + max(t_c, t_m·Q'/Q)`` — the roofline's own dependence on traffic
    (Williams et al. 2009), exact when the kernel is memory- or compute-bound."""
    op = gemm(m, n, k, batch, ACT_BYTES)
    dt = cluster.dtype if dtype is None else dtype
    if quantize_input:
        r = op_time(op, cluster.accelerator, dt, temperature=temperature)
    else:  # the operand arrives quantised (the caller times the quantisation): the kernel without its own pass
        r = gemm_time(m, n, k, cluster.accelerator, dt, batch=batch, temperature=temperature, quantize_input=False)
    if weight_bytes is None:
        return r
    ratio = (op.bytes + batch * k * n * (weight_bytes - ACT_BYTES)) / op.bytes
    T = relative_temperature(temperature, r.compute_time_s, r.memory_time_s)
    t_mem = r.memory_time_s * ratio
    time = r.time_s - smooth_max(r.compute_time_s, r.memory_time_s, T) + smooth_max(r.compute_time_s, t_mem, T)
    return r._replace(time_s=time, memory_time_s=t_mem, compute_bound=r.compute_time_s >= t_mem)


def gemm_s(m, n, k, cluster, *, batch=1.0, count=1.0, temperature=0.0, weight_bytes=None, dtype=None,
           quantize_input=True):
    """``count`` GEMMs (:func:`gemm_roofline`) plus their framework overhead (s)."""
    r = gemm_roofline(m, n, k, cluster, batch=batch, temperature=temperature, weight_bytes=weight_bytes,
                      dtype=dtype, quantize_input=quantize_input)
    return count * (r.time_s + cluster.kernel_overhead_s)


def stack_columns(rows):
    """``rows`` of equal-length tuples (numbers or arrays) as one array per column, the rows on a new leading axis
    (every entry broadcast to a common shape first), so that one vectorized call of a kernel or collective model
    times every row (array leaves of the specs broadcast against the trailing, per-point axes)."""
    cols = tuple(zip(*rows))
    flat = jnp.broadcast_arrays(*(jnp.asarray(x, dtype=jnp.result_type(float)) for col in cols for x in col))
    n = len(rows)
    return tuple(jnp.stack(flat[i * n:(i + 1) * n]) for i in range(len(cols)))


def gemms_s(shapes, cluster, *, temperature=0.0, weight_bytes=None):
    """:func:`gemm_s` of several GEMMs ``shapes = [(m, n, k, batch), ...]`` in one vectorized call of the kernel
    model; the times (s) lie on the leading axis, in the order of ``shapes``."""
    m, n, k, b = stack_columns(shapes)
    return gemm_s(m, n, k, cluster, batch=b, temperature=temperature, weight_bytes=weight_bytes)


def memory_s(bytes_moved, cluster, *, kernels=1.0, temperature=0.0):
    """``kernels`` memory-bound elementwise kernels moving ``bytes_moved`` bytes in total (read + write, split
    evenly), on the roofline, plus their framework overhead."""
    elems = bytes_moved / (2.0 * ACT_BYTES * kernels)  # one input and one output element per element
    some = elems > 0  # a kernel with no traffic (e.g. scores with fused attention) costs only its overhead
    op = elementwise(jnp.where(some, elems, 1.0), 1.0, 1, 1, ACT_BYTES)
    t = jnp.where(some, op_time(op, cluster.accelerator, cluster.dtype, temperature=temperature).time_s, 0.0)
    return kernels * (t + cluster.kernel_overhead_s)

