"""Parallelism groups mapped onto the cluster's network; every collective is timed by :mod:`diffsys.topologies`.

This module holds no collective physics of its own: it places a group on the two network dimensions of
:attr:`Cluster.network <diffsys.llm.Cluster>` and calls :func:`diffsys.topologies.hierarchical_collective_time`
(NCCL's algorithms and protocols per dimension, the calibrated NVLink and InfiniBand constants of the topologies
presets, the flat multi-node ring as a further candidate).

Placement (Megatron-LM rank order, innermost first: tp, cp, dp/ep, pp; Narayanan et al. 2021, Sec. 3.3): a group of
``g`` ranks spaced ``stride`` apart has ``k = clamp(N/stride, 1, g)`` members on each ``N``-GPU node, so it spans the
dimensions ``(k, g/k)``: the collective runs among the ``k`` ranks of a node on the scale-up links and among
``g/k`` nodes on the scale-out links, as NCCL's hierarchical schedule does. On a system of ``D > 2`` dimensions
(a torus, a multi-rail or multi-tier fabric; rank order innermost dimension first, as in ASTRA-sim's and COSMIC's
multi-dimensional networks, Won et al. 2023, Sec. 3) the same rule nests: the first ``d + 1`` dimensions hold
``C_d = n_0···n_d`` ranks, so ``k_d = clamp(C_d/stride, k_{d-1}, g)`` members of the group lie within them and
dimension ``d`` carries ``k_d / k_{d-1}`` of them; the outermost carries the rest, ``g / k_{D-2}``. For two
dimensions this is exactly ``(k, g/k)``. Group sizes are floats (relaxed designs),
so every time is smooth in them. Sizes follow the nccl-tests convention of :func:`diffsys.topologies.collective_time`
(all-reduce: the buffer; reduce-scatter: its input; all-gather: its output; all-to-all: the per-rank send buffer).
"""

from __future__ import annotations

import jax.numpy as jnp

from ..topologies import hierarchical_collective_time

# Group sizes here are placements computed by the model (``k = N/stride`` may be fractional for non-dividing
# designs, which the model flags as infeasible instead of raising), not user input. The models that call this module
# run compiled (``inference_step`` is ``filter_jit``; ``training_step`` is ``jit_when_eager``: compiled when called
# directly, traced inline inside a caller's trace), so the sizes are traced or computed inside a trace and
# ``hierarchical_collective_time``'s eager integer check of user-built dimensions does not apply to them.
_collective = hierarchical_collective_time


def ranks_per_node(group, stride, gpus_per_node, temperature=0.0, net=-1.0):
    """Members of a group (``group`` ranks spaced ``stride`` apart) that share one node: ``clamp(N/stride, 1, g)``.

    ``net`` overrides the placement: ``0`` keeps the whole group on the scale-up network, ``1`` puts every member
    on its own node (scale-out only), ``-1`` (default) uses the placement."""
    # an exact (piecewise-linear) clamp at every temperature: a smoothed one lands just below ``g`` when a group
    # fills its node exactly, which makes the scale-out dimension's size 1 + ε and switches the topologies model's
    # discrete per-dimension schedule, so the relaxed step would not converge to the exact one
    k = jnp.clip(gpus_per_node / stride, 1.0, group)
    return jnp.where(net < -0.5, k, jnp.where(net < 0.5, group, 1.0))


def group_dims(network, group, stride, temperature=0.0, net=-1.0):
    """The dimensions a group spans, innermost first: sizes ``(k, g/k)`` on a two-dimensional network, the nested
    placement of the module docstring on more. ``net`` (see :func:`ranks_per_node`) pins the group to the innermost
    dimension (``0``) or to the outermost (``1``). A one-dimensional network holds the whole group."""
    dims = network.dims
    g = jnp.maximum(jnp.asarray(group, dtype=jnp.result_type(float)), 1.0)
    if len(dims) == 1:
        return (dims[0].replace(size=g),)
    k0 = ranks_per_node(g, stride, dims[0].size, temperature, net)
    inside, capacity, out = [k0], dims[0].size, [dims[0].replace(size=k0)]
    for dim in dims[1:-1]:
        capacity = capacity * dim.size
        k = jnp.where(net < -0.5, jnp.clip(capacity / stride, inside[-1], g), k0)
        out.append(dim.replace(size=k / inside[-1]))
        inside.append(k)
    out.append(dims[-1].replace(size=g / inside[-1]))
    return tuple(out)


def collective_time(op, size_B, network, group, stride, temperature=0.0, net=-1.0):
    """Time of collective ``op`` of ``size_B`` bytes over a group placed on ``network``; ``g = 1`` costs zero."""
    dims = group_dims(network, group, stride, temperature, net)
    return _collective(op, size_B, dims, temperature=temperature).time_s


def collective_times(op, network, sizes_B, groups, strides, temperature=0.0, nets=None):
    """Several collectives of the same ``op``, one per group: :func:`collective_time` each."""
    nets = (-1.0,) * len(sizes_B) if nets is None else nets
    return tuple(collective_time(op, s, network, g, st, temperature, nt)
                 for s, g, st, nt in zip(sizes_B, groups, strides, nets))


def p2p_time(size_B, crosses_node, network):
    """One point-to-point transfer (topologies ``send_recv``) between two ranks: on one node (``crosses_node = 0``,
    dimensions ``(2, 1)``) or on two (``1``, dimensions ``(1, 2)``). A fractional value (relaxed ``pp_net``) gives
    fractional sizes, which topologies' ``send_recv`` runs on the scale-out dimension (the outermost with more than
    one rank). On a network of more than two dimensions a cross-node hop runs on the outermost dimension (the
    slowest: Megatron places pipeline stages outermost)."""
    up, out = network.dims[0], network.dims[-1]
    if len(network.dims) == 1:
        return _collective("send_recv", size_B, (up.replace(size=2.0),)).time_s
    c = jnp.clip(jnp.asarray(crosses_node, dtype=jnp.result_type(float)), 0.0, 1.0)
    return _collective("send_recv", size_B, (up.replace(size=2.0 - c), out.replace(size=1.0 + c))).time_s
