"""Predicted vs measured attention-op latency (TensorRT-LLM, A100 / H100, bf16, head_dim 128).

Uses the constants shipped in ``diffsys/hardware/calibration/attention.json`` (fitted on the even rows of each file
by ``benchmarks/calibrate_attention.py``); the scatter shows the held-out odd rows. Writes
``docs/img/attention_validation.png`` (predicted vs measured, four files) and ``docs/img/attention_sweeps.png``
(latency against sequence / cache length for a few shapes, model lines over measured points), and prints the
markdown error table of docs/roofline.md.

    python examples/attention_validation.py [OUT_DIR] [--shared ../shared]
"""

from __future__ import annotations

import argparse
import os
import pathlib

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import diffsys.hardware as H  # noqa: E402
import diffsys.roofline as R  # noqa: E402
from diffsys.hardware import calibration_provenance  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
GPUS = [("a100_sxm", "a100_80gb", "A100-SXM4-80GB"), ("h100_sxm", "h100_sxm", "H100-SXM5-80GB")]
KINDS = [("context", R.prefill_attention_time, "prefill (context)", "seq_len"),
         ("generation", R.decode_attention_time, "decode (generation)", "kv_cache_len")]


def load(shared, kind, tag):
    path = pathlib.Path(shared) / "validation" / "attention" / f"{kind}_attention_{tag}_bf16_hd128.csv"
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    return data[:, :5], data[:, 5] * 1e-6


def predict(fn, accel, x):
    f = jax.jit(lambda v: fn(v[:, 0], v[:, 1], v[:, 2], v[:, 3], v[:, 4], accel).time_s)
    return np.asarray(f(x.astype(np.float32)), dtype=float)


def table():
    """Markdown rows: file, own-fit held-out MAPE/p90/max, transfer from the other GPU, portable entry."""
    report = calibration_provenance("attention")["report"]
    lines = ["| file | held-out MAPE | p90 | max | fit-rows MAPE | other GPU's fit (all rows) | portable `*` "
             "(held-out) |", "|---|---|---|---|---|---|---|"]
    for name, entry in report.items():
        own = entry["own"]
        other = next(v for k, v in entry.items() if k.startswith("from_"))
        pct = lambda v: f"{100 * v:.1f} %"  # noqa: E731
        lines.append(f"| `{name}` | {pct(own['held_out']['mape'])} | {pct(own['held_out']['p90'])} | "
                     f"{pct(own['held_out']['max'])} | {pct(own['fit']['mape'])} | "
                     f"{pct(other['all_rows']['mape'])} | {pct(entry['portable']['held_out']['mape'])} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default=str(ROOT / "docs" / "img"))
    ap.add_argument("--shared", default=os.environ.get("DIFFSYS_SHARED", str(ROOT.parent / "shared")))
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    fig, axes = plt.subplots(2, 2, figsize=(10, 9))
    for i, (kind, fn, label, _) in enumerate(KINDS):
        for j, (tag, key, gpu) in enumerate(GPUS):
            x, meas = load(args.shared, kind, tag)
            held = np.arange(len(meas)) % 2 == 1
            pred = predict(fn, H.preset(key), x)[held]
            meas = meas[held]
            rel = np.abs(pred / meas - 1)
            ax = axes[i, j]
            ax.scatter(meas * 1e6, pred * 1e6, s=3, alpha=0.35, c=np.log2(x[held, 1] + 1), cmap="viridis")
            lo, hi = meas.min() * 1e6 * 0.7, meas.max() * 1e6 * 1.4
            ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
            ax.plot([lo, hi], [1.1 * lo, 1.1 * hi], "k:", lw=0.6)
            ax.plot([lo, hi], [lo / 1.1, hi / 1.1], "k:", lw=0.6)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("measured latency (µs)")
            ax.set_ylabel("predicted latency (µs)")
            ax.set_title(f"{gpu} {label}\nheld-out MAPE {100 * rel.mean():.1f} %, p90 "
                         f"{100 * np.percentile(rel, 90):.1f} % (n={len(meas)})", fontsize=9)
    fig.suptitle("Attention-op latency: prediction vs TensorRT-LLM measurement (colour: log2 length; "
                 "dotted ±10 %)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "attention_validation.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(2, 2, figsize=(10, 8))
    shapes = [(1, 32, 8), (16, 32, 8), (64, 32, 32), (8, 128, 1), (1, 32, 1)]  # the last: XQA/MMHA switch
    for i, (kind, fn, label, col) in enumerate(KINDS):
        for j, (tag, key, gpu) in enumerate(GPUS):
            x, meas = load(args.shared, kind, tag)
            ax = axes[i, j]
            accel = H.preset(key)
            for k, (b, hq, hk) in enumerate(shapes):
                m = (x[:, 0] == b) & (x[:, 2] == hq) & (x[:, 3] == hk)
                if not m.any():
                    continue
                lens = np.unique(np.round(np.geomspace(max(x[m, 1].min(), 1), x[m, 1].max(), 400)))
                grid = np.stack([np.full_like(lens, b), lens, np.full_like(lens, hq), np.full_like(lens, hk),
                                 np.full_like(lens, 128)], 1)
                colour = f"C{k}"
                ax.plot(lens, predict(fn, accel, grid) * 1e6, "-", color=colour, lw=1,
                        label=f"b={b}, hq={hq}, hkv={hk}")
                ax.plot(x[m, 1], meas[m] * 1e6, "o", color=colour, ms=3)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(col)
            ax.set_ylabel("latency (µs)")
            ax.set_title(f"{gpu} {label}: model (lines) vs measured (dots)", fontsize=9)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "attention_sweeps.png", dpi=110)
    plt.close(fig)
    print(table())
    print(f"wrote {out / 'attention_validation.png'} and {out / 'attention_sweeps.png'}")


if __name__ == "__main__":
    main()
