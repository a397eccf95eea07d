"""Exact (globally optimal, with a proven bound) search over the grid of a mixed discrete design space.

A diffsys problem is an arbitrary JAX function over a finite lattice (every discrete domain's values; every
continuous domain's grid), so an *exact* optimum is a statement about that grid, and a proof needs either every point
or a valid lower bound on every part of the grid that was not evaluated. :func:`exact_search` offers three:

- ``solver="enumerate"``: every grid point, evaluated exactly (temperature 0) in ``jax.vmap`` chunks of
  ``chunk_size`` points. The proof is exhaustion: the bound equals the optimum (gap 0).
- ``solver="bnb"``: best-first branch-and-bound over boxes of lattice indices. A box's lower bound is the interval
  enclosure of the problem's objective over the box (:mod:`diffsys.optimize._exact_interval`; Moore, Kearfott &
  Cloud, SIAM 2009), computed for a batch of boxes in one ``vmap``; a box whose feasibility enclosure is certainly
  ``False`` is infeasible everywhere. Boxes whose bound cannot beat the incumbent are pruned, the others are
  bisected along their widest coordinate (Land & Doig, Econometrica 1960) until they hold at most ``leaf_size``
  points, which are enumerated exactly. Valid for any JAX model: where no interval rule applies the enclosure is
  trivial, so the method degrades to enumeration instead of losing the proof.
- ``solver="scip"``: a mixed-integer program built from tabulated terms of the model, solved by SCIP
  (:mod:`diffsys.optimize._exact_mip`); exact when the objective and constraints decompose into terms over few
  parameters (otherwise it refuses, naming the term).

``solver="auto"`` enumerates spaces of at most ``enumerate_limit`` (10⁷) points — at 10⁵–10⁶ exact evaluations
per second exhaustion is the fastest proof there — and runs branch-and-bound above.
Every returned design is re-evaluated by the exact model; the bound is rounded down by ``rtol`` (relative) before any
pruning so that floating-point rounding of the enclosures cannot prune the optimum.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..space import Continuous, DesignSpace
from ._exact_interval import interval_function
from ._objective import RESULTS, NoFeasiblePointError, SearchResult, as_problem, cached, infeasible_message

SOLVERS = ("auto", "enumerate", "bnb", "scip")
ENUMERATE_LIMIT = 10_000_000


class ExactResult(NamedTuple):
    """A proven optimum (or, on a limit, the incumbent and its bound).

    The first nine fields are those of :class:`~diffsys.optimize.SearchResult`. ``bound`` is a proven lower bound
    on the grid optimum (equal to ``objective`` when ``gap == 0``); ``gap`` is ``(objective - bound) / |objective|``;
    ``solver`` is ``"enumerate"``, ``"bnb"`` or ``"scip"``; ``proof`` says what the bound rests on; ``nodes``
    counts bounded boxes (branch-and-bound) or SCIP nodes; ``pruned_points`` the grid points never evaluated;
    ``time_to_incumbent_s`` when the final design was first found (``seconds`` is the time to the proof).
    """

    method: str
    point: dict
    objective: float
    feasible: bool
    evaluations: int
    seconds: float
    status: int = RESULTS.successful
    trajectory: Any = None
    violation: float = 0.0
    bound: float = math.nan
    gap: float = math.nan
    solver: str = ""
    proof: str = ""
    nodes: int = 0
    pruned_points: int = 0
    time_to_incumbent_s: float = math.nan

    @property
    def optimal(self) -> bool:
        return bool(self.feasible) and self.gap == 0.0

    label = SearchResult.label

    def summary(self) -> dict:
        """JSON-friendly: the :meth:`SearchResult.summary` keys plus ``bound``, ``gap_percent_proven``,
        ``solver``, ``proof``, ``nodes``, ``pruned_points`` and ``time_to_incumbent_s``."""
        return {**SearchResult.summary(self), "bound": float(self.bound), "gap_percent_proven": 100.0 * float(self.gap),
                "solver": self.solver, "proof": self.proof, "nodes": int(self.nodes),
                "pruned_points": int(self.pruned_points), "time_to_incumbent_s": float(self.time_to_incumbent_s)}


# == the grid as index tables ======================================================================================
def grid_tables(space: DesignSpace) -> np.ndarray:
    """``(ndim, max_size)`` float table of every parameter's sorted grid values (padded with the last value) — the
    same values :meth:`DesignSpace.decode` produces."""
    rows = []
    for d in space.params.values():
        vals = d.grid_values() if isinstance(d, Continuous) else np.asarray(d.values, float)
        rows.append(np.asarray(vals, float))
    width = max(len(r) for r in rows)
    return np.stack([np.concatenate([r, np.full(width - len(r), r[-1])]) for r in rows])


def _point_from_digits(space, tables, digits):
    return {n: tables[i][digits[..., i]] for i, n in enumerate(space.names)}


def _digits(flat, radices):
    """Mixed-radix digits (last fastest) of int32 ``flat`` for per-row ``radices`` (``(..., ndim)``)."""
    out = []
    for i in range(radices.shape[-1] - 1, -1, -1):
        out.append(flat % radices[..., i])
        flat = flat // radices[..., i]
    return jnp.stack(out[::-1], axis=-1)


def _rank(ev):
    return jnp.where(ev.feasible & jnp.isfinite(ev.objective), ev.objective, jnp.inf)


# == compiled kernels (memoized per problem) =======================================================================
def _chunk_kernel(problem, chunk):
    space = problem.space
    tables = jnp.asarray(grid_tables(space), float)
    radices = jnp.asarray(space.radices, jnp.int32)
    size = space.size

    @jax.jit
    def run(start):
        flat = start + jnp.arange(chunk, dtype=jnp.int32)
        valid = flat < size
        digits = _digits(jnp.where(valid, flat, 0), radices)
        ev = jax.vmap(problem.evaluate)(_point_from_digits(space, tables, digits))
        r = jnp.where(valid, _rank(ev), jnp.inf)
        i = jnp.argmin(r)
        return r[i], digits[i], jnp.sum(valid & jnp.isfinite(r))

    return run


def _leaf_kernel(problem, leaf_size):
    """Best exact point of each box of a batch: ``(a, b)`` are ``(L, ndim)`` inclusive index bounds."""
    space = problem.space
    tables = jnp.asarray(grid_tables(space), float)

    def one(a, b):
        sizes = b - a + 1
        off = jnp.arange(leaf_size, dtype=jnp.int32)
        valid = off < jnp.prod(sizes)
        digits = a + _digits(jnp.where(valid, off, 0), sizes)
        ev = jax.vmap(problem.evaluate)(_point_from_digits(space, tables, digits))
        r = jnp.where(valid, _rank(ev), jnp.inf)
        i = jnp.argmin(r)
        return r[i], digits[i]

    return jax.jit(jax.vmap(one))


def box_bound_function(problem):
    """``bound(lo, hi) -> (objective_lo, feasible_hi)``: an interval enclosure of the problem's objective and
    feasibility over the box ``lo <= x <= hi`` of parameter values (vectors ordered as ``space.names``)."""
    space = problem.space
    names = space.names

    def fn(*xs):
        ev = problem.evaluate(dict(zip(names, xs)))
        return ev.objective, ev.feasible

    example = [jnp.asarray(float(d.lower), jnp.result_type(float)) for d in space.params.values()]
    g = interval_function(fn, example)

    def bound(lo, hi):
        (obj_lo, _), (_, feas_hi) = g(list(lo), list(hi))
        return obj_lo, feas_hi

    return bound


def _bound_kernel(problem):
    tables = jnp.asarray(grid_tables(problem.space), float)
    bound = box_bound_function(problem)
    rows = jnp.arange(tables.shape[0])

    def one(a, b):
        obj_lo, feas_hi = bound(tables[rows, a], tables[rows, b])
        return jnp.where(feas_hi, obj_lo, jnp.inf)

    return jax.jit(jax.vmap(one))


def refine_continuous(problem, grid: int):
    """``problem`` on a space whose continuous domains have ``grid`` values each (memoized per problem, so repeated
    searches reuse the compiled kernels)."""
    if grid < 2:
        raise ValueError(f"exact_search: continuous_grid must be >= 2, got {grid}")

    def build():
        sp = problem.space
        params = {n: (Continuous(d.lo, d.hi, log=d.log, grid=grid) if isinstance(d, Continuous) else d)
                  for n, d in sp.params.items()}
        return dataclasses.replace(problem, space=DesignSpace(params, base=sp.base, constraints=sp.constraints),
                                   name=f"{problem.name}[continuous_grid={grid}]")

    return cached(("exact_refined", problem, grid), build)


# == solvers =======================================================================================================
def _safe(lb, rtol):
    """The bound rounded down by ``rtol`` (relative): the value pruning compares with the incumbent."""
    lb = np.asarray(lb, float)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(lb), lb - rtol * np.abs(lb), lb)


def _enumerate(problem, chunk_size, time_limit_s, start):
    space = problem.space
    if space.size >= 2**31:
        raise ValueError(f"exact_search(solver='enumerate'): the space has {space.size:,} points (>= 2^31); use "
                         "solver='bnb'")
    chunk = int(min(chunk_size, space.size))
    run = cached(("exact_chunk", problem, chunk), lambda: _chunk_kernel(problem, chunk))
    best, best_digits, t_inc, done, feasible = math.inf, None, math.nan, 0, 0
    for s in range(0, space.size, chunk):
        r, dg, nf = run(jnp.int32(s))
        done, feasible = s + chunk, feasible + int(nf)
        if float(r) < best:
            best, best_digits, t_inc = float(r), np.asarray(dg), time.perf_counter() - start
        if time_limit_s is not None and time.perf_counter() - start > time_limit_s and done < space.size:
            return best, best_digits, t_inc, min(done, space.size), -math.inf, 0, "time_limit"
    return best, best_digits, t_inc, space.size, best, 0, f"exhaustion ({space.size:,} points, {feasible:,} feasible)"


def _bnb(problem, leaf_size, batch, leaf_batch, rtol, time_limit_s, max_nodes, start, key, n_init):
    space = problem.space
    radices = np.asarray(space.radices, np.int64)
    bound_k = cached(("exact_bound", problem), lambda: _bound_kernel(problem))
    leaf_k = cached(("exact_leaf", problem, int(leaf_size)), lambda: _leaf_kernel(problem, int(leaf_size)))
    best, best_digits, t_inc = math.inf, None, math.nan
    evaluations = 0

    def enumerate_leaves(a, b):
        nonlocal best, best_digits, t_inc, evaluations
        for s in range(0, len(a), leaf_batch):
            aa, bb = _pad(a[s:s + leaf_batch], leaf_batch), _pad(b[s:s + leaf_batch], leaf_batch)
            r, dg = leaf_k(jnp.asarray(aa, jnp.int32), jnp.asarray(bb, jnp.int32))
            r, dg = np.asarray(r), np.asarray(dg)
            evaluations += int(np.prod(b[s:s + leaf_batch] - a[s:s + leaf_batch] + 1, axis=1).sum())
            i = int(np.argmin(r))
            if r[i] < best:
                best, best_digits, t_inc = float(r[i]), dg[i], time.perf_counter() - start

    def bounds(a, b):
        out = []
        step = 2 * batch
        for s in range(0, len(a), step):
            lb = bound_k(jnp.asarray(_pad(a[s:s + step], step), jnp.int32),
                         jnp.asarray(_pad(b[s:s + step], step), jnp.int32))
            out.append(np.asarray(lb, float)[: len(a[s:s + step])])
        return np.concatenate(out) if out else np.zeros(0)

    # an initial incumbent: the best of n_init random grid points (enumerated as single-point boxes)
    if n_init:
        flat = np.asarray(jax.random.randint(key, (int(n_init),), 0, min(space.size, 2**31 - 1)))
        pts = np.stack([np.asarray(space.digits(int(f))) for f in flat]).astype(np.int64)
        enumerate_leaves(pts, pts)
    a0 = np.zeros((1, space.ndim), np.int64)
    b0 = (radices - 1)[None]
    open_a, open_b, open_lb = a0, b0, bounds(a0, b0)
    nodes, pruned, pruned_lb, leaf_lb, status = 1, 0, math.inf, math.inf, None
    while len(open_lb):
        keep = _safe(open_lb, rtol) < best
        if not keep.all():
            pruned += int(np.prod(open_b[~keep] - open_a[~keep] + 1, axis=1).sum())
            pruned_lb = min(pruned_lb, float(_safe(open_lb[~keep], rtol).min()))
            open_a, open_b, open_lb = open_a[keep], open_b[keep], open_lb[keep]
            if not len(open_lb):
                break
        if (time_limit_s is not None and time.perf_counter() - start > time_limit_s) or \
                (max_nodes is not None and nodes >= max_nodes):
            status = "time_limit" if max_nodes is None or nodes < max_nodes else "node_limit"
            break
        k = min(batch, len(open_lb))
        sel = np.argpartition(open_lb, k - 1)[:k] if k < len(open_lb) else np.arange(len(open_lb))
        rest = np.ones(len(open_lb), bool)
        rest[sel] = False
        a, b = open_a[sel], open_b[sel]
        widths = b - a
        axis = np.argmax(widths, axis=1)
        mid = (a[np.arange(k), axis] + b[np.arange(k), axis]) // 2
        left_b, right_a = b.copy(), a.copy()
        left_b[np.arange(k), axis] = mid
        right_a[np.arange(k), axis] = mid + 1
        ca, cb = np.concatenate([a, right_a]), np.concatenate([left_b, b])
        clb = bounds(ca, cb)
        nodes += len(clb)
        ok = _safe(clb, rtol) < best
        size = np.prod(cb - ca + 1, axis=1)
        if not ok.all():
            pruned += int(size[~ok].sum())
            pruned_lb = min(pruned_lb, float(_safe(clb[~ok], rtol).min()))
        leaf = ok & (size <= leaf_size)
        if leaf.any():  # enclosures of the enumerated boxes, over their whole continuous extent
            leaf_lb = min(leaf_lb, float(_safe(clb[leaf], rtol).min()))
        enumerate_leaves(ca[leaf], cb[leaf])
        grow = ok & ~leaf
        open_a = np.concatenate([open_a[rest], ca[grow]])
        open_b = np.concatenate([open_b[rest], cb[grow]])
        open_lb = np.concatenate([open_lb[rest], clb[grow]])
    if status is None:
        bound = min(best, pruned_lb)
        proof = (f"branch-and-bound: {nodes:,} boxes bounded by interval enclosures, {pruned:,} of "
                 f"{space.size:,} points pruned, {evaluations:,} evaluated")
    else:
        rem = _safe(open_lb, rtol).min() if len(open_lb) else math.inf
        bound = min(best, pruned_lb, float(rem))
        proof = f"branch-and-bound stopped ({status}); bound = least open box bound"
    # a lower bound on the problem with its continuous parameters free between grid values: the boxes of the
    # final partition (pruned or enumerated) were bounded over their whole value ranges
    continuous_bound = min(pruned_lb, leaf_lb, float(_safe(open_lb, rtol).min()) if len(open_lb) else math.inf)
    return best, best_digits, t_inc, evaluations, bound, nodes, proof, pruned, status, continuous_bound


def _pad(x, n):
    if len(x) == n:
        return x
    if len(x) == 0:
        return np.zeros((n,) + x.shape[1:], x.dtype)
    return np.concatenate([x, np.repeat(x[:1], n - len(x), 0)])


def exact_search(problem, space=None, *, solver: str = "auto", key=None, rtol: float = 1e-4,
                 time_limit_s: float | None = None, max_nodes: int | None = None,
                 enumerate_limit: int = ENUMERATE_LIMIT, chunk_size: int = 65536, leaf_size: int = 64,
                 batch: int = 128, leaf_batch: int = 1024, n_init: int = 1024, raise_on_infeasible: bool = True,
                 scip_options: dict | None = None, continuous_grid: int | None = None,
                 **problem_kwargs) -> ExactResult:
    """The global optimum of ``problem`` over its space's grid, with a proven lower bound (module docstring).

    Args:
        problem: a :class:`Problem`, or a protocol model ``model(spec, *, temperature=0.0) -> Metrics`` with
            ``space`` and the Problem's keywords (``objective="edp_Js"``, ``feasible=...``).
        solver: ``"auto"`` (enumeration up to ``enumerate_limit`` points, branch-and-bound above), ``"enumerate"``,
            ``"bnb"`` or ``"scip"``.
        key: PRNG key for the branch-and-bound's initial random incumbent (default ``key(0)``).
        rtol: relative rounding allowance subtracted from every bound before pruning (float32 enclosures).
        time_limit_s, max_nodes: stop early; the result then carries the incumbent, the least open bound and
            ``status == RESULTS.max_steps``.
        chunk_size: points per compiled chunk (enumeration). leaf_size, batch, leaf_batch: branch-and-bound box
            size enumerated exactly, boxes split per step, leaves per compiled call.
        scip_options: keywords for :func:`diffsys.optimize.solve_exact_mip` (``solver="scip"``).
        continuous_grid: solve on a refined grid: every :class:`~diffsys.space.Continuous` domain gets this many
            grid values (ends kept) instead of its own ``grid``.

    Exactness is with respect to the grid (the same grid :func:`sweep` enumerates). Branch-and-bound also reports
    ``trajectory["continuous_bound"]``: a lower bound on the problem with the continuous parameters free anywhere in
    their intervals (every box of its final partition is bounded over its whole value range), so
    ``objective - continuous_bound`` bounds what searching the continuous parameters off the grid can gain.

    Returns:
        :class:`ExactResult` (a :class:`SearchResult` plus ``bound``, ``gap``, ``solver``, ``proof``, ...).
    """
    problem = as_problem(problem, space, **problem_kwargs)
    if continuous_grid is not None:
        problem = refine_continuous(problem, int(continuous_grid))
    space = problem.space
    if solver not in SOLVERS:
        raise ValueError(f"exact_search: solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    for name, v, lo in (("rtol", rtol, 0.0), ("chunk_size", chunk_size, 1), ("leaf_size", leaf_size, 1),
                        ("batch", batch, 1), ("leaf_batch", leaf_batch, 1)):
        if not (v >= lo) or (name == "rtol" and v >= 1):
            raise ValueError(f"exact_search: {name} must be {'in [0, 1)' if name == 'rtol' else '>= 1'}, got {v}")
    if solver == "auto":
        solver = "enumerate" if space.size <= enumerate_limit else "bnb"
    start = time.perf_counter()
    if solver == "scip":
        from ._exact_mip import solve_exact_mip

        return solve_exact_mip(problem, time_limit_s=time_limit_s, raise_on_infeasible=raise_on_infeasible,
                               **(scip_options or {}))
    nodes = pruned = 0
    limit, cont = None, None
    if solver == "enumerate":
        best, digits, t_inc, evaluations, bound, nodes, proof = _enumerate(problem, chunk_size, time_limit_s, start)
        if proof == "time_limit":
            limit, proof, bound = "time_limit", "enumeration stopped (time limit); no bound", -math.inf
    else:
        key = jax.random.key(0) if key is None else key
        best, digits, t_inc, evaluations, bound, nodes, proof, pruned, limit, cont = _bnb(
            problem, int(leaf_size), int(batch), int(leaf_batch), float(rtol), time_limit_s, max_nodes, start, key,
            int(n_init))
    seconds = time.perf_counter() - start
    if digits is None or not math.isfinite(best):
        if raise_on_infeasible and limit is None:
            raise NoFeasiblePointError(infeasible_message(f"exact_search[{solver}]", problem,
                                                          space.grid_point(0), evaluations))
        point = {n: float(v) for n, v in zip(space.names, np.asarray(grid_tables(space))[:, 0])}
        ev = problem.evaluate({k: jnp.asarray(v) for k, v in point.items()})
        status = RESULTS.infeasible if limit is None else RESULTS.max_steps
        return ExactResult(f"exact[{solver}]", point, float(ev.objective), False, evaluations, seconds, status,
                           None, float(ev.violation), bound, math.nan, solver, proof, nodes, pruned, t_inc)
    tables = grid_tables(space)
    point = {n: float(tables[i, int(digits[i])]) for i, n in enumerate(space.names)}
    ev = jax.jit(problem.evaluate)({k: jnp.asarray(v, jnp.result_type(float)) for k, v in point.items()})
    obj = float(ev.objective)
    bound = min(float(bound), obj)
    gap = 0.0 if bound >= obj else (obj - bound) / max(abs(obj), 1e-300)
    gap = 0.0 if limit is None and gap <= rtol else gap
    status = RESULTS.successful if limit is None else RESULTS.max_steps
    traj = None
    if cont is not None and any(isinstance(d, Continuous) for d in space.params.values()):
        traj = {"continuous_bound": min(cont, obj)}
    return ExactResult(f"exact[{solver}]", point, obj, bool(ev.feasible), evaluations, seconds, status, traj,
                       float(ev.violation), obj if gap == 0.0 else bound, gap, solver, proof, nodes, pruned, t_inc)
