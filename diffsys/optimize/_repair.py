"""Local repair on the lattice: greedy neighbour search from exact (discretized) designs.

A *move* changes one coordinate: a lattice index by ±1 (integers, powers of two, divisors), a categorical to any
other option, or a continuous value by ± one grid step (in log coordinates for log domains, clipped to the
interval). From each starting design the best move under Deb's feasibility rules (:func:`better`) is taken while it
improves; all starts advance in one ``vmap``. This is how relaxed solutions are made exact and feasible, and how
searches polish their incumbents.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..space import Categorical, Continuous, DesignSpace
from ._objective import Evaluation, Problem, better


def _moves(space: DesignSpace):
    """Static list of ``(dim, kind, amount)``; kind 0 = index step, 1 = categorical shift, 2 = continuous step."""
    moves = []
    for i, d in enumerate(space.params.values()):
        if isinstance(d, Categorical):
            moves += [(i, 1, j) for j in range(1, d.size)]
        elif isinstance(d, Continuous):
            if d.hi > d.lo:
                moves += [(i, 2, -1), (i, 2, +1)]
        elif d.size > 1:
            moves += [(i, 0, -1), (i, 0, +1)]
    return moves


def neighbours(space: DesignSpace, x):
    """All single-coordinate moves of the design vector ``x`` (``(ndim,)``): returns ``(n_moves, ndim)``."""
    doms = list(space.params.values())
    rows = []
    for i, kind, amount in _moves(space):
        d = doms[i]
        if kind == 2:
            lo, hi = d._fwd(d.lo), d._fwd(d.hi)
            step = (hi - lo) / max(d.grid - 1, 1)
            new = d._inv(jnp.clip(d._fwd(x[i]) + amount * step, lo, hi))
        else:
            idx = d.index_of(x[i])
            idx = (idx + amount) % d.size if kind == 1 else jnp.clip(idx + amount, 0, d.size - 1)
            new = d.grid_value(idx)
        rows.append(x.at[i].set(new.astype(x.dtype)))
    return jnp.stack(rows) if rows else x[None]


def n_moves(space: DesignSpace) -> int:
    return max(len(_moves(space)), 1)


def make_evaluator(problem: Problem):
    """``ev(x) -> Evaluation`` at temperature 0 for a design vector ``x`` (``(ndim,)``)."""
    space = problem.space

    def ev(x):
        return problem.evaluate(space.from_vector(x))

    return ev


def local_search(problem: Problem, x0, max_iters: int = 50):
    """Greedy best-improvement neighbour search from each row of ``x0`` (``(n, ndim)`` exact designs).

    Returns ``(x, evaluation, evaluations_used)``; ``evaluations_used`` counts neighbour evaluations of starts that
    were still improving (a traced int32).
    """
    space = problem.space
    ev = make_evaluator(problem)
    m = n_moves(space)
    x0 = jnp.asarray(x0)
    cur = jax.vmap(ev)(x0)

    def step_one(x, e):
        nb = neighbours(space, x)
        nev = jax.vmap(ev)(nb)
        # best neighbour by Deb's rules: tournament reduction
        def pick(carry, i):
            bi = carry
            take = better(jax.tree_util.tree_map(lambda a: a[i], nev), jax.tree_util.tree_map(lambda a: a[bi], nev))
            return jnp.where(take, i, bi), None

        bi, _ = jax.lax.scan(pick, jnp.int32(0), jnp.arange(nb.shape[0]))
        be = jax.tree_util.tree_map(lambda a: a[bi], nev)
        improve = better(be, e)
        x_new = jnp.where(improve, nb[bi], x)
        e_new = jax.tree_util.tree_map(lambda a, b: jnp.where(improve, a, b), be, e)
        return x_new, e_new, improve

    def cond(c):
        it, _, _, active, _ = c
        return (it < max_iters) & jnp.any(active)

    def body(c):
        it, x, e, active, used = c
        x_new, e_new, improve = jax.vmap(step_one)(x, e)
        keep = active[:, None]
        x = jnp.where(keep, x_new, x)
        e = jax.tree_util.tree_map(lambda a, b: jnp.where(active, a, b), e_new, e)
        used = used + m * jnp.sum(active).astype(jnp.int32)
        return it + 1, x, e, active & improve, used

    init = (jnp.int32(0), x0, cur, jnp.ones(x0.shape[0], bool), jnp.int32(x0.shape[0]))
    _, x, e, _, used = jax.lax.while_loop(cond, body, init)
    return x, e, used


def best_index(ev: Evaluation) -> int:
    """Host-side index of the best evaluation of a batch under Deb's rules."""
    feas = np.asarray(ev.feasible)
    obj = np.where(np.isfinite(np.asarray(ev.objective)), np.asarray(ev.objective), np.inf)
    viol = np.nan_to_num(np.asarray(ev.violation), nan=np.inf)
    if feas.any():
        return int(np.argmin(np.where(feas, obj, np.inf)))
    return int(np.argmin(viol))
