"""Power excursions of pipelined LLM training vs microbatch size (in the spirit of CharLLM-PPT).

A 1F1B pipeline (4 stages × 16-way data parallel × 2-way tensor parallel, 128 H100s) trains a 7B-class model on
short sequences. Small microbatches leave the GEMMs memory bound (lower busy power) but lengthen the step; large
microbatches saturate the tensor cores, so the synchronous drop at the gradient all-reduce is a bigger, sharper
swing of the facility load. The plot shows the cluster-power timeline of one step for three microbatch sizes and
the swing, peak and step time over a sweep; the gradient of the swing w.r.t. the (relaxed, continuous) microbatch
size is printed.

    python examples/pipeline_power_excursions.py [--out docs/img/pipeline_power_excursions.png]
"""

from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import diffsys.hardware as H
import diffsys.power as P

SETUP = {"global_batch": 1024, "seq_len": 128, "hidden": 4096, "layers": 32, "pipeline_stages": 4,
         "data_parallel": 16, "tensor_parallel": 2}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parents[1]
                                         / "docs/img/pipeline_power_excursions.png"))
    args = ap.parse_args()
    acc = H.h100_sxm()
    run = lambda b: P.pipeline_power_excursion(acc, microbatch_size=b, **SETUP)
    sizes = jnp.array([1.0, 2.0, 4.0, 8.0, 16.0])
    sweep = jax.vmap(run)(sizes)
    for b, s, pk, tr, t in zip(sizes, sweep.swing_W, sweep.peak_cluster_W, sweep.trough_cluster_W,
                               sweep.step_time_s):
        print(f"microbatch {float(b):4.0f}: step {float(t) * 1e3:7.1f} ms  peak {float(pk) / 1e3:6.1f} kW  "
              f"trough {float(tr) / 1e3:6.1f} kW  swing {float(s) / 1e3:6.1f} kW ({float(s / pk):.0%})")
    g = jax.grad(lambda b: run(b).swing_W)(4.0)
    print(f"d swing / d microbatch at b=4: {float(g) / 1e3:.2f} kW per sample")

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for b in (1.0, 4.0, 16.0):
        r = run(b)
        ax[0].plot(r.time_s / r.step_time_s * 100, r.timeline_W / 1e3, label=f"microbatch {b:.0f}")
    ax[0].set_xlabel("time within one training step (%)")
    ax[0].set_ylabel("cluster power (kW)")
    ax[0].set_title("128 × H100, PP=4 DP=16 TP=2")
    ax[0].legend(fontsize=8)
    ax[1].plot(sizes, sweep.swing_W / 1e3, "o-", label="swing (peak − trough)")
    ax[1].plot(sizes, sweep.peak_cluster_W / 1e3, "s--", label="peak")
    ax[1].set_xscale("log", base=2)
    ax[1].set_xlabel("microbatch size (sequences)")
    ax[1].set_ylabel("kW")
    ax2 = ax[1].twinx()
    ax2.plot(sizes, sweep.step_time_s * 1e3, "^:", color="gray", label="step time")
    ax2.set_ylabel("step time (ms)")
    ax[1].legend(fontsize=8, loc="center left")
    ax[1].set_title("power excursion vs microbatch size")
    fig.tight_layout()
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=130)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
