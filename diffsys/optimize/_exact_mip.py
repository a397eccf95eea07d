"""An exact mixed-integer program of a diffsys problem from tabulated terms, solved by SCIP.

**Formulation.** Every parameter ``i`` of the (gridded) space gets one binary per grid value, ``δ_ik``, with
``Σ_k δ_ik = 1`` (the one-hot / SOS1 encoding of a categorical or lattice choice). The problem's objective and
constraints are traced to a jaxpr (calls inlined) and split, from the output down, through

- sums, differences, negations and scaling by constants → a linear combination of sub-terms;
- ``max`` entering with a positive coefficient → an epigraph variable ``t ≥ child`` for each child (exact under
  minimization, and in ``≤`` constraints, because ``t`` can always be lowered to the max);
- conjunctions (``and``) of feasibility tests; a comparison ``a ≤ b`` whose difference splits → a linear
  constraint;

down to *terms*: sub-expressions that depend on a small set ``S`` of parameters. A term is tabulated exactly by the
JAX model itself (``jax.vmap`` over the joint grid of ``S``): a one-parameter term is ``Σ_k T_k δ_ik``; a term over
several parameters gets continuous weights ``w_j ∈ [0, 1]`` over its joint grid with ``Σ_j w_j = 1`` and the
marginal links ``Σ_{j: x_i(j) = v_k} w_j = δ_ik`` — with integral ``δ`` the only such ``w`` is the indicator of the
chosen joint value, so the term's value ``Σ_j T_j w_j`` is exact (the local-marginal formulation of Wainwright &
Jordan, Found. Trends ML 2008, exact for one factor). Grid values where a term is not finite, or a tabulated
feasibility test fails, are excluded (their ``δ``/``w`` fixed to 0). SCIP's tolerances are absolute, so the
objective and every constraint row are divided by their largest tabulated magnitude. The resulting MILP is solved
by SCIP
(Bestuzheva et al., "The SCIP Optimization Suite 8.0", 2021) to a zero relative gap, and SCIP's dual bound is the
reported bound.

**Exactness and coverage.** The MIP has the same optimum as the grid problem whenever every term is tabulated in
full, i.e. the formulation is exact by construction; it is *practical* when each term touches few parameters. A
term whose joint grid exceeds ``max_table`` entries is refused with an error naming its parameters (use
``exact_search(solver="enumerate"|"bnb")``). Among the embedded problems the toy problem splits into four one-
parameter terms and one linear constraint; ``edge_soc``, ``systolic`` and ``accelerator`` do not split (energy ×
time products over every parameter), see docs/optimize.md.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._objective import RESULTS, NoFeasiblePointError, infeasible_message

_CALLS = ("jit", "pjit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call", "remat", "checkpoint")


# == tracing: a flat jaxpr and the parameters each variable depends on ==============================================
def _inline(closed, args):
    """Evaluate ``closed`` on ``args`` binding every primitive except calls, which are evaluated inline (so that
    ``make_jaxpr`` of this function is flat)."""

    def run(jaxpr, consts, args):
        env = {}

        def read(v):
            return v.val if hasattr(v, "val") and not hasattr(v, "count") else env[v]

        for v, c in zip(jaxpr.constvars, consts):
            env[v] = c
        for v, a in zip(jaxpr.invars, args):
            env[v] = a
        for eqn in jaxpr.eqns:
            ins = [read(v) for v in eqn.invars]
            sub = next((eqn.params[k] for k in ("jaxpr", "call_jaxpr", "fun_jaxpr")
                        if hasattr(eqn.params.get(k), "consts")), None)
            if eqn.primitive.name in _CALLS and sub is not None:
                outs = run(sub.jaxpr, sub.consts, ins[len(ins) - len(sub.jaxpr.invars):])
            else:
                outs = eqn.primitive.bind(*ins, **eqn.params)
                outs = outs if eqn.primitive.multiple_results else [outs]
            for v, o in zip(eqn.outvars, outs):
                env[v] = o
        return [read(v) for v in jaxpr.outvars]

    return run(closed.jaxpr, closed.consts, args)


class _Flat:
    """A flat jaxpr of ``fn(*parameters) -> tuple of scalars`` with per-variable dependency sets."""

    def __init__(self, fn, example):
        closed = jax.make_jaxpr(fn)(*example)
        self.closed = jax.make_jaxpr(lambda *a: _inline(closed, a))(*example)
        self.jaxpr = self.closed.jaxpr
        self.deps, self.producer = {}, {}
        for i, v in enumerate(self.jaxpr.invars):
            self.deps[v] = frozenset([i])
        for v in self.jaxpr.constvars:
            self.deps[v] = frozenset()
        for eqn in self.jaxpr.eqns:
            d = frozenset().union(*[self.dep(v) for v in eqn.invars])
            for v in eqn.outvars:
                self.deps[v], self.producer[v] = d, eqn

    def dep(self, v):
        return frozenset() if hasattr(v, "val") and not hasattr(v, "count") else self.deps[v]

    def values(self, args, wanted):
        """Values of the variables ``wanted`` (``vmap``-able) for inputs ``args``."""
        env = {}

        def read(v):
            return v.val if hasattr(v, "val") and not hasattr(v, "count") else env[v]

        for v, c in zip(self.jaxpr.constvars, self.closed.consts):
            env[v] = c
        for v, a in zip(self.jaxpr.invars, args):
            env[v] = a
        for eqn in self.jaxpr.eqns:
            outs = eqn.primitive.bind(*[read(v) for v in eqn.invars], **eqn.params)
            for v, o in zip(eqn.outvars, outs if eqn.primitive.multiple_results else [outs]):
                env[v] = o
        return [read(v) for v in wanted]


# == expression trees ==============================================================================================
class Term(NamedTuple):
    var: object  # a jaxpr variable (scalar), tabulated over the joint grid of `params`
    params: tuple


class Lin(NamedTuple):
    const: float
    parts: tuple  # ((coef, Term | Max), ...)


class Max(NamedTuple):
    children: tuple  # Lin, ...


def _is_scalar(v):
    return getattr(v.aval, "shape", ()) == ()


def _linear(flat, v, sign, consts) -> Lin:
    """``v`` as a linear combination of terms and epigraph-able maxima (``sign``: the sign ``v`` enters with)."""
    deps = flat.dep(v)
    if not deps:
        return Lin(float(consts(v)), ())
    eqn = flat.producer.get(v)
    name = eqn.primitive.name if eqn is not None else None
    if eqn is not None and _is_scalar(v) and all(_is_scalar(x) for x in eqn.invars):
        a = eqn.invars
        if name in ("add", "sub"):
            x, y = _linear(flat, a[0], sign, consts), _linear(flat, a[1], -sign if name == "sub" else sign, consts)
            s = -1.0 if name == "sub" else 1.0
            return Lin(x.const + s * y.const, x.parts + tuple((s * c, p) for c, p in y.parts))
        if name == "neg":
            x = _linear(flat, a[0], -sign, consts)
            return Lin(-x.const, tuple((-c, p) for c, p in x.parts))
        scale = None
        if name == "mul" and bool(flat.dep(a[0])) != bool(flat.dep(a[1])):
            other, scale = (a[0], consts(a[1])) if flat.dep(a[0]) else (a[1], consts(a[0]))
        elif name == "div" and not flat.dep(a[1]):
            other, scale = a[0], 1.0 / consts(a[1])
        if scale is not None and math.isfinite(float(scale)) and float(scale) != 0.0:
            c = float(scale)
            x = _linear(flat, other, sign if c > 0 else -sign, consts)
            return Lin(c * x.const, tuple((c * cc, p) for cc, p in x.parts))
        if name == "convert_element_type" and jnp.issubdtype(v.aval.dtype, jnp.floating):
            return _linear(flat, a[0], sign, consts)
        if name == "max" and sign > 0:
            return Lin(0.0, ((1.0, Max(tuple(_linear(flat, x, 1, consts) for x in a))),))
    return _term(flat, v)


def _term(flat, v):
    return Lin(0.0, ((1.0, Term(v, tuple(sorted(flat.dep(v))))),))


def _conjuncts(flat, v):
    """Split a boolean ``v`` through ``and`` into its conjuncts."""
    eqn = flat.producer.get(v)
    if eqn is not None and eqn.primitive.name == "and" and _is_scalar(v):
        return [c for x in eqn.invars for c in _conjuncts(flat, x)]
    return [v]


def _terms_of(lin, out):
    for _, p in lin.parts:
        if isinstance(p, Term):
            out.append(p)
        else:
            for ch in p.children:
                _terms_of(ch, out)
    return out


# == the solver ====================================================================================================
def solve_exact_mip(problem, *, time_limit_s: float | None = 600.0, max_table: int = 100_000, gap: float = 0.0,
                    raise_on_infeasible: bool = True, verbose: bool = False):
    """Solve ``problem`` over its grid as the tabulated-term MILP of the module docstring with SCIP.

    Returns an :class:`~diffsys.optimize.ExactResult` whose ``bound`` is SCIP's dual bound; the design is
    re-evaluated by the JAX model and must reproduce the MIP objective (else ``RuntimeError``: the formulation
    would not be exact). Raises ``ValueError`` naming the parameters of a term whose joint grid exceeds
    ``max_table`` entries, ``ImportError`` without PySCIPOpt (``pip install 'diffsys[miqp]'``).
    """
    try:
        from pyscipopt import Model, quicksum
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("solve_exact_mip needs PySCIPOpt: pip install 'diffsys[miqp]'") from e
    from ._exact import ExactResult, grid_tables

    start = time.perf_counter()
    sel = problem.check()
    space = problem.space
    names = space.names
    tables = grid_tables(space)
    radices = space.radices
    f = jnp.result_type(float)

    def fn(*xs):
        point = dict(zip(names, xs))
        m = problem.metrics(point)
        obj = jnp.asarray(sel.objective(m), f)
        ok = jnp.isfinite(obj)
        if sel.feasible is not None:
            ok = ok & jnp.asarray(sel.feasible(m), bool)
        for c in space.constraints:
            g = jnp.asarray(c.fn(point), f)
            ok = ok & ((g <= c.tol) if c.kind == "ineq" else (jnp.abs(g) <= c.tol))
        return obj, ok

    example = [jnp.asarray(tables[i, 0], f) for i in range(len(names))]
    flat = _Flat(fn, example)
    base_vals = [jnp.asarray(tables[i, 0], f) for i in range(len(names))]
    const_cache = {}

    def consts(v):
        if hasattr(v, "val") and not hasattr(v, "count"):
            return np.asarray(v.val)
        if v not in const_cache:
            const_cache[v] = np.asarray(flat.values(base_vals, [v])[0])
        return const_cache[v]

    obj_var, ok_var = flat.jaxpr.outvars
    objective = _linear(flat, obj_var, 1, consts)
    linear_cons, table_cons = [], []
    for c in _conjuncts(flat, ok_var):
        eqn = flat.producer.get(c)
        if eqn is not None and eqn.primitive.name in ("le", "lt", "ge", "gt") and all(
                _is_scalar(x) for x in eqn.invars):
            a, b = eqn.invars if eqn.primitive.name in ("le", "lt") else eqn.invars[::-1]
            la, lb = _linear(flat, a, 1, consts), _linear(flat, b, -1, consts)
            linear_cons.append(Lin(la.const - lb.const, la.parts + tuple((-cc, p) for cc, p in lb.parts)))
            continue
        if eqn is not None and eqn.primitive.name == "is_finite":
            continue  # non-finite objective entries are excluded at tabulation
        table_cons.append(Term(c, tuple(sorted(flat.dep(c)))))
    terms = _terms_of(objective, [])
    for lin in linear_cons:
        _terms_of(lin, terms)
    terms += table_cons
    for t in terms:
        size = math.prod(radices[i] for i in t.params)
        if size > max_table:
            raise ValueError(
                f"solve_exact_mip: problem {problem.name!r} has a term over ({', '.join(names[i] for i in t.params)})"
                f" with {size:,} joint grid values > max_table={max_table:,}: its objective/constraints do not "
                "split into small terms; use exact_search(solver='enumerate') or solver='bnb'")

    # tabulate every term over its joint grid (one vmap per parameter set)
    by_params = {}
    for t in terms:
        by_params.setdefault(t.params, []).append(t.var)
    tab = {}
    for params, vars_ in by_params.items():
        grid = np.array(list(itertools.product(*[range(radices[i]) for i in params])), int).reshape(-1, len(params))
        args = [jnp.full(len(grid), tables[i, 0], f) for i in range(len(names))]
        for j, i in enumerate(params):
            args[i] = jnp.asarray(tables[i, grid[:, j]], f)
        uniq = list(dict.fromkeys(vars_))
        vals = jax.jit(jax.vmap(lambda *a: flat.values(a, uniq)))(*args)
        for v, x in zip(uniq, vals):
            tab[(v, params)] = (grid, np.asarray(x))

    m = Model("diffsys-exact")
    if not verbose:
        m.hideOutput()
    if time_limit_s is not None:
        m.setParam("limits/time", float(time_limit_s))
    m.setParam("limits/gap", float(gap))
    m.setParam("numerics/epsilon", 1e-12)  # rows are scaled to magnitude <= 1; resolve 1e-9 relative differences
    m.setParam("numerics/sumepsilon", 1e-10)
    m.setParam("numerics/feastol", 1e-9)
    delta = [[m.addVar(f"d{i}_{k}", vtype="B") for k in range(radices[i])] for i in range(len(names))]
    for i in range(len(names)):
        m.addCons(quicksum(delta[i]) == 1)
    joint = {}

    def weights(params):
        if params not in joint:
            grid = tab[next(k for k in tab if k[1] == params)][0]
            w = [m.addVar(f"w{'_'.join(map(str, params))}_{j}", lb=0.0, ub=1.0) for j in range(len(grid))]
            m.addCons(quicksum(w) == 1)
            for col, i in enumerate(params):
                for k in range(radices[i]):
                    m.addCons(quicksum(w[j] for j in np.flatnonzero(grid[:, col] == k)) == delta[i][k])
            joint[params] = w
        return joint[params]

    def selectors(t):
        return delta[t.params[0]] if len(t.params) == 1 else weights(t.params)

    def forbid(t, bad):
        for s, b in zip(selectors(t), bad):
            if b:
                m.chgVarUb(s, 0.0)

    def term_expr(t):
        grid, x = tab[(t.var, t.params)]
        x = np.asarray(x, float)
        forbid(t, ~np.isfinite(x))
        return quicksum(float(c) * s for c, s in zip(np.where(np.isfinite(x), x, 0.0), selectors(t)) if c != 0.0)

    def scale_of(lin):
        """The largest finite magnitude among ``lin``'s tables and constant: SCIP's tolerances are absolute
        (feasibility 1e-6), so every row is divided by it (objectives of 1e-7 J·s would otherwise vanish)."""
        mags = [abs(lin.const)] + [float(np.max(np.abs(x[np.isfinite(x)]), initial=0.0))
                                   for x in (np.asarray(tab[(t.var, t.params)][1], float) for t in _terms_of(lin, []))]
        return max(mags) if max(mags) > 0 else 1.0

    def expr(lin, scale):
        e = lin.const / scale
        for c, p in lin.parts:
            if isinstance(p, Term):
                e = e + (c / scale) * term_expr(p)
            else:
                t = m.addVar(lb=None)
                for ch in p.children:
                    m.addCons(t >= expr(ch, scale))
                e = e + c * t
        return e

    for t in table_cons:
        forbid(t, ~np.asarray(tab[(t.var, t.params)][1], bool))
    for lin in linear_cons:
        m.addCons(expr(lin, scale_of(lin)) <= 0.0)
    obj_scale = scale_of(objective)
    tau = m.addVar("objective", lb=None)
    m.addCons(tau >= expr(objective, obj_scale))
    m.setObjective(tau, "minimize")
    t_build = time.perf_counter() - start
    m.optimize()
    status = m.getStatus()
    seconds = time.perf_counter() - start
    proof = (f"SCIP {status}: {len(terms)} tabulated terms, {len(linear_cons)} linear constraints, "
             f"{m.getNVars(False):,} variables (built in {t_build:.2f} s)")
    if m.getNSols() == 0:
        if raise_on_infeasible and status == "infeasible":
            raise NoFeasiblePointError(infeasible_message("exact_search[scip]", problem, space.grid_point(0), 0))
        return ExactResult("exact[scip]", {n: float(tables[i, 0]) for i, n in enumerate(names)}, math.inf, False,
                           0, seconds, RESULTS.infeasible if status == "infeasible" else RESULTS.max_steps, None,
                           math.inf, obj_scale * m.getDualbound(), math.nan, "scip", proof, int(m.getNNodes()), 0,
                           seconds)
    sol = m.getBestSol()
    digits = [int(np.argmax([m.getSolVal(sol, d) for d in delta[i]])) for i in range(len(names))]
    point = {n: float(tables[i, digits[i]]) for i, n in enumerate(names)}
    ev = jax.jit(problem.evaluate)({k: jnp.asarray(v, f) for k, v in point.items()})
    obj, mip_obj, bound = float(ev.objective), obj_scale * m.getObjVal(), obj_scale * m.getDualbound()
    bound = min(bound, obj)  # the tables are float64 copies of float32 values: a last-ulp excess is no information
    if not bool(ev.feasible) or abs(obj - mip_obj) > 1e-4 * max(abs(obj), 1e-30):
        raise RuntimeError(f"solve_exact_mip: the MIP's design evaluates to {obj} (feasible={bool(ev.feasible)}) but "
                           f"the MIP objective is {mip_obj}: the tabulated formulation is not exact for this model")
    gap_v = max(0.0, (obj - bound) / max(abs(obj), 1e-300))
    optimal = status == "optimal"
    gap_v = 0.0 if optimal and gap_v <= 1e-6 else gap_v  # float64 tables vs the float32 model: rounding only
    return ExactResult("exact[scip]", point, obj, True, int(sum(len(v[1]) for v in tab.values())), seconds,
                       RESULTS.successful if optimal else RESULTS.max_steps, {"mip_objective": mip_obj},
                       float(ev.violation), obj if gap_v == 0.0 else bound, gap_v, "scip", proof,
                       int(m.getNNodes()), 0, seconds)
