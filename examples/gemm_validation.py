"""Predicted vs measured GEMM kernel time: the default ``op_time(gemm(m, n, k), preset, dtype)`` against the
TensorRT-LLM GEMMs of ``../shared/validation/gemm`` (every shape of each file).

Run: ``JAX_PLATFORMS=cpu python examples/gemm_validation.py [OUT.png]`` (default ``docs/img/gemm_validation.png``).
"""

from __future__ import annotations

import os
import pathlib
import sys

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import diffsys.hardware as H  # noqa: E402
import diffsys.roofline as R  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = pathlib.Path(os.environ.get("DIFFSYS_SHARED", ROOT.parent / "shared")) / "validation" / "gemm"
FILES = (("gemm_h100_sxm_bfloat16.csv", "h100_sxm", "bf16", "H100 SXM bf16"),
         ("gemm_h100_sxm_fp8.csv", "h100_sxm", "fp8", "H100 SXM fp8 (dyn. quant.)"),
         ("gemm_a100_sxm_bfloat16.csv", "a100_80gb", "bf16", "A100 SXM4 80GB bf16"))


def main(out=ROOT / "docs" / "img" / "gemm_validation.png"):
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for ax, (name, preset, dtype, title) in zip(axes, FILES):
        d = np.genfromtxt(DATA / name, delimiter=",", names=True)
        accel = H.preset(preset)
        f = jax.jit(lambda m, n, k: R.op_time(R.gemm(m, n, k), accel, dtype).time_s)
        pred = np.asarray(f(*(np.asarray(d[c], np.float32) for c in ("m", "n", "k"))), float) * 1e6
        meas = d["latency_us"]
        rel = np.abs(pred / meas - 1)
        sc = ax.scatter(meas, pred, c=np.log2(d["m"]), s=2, cmap="viridis", alpha=0.5, rasterized=True)
        lo, hi = meas.min() * 0.8, meas.max() * 1.2
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.plot([lo, hi], [lo * 1.1, hi * 1.1], "k:", lw=0.6)
        ax.plot([lo, hi], [lo / 1.1, hi / 1.1], "k:", lw=0.6)
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel="measured (µs)",
               ylabel="predicted (µs)")
        ax.set_title(f"{title}\nMAPE {100 * rel.mean():.1f} %, p90 {100 * np.percentile(rel, 90):.1f} %, "
                     f"{len(d):,} shapes", fontsize=10)
        print(f"{name}: MAPE {100 * rel.mean():.2f} %  p90 {100 * np.percentile(rel, 90):.1f} %  "
              f"max {100 * rel.max():.1f} %")
    fig.colorbar(sc, ax=axes, label="log2 m", shrink=0.8)
    fig.suptitle("diffsys GEMM kernel model (default op_time) vs TensorRT-LLM GEMMs; dotted: ±10 %", y=1.04)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
