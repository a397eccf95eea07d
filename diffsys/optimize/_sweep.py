"""The sweep engine: evaluate a model over a whole design space (grid or random samples) in fixed-shape chunks.

Each chunk runs inside one ``jit``: grid indices are decoded to design points on the device, the model is
``vmap``-ed over them, infeasible points are masked, and the chunk is *reduced* into a running state — the top-k
by objective, a Pareto archive over 2–3 objectives, and histograms — so a 10⁸-point sweep never materializes its
results. Every chunk has the same shape, so the function compiles once (a test asserts the second chunk does not
retrace). Chunks are sharded over ``jax.devices()`` when there are several. The state is checkpointed every
``checkpoint_every`` chunks (and on interruption); ``resume=True`` continues from the checkpoint and gives the same
result as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

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
    """What a sweep found. Arrays are NumPy; points are dicts from parameter name to values."""

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

    @property
    def evals_per_s(self) -> float:
        return self.n_evaluated / self.seconds if self.seconds > 0 else float("nan")

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
        order = np.argsort(self.pareto_objectives[:, 0])
        rows = []
        for i in order:
            row = self.space.label({k: v[i] for k, v in self.pareto_points.items()})
            row.update({n: float(x) for n, x in zip(self.pareto_names, self.pareto_objectives[i])})
            rows.append(row)
        return rows


def _scalar_metrics(metrics) -> dict:
    """The per-point scalar fields of a batched :class:`~diffsys.Metrics`."""
    return {k: np.asarray(v) for k, v in metrics.as_dict().items() if np.ndim(v) == 1}


def _histogram_counts(values, valid, lo, hi, bins):
    pos = (values - lo) / (hi - lo) * bins
    idx = jnp.clip(jnp.floor(pos), -1, bins).astype(jnp.int32) + 1  # 0 = underflow, bins+1 = overflow
    idx = jnp.where(jnp.isfinite(values), idx, bins + 1)
    return jnp.zeros(bins + 2, jnp.int32).at[idx].add(valid.astype(jnp.int32))


class _Engine:
    """Builds the jitted chunk step once per (model, space, settings)."""

    def __init__(self, model, space, objective, feasible, top_k, pareto, pareto_capacity, histograms, chunk_size,
                 n_samples, key, devices):
        self.model, self.space = model, space
        # the one metric code path: the model's Metrics type, and every name checked against it before compiling
        self.metrics_type = output_type(model, space)
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
            # feasible count as two int32 words (hi·2³⁰ + lo): exact far beyond 2³¹ points
            "n_feasible": jnp.zeros((2,), jnp.int32),
        }
        if self.pareto:
            p = self.pareto_capacity
            state["pareto_obj"] = jnp.full((p, len(self.pareto)), jnp.inf, jnp.float32)
            state["pareto_points"] = {n: jnp.zeros((p,), jnp.float32) for n in self.space.names}
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
        return self._reduce_stage(state, points, valid, *self._evaluate_stage(points))

    def _reduce_stage(self, state, points, valid, obj, ok, extra, hist):
        self.trace_count += 1
        ok = ok & valid
        obj = jnp.where(ok, obj, jnp.inf)
        new = dict(state)
        # top-k by objective (ties: earlier chunk first, as top_k is stable over the concatenation)
        cat_obj = jnp.concatenate([state["top_obj"], obj])
        _, idx = jax.lax.top_k(-cat_obj, self.top_k)
        cat = lambda a, b: jnp.concatenate([a, b.astype(a.dtype)])[idx]  # noqa: E731
        new["top_obj"] = cat_obj[idx]
        new["top_points"] = jax.tree_util.tree_map(cat, state["top_points"], points)
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
        new["hist"] = {n: state["hist"][n] + _histogram_counts(hist[n], ok, lo, hi, int(b))
                       for n, (lo, hi, b) in self.histograms.items()}
        return new

    def evaluate_points(self, points):
        """Metrics of a batch of points (the top-k at the end of a sweep)."""
        if self._metrics_fn is None:
            self._metrics_fn = jax.jit(jax.vmap(self._metrics))
        return self._metrics_fn(points)

    def step(self, state, chunk):
        start = chunk * self.chunk_size
        digits = self.space.digits(start) if self.n_samples is None else np.zeros(self.space.ndim, np.int32)
        points, valid = self._decode(jnp.int32(chunk), jnp.asarray(digits))
        return self._reduce(state, points, valid, *self._eval(points))


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


def _load_checkpoint(path, template):
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        leaves, treedef = jax.tree_util.tree_flatten(template)
        loaded = [jnp.asarray(data[f"leaf{i}"], dtype=t.dtype) for i, t in enumerate(leaves)]
    for i, (a, b) in enumerate(zip(loaded, leaves)):
        if a.shape != b.shape:
            raise ValueError(f"checkpoint {path}: state leaf {i} has shape {a.shape}, expected {b.shape}")
    return jax.tree_util.tree_unflatten(treedef, loaded), meta


def sweep(model, space: DesignSpace | None = None, objective=None, *, feasible=_FROM_PROBLEM, n_samples=None,
          key=None, top_k=10, pareto=None, pareto_capacity=256, histograms=None, chunk_size=65536, checkpoint=None,
          checkpoint_every=10, resume=False, progress=True, callback=None, devices=None) -> SweepResult:
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
        checkpoint: path of an ``.npz`` checkpoint written every ``checkpoint_every`` chunks and on interruption.
        resume: continue from ``checkpoint`` if it exists (it must come from the same space and settings).
        progress: show a progress bar.
        callback: ``callback(chunks_done, n_chunks)`` after each chunk (may raise to stop; the checkpoint is saved).
        devices: devices to shard chunks over (default ``jax.devices()``).

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
    engine = _engine_for(model, space, objective, feasible, top_k, pareto, pareto_capacity, histograms, chunk_size,
                         n_samples, key, devices)
    meta = {
        "fingerprint": space.fingerprint(),
        "n_samples": n_samples,
        "chunk_size": engine.chunk_size,
        "top_k": engine.top_k,
        "pareto": list(engine.pareto_names),
        "histograms": {k: list(map(float, v)) for k, v in engine.histograms.items()},
        "key": None if key is None else np.asarray(jax.random.key_data(key)).tolist(),
        "next_chunk": 0,
        "seconds": 0.0,
    }
    state = engine.init_state()
    if resume and checkpoint and os.path.exists(checkpoint):
        state, saved = _load_checkpoint(checkpoint, state)
        for field in ("fingerprint", "n_samples", "chunk_size", "top_k", "pareto", "histograms", "key"):
            if saved.get(field) != meta[field]:
                raise ValueError(f"checkpoint {checkpoint} was written with a different {field} "
                                 f"({saved.get(field)!r} vs {meta[field]!r}); remove it or resume=False")
        meta.update(next_chunk=saved["next_chunk"], seconds=saved["seconds"])
    first = meta["next_chunk"]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=engine.total, initial=min(first * engine.chunk_size, engine.total), unit="pt",
                   unit_scale=True, desc="sweep", dynamic_ncols=True)
    t0 = time.perf_counter()
    completed = first
    try:
        for chunk in range(first, engine.n_chunks):
            state = engine.step(state, chunk)
            completed = done = chunk + 1
            if bar is not None:
                bar.update(min(engine.chunk_size, engine.total - chunk * engine.chunk_size))
            if checkpoint and (done % checkpoint_every == 0) and done < engine.n_chunks:
                meta.update(next_chunk=done, seconds=meta["seconds"] + time.perf_counter() - t0)
                t0 = time.perf_counter()
                _save_checkpoint(checkpoint, state, meta)
            if callback is not None:
                callback(done, engine.n_chunks)
        jax.block_until_ready(state)
    except BaseException:
        if checkpoint:  # keep everything computed so far: `state` holds exactly the chunks before `completed`
            jax.block_until_ready(state)
            meta.update(next_chunk=completed, seconds=meta["seconds"] + time.perf_counter() - t0)
            _save_checkpoint(checkpoint, state, meta)
        raise
    finally:
        if bar is not None:
            bar.close()
    seconds = meta["seconds"] + time.perf_counter() - t0
    if checkpoint:
        meta.update(next_chunk=engine.n_chunks, seconds=seconds)
        _save_checkpoint(checkpoint, state, meta)
    host = jax.device_get(state)
    # metrics of the top-k are re-evaluated once here rather than carried through every chunk (same values: the
    # model is deterministic), which lets XLA drop every metric the reductions do not need
    top_metrics = jax.device_get(engine.evaluate_points(state["top_points"]))
    pareto_points = pareto_obj = None
    if engine.pareto:
        keep = np.all(np.isfinite(host["pareto_obj"]), axis=-1)
        pareto_obj = host["pareto_obj"][keep]
        pareto_points = {n: v[keep] for n, v in host["pareto_points"].items()}
    return SweepResult(
        space=space, top_points=host["top_points"], top_objective=host["top_obj"], top_metrics=top_metrics,
        pareto_points=pareto_points, pareto_objectives=pareto_obj, histograms=host["hist"],
        n_evaluated=engine.total, n_feasible=int(host["n_feasible"][0]) * 2**30 + int(host["n_feasible"][1]), seconds=seconds,
        objective_name=engine.objective_name, pareto_names=engine.pareto_names,
    )

