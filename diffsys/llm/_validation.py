"""Validation of :func:`training_step` against measured Megatron-DeepSpeed iterations on A100 clusters.

Data: the vTrain measurements (Bang et al., "vTrain: a simulation framework for evaluating cost-effective and
compute-optimal large language model training", MICRO 2024; MIT licence), ``ground_truth_single.csv`` (1,440
single-node runs), ``ground_truth_multi.csv`` (109 runs on up to 512 GPUs) and ``allreduce_a100/`` (NCCL all-reduce
on 2-8 A100s). The system fields of ``example_config_175B_8_8_8_2.json`` read: 8 GPUs per node,
``intra_node_bandwidth = 150`` (GB/s) and ``inter_node_bandwidth = 800`` (Gb/s per node, i.e. 4 × 200 Gb/s HDR
InfiniBand = 100 GB/s per node, 12.5 GB/s per GPU when all eight GPUs of a node send at once).

One A100 system description is used for every row. Its software constants are fitted on data disjoint from the
multi-node rows (see :func:`fit_compute_constants`, :func:`fit_allreduce`), so the multi-node error is a
held-out error.
"""

from __future__ import annotations

import csv
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._parallel import Cluster, Parallelism
from ._training import training_step
from ._workloads import Transformer
from ..hardware import preset as accelerator_preset

_COLS = {"# GPUs": "gpus", "global batch": "global_batch", "micro batch": "microbatch", "hidden size": "hidden",
         "attention heads": "heads", "# layers": "layers", "sequence length": "seq", "tensor parallelism": "tp",
         "data parallelism": "dp", "pipeline parallelism": "pp", "iteration time (ms)": "time_ms",
         "Parameters (billion)": "params_b"}

#: Compute constants (positive, fitted in log space; efficiencies capped at 1).
FIT_NAMES = ("gemm_efficiency", "memory_efficiency", "kernel_overhead_s")
#: The four global constants fitted on the even multi-node rows (docs/llm.md).
FIT_NAMES_MULTI = FIT_NAMES + ("scaleout_efficiency",)


def load_vtrain_csv(path) -> dict:
    """Columns of a vTrain ground-truth CSV as float64 arrays (``gpus, global_batch, microbatch, hidden, heads,
    layers, seq, tp, dp, pp, time_ms``)."""
    with open(pathlib.Path(path), newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{path}: no rows")
    out = {}
    for col, key in _COLS.items():
        if col in rows[0]:
            out[key] = np.array([float(r[col]) for r in rows])
    return out


def load_allreduce_lut(path) -> tuple[np.ndarray, np.ndarray]:
    """``(size_B, time_s)`` of an nccl-tests all-reduce LUT (mean of its two time columns)."""
    data = np.genfromtxt(path, delimiter=",", skip_header=1)
    return data[:, 0], 0.5 * (data[:, 3] + data[:, 5]) * 1e-9


def fit_allreduce(sizes_B, times_s, n_gpus, link_Bps):
    """Least-squares ``(efficiency, latency_s)`` of the ring model ``2(n-1)/n · S/(η·B) + 2(n-1)·α`` (relative error
    weighting). Returns ``(efficiency, latency_s)``."""
    f = 2 * (n_gpus - 1) / n_gpus
    A = np.stack([f * sizes_B / link_Bps, np.full_like(sizes_B, 2 * (n_gpus - 1))], axis=1) / times_s[:, None]
    coef, *_ = np.linalg.lstsq(A, np.ones_like(times_s), rcond=None)
    inv_eff, lat = coef
    return float(1.0 / inv_eff), float(max(lat, 0.0))


def vtrain_cluster(n_gpus=8, **constants) -> Cluster:
    """The single A100 system description used for all vTrain rows (before/after fitting ``constants``).

    A100-SXM4-80GB (datasheet peaks), 8 GPUs per node on NVLink3 (300 GB/s per direction, datasheet), scale-out
    100 GB/s per node = 12.5 GB/s per GPU (vTrain config ``inter_node_bandwidth = 800`` Gb/s).
    """
    fields = dict(name="vtrain_a100", accelerator=accelerator_preset("a100_80gb"), n_gpus=n_gpus, gpus_per_node=8,
                  scaleup_bandwidth_Bps=300e9, scaleout_bandwidth_Bps=800e9 / 8 / 8, scaleup_latency_s=5e-6,
                  scaleout_latency_s=10e-6, dtype="fp16")
    fields.update(DEFAULT_CONSTANTS)
    fields.update(constants)
    return Cluster(**fields)


#: Constants of :func:`vtrain_cluster` as fitted by ``examples/llm_validation.py``: NVLink efficiency and latency
#: from the 8-GPU all-reduce LUT; GEMM/memory efficiency, per-kernel overhead and scale-out efficiency on the even
#: rows of ground_truth_multi.csv (the odd rows are held out) — see docs/llm.md. Updated only by re-running it.
DEFAULT_CONSTANTS = dict(gemm_efficiency=0.833, memory_efficiency=0.354, kernel_overhead_s=42.4e-6,
                         scaleout_efficiency=1.0, scaleup_efficiency=0.758, scaleup_latency_s=5.56e-6)


def vtrain_designs(rows: dict, recompute="full"):
    """Batched ``(Transformer, Parallelism, n_gpus)`` for the rows (GPT, vocab 51,200, tied embeddings, GeLU)."""
    n = len(rows["time_ms"])
    ones = np.ones(n)
    h, a = rows["hidden"], rows["heads"]
    model = Transformer(name="gpt", hidden=h, ffn=4 * h, n_layers=rows["layers"], n_heads=a, n_kv_heads=a,
                        head_dim=h / a, vocab=51200 * ones, seq_len=rows["seq"], max_seq_len=rows["seq"],
                        mlp="gelu", tied_embeddings=True)
    rc = {"none": 0.0, "selective": 1.0, "full": 2.0}[recompute]
    par = Parallelism(tp=rows["tp"], pp=rows["pp"], dp=rows["dp"], microbatch=rows["microbatch"],
                      global_batch=rows["global_batch"], recompute=rc * ones, sequence_parallel=0 * ones,
                      grad_bytes=2 * ones)
    return _broadcast(model, n), _broadcast(par, n), rows["gpus"]


def _broadcast(tree, n):
    return jax.tree_util.tree_map(lambda x: jnp.broadcast_to(jnp.asarray(x, jnp.float32), (n,)), tree)


def predict_times(rows: dict, cluster: Cluster, recompute="full") -> np.ndarray:
    """Predicted iteration times (s) of the rows on ``cluster`` (its ``n_gpus`` replaced per row)."""
    model, par, gpus = vtrain_designs(rows, recompute)

    def one(mo, pa, g):
        cl = _with_gpus(cluster, g)
        return training_step(mo, cl, pa).time_s

    return np.asarray(jax.jit(jax.vmap(one))(model, par, jnp.asarray(gpus, dtype=jnp.float32)))


def _with_gpus(cluster, g):
    import equinox as eqx

    return eqx.tree_at(lambda c: c.n_gpus, cluster, g)


def mape(pred, meas) -> tuple[float, float]:
    """``(mean, max)`` absolute percentage error."""
    err = np.abs(np.asarray(pred) - np.asarray(meas)) / np.asarray(meas) * 100
    return float(err.mean()), float(err.max())


def fit_compute_constants(rows: dict, cluster: Cluster, names=FIT_NAMES, steps=300, lr=0.05, recompute="full"):
    """Fit ``names`` (cluster fields, positive) by Adam (optax) on the mean squared log error of the rows' times.

    Returns a new cluster with the fitted values. Efficiencies are clipped to (0, 1].
    """
    import equinox as eqx

    model, par, gpus = vtrain_designs(rows, recompute)
    meas = jnp.asarray(rows["time_ms"] * 1e-3, dtype=jnp.float32)
    g = jnp.asarray(gpus, dtype=jnp.float32)
    x0 = {n: jnp.log(jnp.asarray(getattr(cluster, n), jnp.float32)) for n in names}

    def build(x):
        vals = {n: jnp.exp(x[n]) for n in names}
        vals = {n: (jnp.minimum(v, 1.0) if "efficiency" in n else v) for n, v in vals.items()}
        return eqx.tree_at(lambda c: [getattr(c, n) for n in names], cluster, [vals[n] for n in names])

    def loss(x):
        cl = build(x)

        def one(mo, pa, gg):
            return training_step(mo, _with_gpus(cl, gg), pa).time_s

        pred = jax.vmap(one)(model, par, g)
        return jnp.mean((jnp.log(pred) - jnp.log(meas)) ** 2)

    opt = optax.adam(lr)
    state = opt.init(x0)

    @jax.jit
    def step(x, state):
        val, grad = jax.value_and_grad(loss)(x)
        upd, state = opt.update(grad, state)
        return optax.apply_updates(x, upd), state, val

    x = x0
    for _ in range(steps):
        x, state, _ = step(x, state)
    return build(x)


# Narayanan et al., SC 2021, Table 1: params (B), heads, hidden, layers, TP, PP, GPUs, batch, TFLOP/s per GPU.
NARAYANAN_TABLE1 = [
    (1.7, 24, 2304, 24, 1, 1, 32, 512, 137), (3.6, 32, 3072, 30, 2, 1, 64, 512, 138),
    (7.5, 32, 4096, 36, 4, 1, 128, 512, 142), (18.4, 48, 6144, 40, 8, 1, 256, 1024, 135),
    (39.1, 64, 8192, 48, 8, 2, 512, 1536, 138), (76.1, 80, 10240, 60, 8, 4, 1024, 1792, 140),
    (145.6, 96, 12288, 80, 8, 8, 1536, 2304, 148), (310.1, 128, 16384, 96, 8, 16, 1920, 2160, 155),
    (529.6, 128, 20480, 105, 8, 35, 2520, 2520, 163), (1008.0, 160, 25600, 128, 8, 64, 3072, 3072, 163),
]


def megatron_table1(cluster: Cluster, microbatches=(1, 2, 4, 8)):
    """Predicted TFLOP/s per GPU for Narayanan et al. (2021) Table 1 on ``cluster`` (80 GB A100s, full recompute).

    FLOPs are the paper's Eq. 3; the microbatch, which the table does not list, is the fastest memory-feasible one
    in ``microbatches``. Returns rows ``(params_B, tp, pp, gpus, microbatch, measured, predicted, error_%)``.
    """
    import equinox as eqx

    step = jax.jit(training_step)
    acc = accelerator_preset("a100_80gb")
    rows = []
    for p_b, a, h, L, t, p, n, B, meas in NARAYANAN_TABLE1:
        model = Transformer(name="gpt", hidden=h, ffn=4 * h, n_layers=L, n_heads=a, n_kv_heads=a,
                            head_dim=h // a, vocab=51200, seq_len=2048, max_seq_len=2048)
        cl = eqx.tree_at(lambda c: (c.n_gpus, c.accelerator), cluster, (jnp.asarray(float(n)), acc))
        best = None
        d = n // (t * p)
        for b in microbatches:
            if B % (d * b):
                continue
            par = Parallelism(tp=t, pp=p, dp=d, microbatch=b, global_batch=B, recompute="full", grad_bytes=2)
            r = step(model, cl, par)
            if bool(r.fits) and (best is None or float(r.time_s) < best[0]):
                best = (float(r.time_s), b)
        eq3 = 96 * B * 2048 * L * h**2 * (1 + 2048 / (6 * h) + 51200 / (16 * L * h))
        pred = eq3 / best[0] / n / 1e12
        rows.append((p_b, t, p, n, best[1], meas, pred, (pred - meas) / meas * 100))
    return rows
