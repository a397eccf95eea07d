"""Chiplet-package co-optimization: GA, MIQP and gradient search over :func:`diffsys.chiplet.mcm_space`.

Searches use :mod:`diffsys.optimize` (``genetic_search``, ``miqp_search``, ``gradient_search``) on the protocol model
of the package (:func:`diffsys.chiplet.package_metrics`); every result is re-evaluated by the exact model
(temperature 0) at the discretized design and compared with :func:`diffsys.chiplet.baseline` (the uniform partition
on a mesh without diagonal links, memory on the perimeter, the best single strategy for all groups).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice
from ..chiplet import (
    STRATEGIES,
    ChipletPackage,
    MCMDesign,
    MCMMetrics,
    MCMModel,
    baseline,
    baseline_placement,
    design_from_point,
    mcm_space,
    memory_proximity,
    package_metrics,
)
from ..optimize import Problem, genetic_search, gradient_search, miqp_search

METHODS = ("ga", "miqp", "gradient", "ga+gradient")


def mcm_problem(model: MCMModel, package: ChipletPackage, parametrization: str = "affinity",
                objective: str = "edp_Js", fixed=None, **space_kwargs):
    """A :class:`diffsys.optimize.Problem` minimizing ``objective`` (default EdP) over :func:`mcm_space`
    (``fixed``: parameter values held constant and left out of the space)."""
    fixed = {k: float(v) for k, v in (fixed or {}).items()}
    space = mcm_space(model, parametrization, fixed=fixed, **space_kwargs)
    prox = memory_proximity(model)

    def evaluate(point, *, temperature=0.0):
        return package_metrics(model(design_from_point(model, point, parametrization, temperature, prox, fixed),
                                     package, temperature=temperature))

    return Problem(evaluate, space, objective=objective, log_objective=True, name=f"mcm-{model.workload.name}-{model.graph.rows}x{model.graph.cols}")


class MCMResult(NamedTuple):
    """One optimization: the exact design and metrics at it, the baseline, evaluations and wall time."""

    method: str
    design: MCMDesign
    metrics: MCMMetrics
    edp: float
    baseline_edp: float
    improvement: float
    evaluations: int
    seconds: float
    point: dict
    label: dict


def optimize_mcm(model: MCMModel, package: ChipletPackage, method: str = "ga", *, key=None, budget: str = "default",
             **kwargs) -> MCMResult:
    """Run one search method and re-evaluate its design with the exact model.

    ``method``:

    - ``"ga"``: genetic search over strategies, diagonal pattern, memory placement and affinity skews, seeded with
      the uniform mesh-only designs;
    - ``"miqp"``: sequential trust-region MIQP (quadratic model least-squares fitted to exact evaluations in the
      trust region, JAX enumeration + ADMM solver) from the baseline over the same space;
    - ``"gradient"``: annealed gradient search over the full relaxed partition logits, with the baseline's discrete
      choices held fixed (the value of non-uniform partitions alone). Its random starts can end in relaxed local
      minima worse than the uniform baseline; the result is reported as found (``improvement < 1``), see
      ``docs/chiplet.md``;
    - ``"ga+gradient"``: the GA's discrete choices, then gradient search over the full partition logits.

    ``budget``: ``"quick"`` (a few seconds per search) or ``"default"``. Extra keywords go to the search function.
    """
    check_choice("method", method, METHODS)
    check_choice("budget", budget, ("quick", "default"))
    key = jax.random.PRNGKey(0) if key is None else key
    quick = budget == "quick"
    base_design, base_metrics = baseline(model, package)
    t0 = time.perf_counter()
    evaluations = 0
    fixed = None
    if method in ("ga", "ga+gradient"):
        problem = mcm_problem(model, package, "affinity")
        kw = {"population": 32, "generations": 12} if quick else {"population": 64, "generations": 30}
        kw.update(kwargs if method == "ga" else {})
        res = genetic_search(problem, key=key, init=_baseline_points(model, problem.space), **kw)
        param, point, evaluations = "affinity", dict(res.point), int(res.evaluations)
        # continuous affinity genes never land on exactly 0: keep the GA's discrete choices with uniform fractions
        # when the exact model says they are better (the affinity optimum often is 0, see docs/chiplet.md)
        uniform = {k: (0.0 if k.startswith("affinity.") else v) for k, v in point.items()}
        if _exact(model, package, uniform, param) < _exact(model, package, point, param):
            point = uniform
        evaluations += 2
        if method == "ga+gradient":
            fixed = {k: v for k, v in res.point.items() if not k.startswith("affinity.")}
    if method == "miqp":
        problem = mcm_problem(model, package, "affinity")
        kw = {"solver": "jax", "method": "fit", "radius": 1, "iterations": 3 if quick else 12}
        kw.update(kwargs)
        x0 = _baseline_point(model, problem.space, base_design)
        res = miqp_search(problem, key=key, x0=x0, **kw)
        param, point, evaluations = "affinity", dict(res.point), int(res.evaluations)
    if method in ("gradient", "ga+gradient"):
        if fixed is None:
            fixed = {k: v for k, v in _baseline_point(model, mcm_space(model, "full"), base_design).items()
                     if not k.startswith("logit.")}
        problem = mcm_problem(model, package, "full", fixed=fixed)
        kw = {"n_starts": 4, "steps": 60 if quick else 200, "learning_rate": 0.1, "temperature": (1.0, 0.02),
                  "model_temperature": (0.3, 0.003), "repair": False}
        kw.update(kwargs if method == "gradient" else {})
        res = gradient_search(problem, key=key, **kw)
        refined = {k: float(v) for k, v in {**fixed, **res.point}.items()}
        evaluations += int(res.evaluations)
        if method == "gradient" or float(res.objective) < _exact(model, package, point, param):
            param, point = "full", refined  # the refinement is kept only if the exact model says it is better
    seconds = time.perf_counter() - t0
    point = {k: float(v) for k, v in point.items()}
    design = design_from_point(model, point, param)
    metrics = jax.jit(lambda d: model(d, package))(design)  # exact re-evaluation at the discretized design
    edp = float(metrics.edp_Js) if bool(metrics.feasible) else float("inf")
    b = float(base_metrics.edp_Js)
    return MCMResult(method, design, metrics, edp, b, b / edp, evaluations, seconds, point,
                     mcm_space(model, param).label(point))


def _exact(model, package, point, param):
    m = model(design_from_point(model, {k: float(v) for k, v in point.items()}, param), package)
    return float(m.edp_Js) if bool(m.feasible) else float("inf")


def _baseline_point(model, space, design):
    groups = model.workload.group_names
    pt = {}
    for n in space.names:
        if n.startswith(("affinity.", "logit.")):
            pt[n] = 0.0
    for i, g in enumerate(groups):
        pt[f"strategy.{g}"] = float(design.strategy[i])
    pt["diagonals"] = float(design.diagonals)
    pt["memory"] = float(design.memory)
    return {k: v for k, v in pt.items() if k in space.names}


def _baseline_points(model, space):
    """The three uniform mesh-only perimeter designs (one per strategy), as a batched initial population."""
    pts = [_baseline_point(model, space, model.uniform_design(s, "none", baseline_placement(model)))
           for s in STRATEGIES]
    return {n: jnp.asarray([p[n] for p in pts]) for n in space.names}


# == lever study: the baseline, each co-optimization lever alone and all together, GA and exact ==================
#: lattices of the continuous levers (every one contains the baseline value first or at its centre)
AFFINITY_GRID = (-0.25, 0.0, 0.25)  # θ: logits = θ · proximity (±0.5): work ratios up to e^0.25 = 1.28
REDISTRIBUTION_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)  # ρ: share of every flow moved to the YX port
DIAGONAL_SHARE_GRID = (1.0, 0.75, 0.5, 0.25)  # δ: share of every flow routed with the diagonals
STUDY_PACKAGINGS = ("organic", "bridge", "interposer")
LEVERS = ("mapping", "diagonals", "redistribution", "non_uniform", "memory", "packaging", "all", "all_packaging")
LEVER_TITLES = {"mapping": "strategy per group", "diagonals": "diagonal links", "redistribution":
                "on-chip redistribution", "non_uniform": "non-uniform partitioning", "memory": "memory placement",
                "packaging": "packaging technology", "all": "all levers (packaging fixed)",
                "all_packaging": "all levers and packaging"}


class LeverStudy:
    """The MCM lever study of one workload on one R×C grid: one compiled, batched evaluator over integer lattice
    points, the baseline, and for every lever a GA and an exact search restricted to that lever.

    A lattice point holds, per partition group, a strategy index and an affinity index (``AFFINITY_GRID``), then the
    diagonal pattern, the diagonal share (``DIAGONAL_SHARE_GRID``), the memory placement, the redistribution share
    (``REDISTRIBUTION_GRID``) and the packaging technology (``packagings``). The **baseline** (the paper's) is the
    uniform partition on a mesh (no diagonals, no redistribution) with memory on the perimeter, the first packaging
    and the best single strategy for all groups. A lever search changes only that lever's coordinates:

    - ``mapping``: the strategy of every group (``3^G`` points);
    - ``diagonals``: the diagonal pattern and the diagonal share;
    - ``redistribution``: the share ``ρ``;
    - ``non_uniform``: the affinity ``θ_g`` of every group (``3^G`` points);
    - ``memory``: the memory placement; ``packaging``: the technology;
    - ``all``: every coordinate but the packaging (the co-optimization on a given package);
    - ``all_packaging``: every coordinate.

    ``exact`` enumerates the lever's lattice exhaustively (a proof of optimality on the lattice); for ``all`` the
    lattice is too large, and ``exact`` is *block-coordinate exact*: each lever's block enumerated exhaustively in
    turn from the baseline until no block improves (a local optimum with respect to every block, not a proof). The GA
    (tournament selection, uniform crossover, ±1-step / reset mutation, (μ+λ) elitism: the operators of
    :func:`diffsys.optimize.genetic_search`) runs on the host over the same compiled evaluator, seeded with the
    baseline, so a search never returns anything worse than the baseline and every lever shares one compilation.
    """

    def __init__(self, workload, rows: int, cols: int, *, packagings=STUDY_PACKAGINGS, overlap: float = 0.0,
                 batch: int = 64, **package_kwargs):
        from ..chiplet import D2DGraph, Packaging
        from ..chiplet import packaging as packaging_preset

        n = rows * cols
        self.graph = D2DGraph.build(rows, cols, routing="dor", placements="edge", alt_routing="dor_yx")
        self.model = MCMModel(workload, self.graph)
        self.packagings = tuple(packagings)
        pks = []
        for tech in self.packagings:
            pre = packaging_preset(tech)
            fields = {f: getattr(pre, f) for f in ("bandwidth_density_Bps_per_mm", "energy_J_per_bit", "latency_s",
                                                   "reach_mm", "die_gap_mm")}
            pks.append(ChipletPackage.split(n, Packaging(name="study", **fields), overlap=overlap, **package_kwargs))
        self.packages = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *pks)
        self.prox = jnp.asarray(memory_proximity(self.model), jnp.float32)
        G = self.model.num_groups
        self.G = G
        g = self.graph
        self.sizes = np.array([3] * G + [len(AFFINITY_GRID)] * G
                              + [len(g.pattern_names), len(DIAGONAL_SHARE_GRID), len(g.placement_names),
                                 len(REDISTRIBUTION_GRID), len(self.packagings)])
        self.names = ([f"strategy.{x}" for x in workload.group_names] + [f"affinity.{x}" for x in workload.group_names]
                      + ["diagonals", "diagonal_share", "memory", "redistribution", "packaging"])
        iD = 2 * G
        self.blocks = {"mapping": list(range(G)), "non_uniform": list(range(G, 2 * G)),
                       "diagonals": [iD, iD + 1], "memory": [iD + 2], "redistribution": [iD + 3],
                       "packaging": [iD + 4]}
        self.blocks["all_packaging"] = list(range(len(self.sizes)))
        self.blocks["all"] = list(range(iD + 4))
        self.batch = int(batch)
        self._eval = jax.jit(jax.vmap(self._metrics))
        self.evaluations = 0
        base = np.zeros(len(self.sizes), np.int64)
        base[G:2 * G] = AFFINITY_GRID.index(0.0)
        base[iD + 2] = g.placement_names.index(baseline_placement(self.model))
        cands = np.repeat(base[None], 3, 0)
        cands[:, :G] = np.arange(3)[:, None]
        edp = self.edp(cands)
        self.baseline_point = cands[int(np.argmin(edp))]
        self.baseline_edp = float(np.min(edp))

    # -- evaluation ---------------------------------------------------------------------------------------------
    def design(self, idx):
        """The :class:`~diffsys.chiplet.MCMDesign` and package of a lattice point (traced or concrete)."""
        G = self.G
        idx = jnp.asarray(idx)
        strategy = idx[:G].astype(float)
        theta = jnp.asarray(AFFINITY_GRID, float)[idx[G:2 * G]]
        diag, dshare, mem, red, pkg = (idx[2 * G + k] for k in range(5))
        prox = self.prox[mem]
        design = MCMDesign(partition_logits=theta[:, None] * prox[None, :], strategy=strategy,
                           diagonals=diag.astype(float), memory=mem.astype(float),
                           redistribution=jnp.asarray(REDISTRIBUTION_GRID, float)[red],
                           diagonal_share=jnp.asarray(DIAGONAL_SHARE_GRID, float)[dshare])
        package = jax.tree_util.tree_map(lambda x: x[pkg], self.packages)
        return design, package

    def _metrics(self, idx):
        design, package = self.design(idx)
        return self.model(design, package)

    def metrics(self, points) -> MCMMetrics:
        """Exact metrics of a batch of lattice points ``(B, D)``, evaluated in chunks of the compiled batch size."""
        points = np.atleast_2d(np.asarray(points, np.int32))
        out = []
        for i in range(0, len(points), self.batch):
            chunk = points[i:i + self.batch]
            pad = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch - len(chunk), 0)])
            m = self._eval(jnp.asarray(pad))
            out.append(jax.tree_util.tree_map(lambda x, k=len(chunk): np.asarray(x)[:k], m))
        self.evaluations += len(points)
        return jax.tree_util.tree_map(lambda *x: np.concatenate(x), *out)

    def edp(self, points) -> np.ndarray:
        m = self.metrics(points)
        return np.where(m.feasible, m.edp_Js, np.inf)

    def label(self, point) -> dict:
        """Readable values of a lattice point."""
        G, g = self.G, self.graph
        wn = self.model.workload.group_names
        p = [int(v) for v in point]
        return {"strategies": {wn[i]: STRATEGIES[p[i]] for i in range(G)},
                "affinity": {wn[i]: AFFINITY_GRID[p[G + i]] for i in range(G)},
                "diagonals": g.pattern_names[p[2 * G]], "diagonal_share": DIAGONAL_SHARE_GRID[p[2 * G + 1]],
                "memory": g.placement_names[p[2 * G + 2]], "redistribution": REDISTRIBUTION_GRID[p[2 * G + 3]],
                "packaging": self.packagings[p[2 * G + 4]]}

    # -- searches -----------------------------------------------------------------------------------------------
    def lattice_size(self, lever: str) -> int:
        return int(np.prod(self.sizes[self.blocks[lever]]))

    def _enumerate(self, start, coords):
        radices = self.sizes[coords]
        total = int(np.prod(radices))
        best_pt, best = np.asarray(start).copy(), float(self.edp(start[None])[0])
        chunk = 16 * self.batch
        for lo in range(0, total, chunk):
            flat = np.arange(lo, min(lo + chunk, total))
            digits = np.stack(np.unravel_index(flat, radices), -1)
            pts = np.repeat(np.asarray(start)[None], len(flat), 0)
            pts[:, coords] = digits
            e = self.edp(pts)
            k = int(np.argmin(e))
            if e[k] < best:
                best, best_pt = float(e[k]), pts[k]
        return best_pt, best

    def exact(self, lever: str, max_sweeps: int = 4):
        """Exhaustive enumeration of the lever's lattice from the baseline (``all``: block-coordinate exact)."""
        check_choice("lever", lever, LEVERS)
        if not lever.startswith("all"):
            return self._enumerate(self.baseline_point, self.blocks[lever])
        pt, best = self.baseline_point.copy(), self.baseline_edp
        blocks = ("mapping", "non_uniform", "diagonals", "memory", "redistribution")
        blocks += ("packaging",) if lever == "all_packaging" else ()
        for _ in range(max_sweeps):
            before = best
            for blk in blocks:
                pt, best = self._enumerate(pt, self.blocks[blk])
            if best >= before * (1 - 1e-9):
                break
        return pt, best

    def ga(self, lever: str, *, population: int = 32, generations: int = 10, seed: int = 0,
           crossover_rate: float = 0.9, reset_fraction: float = 0.3):
        """The GA over the lever's coordinates (others at the baseline); returns ``(point, edp)``."""
        check_choice("lever", lever, LEVERS)
        coords = np.asarray(self.blocks[lever])
        rng = np.random.default_rng(seed)
        sizes = self.sizes[coords]
        n, d = int(population), len(coords)
        pm = 1.0 / d
        pop = np.repeat(self.baseline_point[None], n, 0)
        pop[1:, coords] = rng.integers(0, sizes, (n - 1, d))
        fit = self.edp(pop)
        for _ in range(int(generations)):
            def tournament():
                a, b = rng.integers(0, n, (2, n))
                return np.where(fit[a] <= fit[b], a, b)
            pa, pb = pop[tournament()][:, coords], pop[tournament()][:, coords]
            child = np.where(rng.random((n, d)) < 0.5, pa, pb)
            child = np.where(rng.random((n, 1)) < crossover_rate, child, pa)
            mutate = rng.random((n, d)) < pm
            step = child + rng.choice([-1, 1], (n, d))
            reset = rng.integers(0, sizes, (n, d))
            mutant = np.where(rng.random((n, d)) < reset_fraction, reset, np.clip(step, 0, sizes - 1))
            child = np.where(mutate, mutant, child)
            kids = np.repeat(self.baseline_point[None], n, 0)
            kids[:, coords] = child
            kfit = self.edp(kids)
            allp, allf = np.concatenate([pop, kids]), np.concatenate([fit, kfit])
            order = np.argsort(allf, kind="stable")[:n]
            pop, fit = allp[order], allf[order]
        return pop[0], float(fit[0])

    def breakdown(self, point) -> dict:
        """Latency and energy shares of a design (the room any D2D lever has)."""
        m = self.metrics(np.asarray(point)[None])
        f = lambda x: float(np.asarray(x)[0])
        lat, en = f(m.latency_s), f(m.energy_J)
        return {"latency_s": lat, "energy_J": en, "edp_Js": f(m.edp_Js),
                "compute_share": f(m.compute_time_s) / lat,
                "communication_share": (f(m.communication_time_s) + f(m.congestion_time_s)) / lat,
                "d2d_energy_share": (f(m.energy_d2d_J) + f(m.energy_noc_J)) / en,
                "dram_energy_share": f(m.energy_dram_J) / en,
                "max_link_utilization": f(m.max_link_utilization),
                # each term summed over layers, as a share of the latency: which bound binds
                "die_bound_share": f(m.die_time_s) / lat, "link_bound_share": f(m.serialization_time_s) / lat,
                "dram_bound_share": f(m.dram_time_s) / lat}


def mcm_lever_study(workload, rows: int, cols: int, *, levers=LEVERS, ga_kwargs=None, seed: int = 0,
                    progress=None, **study_kwargs):
    """Run :class:`LeverStudy` on one workload: GA and exact per lever. Returns ``(study, rows)``, one row per lever
    with ``ga`` / ``exact`` improvements over the baseline EdP (exact re-evaluation at the returned lattice point),
    evaluations, seconds and the chosen values."""
    t0 = time.perf_counter()
    study = LeverStudy(workload, rows, cols, **study_kwargs)
    compile_s = time.perf_counter() - t0
    out = []
    for lever in levers:
        row = {"workload": workload.name, "chiplets": rows * cols, "lever": lever, "title": LEVER_TITLES[lever],
               "lattice_points": study.lattice_size(lever), "baseline_edp": study.baseline_edp}
        for method in ("ga", "exact"):
            ev0, t = study.evaluations, time.perf_counter()
            kw = dict(ga_kwargs or {})
            if lever.startswith("all"):
                kw = {"population": 64, "generations": 20, **kw}
            pt, edp = study.ga(lever, seed=seed, **kw) if method == "ga" else study.exact(lever)
            row[method] = study.baseline_edp / edp
            row[f"{method}_evaluations"] = study.evaluations - ev0
            row[f"{method}_seconds"] = round(time.perf_counter() - t, 2)
            row[f"{method}_design"] = study.label(pt)
            row[f"{method}_point"] = [int(v) for v in pt]
        out.append(row)
        if progress:
            progress(row)
    study.compile_seconds = compile_s
    return study, out
