"""Fit the serving backends' constants to the measured H100 serving rows and write the validation table.

    python benchmarks/calibrate_serving.py            # kernels (cached) + fit + table
    python benchmarks/calibrate_serving.py --kernels  # recompute the kernel stage (slow: one compile per group)

Split: rows with an even crc32(id) fit the constants of their backend (``diffsys.llm._serving_data.is_fit_row``);
the odd rows are reported. The kernel stage (GEMMs, attention, collectives, KV capacity) does not depend on the
backend constants, so it is computed once per row and cached in ``diffsys/llm/serving_kernels_h100.npz``; the fit
runs the serving stage (closed loop, overheads) with ``diffsys._fit.fit_least_squares`` on TPOT and TTFT
(relative residuals). Writes ``diffsys/hardware/calibration/serving.json`` and ``docs/serving_validation.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from diffsys._fit import error_stats, fit_least_squares  # noqa: E402
from diffsys.hardware import preset  # noqa: E402
from diffsys.llm import _serving as sv  # noqa: E402
from diffsys.llm import _serving_data as sd  # noqa: E402
from diffsys.topologies import system_preset  # noqa: E402

KERNELS = os.path.join(ROOT, "diffsys", "llm", "serving_kernels_h100.npz")
CAL = os.path.join(ROOT, "diffsys", "llm", "serving_backends.json")
#: staged fit: decode constants on TPOT, then prefill/queueing constants on TTFT, then decode again
STAGES = (("tpot", ("iter_s", "req_s", "decode_scale")), ("ttft", ("prefill_s", "prefill_scale", "burst_fraction")),
          ("tpot", ("iter_s", "req_s", "decode_scale")))
#: Reweighting rounds after each plain least-squares stage: iteratively reweighted least squares with weights
#: ``1/sqrt(max(|r|, floor))`` on the log residuals ``r`` tends to the least absolute deviations fit, so a few rows
#: the model cannot follow (e.g. gpt-oss at C = 512, docs/serving.md) pull the constants less than in least squares.
IRLS_ROUNDS = 2
IRLS_FLOOR = 0.01
TABLE = os.path.join(ROOT, "docs", "serving_validation.json")
FIELDS = [f for f in sv.ServingKernels.__dataclass_fields__]


def compute_kernels(rows):
    accel, system = preset("h100_sxm"), system_preset("hgx_h100")
    out = {f: np.zeros((len(rows),) + ((2,) if f.startswith("decode_") else ())) for f in FIELDS}
    index = {r["id"]: i for i, r in enumerate(rows)}
    for key, g in sd.group_rows(rows).items():
        t0 = time.time()
        base, vals = sd.stacked_spec(g, accel, system)
        k = eqx.filter_jit(lambda b, v: eqx.filter_vmap(lambda x: sv.serving_kernels(sd._replace(b, x)))(v))(
            base, vals)
        idx = [index[r["id"]] for r in g]
        for f in FIELDS:
            out[f][idx] = np.asarray(getattr(k, f))
        print(f"kernels {key}: {len(g)} rows, {time.time() - t0:.0f} s", flush=True)
    np.savez_compressed(KERNELS, ids=np.asarray([r["id"] for r in rows]), **out)


def load_kernels(rows):
    data = np.load(KERNELS)
    pos = {i: n for n, i in enumerate(data["ids"])}
    idx = np.asarray([pos[r["id"]] for r in rows])
    return sv.ServingKernels(**{f: jnp.asarray(data[f][idx]) for f in FIELDS})


def loop_predict(rows, kern, consts):
    """TPOT and TTFT of ``rows`` from cached kernels and per-row constants ``{name: array}``."""
    base, vals = sd.stacked_spec(rows, preset("h100_sxm"), system_preset("hgx_h100"))
    vals = {**vals, **consts}
    m = eqx.filter_vmap(lambda v, k: sv.serving_loop(sd._replace(base, v), k))(vals, kern)
    return m.tpot_s, m.ttft_s


def subset(kern, idx):
    return jax.tree_util.tree_map(lambda a: a[np.asarray(idx)], kern)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", action="store_true", help="recompute the kernel stage")
    args = ap.parse_args(argv)
    rows = sd.read_rows()
    if args.kernels or not os.path.exists(KERNELS):
        compute_kernels(rows)
    kern = load_kernels(rows)
    fitted = {}
    for backend in sv.BACKENDS:
        idx = [i for i, r in enumerate(rows) if r["backend"] == backend and r["fit"]]
        br = [rows[i] for i in idx]
        bk = subset(kern, idx)
        current = dict(sv.DEFAULT_BACKEND_CONSTANTS)
        t0 = time.time()
        for target, names in STAGES:
            meas = np.log(sd.measured(br, f"{target}_s"))  # log residuals: symmetric in over/under-prediction

            def predict(p, w, names=names, target=target, current=dict(current)):
                c = {n: jnp.full((len(br),), p[n] if n in names else current[n]) for n in sv.BACKEND_CONSTANT_NAMES}
                tp, tt = loop_predict(br, bk, c)
                return w * jnp.log(tp if target == "tpot" else tt)

            weights = jnp.ones_like(jnp.asarray(meas))
            params = {n: current[n] for n in names}
            for _ in range(IRLS_ROUNDS + 1):  # least absolute log deviations by IRLS (Schlossmacher 1973)
                res = fit_least_squares(predict, params, weights, weights * meas, relative=False, max_steps=200)
                params = res.params
                r = np.abs(np.asarray(predict(params, jnp.ones_like(weights))) - meas)
                weights = jnp.asarray(1.0 / np.sqrt(np.maximum(r, IRLS_FLOOR)))
            current.update(params)
            print(f"fit {backend} {target}: {len(br)} rows", flush=True)
        fitted[backend] = {k: float(v) for k, v in current.items()}
        print(f"fit {backend}: {time.time() - t0:.0f} s, {fitted[backend]}")
    os.makedirs(os.path.dirname(CAL), exist_ok=True)
    with open(CAL, "w") as f:
        json.dump({"provenance": {
            "data": "validation/serving/measured_h100.csv (aiconfigurator silicon samples, H100 SXM)",
            "split": "rows with even crc32(id) fit; odd rows reported (docs/serving.md)",
            "script": "benchmarks/calibrate_serving.py", "method": "diffsys._fit.fit_least_squares, log "
            "residuals, staged: decode constants on TPOT, prefill constants on TTFT, decode again",
            "layout": "devices['*'][backend][constant]"},
                   "devices": {"*": fitted}}, f, indent=1)
    # report on every row with the fitted constants
    consts = {n: jnp.asarray([fitted[r["backend"]][n] for r in rows]) for n in sv.BACKEND_CONSTANT_NAMES}
    tp, tt = (np.asarray(a) for a in loop_predict(rows, kern, consts))
    table = []
    for split in ("fit", "held-out"):
        for fam in sorted({r["family"] for r in rows}):
            for mode in ("agg", "disagg"):
                sel = [i for i, r in enumerate(rows) if r["family"] == fam and r["mode"] == mode
                       and r["fit"] == (split == "fit")]
                if not sel:
                    continue
                e_p = error_stats(tp[sel], sd.measured([rows[i] for i in sel], "tpot_s"))
                e_f = error_stats(tt[sel], sd.measured([rows[i] for i in sel], "ttft_s"))
                table.append(dict(split=split, family=fam, mode=mode, n=len(sel), tpot_mape=e_p["mape"],
                                  tpot_max=e_p["max"], ttft_mape=e_f["mape"], ttft_max=e_f["max"]))
        for mode in ("agg", "disagg"):
            sel = [i for i, r in enumerate(rows) if r["mode"] == mode and r["fit"] == (split == "fit")]
            e_p = error_stats(tp[sel], sd.measured([rows[i] for i in sel], "tpot_s"))
            e_f = error_stats(tt[sel], sd.measured([rows[i] for i in sel], "ttft_s"))
            table.append(dict(split=split, family="all", mode=mode, n=len(sel), tpot_mape=e_p["mape"],
                              tpot_max=e_p["max"], ttft_mape=e_f["mape"], ttft_max=e_f["max"]))
    worst = np.argsort(-np.abs(np.log(tt / np.asarray([r["ttft_s"] for r in rows]))))[:12]
    for i in worst:
        r = rows[i]
        print("worst TTFT", r["id"][:70], r["concurrency"], f"pred {tt[i] * 1e3:.0f} ms meas {r['ttft_s'] * 1e3:.0f} ms")
    worst = np.argsort(-np.abs(np.log(tp / np.asarray([r["tpot_s"] for r in rows]))))[:12]
    for i in worst:
        r = rows[i]
        print("worst TPOT", r["id"][:70], r["concurrency"], f"pred {tp[i] * 1e3:.1f} ms meas {r['tpot_s'] * 1e3:.1f} ms")
    with open(TABLE, "w") as f:
        json.dump({"rows": table, "predicted": {r["id"]: [float(a), float(b)] for r, a, b in zip(rows, tp, tt)}},
                  f, indent=0)
    for t in table:
        print(f"{t['split']:8s} {t['family']:16s} {t['mode']:6s} n={t['n']:3d} TPOT {100 * t['tpot_mape']:5.1f}% "
              f"(max {100 * t['tpot_max']:5.0f}%)  TTFT {100 * t['ttft_mape']:5.1f}% (max {100 * t['ttft_max']:5.0f}%)")


if __name__ == "__main__":
    main()
