"""Evolutionary search in JAX: a genetic algorithm with mixed discrete/continuous genes, and CMA-ES.

Both work in the *unit coordinates* of the space (:func:`~diffsys.optimize._objective.to_unit`): a discrete gene is
its lattice index scaled to ``[0, 1]`` (decoded by rounding), a continuous gene its position in the interval (log
coordinates for log domains). Every generation is one ``vmap``-ed evaluation inside a ``lax.scan``, so a whole run
is a single compiled program. Candidates are ranked by Deb's feasibility rules (Deb, "An efficient constraint
handling method for genetic algorithms", CMAME 2000): feasible before infeasible, then objective, then violation.

- :func:`genetic_search`: binary tournaments, uniform crossover (blend crossover for continuous genes, BLX-0.25,
  Eshelman & Schaffer 1993), mutation by ±1 lattice steps or random resets (discrete) and Gaussian steps
  (continuous), and (μ+λ) elitist survival.
- :func:`cma_es`: the covariance matrix adaptation evolution strategy (Hansen, "The CMA evolution strategy: a
  tutorial", arXiv:1604.00772, 2016) over any subset of parameters (the *continuous subspace* by default when a
  fixed design is given), discrete genes rounded at decoding.
- :func:`evolutionary_search`: the GA, then CMA-ES on the continuous subspace of the GA's best design.
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..space import Continuous
from ._objective import (
    RESULTS,
    Evaluation,
    NoFeasiblePointError,
    SearchResult,
    as_problem,
    cached,
    final_status,
    from_unit,
    infeasible_message,
    to_python_point,
    to_unit,
    tournament_key,
)


def _rank(ev: Evaluation, penalty=None):
    """Permutation sorting a batch best-first under Deb's rules (``penalty`` is added to the sort value)."""
    group, value = tournament_key(ev)
    value = jnp.where(jnp.isfinite(value), value, jnp.finfo(value.dtype).max)
    if penalty is not None:
        value = value * (1.0 + penalty)
    return jnp.lexsort((value, group))


def _evaluate_units(problem, z):
    pts = from_unit(problem.space, z)
    return jax.vmap(problem.evaluate)(pts)


def _finish(method, problem, z_best, ev_best, evaluations, start, traj, raise_on_infeasible):
    point = to_python_point(from_unit(problem.space, jnp.asarray(z_best)))
    status = final_status(ev_best)
    if status != RESULTS.successful and raise_on_infeasible:
        raise NoFeasiblePointError(infeasible_message(method, problem, point, evaluations))
    return SearchResult(method, point, float(ev_best.objective), bool(ev_best.feasible), int(evaluations),
                        time.perf_counter() - start, status, traj, float(ev_best.violation))


# == genetic algorithm ===========================================================================================
def genetic_search(problem, space=None, *, key, population: int = 64, generations: int = 30,
                   crossover_rate: float = 0.9, mutation_rate: float | None = None, reset_fraction: float = 0.3,
                   sigma: float = 0.1, init=None, raise_on_infeasible: bool = True,
                   **problem_kwargs) -> SearchResult:
    """A batched GA over mixed discrete/continuous genes (see the module docstring).

    Args:
        problem: a :class:`Problem` (or a model with ``space`` and the Problem's keyword arguments).
        key: PRNG key; the run is deterministic given the key.
        population, generations: ``population × (generations + 1)`` evaluations in all.
        crossover_rate: probability that a child mixes two parents (else it copies the first).
        mutation_rate: per-gene mutation probability (default ``1/ndim``).
        reset_fraction: share of discrete mutations that draw a uniformly random value (the rest step ±1).
        sigma: standard deviation of continuous mutations in unit coordinates.
        init: optional initial designs (a point dict with a leading batch axis) placed in the first population.

    Returns:
        :class:`SearchResult` with ``trajectory["best"]`` (best feasible objective per generation) and
        ``trajectory["feasible_fraction"]``.
    """
    problem = as_problem(problem, space, **problem_kwargs)
    space = problem.space
    if int(population) < 4 or int(generations) < 1:
        raise ValueError(f"population must be >= 4 and generations >= 1, got {population}, {generations}")
    for name, v in (("crossover_rate", crossover_rate), ("reset_fraction", reset_fraction)):
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {v}")
    d = space.ndim
    pm = 1.0 / d if mutation_rate is None else float(mutation_rate)
    doms = list(space.params.values())
    is_cont = jnp.array([isinstance(dm, Continuous) for dm in doms])
    steps = jnp.array([1.0 / max(dm.size - 1, 1) for dm in doms])  # one lattice step in unit coordinates
    sizes = jnp.array([float(dm.size) for dm in doms])
    n = int(population)
    start = time.perf_counter()

    def snap(z):
        """Discrete genes onto their lattice (so duplicates are recognisable and crossover stays exact)."""
        zi = jnp.round(z * (sizes - 1)) / jnp.maximum(sizes - 1, 1)
        return jnp.where(is_cont, jnp.clip(z, 0, 1), zi)

    def tournament(k, group, value):
        a, b = jax.random.randint(k, (2, n), 0, n)
        a_wins = (group[a] < group[b]) | ((group[a] == group[b]) & (value[a] <= value[b]))
        return jnp.where(a_wins, a, b)

    def generation(carry, k):
        z, ev = carry
        group, value = tournament_key(ev)
        value = jnp.where(jnp.isfinite(value), value, jnp.finfo(value.dtype).max)
        k1, k2, k3, k4, k5, k6, k7 = jax.random.split(k, 7)
        pa = z[tournament(k1, group, value)]
        pb = z[tournament(k2, group, value)]
        mix = jax.random.bernoulli(k3, 0.5, (n, d))
        blend = jax.random.uniform(k4, (n, d), minval=-0.25, maxval=1.25)
        child = jnp.where(is_cont, pa + blend * (pb - pa), jnp.where(mix, pa, pb))
        do_x = jax.random.bernoulli(k5, crossover_rate, (n, 1))
        child = jnp.where(do_x, child, pa)
        mutate = jax.random.bernoulli(k6, pm, (n, d))
        ka, kb, kc = jax.random.split(k7, 3)
        step = jnp.where(jax.random.bernoulli(ka, 0.5, (n, d)), 1.0, -1.0) * steps
        reset = jax.random.uniform(kb, (n, d))
        discrete_mut = jnp.where(jax.random.bernoulli(kc, reset_fraction, (n, d)), reset, child + step)
        cont_mut = child + sigma * jax.random.normal(kc, (n, d))
        child = jnp.where(mutate, jnp.where(is_cont, cont_mut, discrete_mut), child)
        child = snap(child)
        cev = _evaluate_units(problem, child)
        # (mu + lambda) survival
        allz = jnp.concatenate([z, child])
        allev = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), ev, cev)
        order = _rank(allev)[:n]
        z = allz[order]
        ev = jax.tree_util.tree_map(lambda a: a[order], allev)
        best = jnp.where(ev.feasible[0], ev.objective[0], jnp.inf)
        return (z, ev), (best, jnp.mean(cev.feasible))

    def run(key, z_init):
        k0, k1 = jax.random.split(key)
        z0 = snap(jax.random.uniform(k0, (n, d)))
        if z_init is not None:
            z0 = z0.at[: z_init.shape[0]].set(snap(z_init))
        ev0 = _evaluate_units(problem, z0)
        order = _rank(ev0)
        carry = (z0[order], jax.tree_util.tree_map(lambda a: a[order], ev0))
        (z, ev), (best, feas) = jax.lax.scan(generation, carry, jax.random.split(k1, generations))
        return z[0], jax.tree_util.tree_map(lambda a: a[0], ev), best, feas

    z_init = None if init is None else to_unit(space, init)[:n]
    settings = (n, int(generations), float(crossover_rate), pm, float(reset_fraction), float(sigma),
                None if z_init is None else z_init.shape)
    run_c = cached(("genetic", problem, settings), lambda: jax.jit(run))
    z_best, ev_best, best, feas = run_c(key, z_init)
    evaluations = n * (int(generations) + 1)
    traj = {"best": np.asarray(best), "feasible_fraction": np.asarray(feas)}
    return _finish("genetic", problem, z_best, ev_best, evaluations, start, traj, raise_on_infeasible)


# == CMA-ES ======================================================================================================
class CMAState(NamedTuple):
    mean: jnp.ndarray
    sigma: jnp.ndarray
    cov: jnp.ndarray
    p_sigma: jnp.ndarray
    p_c: jnp.ndarray
    generation: jnp.ndarray
    best_z: jnp.ndarray
    best_group: jnp.ndarray
    best_value: jnp.ndarray
    best_ev: Evaluation


def cma_es(problem, space=None, *, key, x0=None, names=None, sigma0: float = 0.3, population: int | None = None,
           generations: int = 60, raise_on_infeasible: bool = True, **problem_kwargs) -> SearchResult:
    """CMA-ES (Hansen 2016) over the parameters ``names`` (default: all), the others fixed to ``x0``.

    Args:
        problem: a :class:`Problem` (or a model with ``space`` and the Problem's keyword arguments).
        key: PRNG key; deterministic given the key.
        x0: starting design (point dict of scalars); default the centre of the unit box.
        names: parameters to search (e.g. the continuous subspace); ``None`` searches all (discrete genes rounded).
        sigma0: initial step size in unit coordinates.
        population: λ (default ``4 + ⌊3 ln n⌋``).
        generations: iterations; ``λ · generations`` evaluations.
    """
    problem = as_problem(problem, space, **problem_kwargs)
    space = problem.space
    names = tuple(space.names if names is None else names)
    for nm in names:
        if nm not in space.params:
            raise ValueError(f"cma_es names: unknown parameter {nm!r}; parameters: {list(space.names)}")
    if not names:
        raise ValueError("cma_es needs at least one parameter to search")
    if not float(sigma0) > 0:
        raise ValueError(f"sigma0 must be > 0, got {sigma0}")
    idx = jnp.array([space.names.index(nm) for nm in names])
    nd = len(names)
    lam = int(population) if population is not None else 4 + int(3 * math.log(nd))
    lam = max(lam, 4)
    mu = lam // 2
    w = np.log(mu + 0.5) - np.log(np.arange(1, mu + 1))
    w = w / w.sum()
    mu_eff = 1.0 / np.sum(w**2)
    c_c = (4 + mu_eff / nd) / (nd + 4 + 2 * mu_eff / nd)
    c_s = (mu_eff + 2) / (nd + mu_eff + 5)
    c_1 = 2 / ((nd + 1.3) ** 2 + mu_eff)
    c_mu = min(1 - c_1, 2 * (mu_eff - 2 + 1 / mu_eff) / ((nd + 2) ** 2 + mu_eff))
    d_s = 1 + 2 * max(0.0, math.sqrt((mu_eff - 1) / (nd + 1)) - 1) + c_s
    chi_n = math.sqrt(nd) * (1 - 1 / (4 * nd) + 1 / (21 * nd**2))
    w = jnp.asarray(w)
    start = time.perf_counter()
    if x0 is None:
        z_full0 = jnp.full((space.ndim,), 0.5)
    else:
        z_full0 = to_unit(space, {k: jnp.asarray(v, dtype=float) for k, v in x0.items()})

    def embed(y, z_full0):
        return jnp.broadcast_to(z_full0, y.shape[:-1] + z_full0.shape).at[..., idx].set(y)

    def gen(state: CMAState, k, z_full0):
        evals, evecs = jnp.linalg.eigh(state.cov)
        evals = jnp.maximum(evals, 1e-20)
        bd = evecs * jnp.sqrt(evals)
        zz = jax.random.normal(k, (lam, nd))
        y = zz @ bd.T
        x = state.mean + state.sigma * y
        zc = jnp.clip(x, 0.0, 1.0)
        ev = _evaluate_units(problem, embed(zc, z_full0))
        out = jnp.sum((x - zc) ** 2, axis=-1)  # distance outside the box, penalizes the ranking
        order = _rank(ev, penalty=out)
        ys = y[order[:mu]]
        y_w = w @ ys
        mean = state.mean + state.sigma * y_w
        c_inv_sqrt = (evecs / jnp.sqrt(evals)) @ evecs.T
        p_s = (1 - c_s) * state.p_sigma + math.sqrt(c_s * (2 - c_s) * mu_eff) * (c_inv_sqrt @ y_w)
        norm = jnp.linalg.norm(p_s)
        g = state.generation + 1
        h_s = norm / jnp.sqrt(1 - (1 - c_s) ** (2 * g)) < (1.4 + 2 / (nd + 1)) * chi_n
        p_c = (1 - c_c) * state.p_c + jnp.where(h_s, math.sqrt(c_c * (2 - c_c) * mu_eff), 0.0) * y_w
        delta = jnp.where(h_s, 0.0, c_c * (2 - c_c))
        rank_mu = (ys * w[:, None]).T @ ys
        cov = (1 + c_1 * delta - c_1 - c_mu) * state.cov + c_1 * jnp.outer(p_c, p_c) + c_mu * rank_mu
        cov = 0.5 * (cov + cov.T)
        sigma = state.sigma * jnp.exp((c_s / d_s) * (norm / chi_n - 1))
        sigma = jnp.clip(sigma, 1e-8, 1.0)
        # incumbent
        bi = order[0]
        grp, val = tournament_key(jax.tree_util.tree_map(lambda a: a[bi], ev))
        val = jnp.where(jnp.isfinite(val), val, jnp.finfo(val.dtype).max)
        take = (grp < state.best_group) | ((grp == state.best_group) & (val < state.best_value))
        best_z = jnp.where(take, zc[bi], state.best_z)
        best_ev = jax.tree_util.tree_map(lambda a, b: jnp.where(take, a[bi], b), ev, state.best_ev)
        new = CMAState(mean, sigma, cov, p_s, p_c, g, best_z, jnp.where(take, grp, state.best_group),
                       jnp.where(take, val, state.best_value), best_ev)
        return new, (jnp.where(best_ev.feasible, best_ev.objective, jnp.inf), sigma)

    def run(key, z_full0):
        m0 = z_full0[idx]
        ev0 = jax.tree_util.tree_map(lambda a: a[0], _evaluate_units(problem, embed(m0, z_full0)[None]))
        grp, val = tournament_key(ev0)
        val = jnp.where(jnp.isfinite(val), val, jnp.finfo(val.dtype).max)
        s0 = CMAState(m0, jnp.asarray(sigma0, m0.dtype), jnp.eye(nd, dtype=m0.dtype), jnp.zeros(nd, m0.dtype),
                      jnp.zeros(nd, m0.dtype), jnp.asarray(0, jnp.int32), m0, grp, val, ev0)
        s, (best, sig) = jax.lax.scan(lambda st, k: gen(st, k, z_full0), s0, jax.random.split(key, generations))
        return embed(s.best_z, z_full0), s.best_ev, best, sig

    run_c = cached(("cma_es", problem, names, lam, int(generations), float(sigma0)), lambda: jax.jit(run))
    z_best, ev_best, best, sig = run_c(key, jnp.asarray(z_full0, jnp.result_type(float)))
    evaluations = lam * int(generations) + 1
    traj = {"best": np.asarray(best), "sigma": np.asarray(sig)}
    return _finish("cma_es", problem, z_best, ev_best, evaluations, start, traj, raise_on_infeasible)


# == GA + CMA-ES ================================================================================================
def evolutionary_search(problem, space=None, *, key, population: int = 64, generations: int = 30,
                        cma_generations: int = 30, raise_on_infeasible: bool = True, **problem_kwargs) -> SearchResult:
    """The GA, then CMA-ES over the continuous parameters with the GA's best discrete genes fixed."""
    problem = as_problem(problem, space, **problem_kwargs)
    space = problem.space
    start = time.perf_counter()
    k1, k2 = jax.random.split(key)
    ga = genetic_search(problem, key=k1, population=population, generations=generations, raise_on_infeasible=False)
    cont = [n for n, d in space.params.items() if isinstance(d, Continuous) and d.hi > d.lo]
    best = ga
    traj = {"genetic": ga.trajectory}
    evaluations = ga.evaluations
    if cont and cma_generations > 0:
        cm = cma_es(problem, key=k2, x0=ga.point, names=cont, sigma0=0.1, generations=cma_generations,
                    raise_on_infeasible=False)
        evaluations += cm.evaluations
        traj["cma_es"] = cm.trajectory
        if (cm.feasible and not ga.feasible) or (cm.feasible == ga.feasible and (
                cm.objective < ga.objective if cm.feasible else cm.violation < ga.violation)):
            best = cm
    if not best.feasible and raise_on_infeasible:
        raise NoFeasiblePointError(infeasible_message("evolutionary_search", problem, best.point, evaluations))
    return best._replace(method="evolutionary", evaluations=evaluations, seconds=time.perf_counter() - start,
                         trajectory=traj)
