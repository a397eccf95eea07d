"""The block model's transient against HotSpot 6's transient output (upstream examples/example1: ev6 + gcc).

Reference: ``tests/data/hotspot_example1`` (HotSpot commit f18831e, steady state then 100 × 10 ms samples; made by
``benchmarks/hotspot_transient_reference.py``). Prints max/mean |ΔT| over all 100 steps × 30 units for each
integrator and plots predicted vs HotSpot traces for a few units.

    python examples/hotspot_transient_validation.py [--out docs/img/hotspot_transient_ev6.png]
"""

from __future__ import annotations

import argparse
import pathlib

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import diffsys.power as P
from diffsys.io import read_flp, read_hotspot_config, read_ptrace, read_steady
from diffsys.testing import float64

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "hotspot_example1"
UNITS = ("IntReg_0", "LdStQ", "Dcache", "Icache", "FPMul_0", "L2")
METHODS = (("exact", 1), ("backward_euler", 1), ("backward_euler", 10), ("trapezoid", 10), ("trapezoid", 40))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "img" / "hotspot_transient_ev6.png"))
    args = ap.parse_args(argv)
    lines = (DATA / "generated_example1_block_transient.csv").read_text().splitlines()
    units = lines[0].split(",")[2:]
    ref = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    with float64():
        flp = read_flp(DATA / "ev6.flp")
        trace = jnp.asarray(read_ptrace(DATA / "gcc.ptrace").for_floorplan(flp))
        net = P.block_network(flp, read_hotspot_config(DATA / "example.config").thermal)
        init = read_steady(DATA / "gcc.init")
        x0 = jnp.asarray([init[n] for n in net.names])
        cols = [flp.index(u) for u in units]
        results = {}
        print("| method | substeps per 10 ms | max abs error (K) | mean abs error (K) |")
        print("|---|---|---|---|")
        for method, sub in METHODS:
            pred = np.asarray(P.transient(net, trace, 0.01, x0, method=method, substeps=sub).block_K)[:, cols]
            err = np.abs(pred - ref[:, 2:])
            results[(method, sub)] = pred
            print(f"| {method} | {sub} | {err.max():.4f} | {err.mean():.4f} |")
    pred = results[("exact", 1)]
    t_ms = ref[:, 1] * 1e3
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, u in enumerate(UNITS):
        c = f"C{i}"
        j = units.index(u)
        ax.plot(t_ms, ref[:, 2 + j], "o", ms=3, color=c, alpha=0.6)
        ax.plot(t_ms, pred[:, j], "-", lw=1.2, color=c, label=u)
    ax.plot([], [], "ko", ms=3, label="HotSpot 6 (f18831e)")
    ax.plot([], [], "k-", label="diffsys (exact ZOH)")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("block temperature (K)")
    err = np.abs(pred - ref[:, 2:])
    ax.set_title(f"ev6 + gcc transient: max |ΔT| {err.max():.3f} K over 100 steps × 30 units")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
