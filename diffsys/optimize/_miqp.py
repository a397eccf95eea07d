"""Mixed-integer quadratic programming: quadratic models of diffsys objectives, two exact solvers, and a sequential
trust-region search that always re-evaluates the true model.

**The MIQP.** ``minimize ½ yᵀQy + qᵀy + c  s.t.  A y ≤ b,  lo ≤ y ≤ hi,  y_i ∈ V_i`` for the discrete coordinates,
where every ``V_i`` is a finite set of reals (a lattice in the domain's coordinate: ``log`` for powers of two and
divisors, the values themselves for integers and categoricals). ``Q`` is projected onto the PSD cone (eigenvalues
clipped at zero) so the continuous sub-problems are convex and both solvers return the global optimum of the model.

**Solvers.**

- :func:`solve_miqp_enumerate` (JAX-native, batched): enumerate every assignment of the discrete coordinates and
  solve the convex QP in the continuous ones for all assignments in one ``vmap`` with ADMM (the OSQP iteration,
  Stellato et al., Math. Prog. Comp. 2020). This is the path that runs on a GPU; it suits small discrete
  dimensions or trust regions (a few thousand to a few hundred thousand assignments).
- :func:`solve_miqp_scip` (exact branch-and-bound, optional ``[miqp]`` extra): SCIP through PySCIPOpt (Bestuzheva
  et al., "The SCIP Optimization Suite 8.0", 2021). SCIP wants a linear objective, so the quadratic goes into an
  epigraph constraint ``τ ≥ ½ yᵀQy + qᵀy`` and ``τ`` is minimized; each discrete coordinate is a one-hot of binaries.

**Building the model** (:func:`quadratic_model`): a second-order Taylor expansion of the relaxed, penalized loss
``log f + μ·v`` around an incumbent with ``jax.hessian`` (``method="hessian"``), or a least-squares quadratic fitted
to exact evaluations sampled in the trust region (``method="fit"``); the space's constraints are linearized.

**Sequential MIQP** (:func:`miqp_search`, also named :func:`trust_region_search`; a local heuristic — the exact
MIQP over a problem's grid is :func:`diffsys.optimize.exact_search`): build the model at the incumbent, restrict it to a trust region
(``±radius`` lattice steps, a continuous box of relative size ``delta``), solve, evaluate the *true* model at the
returned design and accept it only if it is better (Deb's rules); otherwise shrink the region. (Trust-region
logic as in Conn, Gould & Toint, *Trust-Region Methods*, SIAM 2000.)
"""

from __future__ import annotations

import itertools
import math
import time
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..space import Categorical, Continuous, DesignSpace
from ._objective import (
    RESULTS,
    NoFeasiblePointError,
    SearchResult,
    as_problem,
    better,
    cached,
    final_status,
    infeasible_message,
    to_python_point,
)


class MIQP(NamedTuple):
    """``min ½yᵀQy + qᵀy + c0  s.t. A y ≤ b, lo ≤ y ≤ hi``; ``values[i]`` is the finite set of discrete coordinate
    ``i`` (``None`` for a continuous one)."""

    Q: np.ndarray
    q: np.ndarray
    c0: float
    A: np.ndarray
    b: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    values: tuple

    def objective(self, y):
        y = jnp.asarray(y)
        return 0.5 * jnp.einsum("...i,ij,...j->...", y, jnp.asarray(self.Q), y) + y @ jnp.asarray(self.q) + self.c0


class MIQPSolution(NamedTuple):
    y: np.ndarray
    objective: float
    feasible: bool
    status: str
    seconds: float


def psd_project(Q, floor=0.0):
    """Symmetrize and clip eigenvalues at ``floor`` (the nearest PSD matrix in Frobenius norm, Higham 1988)."""
    Q = 0.5 * (np.asarray(Q, float) + np.asarray(Q, float).T)
    w, v = np.linalg.eigh(Q)
    return (v * np.maximum(w, floor)) @ v.T


def _check(miqp: MIQP):
    n = len(miqp.q)
    if miqp.Q.shape != (n, n) or miqp.A.shape[1:] != (n,) or len(miqp.values) != n:
        raise ValueError(f"MIQP shapes disagree: Q {miqp.Q.shape}, q {miqp.q.shape}, A {miqp.A.shape}, "
                         f"values {len(miqp.values)}")


# == JAX-native: enumerate assignments, ADMM for the continuous QP ================================================
def _admm_qp(P, q, C, lo, hi, iters=300, rho=1.0, sigma=1e-6, alpha=1.6):
    """OSQP's ADMM for ``min ½xᵀPx + qᵀx s.t. lo ≤ Cx ≤ hi`` (dense, fixed iterations). Returns x and the primal
    residual ``max|Cx - clip(Cx)|``."""
    n = P.shape[0]
    K = P + sigma * jnp.eye(n) + rho * C.T @ C
    L = jnp.linalg.cholesky(K)

    def solve(rhs):
        return jax.scipy.linalg.cho_solve((L, True), rhs)

    def body(_, s):
        x, z, y = s
        xt = solve(sigma * x - q + C.T @ (rho * z - y))
        zt = C @ xt
        x = alpha * xt + (1 - alpha) * x
        zr = alpha * zt + (1 - alpha) * z
        z_new = jnp.clip(zr + y / rho, lo, hi)
        y = y + rho * (zr - z_new)
        return x, z_new, y

    x0 = jnp.zeros(n)
    z0 = jnp.clip(C @ x0, lo, hi)
    x, z, y = jax.lax.fori_loop(0, iters, body, (x0, z0, jnp.zeros(C.shape[0])))
    cx = C @ x
    return x, jnp.max(jnp.abs(cx - jnp.clip(cx, lo, hi)))


@partial(jax.jit, static_argnames=("di", "ci", "iters"))
def _enumerate_kernel(Q, q, c0, A, b, lo, hi, combos, feas_tol, *, di, ci, iters):
    n = q.shape[0]
    di_a, ci_a = np.array(di, int), np.array(ci, int)
    m = A.shape[0]

    def one(yd):
        y = jnp.zeros(n, Q.dtype).at[di_a].set(yd) if di else jnp.zeros(n, Q.dtype)
        ok = jnp.asarray(True)
        if ci:
            P = Q[np.ix_(ci_a, ci_a)]
            qc = q[ci_a] + (Q[np.ix_(ci_a, di_a)] @ yd if di else 0.0)
            C = jnp.concatenate([A[:, ci_a], jnp.eye(len(ci), dtype=Q.dtype)]) if m else jnp.eye(len(ci), dtype=Q.dtype)
            lo_c, hi_c = lo[ci_a], hi[ci_a]
            if m:
                bd = b - (A[:, di_a] @ yd if di else 0.0)
                lo_c = jnp.concatenate([jnp.full(m, -jnp.inf, Q.dtype), lo_c])
                hi_c = jnp.concatenate([bd, hi_c])
            xc, res = _admm_qp(P, qc, C, lo_c, hi_c, iters)
            xc = jnp.clip(xc, lo[ci_a], hi[ci_a])
            y = y.at[ci_a].set(xc)
            ok = res <= feas_tol * (1.0 + jnp.max(jnp.where(jnp.isfinite(hi_c), jnp.abs(hi_c), 0.0)))
        if m:
            ok = ok & jnp.all(A @ y <= b + feas_tol * (1.0 + jnp.abs(b)))
        obj = 0.5 * y @ Q @ y + q @ y + c0
        return y, jnp.where(ok, obj, jnp.inf), ok

    return jax.vmap(one)(combos)


def solve_miqp_enumerate(miqp: MIQP, *, admm_iters: int = 400, max_assignments: int = 500_000,
                         feas_tol: float = 1e-4) -> MIQPSolution:
    """Global optimum of a convex-in-the-continuous-part MIQP by enumerating the discrete assignments; every
    assignment's continuous QP is solved in one ``vmap`` (ADMM). The number of assignments is padded to a power of
    two so repeated solves of similar size reuse one compiled kernel."""
    _check(miqp)
    start = time.perf_counter()
    n = len(miqp.q)
    di = tuple(i for i in range(n) if miqp.values[i] is not None)
    ci = tuple(i for i in range(n) if miqp.values[i] is None)
    count = math.prod(len(miqp.values[i]) for i in di) if di else 1
    if count > max_assignments:
        raise ValueError(f"solve_miqp_enumerate: {count} discrete assignments exceed max_assignments="
                         f"{max_assignments}; shrink the trust region or use solve_miqp_scip")
    combos = np.array(list(itertools.product(*[miqp.values[i] for i in di])), float).reshape(count, len(di))
    padded = 1 << max(count - 1, 0).bit_length()
    combos = np.concatenate([combos, np.repeat(combos[:1], padded - count, 0)])
    f = jnp.result_type(float)
    Q, q, A, b, lo, hi = (jnp.asarray(x, f) for x in (psd_project(miqp.Q), miqp.q, miqp.A, miqp.b, miqp.lo, miqp.hi))
    ys, objs, oks = _enumerate_kernel(Q, q, jnp.asarray(miqp.c0, f), A, b, lo, hi, jnp.asarray(combos, f),
                                      jnp.asarray(feas_tol, f), di=di, ci=ci, iters=int(admm_iters))
    i = int(jnp.argmin(objs))
    feasible = bool(oks[i]) and bool(np.isfinite(float(objs[i])))
    return MIQPSolution(np.asarray(ys[i], float), float(objs[i]) if feasible else math.inf, feasible,
                        "optimal" if feasible else "infeasible", time.perf_counter() - start)


# == SCIP =========================================================================================================
def solve_miqp_scip(miqp: MIQP, *, time_limit_s: float = 60.0, gap: float = 1e-6) -> MIQPSolution:
    """Solve the MIQP with SCIP (epigraph form; one-hot binaries for discrete coordinates)."""
    try:
        from pyscipopt import Model, quicksum
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("solve_miqp_scip needs PySCIPOpt: pip install 'diffsys[miqp]'") from e
    _check(miqp)
    start = time.perf_counter()
    n = len(miqp.q)
    m = Model("diffsys-miqp")
    m.hideOutput()
    m.setParam("limits/time", float(time_limit_s))
    m.setParam("limits/gap", float(gap))
    y = []
    for i in range(n):
        vals = miqp.values[i]
        if vals is None:
            lo = None if not np.isfinite(miqp.lo[i]) else float(miqp.lo[i])
            hi = None if not np.isfinite(miqp.hi[i]) else float(miqp.hi[i])
            y.append(m.addVar(f"y{i}", lb=lo, ub=hi))
        else:
            vals = [float(v) for v in vals]
            yi = m.addVar(f"y{i}", lb=min(vals), ub=max(vals))
            bs = [m.addVar(f"b{i}_{k}", vtype="B") for k in range(len(vals))]
            m.addCons(quicksum(bs) == 1)
            m.addCons(yi == quicksum(v * bk for v, bk in zip(vals, bs)))
            y.append(yi)
    Q = psd_project(miqp.Q)
    tau = m.addVar("tau", lb=None)
    quad = quicksum(0.5 * Q[i, j] * y[i] * y[j] for i in range(n) for j in range(n) if Q[i, j] != 0.0)
    lin = quicksum(float(miqp.q[i]) * y[i] for i in range(n) if miqp.q[i] != 0.0)
    m.addCons(tau >= quad + lin)
    for r in range(miqp.A.shape[0]):
        m.addCons(quicksum(float(miqp.A[r, i]) * y[i] for i in range(n) if miqp.A[r, i] != 0.0) <= float(miqp.b[r]))
    m.setObjective(tau, "minimize")
    m.optimize()
    status = m.getStatus()
    if m.getNSols() == 0:
        return MIQPSolution(np.full(n, np.nan), math.inf, False, status, time.perf_counter() - start)
    sol = m.getBestSol()
    yv = np.array([m.getSolVal(sol, v) for v in y])
    obj = float(0.5 * yv @ Q @ yv + miqp.q @ yv + miqp.c0)
    return MIQPSolution(yv, obj, True, status, time.perf_counter() - start)


SOLVERS = {"jax": solve_miqp_enumerate, "scip": solve_miqp_scip}


# == quadratic models of a problem ================================================================================
def _range(d):
    """The domain's interval in its own coordinate (log for log domains), as floats."""
    a, z = float(d.lower), float(d.upper)
    if d.log:
        a, z = math.log(a), math.log(z)
    return a, (z - a) if z > a else 1.0


def _coords(space: DesignSpace, point):
    """Each parameter in its domain's coordinate (log for log domains), scaled to ``[0, 1]`` over the domain."""
    cols = []
    for n, d in space.params.items():
        a, w = _range(d)
        cols.append((d._fwd(jnp.asarray(point[n], dtype=float)) - a) / w)
    return jnp.stack(cols, -1)


def _point(space: DesignSpace, y):
    out = {}
    for i, (n, d) in enumerate(space.params.items()):
        a, w = _range(d)
        out[n] = d._inv(a + w * y[..., i])
    return out


def _table(d):
    a, w = _range(d)
    vals = np.log(np.asarray(d.values)) if d.log else np.asarray(d.values, float)
    return (vals - a) / w


class _Builder:
    """Compiled pieces of the quadratic model of one problem (built once per search, reused every iteration)."""

    def __init__(self, problem, penalty):
        space = problem.space
        self.problem, self.space = problem, space

        def loss(y, t):
            ev = problem.evaluate(_point(space, y), t)
            return problem.loss_value(ev.objective) + penalty * ev.violation

        # value, gradient and Hessian in one compiled program
        self.taylor = jax.jit(lambda y, t: (loss(y, t), jax.grad(loss)(y, t), jax.hessian(loss)(y, t)))
        self.batch_loss = jax.jit(jax.vmap(lambda y: loss(y, 0.0)))
        self.cons = []
        for c in space.constraints:
            if c.kind != "ineq":
                continue
            gfun = lambda y, c=c: jnp.asarray(c.fn(_point(space, y)), float)  # noqa: E731
            self.cons.append((jax.jit(gfun), jax.jit(jax.grad(gfun))))
        self.categorical = [i for i, d in enumerate(space.params.values()) if isinstance(d, Categorical)]


def quadratic_model(problem, y0, *, method: str = "hessian", temperature: float = 0.1, penalty: float = 10.0,
                    key=None, n_fit: int | None = None, radius: int = 2, delta: float = 0.25, builder=None):
    """A quadratic model of ``loss(y) = log f + penalty·v`` at ``y0`` (scaled domain coordinates, see
    :func:`trust_region_miqp`), with the space's inequality constraints linearized. Returns
    ``(Q, q, c0, A, b, evaluations)`` in absolute coordinates.

    ``method="hessian"``: Taylor expansion of the relaxed loss at ``temperature`` (``jax.hessian``; counted as
    ``ndim + 1`` evaluations). A categorical coordinate has no meaningful derivative, so its row of the model is
    replaced by the 1-D least-squares quadratic through the exact losses of all its options (the other coordinates
    at ``y0``; ``K - 1`` more evaluations), without cross terms. ``method="fit"``: least squares on ``n_fit`` exact
    evaluations sampled in the trust region (default twice the number of coefficients).
    """
    bld = builder if builder is not None else _Builder(problem, penalty)
    space = problem.space
    y0 = jnp.asarray(y0, dtype=float)
    y0n = np.asarray(y0, float)
    n = space.ndim
    if method == "hessian":
        val, g, H = bld.taylor(y0, temperature)
        c_taylor = float(val)
        g = np.nan_to_num(np.asarray(g, float))
        H = np.nan_to_num(np.asarray(H, float))
        evals = n + 1
        doms = list(space.params.values())
        for i in bld.categorical:
            tab = _table(doms[i])
            ys = np.repeat(y0n[None], len(tab), 0)
            ys[:, i] = tab
            vals = np.asarray(bld.batch_loss(jnp.asarray(ys)), float)
            evals += len(tab) - 1
            ok = np.isfinite(vals)
            dt = tab - y0n[i]
            if ok.sum() >= 3:
                a2, a1, _ = np.polyfit(dt[ok], vals[ok], 2)
            elif ok.sum() == 2:
                a2, (a1, _) = 0.0, np.polyfit(dt[ok], vals[ok], 1)
            else:
                a2, a1 = 0.0, 0.0
            H[i, :] = 0.0
            H[:, i] = 0.0
            H[i, i] = 2 * max(a2, 0.0)
            g[i] = a1
    elif method == "fit":
        if key is None:
            raise ValueError("quadratic_model(method='fit') needs a PRNG key")
        n_coef = 1 + n + n * (n + 1) // 2
        m_pts = int(n_fit or 2 * n_coef)
        lo_b, hi_b = _trust_box(space, y0n, radius, delta)
        u = jax.random.uniform(key, (m_pts, n))
        ys = jnp.asarray(lo_b) + u * jnp.asarray(hi_b - lo_b)
        ys = jnp.asarray(np.stack([_snap(space, r) for r in np.asarray(ys)]))
        ys = jnp.concatenate([y0[None], ys])
        vals = np.asarray(bld.batch_loss(ys), float)
        dy = np.asarray(ys - y0, float)
        iu = np.triu_indices(n)
        feats = np.concatenate([np.ones((len(dy), 1)), dy, (dy[:, :, None] * dy[:, None, :])[:, iu[0], iu[1]]], 1)
        ok = np.isfinite(vals)
        coef, *_ = np.linalg.lstsq(feats[ok], vals[ok], rcond=None)
        c_taylor, g = float(coef[0]), coef[1:1 + n]
        Hu = np.zeros((n, n))
        Hu[iu] = coef[1 + n:]
        H = Hu + Hu.T  # Hessian of sum_{i<=j} h_ij dy_i dy_j
        evals = len(ys)
    else:
        raise ValueError(f"method must be 'hessian' or 'fit', got {method!r}")
    H = psd_project(H)
    # absolute form: ½(y-y0)ᵀH(y-y0) + g(y-y0) + c = ½yᵀHy + (g - H y0)ᵀy + (c - g·y0 + ½ y0ᵀHy0)
    q = g - H @ y0n
    c0 = c_taylor - g @ y0n + 0.5 * y0n @ H @ y0n
    rows, rhs = [], []
    for gfun, gjac in bld.cons:
        val = float(gfun(y0))
        grad = np.nan_to_num(np.asarray(gjac(y0), float))
        rows.append(grad)
        rhs.append(grad @ y0n - val)
    A = np.array(rows, float).reshape(len(rows), n)
    b = np.array(rhs, float)
    return H, q, float(c0), A, b, evals


def _trust_box(space, y0, radius, delta):
    lo, hi = [], []
    for i, d in enumerate(space.params.values()):
        if isinstance(d, Continuous):
            lo.append(max(0.0, y0[i] - delta))
            hi.append(min(1.0, y0[i] + delta))
        else:
            tab = _table(d)
            k = int(np.argmin(np.abs(tab - y0[i])))
            lo.append(tab[max(k - radius, 0)])
            hi.append(tab[min(k + radius, len(tab) - 1)])
    return np.array(lo), np.array(hi)


def trust_region_miqp(space: DesignSpace, Q, q, c0, A, b, y0, radius: int, delta: float) -> MIQP:
    """Restrict a quadratic model to the trust region around ``y0``: discrete coordinates to ``±radius`` lattice
    steps (categoricals: every option), continuous ones to a box of ``±delta`` of their range."""
    y0 = np.asarray(y0, float)
    lo_b, hi_b = _trust_box(space, y0, radius, delta)
    values = []
    lo, hi = [], []
    for i, d in enumerate(space.params.values()):
        if isinstance(d, Continuous):
            values.append(None)
            lo.append(lo_b[i])
            hi.append(hi_b[i])
        else:
            tab = _table(d)
            if isinstance(d, Categorical):
                vals = tab
            else:
                k = int(np.argmin(np.abs(tab - y0[i])))
                vals = tab[max(k - radius, 0): k + radius + 1]
            values.append(tuple(float(v) for v in vals))
            lo.append(float(np.min(vals)))
            hi.append(float(np.max(vals)))
    return MIQP(np.asarray(Q, float), np.asarray(q, float), float(c0), np.asarray(A, float), np.asarray(b, float),
                np.array(lo), np.array(hi), tuple(values))


def miqp_search(problem, space=None, *, key, x0=None, solver: str = "jax", method: str = "hessian",
                radius: int = 2, delta: float = 0.25, iterations: int = 25, temperature: float = 0.1,
                penalty: float = 10.0, n_init: int = 32, n_starts: int = 4, max_radius: int | None = None,
                raise_on_infeasible: bool = True,
                **problem_kwargs) -> SearchResult:
    """Sequential MIQP with a trust region (see the module docstring).

    Args:
        problem: a :class:`Problem` (or a model with ``space`` and the Problem's keyword arguments).
        key: PRNG key (initial samples, fitted models); deterministic given the key.
        x0: initial design; default: runs from the ``n_starts`` best of ``n_init`` uniform samples (the best
            result is returned; ``trajectory["best"]`` lists each run's history).
        solver: ``"jax"`` (enumeration + batched ADMM) or ``"scip"``.
        method: ``"hessian"`` or ``"fit"`` (see :func:`quadratic_model`).
        radius, delta: initial trust region (lattice steps; relative continuous box). Decremented/halved on a
            rejected step, incremented/doubled (up to ``max_radius``, default ``radius + 1``, and 0.5) on an
            accepted one; the search stops when the region is empty or after ``iterations`` models.
        temperature: relaxation temperature at which the Hessian model is taken.
        penalty: weight of the violation in the modelled loss.
    """
    problem = as_problem(problem, space, **problem_kwargs)
    space = problem.space
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {sorted(SOLVERS)}, got {solver!r}")
    if int(radius) < 1 or not 0 < float(delta) <= 1:
        raise ValueError(f"radius must be >= 1 and delta in (0, 1], got radius={radius}, delta={delta}")
    start = time.perf_counter()
    solve = SOLVERS[solver]
    evaluate = cached(("miqp_evaluate", problem), lambda: jax.jit(lambda y: problem.evaluate(_point(space, y))))
    k_init, k_fit = jax.random.split(key)
    evaluations = 0
    if x0 is None:
        pts = space.sample(k_init, n_init)
        evs = cached(("batch_evaluate", problem), lambda: jax.jit(jax.vmap(problem.evaluate)))(pts)
        evaluations += n_init
        group = np.where(np.asarray(evs.feasible), 0, 1)
        value = np.where(np.asarray(evs.feasible), np.asarray(evs.objective), np.asarray(evs.violation))
        order = np.lexsort((np.nan_to_num(value, nan=np.inf), group))[: max(int(n_starts), 1)]
        starts = [np.asarray(_coords(space, {k: v[i] for k, v in pts.items()}), float) for i in order]
    else:
        starts = [np.asarray(_coords(space, {k: jnp.asarray(v, float) for k, v in x0.items()}), float)]
    builder = cached(("miqp_builder", problem, float(penalty)), lambda: _Builder(problem, penalty))
    best_y, best, hist = None, None, []
    for si, y in enumerate(starts):
        y, cur, used, h = _trust_region_run(problem, space, builder, evaluate, solve, _snap(space, y), method,
                                            temperature, penalty, jax.random.fold_in(k_fit, si), int(radius),
                                            float(delta), max_radius, int(iterations))
        evaluations += used
        hist.append(h)
        if best is None or bool(better(cur, best)):
            best_y, best = y, cur
    y, cur = best_y, best
    point = to_python_point(_point(space, jnp.asarray(y)))
    status = final_status(cur)
    if status != RESULTS.successful and raise_on_infeasible:
        raise NoFeasiblePointError(infeasible_message("miqp_search", problem, point, evaluations))
    return SearchResult(f"miqp[{solver}]", point, float(cur.objective), bool(cur.feasible), evaluations,
                        time.perf_counter() - start, status, {"best": hist}, float(cur.violation))


#: The sequential trust-region MIQP under its heuristic's name (local: no optimality proof; see
#: :func:`diffsys.optimize.exact_search` for the exact method).
trust_region_search = miqp_search


def _trust_region_run(problem, space, builder, evaluate, solve, y, method, temperature, penalty, k_fit, radius,
                      delta, max_radius, iterations):
    """One sequential-MIQP run from ``y``: returns the final design, its evaluation, evaluations used, history."""
    cur = evaluate(jnp.asarray(y))
    evaluations = 1
    r, dl = radius, delta
    r_max = int(max_radius) if max_radius is not None else radius + 1
    hist = []
    for it in range(iterations):
        Q, q, c0, A, b, ev_used = quadratic_model(problem, y, method=method, temperature=temperature,
                                                  penalty=penalty, key=jax.random.fold_in(k_fit, it), radius=r,
                                                  delta=dl, builder=builder)
        evaluations += ev_used
        sol = solve(trust_region_miqp(space, Q, q, c0, A, b, y, r, dl))
        if not sol.feasible:
            r, dl = r - 1, dl / 2
        else:
            y_new = _snap(space, sol.y)
            new = evaluate(jnp.asarray(y_new))
            evaluations += 1
            if bool(better(new, cur)):
                y, cur = y_new, new
                r, dl = min(r + 1, r_max), min(2 * dl, 0.5)
            else:
                r, dl = r - 1, dl / 2
        hist.append(float(cur.objective) if bool(cur.feasible) else math.inf)
        if r < 1:
            break
    return y, cur, evaluations, np.array(hist)


def _snap(space, y):
    """Project domain coordinates onto the lattice (continuous coordinates clipped)."""
    out = np.array(y, float)
    for i, d in enumerate(space.params.values()):
        if isinstance(d, Continuous):
            out[i] = np.clip(out[i], 0.0, 1.0)
        else:
            tab = _table(d)
            out[i] = tab[int(np.argmin(np.abs(tab - out[i])))]
    return out
