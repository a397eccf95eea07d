"""Step time vs power cap on H100 SXM: the sustained clock (power cap and junction limit, leakage–temperature loop)
fed back into step times through the clock-scaled accelerator.

Three per-device workloads, each timed by the library's op model on the throttled accelerator: a compute-bound
8k GEMM (calibrated kernel), an LLM prefill-like GEMM, and a memory-bound decode GEMV; two inlet temperatures. The
thermal path is lumped, ``T_j = T_amb + R_th·P`` with ``R_th = 50 K / 700 W`` (assumption: the TDP at a 35 °C inlet
puts the junction at 85 °C, ``device_power``'s leakage reference) and an 87 °C junction limit.

    python examples/throttling.py [--out docs/img/throttle_step_vs_cap.png]
"""

from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import diffsys.power as P
from diffsys.hardware import preset
from diffsys.roofline import gemm, op_time

ROOT = pathlib.Path(__file__).resolve().parents[1]
R_TH = 50.0 / 700.0
T_LIMIT = 360.15
OPS = {"8k GEMM (compute bound)": gemm(8192, 8192, 8192), "prefill GEMM 2048×4096×4096": gemm(2048, 4096, 4096),
       "decode GEMV 8×8192×8192 (HBM bound)": gemm(8, 8192, 8192)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "img" / "throttle_step_vs_cap.png"))
    args = ap.parse_args(argv)
    acc = preset("h100_sxm")
    caps = jnp.linspace(250.0, 750.0, 21)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    step = lambda o, a: op_time(o, a, "bf16").time_s  # noqa: E731  (the step model: the op on the accelerator)
    for i, (name, op) in enumerate(OPS.items()):
        # the op is both the workload that sets the power and the step that is timed
        def at(cap, amb, op=op):
            return P.throttled_step(step, where=lambda args: args[1], workload=op, power_cap_W=cap,
                                    t_limit_K=T_LIMIT, ambient_K=amb, r_th_K_per_W=R_TH)(op, acc)

        sweep = jax.jit(jax.vmap(at, in_axes=(0, None)))
        t0 = float(step(op, acc))
        for amb, ls in ((308.15, "-"), (323.15, "--")):
            t, th = sweep(caps, jnp.asarray(amb))
            ax.plot(caps, np.asarray(t) / t0, ls, color=f"C{i}",
                    label=name if ls == "-" else None)
            ax2.plot(caps, np.asarray(th.clock_Hz) / 1e9, ls, color=f"C{i}")
            print(f"{name:38s} inlet {amb - 273.15:4.0f} C: unthrottled {t0 * 1e3:.3f} ms; cap 750 W "
                  f"{float(t[-1]) / t0:.3f}x; cap 400 W {float(t[6]) / t0:.3f}x, clock "
                  f"{float(th.clock_Hz[6]) / 1e9:.2f} GHz, {float(th.power_W[6]):.0f} W, "
                  f"{float(th.junction_K[6]) - 273.15:.1f} C; cap 250 W {float(t[0]) / t0:.3f}x")
    ax.set_xlabel("power cap (W)")
    ax.set_ylabel("step time / unthrottled")
    ax.set_title("H100 SXM: step time vs power cap (87 °C junction limit)", fontsize=10)
    ax.legend(fontsize=7)
    ax2.set_xlabel("power cap (W)")
    ax2.set_ylabel("sustained clock (GHz)")
    ax2.set_title("sustained clock (solid: 35 °C inlet, dashed: 50 °C)", fontsize=10)
    fig.tight_layout()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
