"""Predicted vs measured TPOT and TTFT on the H100 serving rows (docs/img/serving_validation.png) and a Pareto
front of a deployment search (docs/img/serving_pareto.png).

    python benchmarks/calibrate_serving.py   # first: fit + predictions (docs/serving_validation.json)
    python examples/serving_validation.py [--no-search]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from diffsys.llm import _serving_data as sd  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-search", action="store_true")
    args = ap.parse_args(argv)
    with open(os.path.join(ROOT, "docs", "serving_validation.json")) as f:
        pred = json.load(f)["predicted"]
    rows = [r for r in sd.read_rows() if r["id"] in pred]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    fams = sorted({r["family"] for r in rows})
    cmap = plt.get_cmap("tab10")
    for j, (key, name) in enumerate((("tpot_s", "TPOT"), ("ttft_s", "TTFT"))):
        ax = axes[j]
        for i, fam in enumerate(fams):
            for held, marker in ((False, "o"), (True, "x")):
                sel = [r for r in rows if r["family"] == fam and r["fit"] != held]
                if not sel:
                    continue
                m = np.asarray([r[key] for r in sel]) * 1e3
                p = np.asarray([pred[r["id"]][j] for r in sel]) * 1e3
                ax.scatter(m, p, s=10, marker=marker, color=cmap(i), alpha=0.7,
                           label=f"{fam}" if not held else None)
        lo, hi = ax.get_xlim()[0], ax.get_xlim()[1]
        xs = np.geomspace(max(lo, 1e-1), hi, 10)
        ax.plot(xs, xs, "k-", lw=0.8)
        for band in (0.8, 1.25):
            ax.plot(xs, xs * band, "k:", lw=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"measured {name} (ms)")
        ax.set_ylabel(f"predicted {name} (ms)")
        ax.set_title(f"{name}: o fit rows, x held-out rows")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(ROOT, "docs", "img", "serving_validation.png"), dpi=110)
    if not args.no_search:
        from diffsys.llm import serving_spec
        from diffsys.problems import search_deployments

        spec = serving_spec("Qwen/Qwen3-32B", precision="fp8", isl=1024, osl=1024, concurrency=32)
        res = search_deployments(spec, gpus=8, ttft_s=2.0, tpot_s=0.1, precisions=("bf16", "fp8"),
                                 plot=os.path.join(ROOT, "docs", "img", "serving_pareto.png"))
        print(json.dumps(res["best"]), f"{res['evals_per_s']:.3g} evaluations/s")


if __name__ == "__main__":
    main()
