"""Validate diffsys.llm.training_step against measured Megatron-DeepSpeed iterations (vTrain data, A100 clusters).

Protocol (docs/llm.md):
1. NVLink constants from the measured 8-GPU NCCL all-reduce LUT (a separate data set): bus efficiency and per-step
   latency of the ring model.
2. Four global constants (GEMM efficiency, memory efficiency, per-kernel overhead, scale-out efficiency) fitted with
   optax Adam on the log error of the *even* rows of ground_truth_multi.csv; errors reported on the *odd* rows
   (held out), and on the single-node CSV with the same constants (transfer, not fitted).
3. Megatron-LM (Narayanan et al. 2021) Table 1 per-GPU TFLOP/s: reported, not fitted.

Writes docs/llm_validation.png and prints the markdown tables used in docs/llm.md.

    python examples/llm_validation.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import os
import pathlib

import numpy as np

from diffsys import llm
from diffsys.llm import _validation as V

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Narayanan et al., SC 2021, Table 1: params (B), heads, hidden, layers, TP, PP, GPUs, batch, TFLOP/s per GPU.
NARAYANAN_TABLE1 = [
    (1.7, 24, 2304, 24, 1, 1, 32, 512, 137), (3.6, 32, 3072, 30, 2, 1, 64, 512, 138),
    (7.5, 32, 4096, 36, 4, 1, 128, 512, 142), (18.4, 48, 6144, 40, 8, 1, 256, 1024, 135),
    (39.1, 64, 8192, 48, 8, 2, 512, 1536, 138), (76.1, 80, 10240, 60, 8, 4, 1024, 1792, 140),
    (145.6, 96, 12288, 80, 8, 8, 1536, 2304, 148), (310.1, 128, 16384, 96, 8, 16, 1920, 2160, 155),
    (529.6, 128, 20480, 105, 8, 35, 2520, 2520, 163), (1008.0, 160, 25600, 128, 8, 64, 3072, 3072, 163),
]


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


def narayanan_rows(cluster):
    """Predicted TFLOP/s per GPU (Narayanan Eq. 3 FLOPs / predicted step time) for Table 1, the microbatch chosen
    as the fastest memory-feasible one in {1, 2, 4, 8} (Table 1 does not list it)."""
    import equinox as eqx

    rows = []
    for p_b, a, h, L, t, p, n, B, meas in NARAYANAN_TABLE1:
        model = llm.Transformer(name=f"{p_b}B", hidden=h, ffn=4 * h, n_layers=L, n_heads=a, n_kv_heads=a,
                                head_dim=h // a, vocab=51200, seq_len=2048, max_seq_len=2048)
        cl = eqx.tree_at(lambda c: c.n_gpus, cluster, float(n))
        cl = eqx.tree_at(lambda c: c.accelerator, cl, llm.cluster_preset("dgx_a100").accelerator)
        best = None
        for b in (1, 2, 4, 8):
            d = n // (t * p)
            if B % (d * b):
                continue
            par = llm.Parallelism(tp=t, pp=p, dp=d, microbatch=b, global_batch=B, recompute="full",
                                  interleave=1, grad_bytes=2)
            r = llm.training_step(model, cl, par)
            if bool(r.fits) and (best is None or float(r.time_s) < best[0]):
                best = (float(r.time_s), b)
        eq3 = 96 * B * 2048 * L * h**2 * (1 + 2048 / (6 * h) + 51200 / (16 * L * h))
        pred = eq3 / best[0] / n / 1e12
        rows.append((p_b, t, p, n, best[1], meas, pred, (pred - meas) / meas * 100))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    args = ap.parse_args()
    fitted, (up_eff, up_lat), multi, single, train, test = fit(pathlib.Path(args.shared))
    print(f"NVLink from the all-reduce LUT: efficiency {up_eff:.3f}, latency {up_lat * 1e6:.2f} us/step")
    print("fitted on even multi-node rows:",
          {n: float(getattr(fitted, n)) for n in V.FIT_NAMES_MULTI})
    res = {}
    for name, rows in (("multi, fit rows (even)", train), ("multi, held out (odd)", test), ("multi, all", multi),
                       ("single-node (transfer)", single)):
        pred = V.predict_times(rows, fitted)
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
    for p_b, t, p, n, b, meas, pred_tf, err in narayanan_rows(fitted):
        print(f"| {p_b:g}B | {t} | {p} | {n} | {b} | {meas} | {pred_tf:.0f} | {err:+.1f} % |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 5.0), dpi=120)
    for (name, (pred, rows)), style in zip(res.items(), ("o", "s", None, "^")):
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
    out = ROOT / "docs" / "llm_validation.png"
    os.makedirs(out.parent, exist_ok=True)
    fig.savefig(out)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
