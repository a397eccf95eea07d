"""Validation of :func:`training_step` against measured Megatron-DeepSpeed iterations on A100 clusters.

Data: the vTrain measurements (Bang et al., "vTrain: a simulation framework for evaluating cost-effective and
compute-optimal large language model training", MICRO 2024; MIT licence), ``ground_truth_single.csv`` (1,440
single-node runs), ``ground_truth_multi.csv`` (109 runs on up to 512 GPUs) and ``allreduce_a100/`` (NCCL all-reduce
on 2-8 A100s). The system fields of ``example_config_175B_8_8_8_2.json`` read: 8 GPUs per node,
``intra_node_bandwidth = 150`` (GB/s) and ``inter_node_bandwidth = 800`` (Gb/s per node, i.e. 4 × 200 Gb/s HDR
InfiniBand = 100 GB/s per node, 12.5 GB/s per GPU when all eight GPUs of a node send at once).

One A100 system description is used for every row: kernels on the roofline op model of the A100 preset (its own
calibration), collectives on the topologies ``dgx_a100`` network (the library's NVLink calibration). Three global
constants (:data:`FIT_NAMES`) are fitted with :func:`fit_constants` on the even multi-node rows; errors are
reported on the odd rows (held out).
"""

from __future__ import annotations

import csv
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from ._parallel import Cluster, Parallelism, two_level_network
from ._training import training_step
from ._workloads import Transformer
from ..hardware import preset as accelerator_preset

_COLS = {"# GPUs": "gpus", "global batch": "global_batch", "micro batch": "microbatch", "hidden size": "hidden",
         "attention heads": "heads", "# layers": "layers", "sequence length": "seq", "tensor parallelism": "tp",
         "data parallelism": "dp", "pipeline parallelism": "pp", "iteration time (ms)": "time_ms",
         "Parameters (billion)": "params_b"}

#: The global constants fitted on the even multi-node rows (docs/llm.md): the two framework constants of
#: :class:`Cluster` and the efficiency of the vTrain cluster's scale-out dimension.
FIT_NAMES = ("kernel_overhead_s", "elementwise_traffic", "scaleout_efficiency")


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


def vtrain_cluster(n_gpus=8, **constants) -> Cluster:
    """The single A100 system description used for all vTrain rows (before/after fitting ``constants``).

    A100-SXM4-80GB (datasheet peaks), fp16; the network is :func:`diffsys.topologies.system_preset`
    ``"dgx_a100"`` (8 GPUs per node on NVLink3 with the library's one NVLink calibration) with the vTrain config's
    scale-out bandwidth, ``inter_node_bandwidth = 800`` Gb/s per node = 12.5 GB/s per GPU. ``constants``:
    :data:`FIT_NAMES` (``scaleout_efficiency`` is the scale-out dimension's efficiency) or other Cluster fields.
    """
    vals = dict(DEFAULT_CONSTANTS)
    vals.update(constants)
    net_kw = {k: vals.pop(k) for k in list(vals) if k.startswith(("scaleup_", "scaleout_"))}
    nodes = max(1, int(np.ceil(float(np.max(n_gpus)) / 8)))
    network = two_level_network("dgx_a100", nodes=nodes, scaleout_bandwidth_Bps=800e9 / 8 / 8, **net_kw)
    return Cluster(name="vtrain_a100", accelerator=accelerator_preset("a100_80gb"), n_gpus=n_gpus, network=network,
                   dtype="fp16", **vals)


#: Constants of :func:`vtrain_cluster` as fitted by ``examples/llm_validation.py`` with
#: :func:`diffsys._fit.fit_least_squares` on the even rows of ground_truth_multi.csv (the odd rows are held out) —
#: see docs/llm.md. Updated only by re-running it.
DEFAULT_CONSTANTS = dict(kernel_overhead_s=34.3e-6, elementwise_traffic=2.12, scaleout_efficiency=1.0)


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


def _with_constants(cluster: Cluster, vals: dict) -> Cluster:
    """``cluster`` with :data:`FIT_NAMES`-style constants replaced (traceable; efficiencies capped at 1)."""
    import equinox as eqx

    out = cluster
    for n, v in vals.items():
        if n.startswith("scaleout_"):
            field = n[len("scaleout_"):]
            v = jnp.minimum(v, 1.0) if field == "efficiency" else v
            out = eqx.tree_at(lambda c: getattr(c.network.dims[-1], field), out, v)
        elif n.startswith("scaleup_"):
            field = n[len("scaleup_"):]
            v = jnp.minimum(v, 1.0) if field == "efficiency" else v
            out = eqx.tree_at(lambda c: getattr(c.network.dims[0], field), out, v)
        else:
            out = eqx.tree_at(lambda c: getattr(c, n), out, v)
    return out


def fit_constants(rows: dict, cluster: Cluster, names=FIT_NAMES, start=None, recompute="full", max_steps=64):
    """Fit ``names`` (positive; efficiencies capped at 1) on the rows' measured times with
    :func:`diffsys._fit.fit_least_squares` (Levenberg–Marquardt on relative residuals, log-space parameters).

    ``start``: initial values (default: the cluster's). Returns ``(fitted cluster, FitResult)``."""
    from .._fit import fit_least_squares

    model, par, gpus = vtrain_designs(rows, recompute)
    meas = jnp.asarray(rows["time_ms"] * 1e-3, dtype=jnp.float32)
    if start is None:
        start = {n: float(_current(cluster, n)) for n in names}
    g = jnp.asarray(gpus, dtype=jnp.float32)

    def predict(vals, inputs):
        mo, pa, gg = inputs
        cl = _with_constants(cluster, vals)
        return jax.vmap(lambda a, b, c: training_step(a, _with_gpus(cl, c), b).time_s)(mo, pa, gg)

    res = fit_least_squares(predict, {n: start[n] for n in names}, (model, par, g), meas, max_steps=max_steps)
    vals = {n: (min(v, 1.0) if "efficiency" in n else v) for n, v in res.params.items()}
    return _with_constants(cluster, {n: jnp.asarray(v) for n, v in vals.items()}), res._replace(params=vals)


def _current(cluster: Cluster, name: str):
    if name.startswith("scaleout_"):
        return getattr(cluster.network.dims[-1], name[len("scaleout_"):])
    if name.startswith("scaleup_"):
        return getattr(cluster.network.dims[0], name[len("scaleup_"):])
    return getattr(cluster, name)


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
