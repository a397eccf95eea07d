"""Full-stack search vs single-layer searches at equal cluster cost (the comparison of COSMIC; Won et al. 2025).

GPT-3 175B trained on 1,024 HGX H100 GPUs (global batch 1,536 × 2,048 tokens, Megatron's tp 8 × pp 8 as the
baseline). :func:`diffsys.llm.full_stack_space` has four layers -- workload (tp, pp, microbatch, recompute),
collective (the algorithm of each network dimension), network (scale-up domain size, scale-up and scale-out
bandwidth) and memory (HBM bandwidth). Every search enumerates its whole grid exactly (temperature 0) with the
cluster's capital cost capped at the baseline's (``diffsys.llm.gpu_capex_usd``):

- *single-layer*: one layer searched, the others at the baseline's values (four searches);
- *layer by layer*: the four single-layer searches in turn, each starting from the previous one's best (a layer
  that finds nothing faster within the budget keeps the previous design);
- *full stack*: all layers at once (1,451,520 points).

Prints the best step time of each search, its design and its evaluation count and time, and writes
docs/img/full_stack_search.png (best step time per search; step time vs capital cost of the full-stack search's
Pareto front with each search's best point).

    python examples/full_stack_search.py
"""

from __future__ import annotations

import pathlib
import time

import numpy as np

from diffsys import llm
from diffsys.optimize import sweep

HERE = pathlib.Path(__file__).resolve().parent
LAYERS = tuple(llm.FULL_STACK_LAYERS)


def _search(space, budget_usd, *, pareto=False, progress=False):
    """Exact sweep of ``space`` for the fastest step within the capital-cost budget."""
    t0 = time.perf_counter()
    res = sweep(llm.training_model, space, "time_s", feasible=lambda m: m.feasible & (m.capex_usd <= budget_usd),
                top_k=1, pareto=("time_s", "capex_usd") if pareto else None, progress=progress)
    seconds = time.perf_counter() - t0
    if not res.n_feasible:
        return {"time_s": float("inf"), "design": {}, "evaluated": res.n_evaluated, "seconds": seconds}, res
    best = res.labels()[0]
    return {"time_s": best["time_s"], "capex_usd": best["capex_usd"], "mfu": best["mfu"],
            "design": {k: v for k, v in best.items() if k in space.names}, "evaluated": res.n_evaluated,
            "seconds": seconds, "point": res.best_point}, res


def study(base: llm.TrainingDesign, budget_usd=None, progress=False) -> dict:
    """Best step time of every search of the module docstring on ``base`` (capex cap ``budget_usd``, default the
    base's own). Returns ``{search name: {time_s, capex_usd, mfu, design, evaluated, seconds}}`` plus the full
    search's sweep result under ``"_full_result"``."""
    base_metrics = llm.training_design_metrics(base)
    budget_usd = float(base_metrics["capex_usd"]) if budget_usd is None else float(budget_usd)
    out = {"baseline": {"time_s": float(base_metrics["time_s"]), "capex_usd": float(base_metrics["capex_usd"]),
                        "mfu": float(base_metrics["mfu"]), "design": {}, "evaluated": 1, "seconds": 0.0}}
    for layer in LAYERS:
        out[layer], _ = _search(llm.full_stack_space(base, layers=(layer,)), budget_usd)
    design = base
    total = dict(out["baseline"], evaluated=0, design={})
    for layer in LAYERS:
        space = llm.full_stack_space(design, layers=(layer,))
        r, _ = _search(space, budget_usd)
        if r["time_s"] < total["time_s"]:  # a layer that finds nothing better keeps the previous design
            design = space.apply(r["point"])
            total["design"].update(r["design"])
            total.update({k: r[k] for k in ("time_s", "capex_usd", "mfu")})
        total["evaluated"] += r["evaluated"]
        total["seconds"] += r["seconds"]
    out["layer_by_layer"] = total
    out["full_stack"], out["_full_result"] = _search(llm.full_stack_space(base), budget_usd, pareto=True,
                                                     progress=progress)
    out["budget_usd"] = budget_usd
    return out


def report(res: dict) -> str:
    base = res["baseline"]["time_s"]
    lines = [f"capital-cost budget: ${res['budget_usd'] / 1e6:.2f} M (the baseline's)",
             f"{'search':16s} {'step_s':>8s} {'speed-up':>9s} {'capex_M$':>9s} {'evals':>10s} {'wall_s':>7s}"]
    for name in ("baseline",) + LAYERS + ("layer_by_layer", "full_stack"):
        r = res[name]
        lines.append(f"{name:16s} {r['time_s']:8.3f} {base / r['time_s']:8.2f}x {r.get('capex_usd', 0) / 1e6:9.2f} "
                     f"{r['evaluated']:10,d} {r['seconds']:7.1f}")
    best_single = min(LAYERS, key=lambda k: res[k]["time_s"])
    lines.append(f"full stack vs best single layer ({best_single}): "
                 f"{res[best_single]['time_s'] / res['full_stack']['time_s']:.2f}x; vs layer by layer: "
                 f"{res['layer_by_layer']['time_s'] / res['full_stack']['time_s']:.2f}x")
    lines.append(f"full-stack design: {res['full_stack']['design']}")
    lines.append(f"layer-by-layer design: {res['layer_by_layer']['design']}")
    return "\n".join(lines)


def plot(res: dict, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ("baseline",) + LAYERS + ("layer_by_layer", "full_stack")
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.4), dpi=120)
    times = [res[n]["time_s"] for n in names]
    colors = ["gray"] + ["C0"] * len(LAYERS) + ["C1", "C3"]
    a.bar(range(len(names)), times, color=colors)
    for i, t in enumerate(times):
        a.text(i, t, f"{res['baseline']['time_s'] / t:.2f}x", ha="center", va="bottom", fontsize=8)
    a.set_xticks(range(len(names)), [n.replace("_", " ") for n in names], rotation=25, ha="right")
    a.set_ylabel("best step time (s)")
    a.set_title("GPT-3 175B on 1,024 GPUs: best step within the baseline's capex")
    a.grid(True, axis="y", alpha=0.3)
    full = res["_full_result"]
    if full.pareto_objectives is not None:
        obj = np.asarray(full.pareto_objectives)
        order = np.argsort(obj[:, 1])
        b.step(obj[order, 1] / 1e6, obj[order, 0], where="post", color="C3", label="full-stack Pareto front")
    for n, c, m in zip(names, colors, "o^v<>sD"):
        r = res[n]
        if np.isfinite(r["time_s"]):
            b.plot(r["capex_usd"] / 1e6, r["time_s"], m, color=c, ms=7, label=n.replace("_", " "))
    b.axvline(res["budget_usd"] / 1e6, color="k", lw=0.8, ls="--", label="budget")
    b.set_xlabel("cluster capital cost (M$)")
    b.set_ylabel("step time (s)")
    b.set_title("step time vs cost (each search's best point)")
    b.grid(True, alpha=0.3)
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main():
    res = study(llm.default_training_design(), progress=True)
    print(report(res))
    out = HERE.parent / "docs" / "img" / "full_stack_search.png"
    plot(res, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
