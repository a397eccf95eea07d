"""Cluster power: draw over a workload mix, oversubscription headroom, and power excursions of pipelined training.

* **Oversubscription** in the spirit of POLCA (Patel et al., "Characterizing power management opportunities for
  LLMs in the cloud", ASPLOS 2024): nodes are provisioned for their nameplate power, but a fleet running a mix of
  training / prefill / decode phases rarely draws it. With ``N`` nodes each independently in phase ``i`` with
  probability ``w_i``, the cluster draw has mean ``N·μ`` and variance ``N·σ²`` (central limit theorem), so the
  draw stays below ``N·μ + z·√N·σ`` with the probability of the normal quantile ``z`` (2.326 ≈ 99%). The number of
  nodes a budget ``B`` supports at that quantile solves ``N·μ + z·σ·√N = B`` (a quadratic in ``√N``).
* **Pipeline power excursions** in the spirit of the CharLLM-PPT characterization of power, performance and
  thermals of LLM training: in a pipelined step every GPU alternates busy phases (power set by the roofline
  utilisation of its microbatch GEMMs) with pipeline bubbles and a synchronous gradient all-reduce/optimizer phase
  where all GPUs drop together. Small microbatches are memory bound (low busy power, small swing, long step);
  large ones are compute bound (high busy power, large synchronous swing the facility must absorb).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from ..hardware import Accelerator
from ._device import device_power


class ClusterPower(NamedTuple):
    mean_W: jnp.ndarray  # expected cluster draw
    std_W: jnp.ndarray  # standard deviation of the draw
    quantile_W: jnp.ndarray  # draw not exceeded with the chosen probability
    nameplate_W: jnp.ndarray  # N × node nameplate (what conventional provisioning reserves)
    budget_W: jnp.ndarray
    nodes_supported: jnp.ndarray  # nodes the budget supports at the quantile (continuous)
    headroom: jnp.ndarray  # nodes_supported / n_nodes − 1 (fraction of extra nodes deployable)
    feasible: jnp.ndarray  # quantile draw within budget
    violation_W: jnp.ndarray  # max(quantile − budget, 0)


def cluster_power(phase_gpu_power_W, phase_mix, *, n_nodes, gpus_per_node=8, node_overhead_W=1500.0,
                  gpu_nameplate_W=700.0, budget_W=None, quantile_z=2.326) -> ClusterPower:
    """Cluster draw for nodes running a mix of phases (training, prefill, decode, idle, ...).

    Args:
        phase_gpu_power_W: (k,) GPU power in each phase (e.g. from :func:`device_power`).
        phase_mix: (k,) probability of a node being in each phase (normalised here).
        n_nodes, gpus_per_node: cluster shape (floats allowed for relaxations).
        node_overhead_W: CPUs, NICs, fans, NVSwitches per node (DGX H100: ~10.2 kW max system power, of which
            8 × 700 W GPUs; the rest is host and fabric, partly idle-dependent — an assumption).
        gpu_nameplate_W: the GPU's TDP for nameplate provisioning.
        budget_W: provisioned power (default: the nameplate of ``n_nodes``).
        quantile_z: normal quantile of the draw that must fit the budget.
    """
    p = jnp.asarray(phase_gpu_power_W)
    w = jnp.asarray(phase_mix)
    w = w / jnp.sum(w)
    node = gpus_per_node * p + node_overhead_W
    mu = jnp.sum(w * node)
    var = jnp.sum(w * (node - mu) ** 2)
    sigma = jnp.sqrt(var + 1e-12)
    nameplate = n_nodes * (gpus_per_node * gpu_nameplate_W + node_overhead_W)
    budget = nameplate if budget_W is None else jnp.asarray(budget_W)
    mean = n_nodes * mu
    std = jnp.sqrt(n_nodes) * sigma
    q = mean + quantile_z * std
    # N·μ + zσ√N = B  ->  √N = (−zσ + √(z²σ² + 4μB)) / (2μ)
    zs = quantile_z * sigma
    sqrt_n = (-zs + jnp.sqrt(zs ** 2 + 4 * mu * budget)) / (2 * mu)
    supported = sqrt_n ** 2
    return ClusterPower(mean, std, q, nameplate, budget, supported, supported / n_nodes - 1.0, q <= budget,
                        jnp.maximum(q - budget, 0.0))


class PipelineExcursion(NamedTuple):
    step_time_s: jnp.ndarray
    busy_gpu_power_W: jnp.ndarray  # GPU power while computing a microbatch
    peak_cluster_W: jnp.ndarray
    trough_cluster_W: jnp.ndarray
    swing_W: jnp.ndarray  # peak − trough of the cluster draw within a step
    swing_fraction: jnp.ndarray  # swing / peak
    mean_cluster_W: jnp.ndarray
    energy_per_step_J: jnp.ndarray
    timeline_W: jnp.ndarray  # (n_samples,) cluster draw over one step
    time_s: jnp.ndarray  # (n_samples,)


@eqx.filter_jit
def pipeline_power_excursion(acc: Accelerator, *, microbatch_size, global_batch, seq_len, hidden, layers,
                             pipeline_stages, data_parallel, tensor_parallel=1, dtype="bf16",
                             allreduce_Bps=None, gpus_per_node=8, node_overhead_W=1500.0,
                             n_samples: int = 512, edge_s=None) -> PipelineExcursion:
    """Cluster power over one pipelined (1F1B) training step of a dense transformer, vs microbatch size.

    Per stage and microbatch, the forward pass is ``24·b·s·h²·L/p/t`` FLOP (Narayanan et al., SC 2021) moving the
    stage's weights (``12·h²·L/p/t`` params) once plus activations; backward is 2× forward. Each stage is busy for
    ``m·(t_f + t_b)`` of the ``(m + p − 1)·(t_f + t_b)`` pipeline time (stage ``s`` starts ``s·t_f`` late and ends
    ``s·t_b`` early); then all GPUs synchronise on the data-parallel gradient all-reduce (ring, ``2·(d−1)/d`` of the
    stage gradients at ``allreduce_Bps``) at low (memory-bound) power. ``microbatch_size`` may be a traced float.
    The timeline uses smooth edges of width ``edge_s`` (default 1% of the step) so it is differentiable.
    """
    b = jnp.asarray(microbatch_size, float)
    p_st, d, t = pipeline_stages, data_parallel, tensor_parallel
    m = global_batch / (b * d)  # microbatches per step per pipeline
    params_stage = 12.0 * hidden ** 2 * layers / p_st / t
    bytes_per = 2.0 if dtype in ("bf16", "fp16") else (1.0 if dtype in ("fp8", "int8") else 4.0)
    fwd_flops = 2.0 * params_stage * b * seq_len
    act_bytes = 34.0 * b * seq_len * hidden * layers / p_st / t  # Korthikanti et al., MLSys 2023 (per layer 34·s·b·h)
    fwd_bytes = params_stage * bytes_per + act_bytes
    fwd = device_power(acc, fwd_flops, fwd_bytes, dtype=dtype)
    bwd = device_power(acc, 2 * fwd_flops, 2 * fwd_bytes, dtype=dtype)
    t_f, t_b = fwd.time_s, bwd.time_s
    busy_power = (fwd.power_W * t_f + bwd.power_W * t_b) / (t_f + t_b)
    pipe_time = (m + p_st - 1) * (t_f + t_b)
    grad_bytes = params_stage * bytes_per
    ar_bw = acc.nic_bandwidth_Bps if allreduce_Bps is None else allreduce_Bps
    t_ar = 2.0 * (d - 1) / d * grad_bytes / ar_bw
    ar = device_power(acc, grad_bytes, 3 * grad_bytes, dtype=dtype)  # reduce + optimizer: memory bound
    idle = acc.power.idle_W + acc.power.static_fraction * (acc.power.tdp_W - acc.power.idle_W)
    step = pipe_time + t_ar
    tau = jnp.linspace(0.0, 1.0, n_samples) * step
    edge = 0.01 * step if edge_s is None else edge_s
    s_idx = jnp.arange(p_st, dtype=float)
    start = s_idx * t_f
    end = start + m * (t_f + t_b)
    sig = jax.nn.sigmoid
    busy = sig((tau[None, :] - start[:, None]) / edge) * sig((end[:, None] - tau[None, :]) / edge)  # (p, T)
    in_ar = sig((tau - pipe_time) / edge)
    gpu_w = busy * busy_power + (1 - busy) * ((1 - in_ar) * idle + in_ar * ar.power_W)[None, :]
    n_gpus_per_stage = d * t
    n_nodes = p_st * d * t / gpus_per_node
    cluster = n_gpus_per_stage * jnp.sum(gpu_w, axis=0) + n_nodes * node_overhead_W
    peak, trough = jnp.max(cluster), jnp.min(cluster)
    energy = jnp.mean(cluster) * step
    return PipelineExcursion(step, busy_power, peak, trough, peak - trough, (peak - trough) / peak,
                             jnp.mean(cluster), energy, cluster, tau)
