"""Fit the GEMM kernel-model constants to the measured TensorRT-LLM GEMMs and report the errors.

Data: ``../shared/validation/gemm/gemm_{a100_sxm_bfloat16,h100_sxm_bfloat16,h100_sxm_fp8}.csv`` (aiconfigurator
perf database; README there). Split: a deterministic 50 % of the shapes by a hash of ``(m, n, k)`` (md5 of
``"m,n,k"``, even first byte = fit) is fitted with :func:`diffsys._fit.fit_least_squares` (optimistix
Levenberg–Marquardt, relative residuals, log-parametrized constants, then two rounds of iteratively reweighted
least squares toward least absolute relative deviations, the reported MAPE); the other half is the report set. Also
reported: every row of each file, and the transfer of one GPU's constants to the other GPU (only datasheet fields
differ).

Run: ``JAX_PLATFORMS=cpu python benchmarks/calibrate_gemm.py [--write]`` (``--write`` updates
``diffsys/hardware/calibration/gemm.json``; ``--table`` prints the error table by FLOP decade and m range).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

import diffsys.hardware as H
from diffsys._fit import error_stats, fit_least_squares
from diffsys.roofline import GEMM_CONSTANT_NAMES as CONSTANT_NAMES, GEMM_DEFAULT_CONSTANTS as DEFAULT_CONSTANTS, gemm_time

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = pathlib.Path(os.environ.get("DIFFSYS_SHARED", ROOT.parent / "shared")) / "validation" / "gemm"
OUT = ROOT / "diffsys" / "hardware" / "calibration" / "gemm.json"
#: (file, preset builder name, dtype)
FILES = (("gemm_h100_sxm_bfloat16.csv", "h100_sxm", "bf16"), ("gemm_h100_sxm_fp8.csv", "h100_sxm", "fp8"),
         ("gemm_a100_sxm_bfloat16.csv", "a100_80gb", "bf16"))
#: constants fitted per (GPU, dtype); quant_s only where the GEMM quantizes its activations
_COMMON = ("launch_s", "compute_efficiency", "memory_efficiency", "tile_cycles", "epilogue_exposed",
           "k_iter_cycles", "splitk_cycles", "l2_resident_fraction", "memory_ramp_latencies")
# fp8 keeps its GPU's bf16 launch_s (the same GEMM launch; only launch_s + quant_s is identified by the fp8 data)
FITTED = {"bf16": _COMMON, "fp8": tuple(c for c in _COMMON if c != "launch_s") + ("quant_s",)}


def load(name):
    """``(m, n, k, latency_s, fit_mask)`` of one data file."""
    d = np.genfromtxt(DATA / name, delimiter=",", names=True)
    m, n, k = (d[c].astype(np.float64) for c in ("m", "n", "k"))
    fit = np.array([hashlib.md5(f"{int(a)},{int(b)},{int(c)}".encode()).digest()[0] % 2 == 0
                    for a, b, c in zip(m, n, k)])
    return m, n, k, d["latency_us"] * 1e-6, fit


def bare(builder):
    """The preset's datasheet fields without any shipped calibration."""
    return getattr(H, builder)()


def predict_fn(accel, dtype, fixed):
    def predict(params, x):
        m, n, k = x
        return gemm_time(m, n, k, accel, dtype, constants={**fixed, **params}).time_s
    return jax.jit(predict)


#: Reweighting rounds after the plain least-squares fit (least absolute relative deviations by IRLS, see fit_one).
IRLS_ROUNDS = 2
#: Floor of |relative residual| in the IRLS weights (keeps a row the model already matches from dominating).
IRLS_FLOOR = 0.01


def fit_one(name, builder, dtype, init=None):
    """Fit the constants of one file's fit half: Levenberg–Marquardt on the relative residuals, then
    :data:`IRLS_ROUNDS` rounds of iteratively reweighted least squares with weights ``1/sqrt(max(|r|, floor))``,
    which turn the squared-error objective into the sum of absolute relative errors — the MAPE that is reported
    (least absolute deviations by IRLS: Schlossmacher, "An iterative technique for absolute deviations curve
    fitting", JASA 1973). Each round is one :func:`diffsys._fit.fit_least_squares` call."""
    m, n, k, t, fit = load(name)
    accel = bare(builder)
    names = FITTED[dtype]
    start = {**DEFAULT_CONSTANTS, **(init or {})}
    fixed = {c: start[c] for c in CONSTANT_NAMES if c not in names}
    params = {c: start[c] for c in names}
    pred = predict_fn(accel, dtype, fixed)
    x_fit = tuple(jnp.asarray(v[fit]) for v in (m, n, k))
    t_fit = jnp.asarray(t[fit])
    weights = jnp.ones_like(t_fit)
    for _ in range(IRLS_ROUNDS + 1):
        # residual (t + w·(p - t) - t)/t = w·(p/t - 1): the weighted relative error
        res = fit_least_squares(lambda p, a: a[1] + a[2] * (pred(p, a[0]) - a[1]), params, (x_fit, t_fit, weights),
                                t_fit)
        params = res.params
        rel = np.abs(np.asarray(pred(params, x_fit)) / np.asarray(t_fit) - 1.0)
        weights = jnp.asarray(1.0 / np.sqrt(np.maximum(rel, IRLS_FLOOR)))
    return {**fixed, **params}, res


def evaluate(name, builder, dtype, consts):
    m, n, k, t, fit = load(name)
    p = np.asarray(gemm_time(m, n, k, bare(builder), dtype, constants=consts).time_s)
    return {"fit": error_stats(p[fit], t[fit]), "report": error_stats(p[~fit], t[~fit]),
            "all": error_stats(p, t), "p90_all": float(np.percentile(np.abs(p / t - 1), 90))}, p


def table(name, p):
    m, n, k, t, _ = load(name)
    rel = np.abs(p / t - 1)
    flops = 2 * m * n * k
    print(f"  {name}: MAPE by FLOP decade")
    for lo in range(4, 16):
        sel = (flops >= 10.0**lo) & (flops < 10.0**(lo + 1))
        if sel.any():
            print(f"    1e{lo:<3d} n={sel.sum():6d}  MAPE {100 * rel[sel].mean():5.1f} %  "
                  f"bias {100 * np.median(p[sel] / t[sel] - 1):+5.1f} %  max {100 * rel[sel].max():6.1f} %")
    print(f"  {name}: MAPE by m range")
    for lo, hi in ((1, 17), (17, 129), (129, 1025), (1025, 4097), (4097, 1e9)):
        sel = (m >= lo) & (m < hi)
        if sel.any():
            print(f"    m in [{lo:g}, {hi:g})  n={sel.sum():6d}  MAPE {100 * rel[sel].mean():5.1f} %  "
                  f"bias {100 * np.median(p[sel] / t[sel] - 1):+5.1f} %")


def pct(s):
    return f"MAPE {100 * s['mape']:5.1f} %  max {100 * s['max']:6.1f} %"


def main(argv):
    jax.config.update("jax_enable_x64", True)
    fitted, report = {}, {}
    for name, builder, dtype in FILES:
        # fp8 starts from the same GPU's bf16 constants, A100 from H100's (LM is local)
        init = fitted.get((builder, "bf16")) if dtype == "fp8" else fitted.get(("h100_sxm", "bf16"))
        consts, res = fit_one(name, builder, dtype, init)
        fitted[(builder, dtype)] = consts
        stats, p = evaluate(name, builder, dtype, consts)
        report[name] = stats
        print(f"{name}: fit ok={res.success} steps={res.steps}  "
              + "  ".join(f"{c}={consts[c]:.4g}" for c in CONSTANT_NAMES))
        print(f"  fit half {pct(stats['fit'])} | report half {pct(stats['report'])} | all {pct(stats['all'])} "
              f"p90 {100 * stats['p90_all']:.1f} %")
        if "--table" in argv:
            table(name, p)
    # transfer: constants of one GPU on the other (datasheet fields only differ)
    transfer = {}
    for src, dst, name in (("h100_sxm", "a100_80gb", "gemm_a100_sxm_bfloat16.csv"),
                           ("a100_80gb", "h100_sxm", "gemm_h100_sxm_bfloat16.csv")):
        stats, _ = evaluate(name, dst, "bf16", fitted[(src, "bf16")])
        transfer[f"{src}->{dst}"] = stats["all"]
        print(f"transfer {src} bf16 constants -> {dst} ({name}): {pct(stats['all'])}")
    if "--write" in argv:
        write(fitted, report, transfer)
    return fitted, report, transfer


def write(fitted, report, transfer):
    r = lambda v: float(f"{v:.4g}")
    devices = {}
    for (builder, dtype), consts in fitted.items():
        devices.setdefault(builder, {})[dtype] = {c: r(v) for c, v in consts.items()}
    devices["*"] = {"bf16": dict(devices["h100_sxm"]["bf16"]), "fp8": dict(devices["h100_sxm"]["fp8"])}
    stats = {name: {s: {"mape": round(v[s]["mape"], 4), "max": round(v[s]["max"], 4)}
                    for s in ("fit", "report", "all")} | {"p90_all": round(v["p90_all"], 4)}
             for name, v in report.items()}
    data = {
        "provenance": {
            "data": "../shared/validation/gemm/" + ", ".join(f for f, _, _ in FILES)
                    + " (aiconfigurator perf database, TensorRT-LLM GEMMs, CUDA-graph timed)",
            "fit": "diffsys._fit.fit_least_squares (optimistix Levenberg-Marquardt, relative residuals, log-space), "
                   f"then {IRLS_ROUNDS} IRLS rounds toward least absolute relative deviations (Schlossmacher 1973)",
            "split": "fit on the shapes whose md5('m,n,k') first byte is even (~50 %), report on the rest",
            "script": "benchmarks/calibrate_gemm.py --write",
            "date": "2026-12-02",
            "star_entry": "'*' = the H100 constants (dimensionless fractions and cycles carry across GPUs)",
            "errors": stats,
            "transfer": {k: {"mape": round(v["mape"], 4), "max": round(v["max"], 4)} for k, v in transfer.items()},
        },
        "devices": devices,
    }
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:])
