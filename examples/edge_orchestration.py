"""Pareto fronts of LLM stage placement on heterogeneous edge SoCs (Jetson AGX Orin: GPU / DLA / A78AE CPU;
Snapdragon 8 Gen 3: Adreno / Hexagon / Kryo) — latency, energy per token and accuracy proxy — by the sweep engine
(81 placements × precisions, exact) cross-checked by the exact search (docs/edge.md).

    python examples/edge_orchestration.py                  # table of the fronts and the energy optima
    python examples/edge_orchestration.py --plot docs/img  # also docs/img/edge_orchestration_pareto.png
"""

from __future__ import annotations

import argparse

import numpy as np

from diffsys import problems
from diffsys.optimize import exact_search, sweep

SHORT = {"jetson_orin": "GPU", "jetson_orin_dla": "DLA", "jetson_orin_cpu": "CPU", "snapdragon_8g3_gpu": "GPU",
         "snapdragon_8g3_npu": "NPU", "snapdragon_8g3_cpu": "CPU"}


def label(point, platform):
    names = problems.engine_names(platform)
    eng = "/".join(SHORT[names[int(round(float(point[k])))]]
                   for k in ("prefill_device", "decode_low_device", "decode_high_device"))
    return f"{eng} int{int(point['weight_bits'])}" if point["weight_bits"] < 16 else f"{eng} fp16"


def run(platform):
    model = problems.edge_orchestration_problem(platform=platform).model
    res = sweep(model, problems.edge_orchestration_space(), "energy_per_token_J",
                pareto=("latency_s", "energy_per_token_J", "quality_loss"), progress=False)
    ex = exact_search(problems.edge_orchestration_problem(platform=platform))
    n = len(res.pareto_objectives)
    pts = [{k: np.asarray(v)[i] for k, v in res.pareto_points.items()} for i in range(n)]
    return res, ex, pts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plot", metavar="DIR", help="write edge_orchestration_pareto.png into DIR")
    args = ap.parse_args(argv)
    results = {}
    for platform in ("jetson_orin", "snapdragon_8g3"):
        res, ex, pts = run(platform)
        results[platform] = (res, pts)
        print(f"\n{platform}: {res.n_evaluated} points, {len(pts)} on the (latency, energy/token, quality) front; "
              f"exact energy optimum {ex.objective:.4f} J/token at {label(ex.point, platform)} "
              f"(sweep: {float(res.top_objective[0]):.4f})")
        print(f"  {'placement (prefill/decode lo/decode hi)':42s} {'latency s':>10s} {'J/token':>8s} {'ppl +%':>7s}")
        for p, o in sorted(zip(pts, res.pareto_objectives), key=lambda z: z[1][0]):
            print(f"  {label(p, platform):42s} {o[0]:10.3f} {o[1]:8.4f} {100 * o[2]:7.2f}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, (platform, (res, pts)) in zip(axes, results.items()):
            o = res.pareto_objectives
            sc = ax.scatter(o[:, 0], 1e3 * o[:, 1], c=100 * o[:, 2], cmap="viridis", s=40)
            for p, oo in zip(pts, o):
                ax.annotate(label(p, platform), (oo[0], 1e3 * oo[1]), fontsize=6, xytext=(3, 2),
                            textcoords="offset points")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("request latency (s): 512-token prompt, 128 output tokens")
            ax.set_ylabel("energy per output token (mJ)")
            ax.set_title(f"{platform}: Pareto front (Llama 3.2 1B)")
            fig.colorbar(sc, ax=ax, label="perplexity increase (%)")
        fig.tight_layout()
        path = f"{args.plot.rstrip('/')}/edge_orchestration_pareto.png"
        fig.savefig(path, dpi=130)
        print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
