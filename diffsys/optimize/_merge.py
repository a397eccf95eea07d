"""Exact merge of sweep results over disjoint shards of one space.

Shards (``sweep(..., shard=(i, n))``) are blocks of whole chunks, so every reduction of the sweep is mergeable:

- **top-k**: the single run keeps the ``k`` smallest objectives, ties going to the earlier point (``lax.top_k`` is
  stable over the state-then-chunk concatenation). Each kept point carries its global position, so the merge sorts
  the shards' top-k lexicographically by (objective, position) and takes the first ``k`` — the same points in the
  same order as the single run.
- **Pareto front**: the exact front of the union of the shards' fronts (:func:`~diffsys.optimize.pareto_front`,
  duplicates resolved to the earliest position, as in the single run). A point dominated within its shard is
  dominated in the whole space, so the union's front is the whole front. Exact whenever the front fits in
  ``pareto_capacity``; beyond that both the single run and the merge thin it evenly, and may keep different points.
- **histograms** and **counts** add.

``seconds``/``compile_seconds`` of a merge are sums (total work), not the wall time of shards run in parallel.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

_MUST_MATCH = ("fingerprint", "n_samples", "chunk_size", "top_k", "objective", "pareto", "pareto_capacity",
               "histograms", "key")


def _chunk_set(result) -> set:
    from ._sweep import shard_chunks

    n_chunks = int(result.settings["n_chunks"])
    return {c for s in result.shards for c in shard_chunks(s, n_chunks)}


def merge(results):
    """Merge sweep results of disjoint shards of one space (same model, space, settings and seed) into one
    :class:`~diffsys.optimize.SweepResult`; merging all ``n`` shards of ``sweep(..., shard=(i, n))`` gives the
    top-k, front, histograms and counts of the single run. Raises ``ValueError`` for results of different spaces or
    settings, or overlapping shards."""
    from ._pareto import pareto_front

    results = list(results)
    if not results:
        raise ValueError("merge needs at least one sweep result")
    first = results[0]
    for r in results[1:]:
        for field in _MUST_MATCH:
            if r.settings.get(field) != first.settings.get(field):
                raise ValueError(f"cannot merge sweep results with a different {field} "
                                 f"({first.settings.get(field)!r} vs {r.settings.get(field)!r})")
    seen: set = set()
    for r in results:
        chunks = _chunk_set(r)
        if seen & chunks:
            raise ValueError(f"cannot merge overlapping shards: {r.shards} repeats chunks already merged")
        seen |= chunks
    if len(results) == 1:
        return first
    cat = lambda *xs: np.concatenate([np.asarray(x) for x in xs])  # noqa: E731
    k = int(first.settings["top_k"])
    obj = cat(*(r.top_objective for r in results))
    index = cat(*(r.top_index for r in results))
    # empty slots (inf objective) last; ties by global position, as the single run's stable top_k
    order = np.lexsort((np.where(index < 0, np.iinfo(np.int64).max, index), obj))[:k]
    top_points = {n: cat(*(r.top_points[n] for r in results))[order] for n in first.top_points}
    top_metrics = jax.tree_util.tree_map(lambda *xs: cat(*xs)[order], *(r.top_metrics for r in results))
    pareto = {}
    if first.pareto_objectives is not None:
        p_index = cat(*(r.pareto_index for r in results))
        by_pos = np.argsort(p_index, kind="stable")  # earliest first: duplicates resolve as in the single run
        vals = cat(*(r.pareto_objectives for r in results))[by_pos]
        if len(vals):
            sel, ok = (np.asarray(x) for x in pareto_front(vals, int(first.settings["pareto_capacity"])))
            take = by_pos[sel[ok]]
        else:
            take = by_pos
        pareto = dict(pareto_objectives=cat(*(r.pareto_objectives for r in results))[take],
                      pareto_points={n: cat(*(r.pareto_points[n] for r in results))[take]
                                     for n in first.pareto_points},
                      pareto_index=p_index[take])
    hist = {n: sum(np.asarray(r.histograms[n], np.int64) for r in results) for n in first.histograms}
    shards = sorted({tuple(s) for r in results for s in r.shards})
    return dataclasses.replace(
        first, top_points=top_points, top_objective=obj[order], top_metrics=top_metrics, top_index=index[order],
        histograms=hist, n_evaluated=sum(r.n_evaluated for r in results),
        n_feasible=sum(r.n_feasible for r in results), seconds=sum(r.seconds for r in results),
        compile_seconds=sum(r.compile_seconds for r in results), shards=_simplify(shards, first), **pareto)


def _simplify(shards, result) -> list:
    """``[(0, 1)]`` when the shards cover every chunk, else the list."""
    n_chunks = int(result.settings["n_chunks"])
    from ._sweep import shard_chunks

    covered = {c for s in shards for c in shard_chunks(s, n_chunks)}
    return [(0, 1)] if len(covered) == n_chunks else shards


def save_result(result, path: str) -> str:
    """Write a sweep result (or shard) to ``path`` (``.npz``: named arrays plus a JSON header), for
    :func:`load_result` and ``diffsys merge``. The space itself is not stored, its fingerprint is; the top-k
    metrics are stored by name (their per-point scalar fields)."""
    import json

    from .._files import atomic_write
    from ._sweep import _result_arrays, _scalar_metrics

    arrays = dict(_result_arrays(result))
    arrays["top_metrics"] = _scalar_metrics(result.top_metrics)
    flat = {f"{group}/{name}": np.asarray(v) for group, value in arrays.items()
            for name, v in (value.items() if isinstance(value, dict) else [("", value)])}
    header = {"settings": result.settings, "shards": [list(s) for s in result.shards],
              "objective_name": result.objective_name, "pareto_names": list(result.pareto_names),
              "metrics_type": type(result.top_metrics).__name__}
    with atomic_write(path, "sweep result", binary=True) as f:
        np.savez(f, header=np.asarray(json.dumps(header)), **flat)
    return path


def load_result(path: str, space):
    """Read a result written by :func:`save_result`, for the :class:`~diffsys.space.DesignSpace` it was swept over
    (its fingerprint must match). ``top_metrics`` comes back as a dict of arrays."""
    import json

    from ._sweep import SweepResult, _result_from_arrays

    with np.load(path, allow_pickle=False) as data:
        header = json.loads(str(data["header"]))
        arrays: dict = {}
        for key in data.files:
            if key == "header":
                continue
            group, name = key.split("/", 1)
            if name:
                arrays.setdefault(group, {})[name] = np.asarray(data[key])
            else:
                arrays[group] = np.asarray(data[key])
    settings = header["settings"]
    if settings.get("fingerprint") != space.fingerprint():
        raise ValueError(f"{path}: written for a space with fingerprint {settings.get('fingerprint')}, not "
                         f"{space.fingerprint()} (another space definition)")
    arrays.setdefault("top_metrics", {})
    arrays.setdefault("histograms", {})
    template = SweepResult(space=space, top_points={}, top_objective=np.zeros(0), top_metrics={},
                           pareto_points=None, pareto_objectives=None, histograms={}, n_evaluated=0, n_feasible=0,
                           seconds=0.0, objective_name=header["objective_name"],
                           pareto_names=tuple(header["pareto_names"]), settings=settings)
    r = _result_from_arrays(template, arrays, (0, 1))
    return dataclasses.replace(r, shards=[tuple(s) for s in header["shards"]])
