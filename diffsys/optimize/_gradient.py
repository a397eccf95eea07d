"""Gradient search over a design space: multi-start optax descent on a relaxed model, annealed to the lattice.

1. **Reparametrize.** Every non-categorical parameter lives on ℝ through the space's bijection
   (``to_unconstrained``: a logistic map of the interval, in log coordinates for log domains), so bounds always
   hold. A categorical parameter with ``K`` options is ``K`` logits.
2. **Relax.** At temperature ``τ`` a lattice coordinate is soft-rounded (``relaxation="soft"``, Agustsson & Theis
   2020) or straight-through rounded (``"ste"``, Bengio et al. 2013); a categorical takes the softmax-weighted mean
   of its options (``"soft"``), Gumbel-softmax samples (``"gumbel"``, Jang et al. ICLR 2017; Maddison et al. ICLR
   2017), or hard one-hot values with softmax gradients (``"ste"``). The model receives ``temperature=τ`` too, so
   its own max/ceil/selections are smooth.
3. **Anneal.** ``τ`` decays geometrically from ``temperature[0]`` to ``temperature[1]`` over the steps; every start
   (``n_starts``, sampled uniformly from the space) descends ``log(objective)`` plus the constraint term in one
   ``vmap``-ed ``lax.scan``.
4. **Constraints** by an exact L1 penalty ``μ·v`` (``constraint="penalty"``) or an augmented Lagrangian
   ``λ·v + ρ/2·v²`` with ``λ ← λ + ρ·v`` every ``al_every`` steps (``"augmented_lagrangian"``; Nocedal & Wright,
   *Numerical Optimization*, ch. 17), ``v ≥ 0`` being the problem's total violation.
5. **Discretize and repair.** The final relaxed points are projected onto the lattice (``space.discretize``), then
   improved by greedy neighbour search (:func:`~diffsys.optimize._repair.local_search`) and evaluated exactly.

Evaluations are counted as one per value-and-gradient of the relaxed model per start, plus every exact evaluation of
the repair.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..space import Categorical, Continuous
from ._objective import (
    RESULTS,
    NoFeasiblePointError,
    SearchResult,
    as_problem,
    cached,
    final_status,
    infeasible_message,
    to_python_point,
)
from ._repair import best_index, local_search

RELAXATIONS = ("soft", "ste", "gumbel")
CONSTRAINTS = ("penalty", "augmented_lagrangian")


def _fwd_bounds(d):
    """The domain's interval in its own coordinate (log for log domains), as Python floats (jit-safe)."""
    lo, hi = float(d.lower), float(d.upper)
    return (math.log(lo), math.log(hi)) if d.log else (lo, hi)


def to_unconstrained(d, x, eps=1e-3):
    """Logistic reparametrization of ``x`` within the domain's hull (log coordinates on log domains)."""
    lo, hi = _fwd_bounds(d)
    if hi == lo:
        return jnp.zeros_like(jnp.asarray(x, dtype=jnp.result_type(float)))
    y = jnp.log(x) if d.log else x
    p = jnp.clip((y - lo) / (hi - lo), eps, 1 - eps)
    return jnp.log(p) - jnp.log1p(-p)


def from_unconstrained(d, u):
    lo, hi = _fwd_bounds(d)
    y = lo + (hi - lo) * jax.nn.sigmoid(u)
    return jnp.exp(y) if d.log else y


def _init_params(space, key, n):
    """Uniform starting points in the unconstrained parametrization: ``{name: (n,) or (n, K)}``."""
    pts = space.sample(key, n)
    u = {}
    for name, d in space.params.items():
        if isinstance(d, Categorical):
            idx = d.index_of(pts[name])
            u[name] = 0.5 * jax.nn.one_hot(idx, d.size)  # a mild preference for the sampled option
        else:
            u[name] = to_unconstrained(d, pts[name])
    return u


def relaxed_point(space, u, temperature, relaxation="soft", key=None):
    """The relaxed design point of one start (``u`` = ``{name: scalar or (K,) logits}``) at ``temperature``."""
    point = {}
    for i, (name, d) in enumerate(space.params.items()):
        if isinstance(d, Categorical):
            vals = jnp.asarray(d.values, dtype=u[name].dtype)
            logits = u[name]
            if relaxation == "gumbel" and key is not None:
                logits = logits + jax.random.gumbel(jax.random.fold_in(key, i), logits.shape, logits.dtype)
            w = jax.nn.softmax(logits / jnp.maximum(temperature, 1e-6))
            if relaxation == "ste":
                hard = jax.nn.one_hot(jnp.argmax(w), d.size, dtype=w.dtype)
                w = w + jax.lax.stop_gradient(hard - w)
            point[name] = jnp.sum(w * vals)
            continue
        x = from_unconstrained(d, u[name])
        if isinstance(d, Continuous):
            point[name] = x
        elif relaxation == "ste":
            point[name] = x + jax.lax.stop_gradient(d.discretize(x) - x)
        else:
            point[name] = d.relax(x, temperature)
    return point


def exact_point(space, u):
    """The lattice point nearest to a start's parameters (categoricals: the arg-max logit)."""
    point = {}
    for name, d in space.params.items():
        if isinstance(d, Categorical):
            point[name] = jnp.asarray(d.values, dtype=u[name].dtype)[jnp.argmax(u[name], axis=-1)]
        else:
            point[name] = d.discretize(from_unconstrained(d, u[name]))
    return point


def gradient_search(problem, space=None, *, key, n_starts: int = 16, steps: int = 100, learning_rate: float = 0.1,
                    optimizer=None, relaxation: str = "soft", temperature=(1.0, 0.02), model_temperature=None,
                    constraint: str = "penalty", penalty: float = 10.0, al_every: int = 10,
                    repair: bool = True, repair_iters: int = 50, raise_on_infeasible: bool = True,
                    **problem_kwargs) -> SearchResult:
    """Multi-start annealed gradient search (see the module docstring).

    Args:
        problem: a :class:`Problem` (or a model, with ``space`` and the Problem's keyword arguments).
        key: PRNG key (starts and Gumbel noise): the result is deterministic given the key.
        n_starts: parallel starts (one ``vmap``).
        steps: optimizer steps per start.
        learning_rate: Adam's step size in the unconstrained coordinates (ignored when ``optimizer`` is given).
        optimizer: an ``optax.GradientTransformation`` (default ``optax.adam(learning_rate)``).
        relaxation: ``"soft"``, ``"ste"`` or ``"gumbel"``.
        temperature: ``(start, end)`` of the geometric annealing schedule (lattice units; ``end > 0``).
        model_temperature: ``(start, end)`` passed to the model (default: same as ``temperature``).
        constraint: ``"penalty"`` or ``"augmented_lagrangian"``; ``penalty`` is ``μ`` (or the initial ``ρ``).
        repair: run neighbour search from the discretized final points.
        raise_on_infeasible: raise :class:`NoFeasiblePointError` when no feasible design was found.

    Returns:
        :class:`SearchResult`; ``trajectory`` holds ``loss`` and ``violation`` (``(steps, n_starts)``), the relaxed
        ``objective`` per step, the ``temperature`` schedule and the per-start exact objectives after repair.
    """
    problem = as_problem(problem, space, **problem_kwargs)
    space = problem.space
    if relaxation not in RELAXATIONS:
        raise ValueError(f"relaxation must be one of {RELAXATIONS}, got {relaxation!r}")
    if constraint not in CONSTRAINTS:
        raise ValueError(f"constraint must be one of {CONSTRAINTS}, got {constraint!r}")
    if int(n_starts) < 1 or int(steps) < 1:
        raise ValueError(f"n_starts and steps must be >= 1, got n_starts={n_starts}, steps={steps}")
    t0, t1 = (float(temperature[0]), float(temperature[1]))
    if not (t0 > 0 and t1 > 0):
        raise ValueError(f"temperature must be a (start, end) pair of positive numbers, got {temperature}")
    mt0, mt1 = (t0, t1) if model_temperature is None else map(float, model_temperature)
    opt = optimizer if optimizer is not None else optax.adam(learning_rate)
    start_time = time.perf_counter()
    k_init, k_noise = jax.random.split(key)

    def loss_fn(u, tau, mtau, lam, rho, k):
        pt = relaxed_point(space, u, tau, relaxation, k)
        ev = problem.evaluate(pt, mtau)
        f = problem.loss_value(ev.objective)
        v = ev.violation
        if constraint == "penalty":
            c = rho * v
        else:
            c = lam * v + 0.5 * rho * v**2
        return f + c, (ev.objective, v)

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def run(k_init, k_noise):
        u0 = _init_params(space, k_init, n_starts)
        s0 = jax.vmap(opt.init)(u0)
        lam0 = jnp.zeros(n_starts)
        frac = jnp.arange(steps) / max(steps - 1, 1)
        taus = t0 * (t1 / t0) ** frac
        mtaus = mt0 * (mt1 / mt0) ** frac

        def step(carry, inp):
            u, s, lam = carry
            i, tau, mtau = inp
            keys = jax.random.split(jax.random.fold_in(k_noise, i), n_starts)
            (loss, (obj, v)), g = jax.vmap(grad_fn, in_axes=(0, None, None, 0, None, 0))(
                u, tau, mtau, lam, penalty, keys)
            g = jax.tree_util.tree_map(lambda a: jnp.where(jnp.isfinite(a), a, 0.0), g)
            upd, s = jax.vmap(opt.update)(g, s, u)
            u = optax.apply_updates(u, upd)
            if constraint == "augmented_lagrangian":
                lam = jnp.where((i + 1) % al_every == 0, lam + penalty * v, lam)
            return (u, s, lam), (loss, v, obj)

        (u, _, _), (loss, viol, obj) = jax.lax.scan(step, (u0, s0, lam0), (jnp.arange(steps), taus, mtaus))
        x = space.to_vector(jax.vmap(lambda uu: exact_point(space, uu))(u))
        return x, loss, viol, obj, taus

    opt_key = ("adam", float(learning_rate)) if optimizer is None else optimizer
    settings = (int(n_starts), int(steps), relaxation, t0, t1, mt0, mt1, constraint, float(penalty), int(al_every),
                opt_key)
    run_c = cached(("gradient", problem, settings), lambda: jax.jit(run))
    x, loss, viol, obj, taus = run_c(k_init, k_noise)
    evaluations = int(n_starts) * int(steps)
    if repair:
        repair_c = cached(("local_search", problem, int(repair_iters)),
                          lambda: jax.jit(lambda x: local_search(problem, x, repair_iters)))
        x, ev, used = repair_c(x)
        evaluations += int(used)
    else:
        exact = cached(("exact", problem),
                       lambda: jax.jit(jax.vmap(lambda xx: problem.evaluate(space.from_vector(xx)))))
        ev = exact(x)
        evaluations += int(n_starts)
    i = best_index(ev)
    best = space.from_vector(x[i])
    best_ev = jax.tree_util.tree_map(lambda a: a[i], ev)
    status = final_status(best_ev)
    point = to_python_point(best)
    seconds = time.perf_counter() - start_time
    if status != RESULTS.successful and raise_on_infeasible:
        raise NoFeasiblePointError(infeasible_message("gradient_search", problem, point, evaluations))
    traj = {"loss": np.asarray(loss), "violation": np.asarray(viol), "objective": np.asarray(obj),
            "temperature": np.asarray(taus), "final_objective": np.asarray(ev.objective),
            "final_feasible": np.asarray(ev.feasible)}
    return SearchResult("gradient", point, float(best_ev.objective), bool(best_ev.feasible), evaluations, seconds,
                        status, traj, float(best_ev.violation))
