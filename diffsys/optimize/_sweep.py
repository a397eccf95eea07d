"""The sweep engine: evaluate a model over a whole design space (grid or random samples) in fixed-shape chunks.

Each chunk runs inside one ``jit``: grid indices are decoded to design points on the device, the model is
``vmap``-ed over them, infeasible points are masked, and the chunk is *reduced* into a running state — the top-k
by objective, a Pareto archive over 2–3 objectives, and histograms — so a 10⁸-point sweep never materializes its
results. Every chunk has the same shape, so the function compiles once (a test asserts the second chunk does not
retrace). Chunks are sharded over ``jax.devices()`` when there are several. The state is checkpointed every
``checkpoint_every`` chunks (and on interruption); ``resume=True`` continues from the checkpoint and gives the same
result as an uninterrupted run.

``shard=(i, n)`` sweeps a contiguous block of chunks; every kept point carries its global position, so
:func:`~diffsys.optimize.merge` of the ``n`` shards is exactly the single run (``_merge.py``). Under
``jax.distributed`` each process sweeps its own shard and the states are gathered and merged, with process-0-only
checkpoint and progress bar. Compile time is measured from ``jax.monitoring`` events (docs/sweep.md).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

from ..primitives import check_metric_names
from ..space import DesignSpace
from ._metrics import metric_getter, output_type, selector_name
from ._objective import Problem
from ._pareto import pareto_candidates, pareto_front


class SweepState(dict):
    """The running reduction carried between chunks (a dict pytree of device arrays)."""


@dataclasses.dataclass
class SweepResult:
    """What a sweep (or a shard of one, or a :func:`~diffsys.optimize.merge` of shards) found. Arrays are NumPy;
    points are dicts from parameter name to values.

    ``top_index``/``pareto_index`` are the global positions (grid index, or sample number) of the kept points;
    ``settings`` is what a merge checks (space fingerprint, settings, seed key); ``shards`` lists the ``(i, n)``
    shards the result covers (``[(0, 1)]`` for a whole sweep). ``seconds`` is the wall time of the chunk loop,
    ``compile_seconds`` the part of it spent tracing and compiling (a persistent-cache hit counts as compilation),
    ``run_seconds`` the rest.
    """

    space: DesignSpace
    top_points: dict
    top_objective: np.ndarray
    top_metrics: object
    pareto_points: dict | None
    pareto_objectives: np.ndarray | None
    histograms: dict
    n_evaluated: int
    n_feasible: int
    seconds: float
    objective_name: str = "objective"
    pareto_names: tuple = ()
    top_index: np.ndarray | None = None
    pareto_index: np.ndarray | None = None
    compile_seconds: float = 0.0
    settings: dict = dataclasses.field(default_factory=dict)
    shards: list = dataclasses.field(default_factory=lambda: [(0, 1)])

    @property
    def run_seconds(self) -> float:
        return max(self.seconds - self.compile_seconds, 0.0)

    @property
    def evals_per_s(self) -> float:
        """Points per second over the whole chunk loop (compilation included)."""
        return self.n_evaluated / self.seconds if self.seconds > 0 else float("nan")

    @property
    def run_evals_per_s(self) -> float:
        """Points per second excluding tracing and compilation."""
        return self.n_evaluated / self.run_seconds if self.run_seconds > 0 else float("nan")

    @property
    def best_point(self) -> dict:
        return {k: v[0] for k, v in self.top_points.items()}

    def labels(self) -> list:
        """Top-k points as readable dicts (with the objective), best first; infeasible slots are dropped."""
        rows = []
        for i, obj in enumerate(self.top_objective):
            if not np.isfinite(obj):
                continue
            row = self.space.label({k: v[i] for k, v in self.top_points.items()})
            row[self.objective_name] = float(obj)
            for name, value in _scalar_metrics(self.top_metrics).items():
                row.setdefault(name, value[i].item())
            rows.append(row)
        return rows

    def pareto_labels(self) -> list:
        if self.pareto_points is None:
            return []
        order = np.argsort(self.pareto_objectives[:, 0], kind="stable")
        rows = []
        for i in order:
            row = self.space.label({k: v[i] for k, v in self.pareto_points.items()})
            row.update({n: float(x) for n, x in zip(self.pareto_names, self.pareto_objectives[i])})
            rows.append(row)
        return rows

    def to_pandas(self, which: str = "top"):
        """The top-k (``which="top"``, best first, with every scalar metric) or the Pareto front (``"pareto"``) as
        a ``pandas.DataFrame``: one row per point, parameters by their readable labels, a ``rank`` column and the
        global ``index`` of each point. Needs pandas (``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("SweepResult.to_pandas() needs pandas: pip install pandas") from None
        if which not in ("top", "pareto"):
            raise ValueError(f"which must be 'top' or 'pareto', got {which!r}")
        if which == "top":
            rows, keep = self.labels(), np.flatnonzero(np.isfinite(self.top_objective))
            index = self.top_index
        else:
            rows = self.pareto_labels()
            keep = (np.argsort(self.pareto_objectives[:, 0], kind="stable") if self.pareto_objectives is not None
                    else np.zeros(0, int))
            index = self.pareto_index
        df = pd.DataFrame(rows)
        df.insert(0, "rank", np.arange(len(df)))
        if index is not None and len(df):
            df.insert(1, "index", np.asarray(index)[keep])
        return df

    def histogram_frame(self):
        """The histograms as a long ``pandas.DataFrame`` (metric, bin_lo, bin_hi, count; the under/overflow bins
        have an infinite edge)."""
        import pandas as pd  # noqa: F401 (the ImportError message of to_pandas applies)

        rows = []
        for name, counts in self.histograms.items():
            lo, hi, bins = self.settings.get("histograms", {}).get(name, (np.nan, np.nan, len(counts) - 2))
            edges = np.concatenate([[-np.inf], np.linspace(lo, hi, int(bins) + 1), [np.inf]])
            rows += [{"metric": name, "bin_lo": edges[i], "bin_hi": edges[i + 1], "count": int(c)}
                     for i, c in enumerate(np.asarray(counts))]
        return pd.DataFrame(rows)

    def to_xarray(self, metric: str | None = None):
        """A grid result as an ``xarray.Dataset`` over the space's parameters (one dimension per parameter, its
        grid values as the coordinate); the kept points (top-k and front) are filled in, every other cell is NaN.
        Metrics of the top-k become variables (``metric`` selects one). Needs xarray; grid sweeps only."""
        try:
            import xarray as xr
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("SweepResult.to_xarray() needs xarray: pip install xarray") from None
        if self.settings.get("n_samples") is not None:
            raise ValueError("to_xarray() needs a grid sweep (n_samples=None); use to_pandas() for samples")
        space = self.space
        names = list(space.names)
        coords = {n: np.asarray(d.grid_value(np.arange(d.size))) for n, d in space.params.items()}
        shape = tuple(len(coords[n]) for n in names)
        keep = np.flatnonzero(np.isfinite(self.top_objective))
        digits = np.stack([space.digits(int(g)) for g in self.top_index[keep]], 0) \
            if len(keep) else np.zeros((0, len(names)), int)
        metrics = {self.objective_name: self.top_objective}
        for k, v in _scalar_metrics(self.top_metrics).items():
            metrics.setdefault(k, v)
        if metric is not None:
            metrics = {metric: metrics[metric]}
        data = {}
        for k, v in metrics.items():
            grid = np.full(shape, np.nan)
            grid[tuple(digits.T)] = np.asarray(v, float)[keep]
            data[k] = (names, grid)
        return xr.Dataset(data, coords=coords, attrs={"fingerprint": space.fingerprint(),
                                                      "n_evaluated": self.n_evaluated,
                                                      "n_feasible": self.n_feasible})


def _global(index, chunk_size) -> np.ndarray:
    """Global positions (int64; -1 for an empty slot) from the state's ``(chunk, offset)`` pairs."""
    index = np.asarray(index, np.int64).reshape(-1, 2)
    return np.where(index[:, 0] >= 0, index[:, 0] * int(chunk_size) + index[:, 1], -1)


def _scalar_metrics(metrics) -> dict:
    """The per-point scalar fields of a batched :class:`~diffsys.Metrics` (or of a dict of metric arrays)."""
    values = metrics if isinstance(metrics, dict) else metrics.as_dict()
    return {k: np.asarray(v) for k, v in values.items() if np.ndim(v) == 1}


def _histogram_counts(values, valid, lo, hi, bins):
    pos = (values - lo) / (hi - lo) * bins
    idx = jnp.clip(jnp.floor(pos), -1, bins).astype(jnp.int32) + 1  # 0 = underflow, bins+1 = overflow
    idx = jnp.where(jnp.isfinite(values), idx, bins + 1)
    return jnp.zeros(bins + 2, jnp.int32).at[idx].add(valid.astype(jnp.int32))


_TYPES: dict = {}  # (model, id(space)) -> (space, Metrics class): one abstract trace per model and space


def metrics_type(model, space) -> type:
    """The :class:`~diffsys.Metrics` subclass ``model`` returns on ``space`` (one abstract trace, memoized per model
    and space object, shared with the sweep engine): ``metrics_type(m, sp).metric_names()`` lists the names a sweep
    accepts. Raises ``TypeError`` for a model that does not follow the protocol."""
    try:
        hit = _TYPES.get((model, id(space)))
    except TypeError:  # an unhashable model
        return output_type(model, space)
    if hit is not None and hit[0] is space:
        return hit[1]
    cls = output_type(model, space)
    if len(_TYPES) >= 64:
        _TYPES.pop(next(iter(_TYPES)))
    _TYPES[(model, id(space))] = (space, cls)
    return cls


class _Engine:
    """Builds the jitted chunk step once per (model, space, settings)."""

    def __init__(self, model, space, objective, feasible, top_k, pareto, pareto_capacity, histograms, chunk_size,
                 n_samples, key, devices):
        self.model, self.space = model, space
        # the one metric code path: the model's Metrics type, and every name checked against it before compiling
        self.metrics_type = metrics_type(model, space)
        self.objective = metric_getter(objective, self.metrics_type, "objective")
        self.objective_name = selector_name(objective, "objective")
        self.feasible = metric_getter(feasible, self.metrics_type, "feasible", allow_none=True)
        self.top_k = int(top_k)
        self.pareto = tuple(metric_getter(p, self.metrics_type, "pareto objective") for p in (pareto or ()))
        self.pareto_names = tuple(selector_name(p, f"f{i}") for i, p in enumerate(pareto or ()))
        if self.pareto and not 2 <= len(self.pareto) <= 3:
            raise ValueError(f"pareto takes 2 or 3 objectives, got {len(self.pareto)}")
        self.pareto_capacity = int(pareto_capacity)
        self.histograms = dict(histograms or {})
        check_metric_names(self.metrics_type, tuple(self.histograms), "histogram metric")
        self._hist_get = {n: metric_getter(n, self.metrics_type, "histogram metric") for n in self.histograms}
        for name, spec in self.histograms.items():
            if len(spec) != 3 or not spec[1] > spec[0] or int(spec[2]) < 1:
                raise ValueError(f"histograms[{name!r}] must be (lo, hi, bins) with hi > lo and bins >= 1")
        self.chunk_size = int(chunk_size)
        self.n_samples = n_samples
        self.key = key
        self.devices = list(devices) if devices is not None else jax.devices()
        nd = len(self.devices)
        if self.chunk_size % nd:
            self.chunk_size += nd - self.chunk_size % nd
        self.total = space.size if n_samples is None else int(n_samples)
        self.n_chunks = -(-self.total // self.chunk_size)
        self.sharding = None
        if nd > 1:
            mesh = jax.sharding.Mesh(np.array(self.devices), ("d",))
            self.sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("d"))
        self.trace_count = 0
        self._decode = jax.jit(self._decode_stage)
        self._eval = jax.jit(self._evaluate_stage)
        self._reduce = jax.jit(self._reduce_stage)
        self._metrics_fn = None
        self._metrics_future = None
        self._metrics_compiled = None

    # -- evaluation of one chunk ------------------------------------------------------------------------------
    def _points(self, chunk_index, base_digits):
        offsets = jnp.arange(self.chunk_size, dtype=jnp.int32)
        if self.sharding is not None:
            offsets = jax.lax.with_sharding_constraint(offsets, self.sharding)
        if self.n_samples is None:
            points, valid = self.space.grid_chunk(base_digits, self.chunk_size)
            return points, valid
        key = jax.random.fold_in(self.key, chunk_index)
        points = self.space.sample(key, self.chunk_size)
        if self.sharding is not None:
            points = jax.tree_util.tree_map(lambda x: jax.lax.with_sharding_constraint(x, self.sharding), points)
        valid = chunk_index * self.chunk_size + offsets < self.total
        return points, valid

    def _metrics(self, point):
        return self.model(self.space.apply(point), temperature=0.0)

    def _evaluate(self, points):
        def one(point):
            metrics = self._metrics(point)
            obj = jnp.asarray(self.objective(metrics), dtype=jnp.float32)
            ok = jnp.asarray(True) if self.feasible is None else jnp.asarray(self.feasible(metrics), bool)
            ok = ok & self.space.feasible(point) & jnp.isfinite(obj)
            extra = tuple(jnp.asarray(p(metrics), jnp.float32) for p in self.pareto)
            hist = {n: jnp.asarray(get(metrics), jnp.float32) for n, get in self._hist_get.items()}
            return metrics, obj, ok, extra, hist

        return jax.vmap(one)(points)

    def init_state(self):
        k = self.top_k
        state = {
            "top_obj": jnp.full((k,), jnp.inf, jnp.float32),
            "top_points": {n: jnp.zeros((k,), jnp.float32) for n in self.space.names},
            # (chunk, offset) of each kept point: its global position, the tie-break of an exact shard merge
            "top_index": jnp.full((k, 2), -1, jnp.int32),
            # feasible count as two int32 words (hi·2³⁰ + lo): exact far beyond 2³¹ points
            "n_feasible": jnp.zeros((2,), jnp.int32),
        }
        if self.pareto:
            p = self.pareto_capacity
            state["pareto_obj"] = jnp.full((p, len(self.pareto)), jnp.inf, jnp.float32)
            state["pareto_points"] = {n: jnp.zeros((p,), jnp.float32) for n in self.space.names}
            state["pareto_index"] = jnp.full((p, 2), -1, jnp.int32)
        state["hist"] = {n: jnp.zeros(int(b) + 2, jnp.int32) for n, (_, _, b) in self.histograms.items()}
        return state

    # The chunk runs as three jitted stages — decode, evaluate, reduce — dispatched asynchronously back to back.
    # Kept apart, XLA compiles each once and cannot fuse (and so recompute) the decoding or the model into each of
    # the many consumers in the reduction, which made a fused step several times slower on large models.
    def _decode_stage(self, chunk_index, base_digits):
        self.trace_count += 1
        points, valid = self._points(chunk_index, base_digits)
        return {n: jnp.asarray(v, jnp.float32) for n, v in points.items()}, valid

    def _evaluate_stage(self, points):
        self.trace_count += 1
        _, obj, ok, extra, hist = self._evaluate(points)
        return obj, ok, extra, hist

    def _chunk_step(self, state, chunk_index, base_digits):
        """The three stages in one function (what ``step`` runs, stage by stage)."""
        points, valid = self._decode_stage(chunk_index, base_digits)
        return self._reduce_stage(state, chunk_index, points, valid, *self._evaluate_stage(points))

    def _reduce_stage(self, state, chunk_index, points, valid, obj, ok, extra, hist):
        self.trace_count += 1
        ok = ok & valid
        where = jnp.stack([jnp.full((self.chunk_size,), chunk_index, jnp.int32),
                           jnp.arange(self.chunk_size, dtype=jnp.int32)], axis=-1)
        obj = jnp.where(ok, obj, jnp.inf)
        new = dict(state)
        # top-k by objective (ties: earlier chunk first, as top_k is stable over the concatenation)
        cat_obj = jnp.concatenate([state["top_obj"], obj])
        _, idx = jax.lax.top_k(-cat_obj, self.top_k)
        cat = lambda a, b: jnp.concatenate([a, b.astype(a.dtype)])[idx]  # noqa: E731
        new["top_obj"] = cat_obj[idx]
        new["top_points"] = jax.tree_util.tree_map(cat, state["top_points"], points)
        new["top_index"] = cat(state["top_index"], where)
        lo = state["n_feasible"][1] + jnp.sum(ok).astype(jnp.int32)
        new["n_feasible"] = jnp.stack([state["n_feasible"][0] + (lo >> 30), lo & ((1 << 30) - 1)])
        if self.pareto:
            vals = jnp.where(ok[:, None], jnp.stack(extra, axis=-1), jnp.inf)
            cand = pareto_candidates(vals, n_bins=self.pareto_capacity * 4)
            pad = lambda x, fill: jnp.concatenate([x, jnp.full((1,) + x.shape[1:], fill, x.dtype)])  # noqa: E731
            all_vals = jnp.concatenate([state["pareto_obj"], pad(vals, jnp.inf)[cand]])
            sel, slot_ok = pareto_front(all_vals, self.pareto_capacity)
            new["pareto_obj"] = jnp.where(slot_ok[:, None], all_vals[sel], jnp.inf)
            new["pareto_points"] = {n: jnp.concatenate([state["pareto_points"][n], pad(points[n], 0.0)[cand]])[sel]
                                    for n in self.space.names}
            new["pareto_index"] = jnp.concatenate([state["pareto_index"], pad(where, -1)[cand]])[sel]
        new["hist"] = {n: state["hist"][n] + _histogram_counts(hist[n], ok, lo, hi, int(b))
                       for n, (lo, hi, b) in self.histograms.items()}
        return new

    def prepare_metrics(self, points_like):
        """Start compiling :meth:`evaluate_points` for batches shaped like ``points_like`` (the top-k) on a
        background thread, so that XLA compiles it while the chunks run; a failure there only means
        :meth:`evaluate_points` compiles it itself. Skipped under 64-bit mode (a thread-local setting)."""
        if self._metrics_compiled is not None or self._metrics_future is not None or jax.config.jax_enable_x64:
            return
        shapes = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)),
                                        points_like)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=_BACKGROUND_THREAD)
        self._metrics_future = pool.submit(lambda: jax.jit(jax.vmap(self._metrics)).lower(shapes).compile())
        pool.shutdown(wait=False)

    def evaluate_points(self, points):
        """Metrics of a batch of points (the top-k at the end of a sweep)."""
        if self._metrics_future is not None:
            try:
                self._metrics_compiled = self._metrics_future.result()
            except Exception:  # the background compile failed: compile it here instead
                self._metrics_compiled = None
            self._metrics_future = None
        if self._metrics_compiled is not None:
            try:
                return self._metrics_compiled(points)
            except (TypeError, ValueError):  # a batch shaped otherwise than the prepared one
                pass
        if self._metrics_fn is None:
            self._metrics_fn = jax.jit(jax.vmap(self._metrics))
        return self._metrics_fn(points)

    def step(self, state, chunk):
        start = chunk * self.chunk_size
        digits = self.space.digits(start) if self.n_samples is None else np.zeros(self.space.ndim, np.int32)
        points, valid = self._decode(jnp.int32(chunk), jnp.asarray(digits))
        return self._reduce(state, jnp.int32(chunk), points, valid, *self._eval(points))


_ENGINES: dict = {}
_MAX_ENGINES = 16


def _engine_for(model, space, objective, feasible, top_k, pareto, pareto_capacity, histograms, chunk_size,
                n_samples, key, devices):
    """A cached engine, so repeated sweeps of the same model and space reuse the compiled chunk step.

    Callables and the space are compared by identity (the base spec and the model are baked into the trace).
    """
    key_bytes = None if key is None else np.asarray(jax.random.key_data(key)).tobytes()
    hist = tuple(sorted((k, tuple(map(float, v))) for k, v in (histograms or {}).items()))
    cache_key = (model, id(space), space.fingerprint(), objective, feasible, int(top_k), tuple(pareto or ()),
                 int(pareto_capacity), hist, int(chunk_size), n_samples, key_bytes,
                 None if devices is None else tuple(devices))
    try:
        hash(cache_key)
    except TypeError:  # an unhashable argument: no caching
        return _Engine(model, space, objective, feasible, top_k, pareto, pareto_capacity, histograms, chunk_size,
                       n_samples, key, devices)
    engine = _ENGINES.get(cache_key)
    if engine is None or engine.space is not space:
        engine = _Engine(model, space, objective, feasible, top_k, pareto, pareto_capacity, histograms, chunk_size,
                         n_samples, key, devices)
        if len(_ENGINES) >= _MAX_ENGINES:
            _ENGINES.pop(next(iter(_ENGINES)))
        _ENGINES[cache_key] = engine
    return engine


# -- checkpoints ---------------------------------------------------------------------------------------------------
_FROM_PROBLEM = object()  # sentinel: the Problem's setting, else "feasible"


def _save_checkpoint(path, state, meta):
    leaves, _ = jax.tree_util.tree_flatten(state)
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, meta=json.dumps(meta), **{f"leaf{i}": np.asarray(x) for i, x in enumerate(leaves)})
    os.replace(tmp, path)


def _load_checkpoint(path, template, check_meta=None):
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if check_meta is not None:  # settings first: a clearer error than a shape mismatch
            check_meta(meta)
        leaves, treedef = jax.tree_util.tree_flatten(template)
        if len(data.files) - 1 != len(leaves):
            raise ValueError(f"checkpoint {path} holds {len(data.files) - 1} state arrays, expected {len(leaves)} "
                             "(written by another version or setting); remove it or resume=False")
        loaded = [np.asarray(data[f"leaf{i}"], dtype=t.dtype) for i, t in enumerate(leaves)]
    for i, (a, b) in enumerate(zip(loaded, leaves)):
        if a.shape != b.shape:
            raise ValueError(f"checkpoint {path}: state leaf {i} has shape {a.shape}, expected {b.shape}")
    return jax.tree_util.tree_unflatten(treedef, loaded), meta


def shard_checkpoint_path(path: str, shard) -> str:
    """The checkpoint file of one shard: ``run.npz`` -> ``run.shard2of4.npz`` (distinct files, so shards
    running side by side never overwrite each other's state). The whole sweep (``shard=None`` or ``(0, 1)``)
    keeps ``path``."""
    if shard is None or tuple(shard)[1] == 1:
        return path
    i, n = shard
    stem, ext = os.path.splitext(path)
    return f"{stem}.shard{i}of{n}{ext or '.npz'}"


def shard_chunks(shard, n_chunks: int) -> range:
    """The chunks of shard ``(i, n)``: the contiguous block ``[⌊i·C/n⌋, ⌊(i+1)·C/n⌋)`` of the ``C`` chunks.
    Blocks nest: shard ``(i, n)`` is the union of shards ``(i·m + j, n·m)``, ``j < m``."""
    i, n = shard
    return range(i * n_chunks // n, (i + 1) * n_chunks // n)


def _check_shard(shard):
    if shard is None:
        return None
    try:
        i, n = (int(x) for x in shard)
    except (TypeError, ValueError):
        raise ValueError(f"shard must be a pair (i, n) of integers, got {shard!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard (i, n) needs n >= 1 and 0 <= i < n, got {shard!r}")
    return i, n


# -- compile time --------------------------------------------------------------------------------------------------
_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")
_BACKGROUND_THREAD = "diffsys-sweep-compile"
_COMPILE_CLOCK = [0.0, False]  # seconds spent tracing/lowering/compiling in this process, listener registered


def _compile_clock() -> float:
    """Seconds this process has spent tracing, lowering and compiling (``jax.monitoring`` events; a persistent
    compilation-cache hit is counted as the compile it replaced). The top-k metrics compile on the background
    thread of :meth:`_Engine.prepare_metrics` overlaps the chunks and is not counted."""
    if not _COMPILE_CLOCK[1]:
        def listen(event, duration, **_):
            if event in _COMPILE_EVENTS and not threading.current_thread().name.startswith(_BACKGROUND_THREAD):
                _COMPILE_CLOCK[0] += duration

        jax.monitoring.register_event_duration_secs_listener(listen)
        _COMPILE_CLOCK[1] = True
    return _COMPILE_CLOCK[0]


# -- multi-process -------------------------------------------------------------------------------------------------
def _allgather(tree):
    """Every process's copy of ``tree`` stacked along a new leading axis (host NumPy arrays)."""
    from jax.experimental import multihost_utils

    return jax.tree_util.tree_map(np.asarray, multihost_utils.process_allgather(jax.device_get(tree)))


def _broadcast(tree):
    """Process 0's ``tree`` on every process."""
    from jax.experimental import multihost_utils

    return jax.tree_util.tree_map(np.asarray, multihost_utils.broadcast_one_to_all(tree))


def sweep(model, space: DesignSpace | None = None, objective=None, *, feasible=_FROM_PROBLEM, n_samples=None,
          key=None, top_k=10, pareto=None, pareto_capacity=256, histograms=None, chunk_size=65536, checkpoint=None,
          checkpoint_every=10, resume=False, progress=True, callback=None, devices=None, shard=None,
          multiprocess=None) -> SweepResult:
    """Evaluate ``model`` over ``space`` and reduce to top-k / Pareto front / histograms.

    Args:
        model: a protocol model ``model(spec, *, temperature=0.0) -> Metrics`` (:class:`diffsys.Metrics`),
            evaluated exactly (temperature 0) at ``spec = space.apply(point)``; or a
            :class:`~diffsys.optimize.Problem`, whose space, objective and feasibility are the defaults.
        space: the :class:`~diffsys.space.DesignSpace`.
        objective: metric name or ``callable(metrics) -> scalar``; minimized (default ``"time_s"``).
        feasible: metric name (default ``"feasible"``), ``callable(metrics) -> bool``, or ``None``. The space's
            own constraints and a finite objective are required as well; infeasible points count in
            ``n_evaluated`` but never enter the top-k or the front.

        n_samples: ``None`` enumerates the full grid; an int draws that many uniform samples (needs ``key``).
        top_k: how many best points to keep.
        pareto: 2 or 3 metrics (names or callables), all minimized; the front keeps ``pareto_capacity`` points.
        histograms: ``{metric: (lo, hi, bins)}`` counts of feasible points (with under/overflow bins at the ends).
        chunk_size: points per jitted chunk (rounded up to a multiple of the device count).
        checkpoint: path of an ``.npz`` checkpoint written every ``checkpoint_every`` chunks and on interruption
            (a shard writes its own file, :func:`shard_checkpoint_path`).
        resume: continue from ``checkpoint`` if it exists (it must come from the same space and settings).
        progress: show a progress bar.
        callback: ``callback(chunks_done, n_chunks)`` after each chunk (may raise to stop; the checkpoint is saved).
        devices: devices to shard chunks over (default ``jax.devices()``, or ``jax.local_devices()`` when several
            processes run).
        shard: ``(i, n)`` evaluates only shard ``i`` of ``n``: a contiguous block of chunks
            (:func:`shard_chunks`), so ``n`` shards are disjoint and cover the space; :func:`merge` of the ``n``
            results equals the whole sweep.
        multiprocess: under ``jax.distributed`` (``jax.process_count() > 1``; default ``None`` = then), each
            process sweeps its own shard on its local devices, the states are gathered across processes and
            merged, and every process returns the same, whole result; only process 0 writes the checkpoint and
            shows the progress bar. ``False`` runs independently in every process.

    Every metric name (``objective``, ``feasible``, ``pareto``, ``histograms``) is checked against the model's
    :class:`~diffsys.Metrics` type before anything compiles: an unknown name raises ``ValueError`` naming it and
    the available metrics.
    """
    if isinstance(model, Problem):
        space = model.space if space is None else space
        objective = model.objective if objective is None else objective
        feasible = model.feasible if feasible is _FROM_PROBLEM else feasible
        model = model.model
    if space is None:
        raise TypeError("sweep needs a DesignSpace (or a Problem)")
    objective = "time_s" if objective is None else objective
    feasible = "feasible" if feasible is _FROM_PROBLEM else feasible
    if n_samples is not None:
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        if key is None:
            raise ValueError("n_samples requires a PRNG key (key=jax.random.key(seed))")
    if int(top_k) < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    shard = _check_shard(shard)
    n_proc, pid = jax.process_count(), jax.process_index()
    multi = n_proc > 1 if multiprocess is None else bool(multiprocess) and n_proc > 1
    if multi and devices is None:
        devices = jax.local_devices()
    clock0 = _compile_clock()
    engine = _engine_for(model, space, objective, feasible, top_k, pareto, pareto_capacity, histograms, chunk_size,
                         n_samples, key, devices)
    whole = shard or (0, 1)
    local = (whole[0] * n_proc + pid, whole[1] * n_proc) if multi else whole
    chunks = shard_chunks(local, engine.n_chunks)
    steps = -(-engine.n_chunks // local[1]) if multi else len(chunks)  # lockstep: the longest shard's length
    meta = {
        "fingerprint": space.fingerprint(),
        "n_samples": n_samples,
        "chunk_size": engine.chunk_size,
        "top_k": engine.top_k,
        "pareto": list(engine.pareto_names),
        "histograms": {k: list(map(float, v)) for k, v in engine.histograms.items()},
        "key": None if key is None else np.asarray(jax.random.key_data(key)).tolist(),
        "shard": list(whole),
        "processes": n_proc if multi else 1,
        "next_step": 0,
        "seconds": 0.0,
    }
    ckpt = shard_checkpoint_path(checkpoint, whole) if checkpoint else None
    writer = not multi or pid == 0  # process-0-only I/O
    state = engine.init_state()
    if resume and ckpt:
        found = os.path.exists(ckpt) if writer else False
        if multi:
            found = bool(_broadcast(np.asarray(found)))
        if found:
            template = _stack([state] * n_proc) if multi else state
            if writer:
                def check_meta(saved):
                    for field in ("fingerprint", "n_samples", "chunk_size", "top_k", "pareto", "histograms", "key",
                                  "shard", "processes"):
                        if saved.get(field) != meta[field]:
                            raise ValueError(f"checkpoint {ckpt} was written with a different {field} "
                                             f"({saved.get(field)!r} vs {meta[field]!r}); remove it or "
                                             "resume=False")

                loaded, saved = _load_checkpoint(ckpt, template, check_meta)
                progress_at = np.asarray([saved["next_step"], saved["seconds"]], np.float64)
            else:
                loaded, progress_at = jax.tree_util.tree_map(np.asarray, template), np.zeros(2)
            if multi:
                loaded, progress_at = _broadcast((loaded, progress_at))
                loaded = jax.tree_util.tree_map(lambda x: x[pid], loaded)
            state = jax.tree_util.tree_map(jnp.asarray, loaded)
            meta.update(next_step=int(progress_at[0]), seconds=float(progress_at[1]))
    first = meta["next_step"]
    n_points = lambda c: min(engine.chunk_size, engine.total - c * engine.chunk_size)  # noqa: E731
    bar = None
    if progress and writer:
        from tqdm.auto import tqdm

        bar_total = sum(n_points(c) for c in shard_chunks(whole, engine.n_chunks))  # every process's points
        bar = tqdm(total=bar_total, unit="pt", unit_scale=True, desc="sweep", dynamic_ncols=True,
                   initial=min(first * engine.chunk_size * (n_proc if multi else 1), bar_total))

    def save(step):
        meta.update(next_step=step, seconds=meta["seconds"] + time.perf_counter() - t0)
        out = _allgather(state) if multi else state
        if writer:
            _save_checkpoint(ckpt, out, meta)

    engine.prepare_metrics(state["top_points"])  # compiles the top-k metrics while the chunks run
    t0 = time.perf_counter()
    completed = first
    try:
        for step in range(first, steps):
            if step < len(chunks):
                state = engine.step(state, chunks[step])
            completed = done = step + 1
            if bar is not None:
                peers = [shard_chunks((local[0] - pid + p, local[1]), engine.n_chunks) for p in range(n_proc)] \
                    if multi else [chunks]
                bar.update(sum(n_points(c[step]) for c in peers if step < len(c)))
            if ckpt and (done % checkpoint_every == 0) and done < steps:
                save(done)
                t0 = time.perf_counter()
            if callback is not None:
                callback(done, steps)
        jax.block_until_ready(state)
    except BaseException:
        if ckpt and not multi:  # keep everything computed so far: `state` holds exactly the chunks before `completed`
            jax.block_until_ready(state)
            save(completed)
        raise
    finally:
        if bar is not None:
            bar.close()
    seconds = meta["seconds"] + time.perf_counter() - t0
    if ckpt:
        save(steps)
    compile_s = _compile_clock() - clock0
    result = _result(engine, space, state, local, seconds, compile_s)
    if multi:
        gathered = _allgather(_result_arrays(result))
        parts = [_result_from_arrays(result, jax.tree_util.tree_map(lambda x: x[p], gathered),
                                     (local[0] - pid + p, local[1])) for p in range(n_proc)]
        result = merge(parts)
    return result


def _stack(trees):
    return jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees)


def _settings(engine, space) -> dict:
    key = engine.key
    return {
        "fingerprint": space.fingerprint(), "n_samples": engine.n_samples, "chunk_size": engine.chunk_size,
        "n_chunks": engine.n_chunks, "total": engine.total, "top_k": engine.top_k,
        "objective": engine.objective_name, "pareto": list(engine.pareto_names),
        "pareto_capacity": engine.pareto_capacity,
        "histograms": {k: list(map(float, v)) for k, v in engine.histograms.items()},
        "key": None if key is None else np.asarray(jax.random.key_data(key)).tolist(),
    }


def _result(engine, space, state, shard, seconds, compile_s) -> SweepResult:
    host = jax.device_get(state)
    # metrics of the top-k are re-evaluated once here rather than carried through every chunk (same values: the
    # model is deterministic), which lets XLA drop every metric the reductions do not need
    top_metrics = jax.device_get(engine.evaluate_points(state["top_points"]))
    pareto_points = pareto_obj = pareto_index = None
    if engine.pareto:
        keep = np.all(np.isfinite(host["pareto_obj"]), axis=-1)
        pareto_obj = host["pareto_obj"][keep]
        pareto_points = {n: v[keep] for n, v in host["pareto_points"].items()}
        pareto_index = _global(host["pareto_index"], engine.chunk_size)[keep]
    n_eval = sum(min(engine.chunk_size, engine.total - c * engine.chunk_size)
                 for c in shard_chunks(shard, engine.n_chunks))
    return SweepResult(
        space=space, top_points=host["top_points"], top_objective=host["top_obj"], top_metrics=top_metrics,
        pareto_points=pareto_points, pareto_objectives=pareto_obj, histograms=host["hist"],
        n_evaluated=n_eval, n_feasible=int(host["n_feasible"][0]) * 2**30 + int(host["n_feasible"][1]),
        seconds=seconds, objective_name=engine.objective_name, pareto_names=engine.pareto_names,
        top_index=_global(host["top_index"], engine.chunk_size), pareto_index=pareto_index,
        compile_seconds=min(compile_s, seconds), settings=_settings(engine, space), shards=[tuple(shard)],
    )


def _result_arrays(r: SweepResult) -> dict:
    """The arrays of a result in fixed shapes (for a cross-process gather): the front padded to its capacity."""
    cap = r.settings["pareto_capacity"]
    out = {"top_points": r.top_points, "top_objective": r.top_objective, "top_metrics": r.top_metrics,
           "top_index": r.top_index, "histograms": r.histograms,
           "counts": np.asarray([r.n_evaluated, r.n_feasible], np.int64),
           "seconds": np.asarray([r.seconds, r.compile_seconds])}
    if r.pareto_objectives is not None:
        n = len(r.pareto_objectives)
        pad = lambda x, fill: np.concatenate([x, np.full((cap - n,) + x.shape[1:], fill, x.dtype)])  # noqa: E731
        out["pareto_objectives"] = pad(r.pareto_objectives, np.inf)
        out["pareto_points"] = {k: pad(v, 0) for k, v in r.pareto_points.items()}
        out["pareto_index"] = pad(r.pareto_index, -1)
    return out


def _result_from_arrays(template: SweepResult, a: dict, shard) -> SweepResult:
    pareto = {}
    if "pareto_objectives" in a:
        keep = np.all(np.isfinite(a["pareto_objectives"]), axis=-1)
        pareto = dict(pareto_objectives=a["pareto_objectives"][keep], pareto_index=a["pareto_index"][keep],
                      pareto_points={k: v[keep] for k, v in a["pareto_points"].items()})
    return dataclasses.replace(
        template, top_points=a["top_points"], top_objective=a["top_objective"], top_metrics=a["top_metrics"],
        top_index=a["top_index"], histograms=a["histograms"], n_evaluated=int(a["counts"][0]),
        n_feasible=int(a["counts"][1]), seconds=float(a["seconds"][0]), compile_seconds=float(a["seconds"][1]),
        shards=[tuple(shard)], **pareto)


from ._merge import merge  # noqa: E402 (merge works on SweepResult)
