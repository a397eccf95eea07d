"""Validate diffsys.llm.training_step against measured Megatron-DeepSpeed iterations (vTrain data, A100 clusters).

Protocol (docs/llm.md):
1. Kernels on the roofline op model of the A100 preset (the calibrated GEMM kernel model), collectives on the
   topologies ``dgx_a100`` network (the library's one NVLink calibration); nothing kernel- or network-level is
   fitted here.
2. Three global constants (per-kernel framework overhead, elementwise traffic per stored activation byte, scale-out
   efficiency) fitted with ``diffsys._fit.fit_least_squares`` (Levenberg–Marquardt, relative residuals) on the
   *even* rows of ground_truth_multi.csv; errors reported on the *odd* rows (held out), and on the single-node CSV
   with the same constants (transfer, not fitted).
3. Megatron-LM (Narayanan et al. 2021) Table 1 per-GPU TFLOP/s: reported, not fitted.

Writes docs/img/llm_validation.png and prints the markdown tables used in docs/llm.md.

    python examples/llm_validation.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import os
import pathlib

import numpy as np

from diffsys.llm import _validation as V

ROOT = pathlib.Path(__file__).resolve().parents[1]

def fit(shared: pathlib.Path):
    vt = shared / "validation" / "vtrain"
    multi = V.load_vtrain_csv(vt / "ground_truth_multi.csv")
    single = V.load_vtrain_csv(vt / "ground_truth_single.csv")
    idx = np.arange(len(multi["time_ms"]))
    train = {k: v[idx % 2 == 0] for k, v in multi.items()}
    test = {k: v[idx % 2 == 1] for k, v in multi.items()}
    start = {"kernel_overhead_s": 10e-6, "elementwise_traffic": 1.0, "scaleout_efficiency": 0.7}
    fitted, res = V.fit_constants(train, V.vtrain_cluster(), start=start, max_steps=128)
    return fitted, res, multi, single, train, test


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    args = ap.parse_args()
    fitted, res, multi, single, train, test = fit(pathlib.Path(args.shared))
    print(f"fitted on even multi-node rows ({res.steps} LM steps, converged: {res.success}):", res.params)
    res = {}
    for name, rows, rc in (("multi, fit rows (even)", train, "full"), ("multi, held out (odd)", test, "full"),
                           ("multi, all", multi, "full"), ("single-node (transfer), no recompute", single, "none"),
                           ("single-node (transfer), full recompute", single, "full")):
        pred = V.predict_times(rows, fitted, rc)
        res[name] = (pred, rows)
        mean, mx = V.mape(pred, rows["time_ms"] / 1e3)
        print(f"| {name} | {len(pred)} | {mean:.1f} % | {mx:.1f} % |")
    # per model size on the held-out rows
    pred, rows = res["multi, held out (odd)"]
    print("\n| model | rows | MAPE | max |")
    for pb in np.unique(rows["params_b"]):
        m = rows["params_b"] == pb
        mean, mx = V.mape(pred[m], rows["time_ms"][m] / 1e3)
        print(f"| {pb:g}B | {m.sum()} | {mean:.1f} % | {mx:.1f} % |")

    print("\n| params | TP | PP | GPUs | b (chosen) | measured TFLOP/s | diffsys | error |")
    for p_b, t, p, n, b, meas, pred_tf, err in V.megatron_table1(fitted):
        print(f"| {p_b:g}B | {t} | {p} | {n} | {b} | {meas} | {pred_tf:.0f} | {err:+.1f} % |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 5.0), dpi=120)
    for (name, (pred, rows)), style in zip(res.items(), ("o", "s", None, "^", None)):
        if style is None:
            continue
        ax.scatter(rows["time_ms"] / 1e3, pred, s=14, marker=style, label=name, alpha=0.75)
    lim = [0.05, 100]
    ax.plot(lim, lim, "k-", lw=0.8)
    ax.fill_between(lim, [x * 0.9 for x in lim], [x * 1.1 for x in lim], color="k", alpha=0.08, label="±10 %")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lim)
    ax.set_ylim(lim)
    ax.set_xlabel("measured iteration time (s)")
    ax.set_ylabel("diffsys predicted (s)")
    ax.set_title("Megatron-DeepSpeed on A100 (vTrain data)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    out = ROOT / "docs" / "img" / "llm_validation.png"
    os.makedirs(out.parent, exist_ok=True)
    fig.savefig(out)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
