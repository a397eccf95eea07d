"""Helpers for hardware-aware differentiable architecture search (DARTS-style supernets).

A DARTS cell mixes candidate operations with softmax weights over architecture logits ``α`` (Liu, Simonyan & Yang,
"DARTS: differentiable architecture search", ICLR 2019). Hardware-aware variants add the *expected* cost of the
architecture — the weight-averaged latency or energy of the candidates on a device — to the training loss, so
gradient descent trades accuracy against cost (Wu et al., "FBNet", CVPR 2019; Cai et al., "ProxylessNAS", ICLR 2019).
With diffsys the per-op cost is an analytical roofline model of the target device, differentiable end to end.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..primitives import relu
from ..roofline import roofline


def mixed_op_weights(alpha, temperature: float = 1.0, *, key=None, hard: bool = False):
    """Weights over candidate ops from logits ``alpha`` (last axis): softmax at ``temperature``; with ``key``,
    Gumbel-softmax samples (Jang et al., ICLR 2017); ``hard=True`` gives one-hot values with softmax gradients
    (straight-through)."""
    a = jnp.asarray(alpha)
    if key is not None:
        a = a + jax.random.gumbel(key, a.shape, a.dtype)
    w = jax.nn.softmax(a / temperature, axis=-1)
    if hard:
        one = jax.nn.one_hot(jnp.argmax(w, axis=-1), w.shape[-1], dtype=w.dtype)
        w = w + jax.lax.stop_gradient(one - w)
    return w


def expected_cost(weights, costs):
    """``Σ_ops w·cost`` summed over cells: ``weights`` and ``costs`` broadcast to ``(cells, ops)``."""
    return jnp.sum(jnp.asarray(weights) * jnp.asarray(costs))


def op_latency(flops, bytes_moved, accelerator, dtype: str = "bf16", *, compute_efficiency=0.7,
               memory_efficiency=0.8, overhead_s=5e-6, temperature=0.0):
    """Roofline latency (s) of candidate ops (arrays of FLOPs and bytes) on ``accelerator`` (a
    :class:`~diffsys.hardware.Accelerator`): matrix-unit peak for ``dtype`` and main-memory bandwidth, plus a
    fixed kernel-launch overhead per op (a zero-cost op, e.g. *skip*, has zero FLOPs and bytes: only the launch)."""
    r = roofline(flops, bytes_moved, accelerator.peak_flops(dtype), accelerator.main_memory.bandwidth_Bps,
                 compute_efficiency=compute_efficiency, memory_efficiency=memory_efficiency, overhead_s=0.0,
                 temperature=temperature)
    f = jnp.asarray(flops)
    return jnp.where(f > 0, r.time_s + overhead_s, 0.0)


def latency_penalty(latency, weight: float, budget=None, temperature: float = 0.0):
    """``weight · latency`` (a Lagrangian-style cost term), or with a ``budget`` the hinge
    ``weight · max(latency/budget - 1, 0)`` (smooth at ``temperature > 0``)."""
    if budget is None:
        return weight * latency
    return weight * relu(latency / budget - 1.0, temperature)


def derive_architecture(alpha):
    """The discrete architecture: arg-max op per cell."""
    return jnp.argmax(jnp.asarray(alpha), axis=-1)
