"""Validate diffsys.llm.training_step against measured Megatron-DeepSpeed iterations (vTrain data, A100 clusters).

Protocol (docs/llm.md):
1. NVLink constants from the measured 8-GPU NCCL all-reduce LUT (a separate data set): bus efficiency and per-step
   latency of the ring model.
2. Four global constants (GEMM efficiency, memory efficiency, per-kernel overhead, scale-out efficiency) fitted with
   optax Adam on the log error of the *even* rows of ground_truth_multi.csv; errors reported on the *odd* rows
   (held out), and on the single-node CSV with the same constants (transfer, not fitted).
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
    sizes, times = V.load_allreduce_lut(vt / "allreduce_a100" / "AR_GPU8_1M_1024M_LUT")
    up_eff, up_lat = V.fit_allreduce(sizes, times, 8, 300e9)
    multi = V.load_vtrain_csv(vt / "ground_truth_multi.csv")
    single = V.load_vtrain_csv(vt / "ground_truth_single.csv")
    idx = np.arange(len(multi["time_ms"]))
    train = {k: v[idx % 2 == 0] for k, v in multi.items()}
    test = {k: v[idx % 2 == 1] for k, v in multi.items()}
    cluster = V.vtrain_cluster(scaleup_efficiency=up_eff, scaleup_latency_s=up_lat)
    fitted = V.fit_compute_constants(train, cluster, names=V.FIT_NAMES_MULTI, steps=400)
    return fitted, (up_eff, up_lat), multi, single, train, test


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    args = ap.parse_args()
    fitted, (up_eff, up_lat), multi, single, train, test = fit(pathlib.Path(args.shared))
    print(f"NVLink from the all-reduce LUT: efficiency {up_eff:.3f}, latency {up_lat * 1e6:.2f} us/step")
    print("fitted on even multi-node rows:",
          {n: float(getattr(fitted, n)) for n in V.FIT_NAMES_MULTI})
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
