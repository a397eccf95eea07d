"""The interface shared by every search method: a :class:`Problem` and a :class:`SearchResult`.

A *problem* is a model, a :class:`~diffsys.space.DesignSpace`, an objective selector (minimized) and the feasibility
/ violation selectors. Every method (:func:`gradient_search`, :func:`genetic_search`, :func:`cma_es`,
:func:`miqp_search`) takes a problem and returns a :class:`SearchResult` holding the final *exact* design (on the
lattice, evaluated at temperature 0), its objective, feasibility, evaluations used and wall time.

Inside batches nothing raises: candidates carry an :class:`Evaluation` (objective, violation, feasible) and search
loops carry integer :data:`RESULTS` codes. The top-level functions raise :class:`NoFeasiblePointError` (a
``ValueError``) only at the end, when no candidate they evaluated satisfies the constraints (unless
``raise_on_infeasible=False``).
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..space import Categorical, Continuous, DesignSpace
from ._metrics import metric_getter, output_type


class RESULTS:
    """Integer status codes carried by search results (as optimistix does, no exceptions inside a batch)."""

    successful = 0
    infeasible = 1  # no candidate satisfied the constraints
    nonfinite = 2  # the objective was NaN/inf everywhere it was evaluated
    max_steps = 3  # stopped on the iteration/evaluation budget before converging

    names = {0: "successful", 1: "infeasible", 2: "nonfinite", 3: "max_steps"}


class NoFeasiblePointError(ValueError):
    """Raised when a search evaluated no feasible design."""


class Evaluation(NamedTuple):
    """One evaluation of a problem at a point: objective (minimized), total violation (>= 0) and feasibility."""

    objective: jnp.ndarray
    violation: jnp.ndarray
    feasible: jnp.ndarray


class SearchResult(NamedTuple):
    """What a search method returns.

    Attributes:
        method: the method's name.
        point: the final exact design, ``{parameter: float}`` (lattice values; continuous ones within bounds).
        objective: the exact objective at ``point`` (temperature 0, the same number a sweep would report).
        feasible: whether ``point`` satisfies every constraint.
        evaluations: model evaluations used (a value-and-gradient counts as one, a Hessian as ``ndim + 1``).
        seconds: wall time including compilation.
        status: a :class:`RESULTS` code.
        trajectory: per-method history (dict of NumPy arrays), e.g. the relaxed loss of every start per step.
        violation: the total constraint violation at ``point`` (0 when feasible).
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

    def label(self, space: DesignSpace) -> dict:
        """The design as readable values (categorical labels, ints), plus the objective."""
        row = space.label(self.point)
        row["objective"] = self.objective
        return row

    def summary(self) -> dict:
        """A JSON-friendly summary (``best``, ``evaluations``, ``seconds``, ``feasible``, ``point``)."""
        return {"best": float(self.objective), "evaluations": int(self.evaluations), "seconds": float(self.seconds),
                "feasible": bool(self.feasible), "status": RESULTS.names.get(int(self.status), str(self.status)),
                "point": {k: float(v) for k, v in self.point.items()}}


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """A model, its design space and what to minimize.

    Args:
        model: a protocol model ``model(spec, *, temperature=0.0) -> Metrics`` (:class:`diffsys.Metrics`), called
            with ``spec = space.apply(point)``; relaxed searches pass their (annealed) temperature.
        space: the design space (its constraints are part of the problem).
        objective: metric name or ``callable(metrics) -> scalar``; minimized.
        feasible: metric name (default ``"feasible"``, which every ``Metrics`` has), ``callable(metrics) -> bool``,
            or ``None`` (only the space's constraints decide).
        violation: metric name (default ``"violation"``) or ``callable(metrics) -> scalar >= 0``: the smooth
            violation used by penalties and augmented Lagrangians (0 when feasible). ``None`` charges a violation of
            ``1`` to points that are not ``feasible`` (no gradient signal).
        log_objective: optimize ``log(objective)`` in relaxed searches (scale-free; needs a positive objective).
        name: a display name.

    Metric names are checked against the model's :class:`~diffsys.Metrics` type by :meth:`check` (every search
    calls it first): an unknown name raises ``ValueError`` listing the available metrics.
    """

    model: Callable
    space: DesignSpace
    objective: Any = "time_s"
    feasible: Any = "feasible"
    violation: Any = "violation"
    log_objective: bool = True
    name: str = "problem"

    def __post_init__(self):
        if not isinstance(self.space, DesignSpace):
            raise TypeError(f"Problem.space must be a DesignSpace, got {type(self.space).__name__}")
        if not callable(self.model):
            raise TypeError("Problem.model must be callable")

    # -- protocol checks --------------------------------------------------------------------------------------
    def check(self) -> "_Selectors":
        """Trace the model once (abstractly) and check every metric name; the selectors are cached."""
        sel = _SELECTORS.get(self)
        if sel is None:
            mtype = output_type(self.model, self.space)
            sel = _SELECTORS[self] = _Selectors(
                mtype, metric_getter(self.objective, mtype, "objective"),
                metric_getter(self.feasible, mtype, "feasible", allow_none=True),
                metric_getter(self.violation, mtype, "violation", allow_none=True))
        return sel

    # -- evaluation -------------------------------------------------------------------------------------------
    def metrics(self, point, temperature=0.0):
        """The model's :class:`~diffsys.Metrics` at ``point`` (a point dict) and relaxation ``temperature``."""
        return self.model(self.space.apply(point), temperature=temperature)

    def evaluate(self, point, temperature=0.0) -> Evaluation:
        """Objective, total violation (space constraints + model violation) and exact feasibility at ``point``."""
        sel = self.check()
        m = self.metrics(point, temperature)
        obj = jnp.asarray(sel.objective(m), dtype=jnp.result_type(float))
        viol = jnp.sum(self.space.violations(point, temperature), axis=-1)
        ok = self.space.feasible(point)
        f_ok = None if sel.feasible is None else jnp.asarray(sel.feasible(m), bool)
        if f_ok is not None:
            ok = ok & f_ok
        if sel.violation is not None:
            viol = viol + jnp.asarray(sel.violation(m), dtype=viol.dtype)
        elif f_ok is not None:
            viol = viol + jnp.where(f_ok, 0.0, 1.0)
        ok = ok & jnp.isfinite(obj)
        return Evaluation(obj, jnp.asarray(viol, obj.dtype), ok)

    def loss_value(self, objective):
        """The quantity relaxed searches minimize: ``log(objective)`` when ``log_objective``."""
        if self.log_objective:
            return jnp.log(jnp.maximum(objective, 1e-30))
        return objective

    # -- vector views -----------------------------------------------------------------------------------------
    @property
    def names(self):
        return self.space.names


class _Selectors(NamedTuple):
    metrics_type: type
    objective: Callable
    feasible: Callable | None
    violation: Callable | None


_SELECTORS: "weakref.WeakKeyDictionary[Problem, _Selectors]" = weakref.WeakKeyDictionary()


def as_problem(problem_or_model, space=None, **kwargs) -> Problem:
    """A checked :class:`Problem` from a problem, or from ``(model, space, objective=..., ...)``."""
    if isinstance(problem_or_model, Problem):
        if space is not None or kwargs:
            problem_or_model = dataclasses.replace(
                problem_or_model, **({"space": space} if space is not None else {}), **kwargs)
        problem = problem_or_model
    elif space is None:
        raise TypeError("pass a Problem, or a model together with its DesignSpace")
    else:
        problem = Problem(problem_or_model, space, **kwargs)
    problem.check()
    return problem


# -- shared helpers for the search methods ---------------------------------------------------------------------
def rank_key(ev: Evaluation):
    """A scalar to *minimize* that ranks feasible points by objective ahead of infeasible ones by violation."""
    obj = jnp.where(jnp.isfinite(ev.objective), ev.objective, jnp.inf)
    return jnp.where(ev.feasible, obj, jnp.inf)


def better(a: Evaluation, b: Evaluation):
    """``True`` where ``a`` beats ``b`` under the feasibility rules of Deb (2000): feasible beats infeasible,
    feasible ones compare objectives, infeasible ones compare violations."""
    both = a.feasible & b.feasible
    va, vb = jnp.nan_to_num(a.violation, nan=jnp.inf), jnp.nan_to_num(b.violation, nan=jnp.inf)
    oa = jnp.where(jnp.isfinite(a.objective), a.objective, jnp.inf)
    ob = jnp.where(jnp.isfinite(b.objective), b.objective, jnp.inf)
    return jnp.where(both, oa < ob, jnp.where(a.feasible != b.feasible, a.feasible, va < vb))


def tournament_key(ev: Evaluation):
    """A scalar whose order equals :func:`better` (feasible objective first, then violation)."""
    obj = jnp.where(jnp.isfinite(ev.objective), ev.objective, jnp.finfo(jnp.float32).max)
    # map feasible to (-inf, 0) via -exp(-obj)-ish monotone transform would lose precision; use a pair instead
    return jnp.where(ev.feasible, 0.0, 1.0), jnp.where(ev.feasible, obj, jnp.nan_to_num(ev.violation, nan=jnp.inf))


def lexsort_best(ev: Evaluation):
    """Index of the best evaluation in a batch (Deb's rules)."""
    group, value = tournament_key(ev)
    value = jnp.where(jnp.isfinite(value), value, jnp.finfo(value.dtype).max)
    order = jnp.lexsort((value, group))
    return order[0]


def final_status(ev: Evaluation) -> int:
    if bool(ev.feasible):
        return RESULTS.successful
    if not np.isfinite(float(ev.objective)):
        return RESULTS.nonfinite
    return RESULTS.infeasible


def infeasible_message(method: str, problem: Problem, point, evaluations: int) -> str:
    parts = []
    try:
        viol = np.asarray(problem.space.violations(point))
        for c, v in zip(problem.space.constraints, viol):
            if v > c.tol:
                parts.append(f"{c.name!r} violated by {float(v):.3g}")
    except Exception:  # pragma: no cover - diagnostics only
        pass
    detail = ("; " + ", ".join(parts)) if parts else ""
    return (f"{method}: no feasible design found in problem {problem.name!r} after {evaluations} evaluations"
            f"{detail}; the space may have no feasible point (relax the constraints or widen the domains)")


def to_python_point(point) -> dict:
    return {k: float(np.asarray(v)) for k, v in point.items()}


# -- lattice coordinates: every parameter as an index (discrete) or a fraction of its interval (continuous) -------
class Lattice(NamedTuple):
    """Static description of the space for index-based searches (GA, repair, MIQP enumeration)."""

    names: tuple
    sizes: tuple  # number of lattice values (continuous: grid size, used only for neighbour steps)
    continuous: tuple  # bool per parameter
    categorical: tuple  # bool per parameter


def lattice_of(space: DesignSpace) -> Lattice:
    doms = list(space.params.values())
    return Lattice(space.names, tuple(d.size for d in doms), tuple(isinstance(d, Continuous) for d in doms),
                   tuple(isinstance(d, Categorical) for d in doms))


def to_unit(space: DesignSpace, point):
    """Every coordinate in ``[0, 1]``: lattice index / (K - 1) for discrete domains, position within the interval
    (log coordinates when the domain is logarithmic) for continuous ones. Stacked on the last axis."""
    cols = []
    for n, d in space.params.items():
        x = jnp.asarray(point[n], dtype=jnp.result_type(float))
        if isinstance(d, Continuous):
            lo, hi = d._fwd(d.lo), d._fwd(d.hi)
            cols.append(jnp.where(hi > lo, (d._fwd(x) - lo) / (hi - lo if hi > lo else 1.0), 0.0))
        else:
            k = d.size
            cols.append(d.index_of(x).astype(x.dtype) / max(k - 1, 1))
    return jnp.stack(cols, axis=-1)


def from_unit(space: DesignSpace, z):
    """Inverse of :func:`to_unit` (clips to ``[0, 1]``; discrete coordinates are rounded to the nearest index)."""
    z = jnp.clip(z, 0.0, 1.0)
    out = {}
    for i, (n, d) in enumerate(space.params.items()):
        if isinstance(d, Continuous):
            lo, hi = d._fwd(d.lo), d._fwd(d.hi)
            out[n] = d._inv(lo + (hi - lo) * z[..., i])
        else:
            idx = jnp.round(z[..., i] * (d.size - 1)).astype(jnp.int32)
            out[n] = d.grid_value(idx)
    return out


_COMPILED: dict = {}


def cached(key, build: Callable):
    """A compiled search program memoized on ``key`` (problem identity + static settings), so repeating a search
    with the same problem and settings (another seed, a determinism check, a benchmark loop) does not recompile."""
    fn = _COMPILED.get(key)
    if fn is None:
        if len(_COMPILED) >= 64:
            _COMPILED.pop(next(iter(_COMPILED)))
        fn = _COMPILED[key] = build()
    return fn


def batched(fn: Callable) -> Callable:
    """``jit(vmap(fn))`` over the leading axis of a point dict."""
    return jax.jit(jax.vmap(fn))
