"""A full-stack training design (workload × cluster × parallelism) for sweeps, and the default co-design space.

:class:`TrainingDesign` bundles the three specs so one :class:`~diffsys.space.DesignSpace` can vary any leaf by path
(``"par.tp"``, ``"cluster.network.dims.0.bandwidth_Bps"`` (NVLink), ``"cluster.network.dims.1.bandwidth_Bps"``
(scale-out), ``"cluster.accelerator.memory.hbm.capacity_B"``).
:func:`training_design_metrics` derives the data-parallel degree from the GPU count (``dp = n / (tp·pp·cp)``;
non-integers are flagged infeasible), evaluates :func:`training_step` and adds a cluster capital-cost estimate,
so sweeps can trade step time against cost or power (COSMIC-style full-stack parameter sets: Won et al.,
"COSMIC: ... full-stack co-design for distributed machine learning", 2025).

Capital-cost estimate per GPU (documented assumptions, for ranking only — replace with your own prices):
base board without memory $18,000; HBM $12 per GiB plus $1,500 per TB/s of bandwidth (stack count); scale-up
(NVLink/NVSwitch) $12 per GB/s per direction, plus $1,500 per doubling of the scale-up domain beyond 8 GPUs (one
more switch tier or a rack-scale copper spine per GPU, as in NVL36/NVL72 racks); scale-out (NIC, optics, switch
port) $60 per GB/s per direction. At H100 HGX figures (8 GPUs, 80 GiB, 3.35 TB/s, 450 GB/s, 50 GB/s) this gives
about $32,000 per GPU.

:func:`full_stack_space` adds the network stack to the space (COSMIC's full-stack parameter set: workload
parallelism, collective algorithm per network dimension, network shape and bandwidths, memory): the scale-up domain
size (``cluster.network.dims.0.size``), the collective algorithm of every dimension (``...dims.K.algorithm``, an
index into :data:`diffsys.topologies.DIMENSION_ALGORITHM_CHOICES`) and the bandwidths, grouped into the layers
:data:`FULL_STACK_LAYERS` so a study can search one layer at a time against all at once.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from ..space import Categorical, Continuous, DesignSpace, PowerOfTwo
from ..topologies import DIMENSION_ALGORITHM_CHOICES
from ._parallel import SCALEOUT_BANDWIDTH_PATH, SCALEUP_BANDWIDTH_PATH, Cluster, Parallelism, cluster_preset
from ._training import training_step
from ._workloads import Transformer, transformer_preset

_BASE_USD, _HBM_USD_PER_GIB, _HBM_USD_PER_TBPS = 18_000.0, 12.0, 1_500.0
_UP_USD_PER_GBPS, _OUT_USD_PER_GBPS = 12.0, 60.0
_UP_DOMAIN_USD_PER_DOUBLING, _UP_DOMAIN_BASE = 1_500.0, 8.0
#: shipped per-GPU bandwidths (bytes/s) the full-stack space picks from: NVLink 3/4/5 per direction (A100, H100,
#: B200 datasheets), NICs of 100/200/400/800 Gb/s, HBM of A100 80GB / H100 SXM / H200 / B200
_SCALEUP_GENERATIONS_BPS = (300e9, 450e9, 900e9)
_NIC_GENERATIONS_BPS = (12.5e9, 25e9, 50e9, 100e9)
_HBM_GENERATIONS_BPS = (2.0e12, 3.35e12, 4.8e12, 8.0e12)


class TrainingDesign(eqx.Module):
    """``model`` (workload), ``cluster`` (machine) and ``par`` (execution) of one training job."""

    model: Transformer
    cluster: Cluster
    par: Parallelism


def gpu_capex_usd(cluster: Cluster):
    """Capital cost of one GPU slot (board, HBM, scale-up and scale-out share) under the module's assumptions."""
    hbm = cluster.accelerator.main_memory
    doublings = jnp.maximum(jnp.log2(jnp.maximum(cluster.gpus_per_node, 1.0) / _UP_DOMAIN_BASE), 0.0)
    return (_BASE_USD + _HBM_USD_PER_GIB * hbm.capacity_B / 2**30 + _HBM_USD_PER_TBPS * hbm.bandwidth_Bps / 1e12
            + _UP_USD_PER_GBPS * cluster.scaleup_bandwidth_Bps / 1e9 + _UP_DOMAIN_USD_PER_DOUBLING * doublings
            + _OUT_USD_PER_GBPS * cluster.scaleout_bandwidth_Bps / 1e9)


def training_design_metrics(design: TrainingDesign, temperature=0.0, derive_dp: bool = True) -> dict:
    """Metrics of a design: every :class:`TrainingMetrics` field plus ``capex_usd`` (cluster) and ``dp``.

    ``derive_dp=True`` (default) sets ``dp = n_gpus / (tp·pp·cp)`` (non-integers are infeasible); ``False`` keeps
    the design's ``par.dp`` (use with :func:`parallelism_space`, whose product constraint ties the degrees)."""
    par = design.par
    if derive_dp:
        dp = design.cluster.n_gpus / (par.tp * par.pp * par.cp)
        par = eqx.tree_at(lambda p: p.dp, par, dp)
    else:
        dp = par.dp
    m = training_step(design.model, design.cluster, par, temperature=temperature)
    out = m._asdict()
    out["feasible"] = m.feasible & (jnp.abs(dp - jnp.round(dp)) < 1e-4) & (dp >= 1)
    out["dp"] = dp
    out["capex_usd"] = design.cluster.n_gpus * gpu_capex_usd(design.cluster)
    return out


def exact_parallelism_metrics(design: TrainingDesign, temperature=0.0) -> dict:
    """:func:`training_design_metrics` with the design's own ``dp`` (for :func:`parallelism_space`)."""
    return training_design_metrics(design, temperature, derive_dp=False)


def parallelism_space(base: TrainingDesign, max_microbatch: int = 16) -> DesignSpace:
    """Parallel degrees as design parameters with the structural constraints in the space itself:
    ``tp`` ∈ divisors of gcd(heads, GPUs),
    ``pp`` ∈ divisors of the layers, ``dp`` ∈ divisors of the GPU count, ``microbatch`` ∈ divisors of the global
    batch up to ``max_microbatch``, and the product constraint ``tp·pp·dp == n_gpus``
    (:func:`diffsys.space.product_equals`). Evaluate with :func:`exact_parallelism_metrics`; relax with
    ``space.relax`` / ``space.from_unconstrained`` for gradient search.
    """
    import math

    from ..space import DivisorOf, product_equals

    n = int(round(float(base.cluster.n_gpus)))
    heads = int(round(float(base.model.n_heads)))
    layers = int(round(float(base.model.n_layers)))
    batch = int(round(float(base.par.global_batch)))
    params = {
        "par.tp": DivisorOf(math.gcd(heads, n)),
        "par.pp": DivisorOf(layers, hi=min(layers, n)),
        "par.dp": DivisorOf(n),
        "par.microbatch": DivisorOf(batch, hi=max_microbatch),
    }
    return DesignSpace(params, base=base, constraints=[product_equals(("par.tp", "par.pp", "par.dp"), n)])


def default_training_design(model="gpt3_175b", system="hgx_h100", gpus=1024, global_batch=1536) -> TrainingDesign:
    """GPT-3 175B (Brown et al. 2020) training on ``gpus`` HGX H100 GPUs, global batch 1,536 × 2,048 tokens
    (Narayanan et al. 2021's 175B setting)."""
    mdl = transformer_preset(model) if isinstance(model, str) else model
    cl = cluster_preset(system, gpus) if isinstance(system, str) else system
    par = Parallelism(tp=8, pp=8, dp=gpus // 64 if gpus >= 64 else 1, microbatch=1, global_batch=global_batch,
                      sequence_parallel=1, recompute="selective", zero_stage=1, dp_overlap=0.5)
    return TrainingDesign(mdl, cl, par)


def default_training_space(base: TrainingDesign | None = None, size: str = "default") -> DesignSpace:
    """The parallelism × network × HBM co-design space of the ``diffsys sweep`` default.

    ``size="default"``: tp 7 × pp 7 × microbatch 5 × interleave 3 × recompute 3 × ZeRO 3 × SP 2 × NVLink 4 × NIC 4
    × HBM capacity 3 × HBM bandwidth 4 = 2,540,160 points (about a minute on a 2-core CPU, compile included);
    ``size="large"``: 6-point network/HBM grids and 4 capacities = 11,430,720 points.
    """
    base = base or default_training_design()
    g = 4 if size == "default" else 6
    hbm_caps = (40.0, 80.0, 141.0) if size == "default" else (40.0, 80.0, 141.0, 192.0)
    params = {
        "par.tp": PowerOfTwo(1, 64),
        "par.pp": PowerOfTwo(1, 64),
        "par.microbatch": PowerOfTwo(1, 16),
        "par.interleave": Categorical((1, 2, 4)),
        "par.recompute": Categorical((0, 1, 2)),
        "par.zero_stage": Categorical((0, 1, 3)),
        "par.sequence_parallel": Categorical((0, 1)),
        SCALEUP_BANDWIDTH_PATH: Continuous(150e9, 900e9, log=True, grid=g),
        SCALEOUT_BANDWIDTH_PATH: Continuous(12.5e9, 100e9, log=True, grid=g),
        "cluster.accelerator.memory.hbm.capacity_B": Categorical(tuple(c * 2**30 for c in hbm_caps)),
        "cluster.accelerator.memory.hbm.bandwidth_Bps": Continuous(2e12, 8e12, log=True, grid=g),
    }
    if size not in ("default", "large"):
        raise ValueError(f"size must be 'default' or 'large', got {size!r}")
    return DesignSpace(params, base=base)


#: layers of :func:`full_stack_space`, each a tuple of path prefixes: searching one layer keeps the others at the
#: base design's values (COSMIC's single-stack baselines: workload, collective, network, hardware)
FULL_STACK_LAYERS = {
    "workload": ("par.",),
    "collective": ("cluster.network.dims.", ".algorithm"),
    "network": ("cluster.network.dims.", ".size", ".bandwidth_Bps"),
    "memory": ("cluster.accelerator.memory.",),
}


def full_stack_layer(path: str) -> str:
    """The :data:`FULL_STACK_LAYERS` layer a sweep path belongs to."""
    for layer, (prefix, *suffixes) in FULL_STACK_LAYERS.items():
        if path.startswith(prefix) and (not suffixes or path.endswith(tuple(suffixes))):
            return layer
    raise KeyError(f"path {path!r} belongs to no layer of FULL_STACK_LAYERS")


def full_stack_space(base: TrainingDesign | None = None, layers=tuple(FULL_STACK_LAYERS)) -> DesignSpace:
    """Workload × collective × network × memory co-design space (COSMIC-style; Won et al. 2025) on ``base``.

    - workload: tp, pp (powers of two to 64 and 32), microbatch 1-4, recompute none/selective/full;
    - collective: the algorithm of the scale-up dimension (auto, ring, tree, in-network (NVLS)) and of every other
      dimension (auto, ring, tree, halving-doubling, direct) -- :attr:`diffsys.topologies.Dimension.algorithm`;
    - network: scale-up domain size 8/16/32/64 GPUs (the topology's shape: the outermost dimension holds the rest
      of the job), scale-up bandwidth of the NVLink generations (300, 450, 900 GB/s per GPU per direction: A100,
      H100, B200 datasheets) and scale-out of the NIC generations (100, 200, 400, 800 Gb/s);
    - memory: HBM bandwidth of shipped parts (2.0, 3.35, 4.8, 8.0 TB/s: A100 80GB, H100 SXM, H200, B200).

    ``layers`` keeps only some of the layers (the others stay at the base's values). With every layer on the
    default two-dimension base: 1,451,520 points. Dimensions of the base without an ``algorithm`` value get one
    from the space (``None`` = NCCL's choice; the space starts from ``auto``).
    """
    base = base or default_training_design()
    for layer in layers:
        if layer not in FULL_STACK_LAYERS:
            raise ValueError(f"layers: unknown layer {layer!r}; valid: {tuple(FULL_STACK_LAYERS)}")
    dims = base.cluster.network.dims
    inner = ("auto", "ring", "tree", "in_network")
    outer = ("auto", "ring", "tree", "halving_doubling", "direct")
    params = {
        "par.tp": PowerOfTwo(1, 64),
        "par.pp": PowerOfTwo(1, 32),
        "par.microbatch": PowerOfTwo(1, 4),
        "par.recompute": Categorical((0, 1, 2)),
        "cluster.network.dims.0.algorithm": Categorical(inner, vocabulary=DIMENSION_ALGORITHM_CHOICES),
        **{f"cluster.network.dims.{k}.algorithm": Categorical(outer, vocabulary=DIMENSION_ALGORITHM_CHOICES)
           for k in range(1, len(dims))},
        "cluster.network.dims.0.size": Categorical((8, 16, 32, 64)),
        SCALEUP_BANDWIDTH_PATH: Categorical(_SCALEUP_GENERATIONS_BPS),
        f"cluster.network.dims.{len(dims) - 1}.bandwidth_Bps": Categorical(_NIC_GENERATIONS_BPS),
        "cluster.accelerator.memory.hbm.bandwidth_Bps": Categorical(_HBM_GENERATIONS_BPS),
    }
    params = {k: v for k, v in params.items() if full_stack_layer(k) in layers}
    return DesignSpace(params, base=base)
