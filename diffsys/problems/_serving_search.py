"""Serving deployment search: the most tokens/s/GPU under TTFT and TPOT SLAs, and the Pareto front of
tokens/s/GPU vs tokens/s/user, swept with :func:`diffsys.optimize.sweep` over the serving model
(:func:`diffsys.llm.serving_model`; docs/serving.md)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ..llm import ServingSpec, serving_model
from ..optimize import sweep
from ..space import Categorical, DesignSpace, PowerOfTwo


def serving_search_space(spec: ServingSpec, *, gpus=8, max_concurrency=512):
    """The deployment space of :func:`search_deployments`: TP, EP, concurrency (the running batch), agg vs
    disagg, prefill/decode worker counts (the P:D ratio) and the prefill TP, over ``spec`` as the base."""
    g = 1 << (int(gpus).bit_length() - 1)
    moe = spec.arch.transformer.is_moe
    params = {"tp": PowerOfTwo(1, min(g, 8)), "concurrency": PowerOfTwo(1, max_concurrency),
              "disagg": Categorical((0.0, 1.0)), "prefill_workers": Categorical((1.0, 2.0, 3.0, 4.0)),
              "decode_workers": Categorical((1.0, 2.0, 3.0, 4.0)), "prefill_tp": PowerOfTwo(1, min(g, 8))}
    if moe:
        params["ep"] = PowerOfTwo(1, min(g, 8))
    return DesignSpace(params, base=spec)


def search_deployments(spec: ServingSpec, *, gpus=8, ttft_s=2.0, tpot_s=0.05, precisions=None,
                       plot=None, chunk_size=4096) -> dict:
    """Sweep deployments (:func:`search_space`, every precision in ``precisions``) with
    :func:`diffsys.optimize.sweep` for the most tokens/s/GPU with TTFT <= ``ttft_s``, TPOT <= ``tpot_s`` and at
    most ``gpus`` GPUs; returns the best point, the Pareto front (tokens/s/GPU vs tokens/s/user) and the
    evaluation rates (``evals_per_s`` end to end incl. compilation, ``compile_s``, ``run_evals_per_s`` of the
    compiled sweep, ``None`` when it is too small to time apart from compilation); ``plot`` writes the front as a
    PNG."""
    heads = float(spec.arch.transformer.n_heads)
    experts = float(spec.arch.transformer.n_experts)

    best, fronts, evaluated, seconds, compile_s = None, [], 0, 0.0, 0.0
    for prec in precisions or (spec.precision,):
        base = ServingSpec(**{**{f: getattr(spec, f) for f in spec.__dataclass_fields__}, "precision": prec})
        space = serving_search_space(base, gpus=gpus)

        def model(s, *, temperature=0.0):
            m = serving_model(s, temperature=temperature)
            valid = (jnp.mod(heads, s.tp) == 0) & (jnp.mod(heads, s.prefill_tp) == 0) & \
                (jnp.mod(experts, s.ep) == 0)
            good = m.feasible & valid & (m.gpus <= gpus) & (m.ttft_s <= ttft_s) & (m.tpot_s <= tpot_s)
            return eqx.tree_at(lambda q: q.feasible, m, good)

        res = sweep(model, space, lambda m: -m.tokens_per_s_per_gpu, top_k=1,
                    pareto=(lambda m: -m.tokens_per_s_per_gpu, lambda m: -m.tokens_per_s_per_user),
                    chunk_size=chunk_size, progress=False)
        evaluated += res.n_evaluated
        seconds += res.seconds
        compile_s += res.compile_seconds
        if res.n_feasible and (best is None or -float(res.top_objective[0]) > best["tokens_per_s_per_gpu"]):
            best = {k: float(v) for k, v in res.best_point.items()}
            best.update(precision=prec, tokens_per_s_per_gpu=-float(res.top_objective[0]))
        if res.pareto_objectives is not None and len(res.pareto_objectives):
            fronts.append((prec, -np.asarray(res.pareto_objectives)))
    if plot:
        plot_pareto(fronts, plot, spec.arch.hf_id)
    run_s = seconds - compile_s  # None below: the sweep was too small to time apart from its compilation
    return {"best": best, "evaluated": evaluated, "evals_per_s": evaluated / max(seconds, 1e-9),
            "compile_s": compile_s, "run_evals_per_s": evaluated / run_s if run_s > 0.01 * seconds else None,
            "pareto": {p: f.tolist() for p, f in fronts}}


def plot_pareto(fronts, path=None, title="", ax=None):
    """Pareto fronts ``[(label, array[:, (tokens/s/GPU, tokens/s/user)]), ...]`` as tokens/s/GPU vs
    tokens/s/user; returns the figure and writes ``path`` when given."""
    from .._plotting import figure_and_axes, save_figure

    fig, ax = figure_and_axes(ax, figsize=(5.5, 4))
    for label, f in fronts:
        f = np.asarray(f)
        f = f[np.argsort(f[:, 1])]
        ax.plot(f[:, 1], f[:, 0], "o-", ms=3, label=label)
    ax.set_xlabel("tokens/s/user")
    ax.set_ylabel("tokens/s/GPU")
    ax.set_title(f"{title}: Pareto front" if title else "Pareto front")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)
