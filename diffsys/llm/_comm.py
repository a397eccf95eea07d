"""Collective costs of one parallelism group mapped onto a two-level (scale-up / scale-out) network.

Alpha-beta ring formulas (Thakur, Rabenseifner & Gropp, "Optimization of collective communication operations in
MPICH", IJHPCA 2005; Patarasuk & Yuan, "Bandwidth optimal all-reduce algorithms for clusters of workstations",
JPDC 2009) composed hierarchically as NCCL does across nodes: a group of ``g`` ranks with ``k`` ranks per node does
the intra-node part among ``k`` ranks and the inter-node part on ``1/k`` of the data among ``g/k`` nodes, the ``k``
ranks of a node using their own scale-out links in parallel.

``algorithm="ring"`` (default, the cheapest in sweeps) uses these closed forms at each level; ``"nccl"`` uses
:func:`diffsys.topologies.collective_time` there instead (NCCL's ring/tree algorithms and LL/LL128/Simple protocols,
which matter for small, latency-bound messages such as decode-time tensor parallelism).

All sizes are in bytes per rank (the buffer each rank contributes/receives), bandwidths in bytes/s per rank per
direction, latencies in seconds per step. ``g = 1`` costs zero. Group sizes are floats (relaxed designs), so every
formula is smooth in them.
"""

from __future__ import annotations

import jax.numpy as jnp

from ..primitives import clamp, relative_temperature


def ranks_per_node(group, stride, gpus_per_node, temperature=0.0, net=-1.0):
    """Members of a group (``group`` ranks spaced ``stride`` apart) that share one node: ``clamp(N/stride, 1, g)``.

    ``net`` overrides the placement: ``0`` keeps the whole group on the scale-up network, ``1`` puts every member
    on its own node (scale-out only), ``-1`` (default) uses the placement."""
    k = clamp(gpus_per_node / stride, 1.0, group, relative_temperature(temperature, group))
    return jnp.where(net < -0.5, k, jnp.where(net < 0.5, group, 1.0))


def _ring(n, size, bw, lat, passes):
    n = jnp.maximum(n, 1.0)
    return passes * ((n - 1) / n * size / bw + (n - 1) * lat)


def _level(op, n, size, bw, lat, passes, algorithm):
    """One level of a hierarchical collective: the ring formula, or ``diffsys.topologies.collective_time``
    (NCCL's algorithms and protocols — tree/LL wins for small messages) when ``algorithm == "nccl"``."""
    if algorithm == "ring":
        return _ring(n, size, bw, lat, passes)
    from ..topologies import collective_time

    op_name = {2.0: "all_reduce", 1.0: op}[passes]
    # a one-rank group costs nothing; evaluate the model at a safe size there so no NaN reaches the gradient
    multi = n > 1.0 + 1e-6
    n_safe = jnp.where(multi, n, 2.0)
    return jnp.where(multi, collective_time(op_name, size, n_safe, bw, lat).time_s, 0.0)


def all_reduce_time(size_B, group, stride, links, temperature=0.0, net=-1.0, algorithm="ring"):
    """Hierarchical all-reduce of ``size_B`` bytes per rank (reduce-scatter + all-gather at each level)."""
    bw_i, lat_i, bw_o, lat_o, n_node = links
    k = ranks_per_node(group, stride, n_node, temperature, net)
    nodes = group / k
    return _level("all_reduce", k, size_B, bw_i, lat_i, 2.0, algorithm) \
        + _level("all_reduce", nodes, size_B / k, bw_o, lat_o, 2.0, algorithm)


def reduce_scatter_time(size_B, group, stride, links, temperature=0.0, net=-1.0, algorithm="ring"):
    """Hierarchical reduce-scatter (``size_B`` = full buffer per rank); all-gather costs the same."""
    bw_i, lat_i, bw_o, lat_o, n_node = links
    k = ranks_per_node(group, stride, n_node, temperature, net)
    nodes = group / k
    return _level("reduce_scatter", k, size_B, bw_i, lat_i, 1.0, algorithm) \
        + _level("reduce_scatter", nodes, size_B / k, bw_o, lat_o, 1.0, algorithm)


all_gather_time = reduce_scatter_time


def all_to_all_time(size_B, group, stride, links, temperature=0.0, net=-1.0):
    """All-to-all of ``size_B`` bytes per rank: the ``(k-1)/g`` share stays in the node, ``(g-k)/g`` leaves it
    (each rank on its own scale-out link); pairwise exchange, ``g - 1`` latency steps."""
    bw_i, lat_i, bw_o, lat_o, n_node = links
    g = jnp.maximum(group, 1.0)
    k = ranks_per_node(group, stride, n_node, temperature, net)
    intra = (k - 1) / g * size_B / bw_i + (k - 1) * lat_i
    inter = (g - k) / g * size_B / bw_o + (g / k - 1) * lat_o
    return intra + inter


def p2p_time(size_B, crosses_node, links):
    """One point-to-point transfer; ``crosses_node`` in [0, 1] selects the scale-out link."""
    bw_i, lat_i, bw_o, lat_o, _ = links
    return (1 - crosses_node) * (size_B / bw_i + lat_i) + crosses_node * (size_B / bw_o + lat_o)
