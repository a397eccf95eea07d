"""Fit the attention-kernel constants to the measured TensorRT-LLM attention-op latencies and report held-out error.

    python benchmarks/calibrate_attention.py [--shared ../shared] [--write]

Data: ``../shared/validation/attention/{context,generation}_attention_{a100,h100}_sxm_bf16_hd128.csv``.
Split: rows are numbered in file order; even rows are fitted, odd rows are held out and reported (neighbouring rows
differ in the head counts, so both halves cover every regime). Fit: ``diffsys._fit.fit_least_squares``
(optimistix Levenberg-Marquardt, relative residuals, log-space constants) per GPU, and jointly on both GPUs for the
portable ``"*"`` entry. The structural constants are discrete: the prefill tile shape (Tq, Tkv) in {64, 128}²;
for decode the 256-thread MMHA CTAs resident per core in {2, 4} (register-bound occupancy, which also caps the MMHA
CTA size) and whether the XQA split count carries the
``round(sqrt(8n))`` cap of newer TensorRT-LLM releases (0/1). Each candidate is fitted and the one with the
lowest *fit-split* MAPE is kept. One XQA CTA per core (shared-memory bound); a wider search ({1, 2} XQA CTAs
per core, {1, 2, 4} MMHA CTAs) on H100 picked 1 and 4 (two XQA CTAs per core: 11 % against 7 %). ``--write``
stores the constants and the error table in ``diffsys/hardware/calibration/attention.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffsys._fit import error_stats, fit_least_squares  # noqa: E402
from diffsys.hardware import preset  # noqa: E402
from diffsys.roofline._attention_kernels import (  # noqa: E402
    DECODE_FITTED, DECODE_STRUCTURAL, DEFAULT_ATTENTION_CONSTANTS, PREFILL_FITTED, decode_attention_time,
    prefill_attention_time)

GPUS = {"a100_80gb": ("a100", "a100_sxm"), "h100_sxm": ("h100", "h100_sxm")}
TILES = [(64.0, 64.0), (128.0, 64.0), (64.0, 128.0), (128.0, 128.0)]
XQA_CTAS_PER_CORE = [1.0]
MMHA_BLOCKS_PER_CORE = [2.0, 4.0]
XQA_SQRT_CAP = [0.0, 1.0]
DATE = "2026-12-02"


def read_csv(path):
    """Columns of a numeric CSV with a header line, as float arrays."""
    with open(path) as f:
        header = f.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return {name: data[:, i] for i, name in enumerate(header)}


def load(shared, kind, tag):
    name = f"{kind}_attention_{tag}_bf16_hd128.csv"
    cols = read_csv(pathlib.Path(shared) / "validation" / "attention" / name)
    length = cols["seq_len"] if kind == "context" else cols["kv_cache_len"]
    x = np.stack([cols["batch_size"], length, cols["num_q_heads"], cols["num_kv_heads"], cols["head_dim"]], 1)
    return name, x, cols["latency_us"] * 1e-6


def split(n):
    idx = np.arange(n)
    return idx % 2 == 0, idx % 2 == 1


def bare(key):
    """The preset without shipped attention constants (the fit supplies them)."""
    return preset(key).with_calibration("attention", None)


def predictor(kind, accel, fixed):
    fn = prefill_attention_time if kind == "context" else decode_attention_time

    def predict(params, x):
        c = {**fixed, **params}
        return fn(x[:, 0], x[:, 1], x[:, 2], x[:, 3], x[:, 4], accel, "bf16", constants=c).time_s

    return jax.jit(predict)


def fit_one(kind, rows, fixed):
    """Fit the constants of ``kind`` on ``rows = [(accel, x, y), ...]`` (one or several GPUs jointly)."""
    names = PREFILL_FITTED if kind == "context" else DECODE_FITTED
    p0 = {k: DEFAULT_ATTENTION_CONSTANTS[k] for k in names}
    preds = [predictor(kind, a, fixed) for a, _, _ in rows]

    def predict(params, xs):
        return jnp.concatenate([p(params, x) for p, x in zip(preds, xs)])

    xs = tuple(jnp.asarray(x) for _, x, _ in rows)
    y = jnp.asarray(np.concatenate([r[2] for r in rows]))
    res = fit_least_squares(predict, p0, xs, y)
    return res, preds


def stats(pred, y):
    s = error_stats(pred, y)
    rel = np.abs(np.asarray(pred) / y - 1)
    return {"mape": s["mape"], "p90": float(np.percentile(rel, 90)), "max": s["max"],
            "median_bias": s["median_bias"], "n": s["n"]}


def calibrate(shared):
    data = {key: {kind: load(shared, kind, tag) for kind in ("context", "generation")}
            for key, (_, tag) in GPUS.items()}
    accels = {key: bare(key) for key in GPUS}
    consts, report = {}, {}
    for kind in ("context", "generation"):
        choices = ([{"prefill_tile_q": q, "prefill_tile_kv": k} for q, k in TILES] if kind == "context" else
                   [dict(zip(DECODE_STRUCTURAL, v)) for v in
                    itertools.product(XQA_CTAS_PER_CORE, MMHA_BLOCKS_PER_CORE, XQA_SQRT_CAP)])
        per_gpu = {}
        for key in list(GPUS) + ["*"]:
            keys = list(GPUS) if key == "*" else [key]
            best = None
            for fixed in choices:
                rows = []
                for k in keys:
                    _, x, y = data[k][kind]
                    fit, _ = split(len(y))
                    rows.append((accels[k], x[fit], y[fit]))
                res, _ = fit_one(kind, rows, fixed)
                if best is None or res.mape < best[0].mape:
                    best = (res, fixed)
            res, fixed = best
            per_gpu[key] = {**res.params, **fixed, "_success": res.success, "_steps": res.steps}
        for key, c in per_gpu.items():
            consts.setdefault(key, {}).update({k: v for k, v in c.items() if not k.startswith("_")})
        # held-out errors, own fit and transfer
        for target in GPUS:
            name, x, y = data[target][kind]
            _, held = split(len(y))
            for source in list(GPUS) + ["*"]:
                c = {k: v for k, v in per_gpu[source].items() if not k.startswith("_")}
                pred = np.asarray(predictor(kind, accels[target], {})(c, jnp.asarray(x)))
                label = "own" if source == target else ("portable" if source == "*" else f"from_{source}")
                entry = {"held_out": stats(pred[held], y[held])}
                if source == target:
                    entry["fit"] = stats(pred[~held], y[~held])
                    entry["regimes"] = regimes(kind, x[held], pred[held], y[held])
                    entry["converged"] = per_gpu[source]["_success"]
                else:
                    entry["all_rows"] = stats(pred, y)
                report.setdefault(name, {})[label] = entry
    return consts, report


def regimes(kind, x, pred, y):
    """Held-out MAPE by regime (length bands; decode also by group size)."""
    rel = np.abs(pred / y - 1)
    out = {}
    length = x[:, 1]
    for lo, hi, label in [(0, 128, "len<128"), (128, 1024, "128<=len<1024"), (1024, 8192, "1024<=len<8192"),
                          (8192, 1e9, "len>=8192")]:
        m = (length >= lo) & (length < hi)
        if m.any():
            out[label] = float(rel[m].mean())
    if kind == "generation":
        g = x[:, 2] / x[:, 3]
        for m, label in [(g == 1, "group=1 (MHA)"), ((g > 1) & (g <= 32), "2<=group<=32"), (g > 32, "group>32")]:
            if m.any():
                out[label] = float(rel[m].mean())
        b = x[:, 0]
        for m, label in [(b <= 4, "batch<=4"), (b >= 256, "batch>=256")]:
            out[label] = float(rel[m].mean())
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.environ.get("DIFFSYS_SHARED", str(ROOT.parent / "shared")))
    ap.add_argument("--write", action="store_true", help="write diffsys/hardware/calibration/attention.json")
    args = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    consts, report = calibrate(args.shared)
    for name, table in report.items():
        for label, e in table.items():
            h = e["held_out"]
            print(f"{name:48s} {label:16s} held-out MAPE {100 * h['mape']:5.1f} %  p90 {100 * h['p90']:5.1f} %  "
                  f"max {100 * h['max']:6.1f} %  (n={h['n']})")
            if "regimes" in e:
                print("    " + "  ".join(f"{k}: {100 * v:.1f} %" for k, v in e["regimes"].items()))
    print(json.dumps(consts, indent=1))
    if args.write:
        out = {
            "provenance": {
                "data": "shared/validation/attention/{context,generation}_attention_{a100,h100}_sxm_bf16_hd128.csv "
                        "(TensorRT-LLM attention op, paged KV cache, CUDA-graph timed; aiconfigurator perf database)",
                "fit": "diffsys._fit.fit_least_squares (optimistix Levenberg-Marquardt, relative residuals, "
                       "log-space constants); prefill tile shape from {64,128}^2; decode structural constants "
                       "(MMHA 256-thread CTAs per core {2,4}, XQA sqrt split cap {0,1}; one XQA CTA per core) "
                       "chosen by fit-split MAPE; decode path and KV split follow TensorRT-LLM's XQA/MMHA "
                       "heuristics (decoderXQAImplCommon.h computeMultiBlockCount, decoderXQAImplJIT.cpp "
                       "mayHavePerfGain, kernelUtils.cpp supportConfigHMMA, decoderMaskedMultiheadAttentionLaunch.h)",
                "split": "rows in file order: even rows fitted, odd rows held out and reported; '*' = joint fit on "
                         "the even rows of both GPUs",
                "script": "benchmarks/calibrate_attention.py --write",
                "date": DATE,
                "report": report,
            },
            "devices": {key: {"bf16": {k: float(v) for k, v in c.items()}} for key, c in consts.items()},
        }
        path = ROOT / "diffsys" / "hardware" / "calibration" / "attention.json"
        path.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
