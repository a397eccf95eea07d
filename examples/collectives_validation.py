"""Fit NCCL's cost-model constants to measured nccl-tests and validate them (nccl-tests, Vidur, vTrain).

    JAX_PLATFORMS=cpu python examples/collectives_validation.py [--write] [--plots]

* Data: ``validation/collectives/nccl_intranode.csv`` (stock nccl-tests on A100 and H100 HGX boxes, 2/4/8 GPUs,
  all_reduce / all_gather / reduce_scatter / alltoall, 512 B-512 MiB in x2 steps, half and int8).
* Fit: per fabric (A100 NVLink3 NVSwitch, H100 NVLink4 NVSwitch), :func:`diffsys._fit.fit_least_squares`
  (Levenberg-Marquardt on relative time residuals, constants in log space) on the rows with an **even** log2(size)
  (1 KiB, 4 KiB, ..., 256 MiB), every op, rank count and dtype at once, with a weak log-normal prior (weight
  ``PRIOR_WEIGHT``) at NCCL's published tuning constants so that directions the data cannot see stay finite.
* Report: the rows with an **odd** log2(size) (512 B, 2 KiB, ..., 512 MiB), per (system, op, GPUs) group; also the
  cross-generation transfer (A100 fit on H100 rows and vice versa, datasheet bandwidths swapped) and, without
  refit, Vidur (DGX A100 and pairwise-NVLink A100 kernel times) and vTrain (A100 nccl-tests all-reduce).
* ``--write`` stores the fitted constants in ``diffsys/topologies/nccl_constants.json``; ``--plots`` draws
  ``docs/img/collectives_<op>.png`` (predicted vs measured busbw against size).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import pathlib
import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from diffsys._fit import error_stats, fit_least_squares  # noqa: E402
from diffsys.topologies import collective_time, system_preset  # noqa: E402
from diffsys.topologies._nccl import NCCL_PRIOR, NcclParams  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("DIFFSYS_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "validation" / "collectives" / "nccl_intranode.csv"
CONSTANTS = ROOT / "diffsys" / "topologies" / "nccl_constants.json"
#: system in the CSV -> (fabric name, datasheet NVLink bandwidth per GPU per direction, NVLS available)
SYSTEMS = {"a100_sxm": ("a100_nvswitch", 300e9, False), "h100_sxm": ("h100_nvswitch", 450e9, True)}
PRESETS = {"a100_sxm": "hgx_a100", "h100_sxm": "hgx_h100"}
OPS = {"all_reduce": "all_reduce", "all_gather": "all_gather", "reduce_scatter": "reduce_scatter",
       "alltoall": "all_to_all"}
LARGE_B = 16 * 2**20
PRIOR_WEIGHT = 0.03
#: LL128 payload share, fixed (not fitted): 120 data bytes per 128-byte line (NCCL user guide; tuning.cc uses 0.92)
LL128_FRACTION = 120.0 / 128.0
#: NCCL's published values the prior sits at (tuning.cc; see diffsys/topologies/_nccl.py)
PRIOR = {"base_ll": 6.6e-6, "base_ll128": 14.0e-6, "base_simple": 8.4e-6, "hop_ll": 0.6e-6, "hop_ll128": 1.9e-6,
         "hop_simple": 3.4e-6, "frac_ll": 0.25, "p2p_base_ll": 6.6e-6,
         "p2p_base_simple": 8.4e-6, "p2p_hop": 0.6e-6, "p2p_frac": 0.25, "nvls_base": 25e-6}
START = {**PRIOR, "pipeline": 2e-6, "ineff": 0.1, "local_Bps": 1e12, "nvls_Bps": 300e9}


def load_rows(path=DATA) -> dict:
    """The CSV as arrays: system, op (diffsys names), dtype, n, size_B, time_s."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {"system": np.array([r["system"] for r in rows]), "op": np.array([OPS[r["op"]] for r in rows]),
            "dtype": np.array([r["dtype"] for r in rows]), "n": np.array([float(r["num_gpus"]) for r in rows]),
            "size_B": np.array([float(r["message_bytes"]) for r in rows]),
            "time_s": np.array([float(r["latency_us"]) * 1e-6 for r in rows])}


def fit_mask(size_B):
    """Fit rows: even log2(size); the odd ones are held out."""
    return np.round(np.log2(size_B)).astype(int) % 2 == 0


def subset(rows, mask):
    return {k: v[mask] for k, v in rows.items()}


def constants_from_params(p: dict, datasheet_Bps: float, nvls: bool) -> dict:
    """Fitted parameters -> the JSON entry of one fabric."""
    return {"base_s": [p["base_ll"], p["base_ll128"], p["base_simple"]],
            "hop_s": [p["hop_ll"], p["hop_ll128"], p["hop_simple"]],
            "bw_fraction": [p["frac_ll"], LL128_FRACTION, 1.0], "pipeline_s": p["pipeline"],
            "p2p_base_s": [p["p2p_base_ll"], p["p2p_base_simple"]], "p2p_hop_s": p["p2p_hop"],
            "p2p_ll_fraction": p["p2p_frac"], "p2p_ll_threshold_B": 16384.0,
            "nvls_base_s": p["nvls_base"] if nvls else NCCL_PRIOR["nvls_base_s"],
            "efficiency": 1.0 / (1.0 + p["ineff"]), "local_Bps": p["local_Bps"],
            "nvls_Bps": p["nvls_Bps"] if nvls else 0.0, "datasheet_Bps": datasheet_Bps}


def predict(const: dict, rows: dict, datasheet_Bps: float, nvls: bool):
    """Model times of ``rows`` (one fabric) from a constants entry (values may be traced)."""
    params = NcclParams(base_s=jnp.stack([jnp.asarray(v) for v in const["base_s"]]),
                        hop_s=jnp.stack([jnp.asarray(v) for v in const["hop_s"]]),
                        bw_fraction=jnp.stack([jnp.asarray(v) for v in const["bw_fraction"]]),
                        pipeline_s=const["pipeline_s"], p2p_base_s=jnp.stack([jnp.asarray(v)
                                                                              for v in const["p2p_base_s"]]),
                        p2p_hop_s=const["p2p_hop_s"], p2p_ll_fraction=const["p2p_ll_fraction"],
                        p2p_ll_threshold_B=const["p2p_ll_threshold_B"], nvls_base_s=const["nvls_base_s"])
    out = jnp.zeros(rows["size_B"].shape)
    for op in sorted(set(rows["op"])):
        for dtype in sorted(set(rows["dtype"])):
            m = (rows["op"] == op) & (rows["dtype"] == dtype)
            if not m.any():
                continue
            t = collective_time(op, rows["size_B"][m], rows["n"][m], datasheet_Bps, const["hop_s"][2],
                                nccl=params, efficiency=const["efficiency"], local_Bps=const["local_Bps"],
                                in_network_Bps=const["nvls_Bps"] if nvls else None, dtype=dtype).time_s
            out = out.at[np.flatnonzero(m)].set(t)
    return out


def fit_fabric(rows: dict, system: str):
    """Fit one fabric on its even-size rows; returns (constants entry, fit rows' stats, solver result)."""
    fabric, bw, nvls = SYSTEMS[system]
    fit_rows = subset(rows, (rows["system"] == system) & fit_mask(rows["size_B"]))
    p0 = {k: v for k, v in START.items() if nvls or k not in ("nvls_base", "nvls_Bps")}
    prior_keys = [k for k in PRIOR if k in p0]

    def model(p, _size_B):  # the rows' strings (op, dtype) are closed over; only arrays go through the solver
        t = predict(constants_from_params(p, bw, nvls), fit_rows, bw, nvls)
        prior = jnp.stack([1.0 + PRIOR_WEIGHT * jnp.log(p[k] / PRIOR[k]) for k in prior_keys])
        return jnp.concatenate([t, prior])

    measured = np.concatenate([fit_rows["time_s"], np.ones(len(prior_keys))])
    res = fit_least_squares(model, p0, fit_rows["size_B"], measured, max_steps=400)
    const = constants_from_params(res.params, bw, nvls)
    stats = error_stats(np.asarray(predict(const, fit_rows, bw, nvls)), fit_rows["time_s"])
    return const, stats, res


def preset_times(rows: dict, system: str, preset: str | None = None):
    """Times of ``rows`` from a system preset (the path users take)."""
    out = np.zeros(rows["size_B"].shape)
    base = system_preset(preset or PRESETS[system])
    for op in sorted(set(rows["op"])):
        for dtype in sorted(set(rows["dtype"])):
            for g in sorted(set(rows["n"])):
                m = (rows["op"] == op) & (rows["dtype"] == dtype) & (rows["n"] == g)
                if m.any():
                    s = base.with_sizes(int(g))
                    out[m] = np.asarray(s.collective_time(op, rows["size_B"][m], dtype=dtype).time_s)
    return out


def group_table(rows: dict, pred, held) -> list[dict]:
    """Per (system, op, GPUs): held-out MAPE / max over all sizes and over sizes >= 16 MiB (both dtypes)."""
    out = []
    for system in sorted(set(rows["system"])):
        for op in OPS.values():
            for g in (2.0, 4.0, 8.0):
                m = (rows["system"] == system) & (rows["op"] == op) & (rows["n"] == g) & held
                if not m.any():
                    continue
                big = m & (rows["size_B"] >= LARGE_B)
                a = error_stats(pred[m], rows["time_s"][m])
                b = error_stats(pred[big], rows["time_s"][big])
                out.append({"system": system, "op": op, "gpus": int(g), "mape": a["mape"], "max": a["max"],
                            "mape_large": b["mape"], "max_large": b["max"], "n_rows": a["n"]})
    return out


def print_table(table, title):
    print(f"\n### {title}\n")
    print("| system | op | GPUs | MAPE all sizes | max | MAPE >= 16 MiB | max >= 16 MiB |")
    print("|---|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['system']} | {r['op']} | {r['gpus']} | {100 * r['mape']:.1f}% | {100 * r['max']:.1f}% | "
              f"{100 * r['mape_large']:.1f}% | {100 * r['max_large']:.1f}% |")


def vidur_rows(path):
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if r["num_nodes"] == "1"]
    return rows


def validate_vidur():
    """Vidur kernel times, single-node rows only (no refit): DGX A100 all-reduce 2/4/8 GPUs and 2-GPU send/recv;
    pairwise-NVLink A100 (NVLink bridge pair, 300 GB/s per direction as SXM) 2-GPU all-reduce and send/recv."""
    out = []
    for name in ("collectives_a100_dgx.csv", "collectives_a100_pairwise_nvlink.csv"):
        rows = vidur_rows(SHARED / "validation" / "vidur" / name)
        for key in sorted({(r["collective"], int(r["num_workers"])) for r in rows}):
            coll, g = key
            sel = [r for r in rows if (r["collective"], int(r["num_workers"])) == key]
            S = np.array([float(r["size_bytes"]) for r in sel])
            T = np.array([float(r["time_ms_median"]) * 1e-3 for r in sel])
            if "pairwise" in name and g > 2:
                note = "PCIe between NVLink pairs: out of model (not reported)"
                out.append({"file": name, "op": coll, "gpus": g, "note": note})
                continue
            s = system_preset("hgx_a100").with_sizes(g)
            P = np.asarray(s.collective_time(coll, S, dtype="half").time_s)
            a = error_stats(P, T)
            big = S >= LARGE_B
            b = error_stats(P[big], T[big]) if big.any() else {"mape": float("nan"), "max": float("nan")}
            out.append({"file": name, "op": coll, "gpus": g, "mape": a["mape"], "max": a["max"],
                        "bias": a["median_bias"], "mape_large": b["mape"], "n": a["n"]})
    return out


def validate_vtrain():
    """vTrain A100 all-reduce tables (nccl-tests format, float, 1 MiB-1 GiB, 2-8 GPUs), no refit."""
    from diffsys.io import read_nccl_tests

    out = []
    for g in range(2, 9):
        t = read_nccl_tests(SHARED / "validation" / "vtrain" / "allreduce_a100" / f"AR_GPU{g}_1M_1024M_LUT")
        s = system_preset("hgx_a100").with_sizes(g)
        P = np.asarray(s.collective_time("all_reduce", t.size_B, dtype="float").time_s)
        T = np.asarray(t.time_s)
        big = t.size_B >= LARGE_B
        a, b, c = error_stats(P, T), error_stats(P[big], T[big]), error_stats(P[~big], T[~big])
        out.append({"gpus": g, "mape": a["mape"], "max": a["max"], "mape_large": b["mape"], "max_large": b["max"],
                    "mape_small": c["mape"], "bias_small": c["median_bias"]})
    return out


def plots(rows, pred):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from diffsys.topologies import bus_factor

    img = ROOT / "docs" / "img"
    img.mkdir(parents=True, exist_ok=True)
    for op in OPS.values():
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
        for ax, system in zip(axes, sorted(SYSTEMS)):
            for g, color in zip((2.0, 4.0, 8.0), ("C0", "C1", "C2")):
                m = (rows["system"] == system) & (rows["op"] == op) & (rows["n"] == g) & (rows["dtype"] == "half")
                S = rows["size_B"][m]
                bf = float(bus_factor(op, g))
                ax.semilogx(S, S / rows["time_s"][m] * bf / 1e9, "o", color=color, ms=3,
                            label=f"{int(g)} GPUs measured")
                ax.semilogx(S, S / pred[m] * bf / 1e9, "-", color=color, label=f"{int(g)} GPUs model")
            ax.set_title(f"{op} (half), {system}")
            ax.set_xlabel("size (B, nccl-tests convention)")
            ax.set_ylabel("busbw (GB/s)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(img / f"collectives_{op}.png", dpi=110)
        plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="store the fitted constants in nccl_constants.json")
    ap.add_argument("--plots", action="store_true", help="draw docs/img/collectives_<op>.png")
    args = ap.parse_args(argv)
    rows = load_rows()
    fabrics = {}
    for system in sorted(SYSTEMS):
        const, stats, res = fit_fabric(rows, system)
        fabrics[SYSTEMS[system][0]] = const
        print(f"{system}: fit on {stats['n']} rows (even log2 size): MAPE {100 * stats['mape']:.1f}% max "
              f"{100 * stats['max']:.1f}%; solver success {res.success}, {res.steps} steps")
        print(json.dumps(const))
    if args.write:
        data = {"provenance": {
            "data": "shared/validation/collectives/nccl_intranode.csv (aiconfigurator perf database, stock "
                    "nccl-tests, A100-SXM4-80GB NCCL 2.27.3, H100-SXM NCCL 2.29.2, 2/4/8 GPUs, 512 B-512 MiB)",
            "fit": "diffsys._fit.fit_least_squares (optimistix Levenberg-Marquardt, relative time residuals, "
                   f"log-space constants) with a weak log-normal prior (weight {PRIOR_WEIGHT}) at NCCL's tuning.cc "
                   "constants",
            "split": "fit: even log2(size) rows (1 KiB, 4 KiB, ..., 256 MiB), all ops, GPU counts and dtypes; "
                     "report: odd log2(size) rows (512 B, 2 KiB, ..., 512 MiB)",
            "script": "examples/collectives_validation.py --write",
            "date": datetime.date.today().isoformat()}, "fabrics": fabrics}
        CONSTANTS.write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {CONSTANTS}")
    # held-out report with the given constants (fitted now), through the same function the presets use
    held = ~fit_mask(rows["size_B"])
    pred = np.zeros(rows["size_B"].shape)
    for system, (fabric, bw, nvls) in SYSTEMS.items():
        m = rows["system"] == system
        pred[m] = np.asarray(predict(fabrics[fabric], subset(rows, m), bw, nvls))
    print_table(group_table(rows, pred, held), "nccl-tests, held-out rows (odd log2 size)")
    # cross-generation transfer: the other fabric's fit with this system's datasheet bandwidth
    print("\n### Cross-generation transfer (other fabric's constants, this fabric's datasheet bandwidth; all rows)\n")
    print("| rows | constants from | op | MAPE | MAPE >= 16 MiB |")
    print("|---|---|---|---|---|")
    for system, other in (("a100_sxm", "h100_sxm"), ("h100_sxm", "a100_sxm")):
        fabric, bw, nvls = SYSTEMS[system]
        c = dict(fabrics[SYSTEMS[other][0]])
        c["nvls_Bps"] = fabrics[SYSTEMS["h100_sxm"][0]]["nvls_Bps"] * bw / 450e9
        c["nvls_base_s"] = fabrics[SYSTEMS["h100_sxm"][0]]["nvls_base_s"]
        m = rows["system"] == system
        p = np.asarray(predict(c, subset(rows, m), bw, nvls))
        for op in OPS.values():
            mo = rows["op"][m] == op
            big = mo & (rows["size_B"][m] >= LARGE_B)
            print(f"| {system} | {other} | {op} | {100 * error_stats(p[mo], rows['time_s'][m][mo])['mape']:.1f}% | "
                  f"{100 * error_stats(p[big], rows['time_s'][m][big])['mape']:.1f}% |")
    if args.write or CONSTANTS.exists():
        print("\n### Vidur (no refit; kernel-only times, single-node rows)\n")
        print("| file | op | GPUs | rows | MAPE | max | median bias | MAPE >= 16 MiB |")
        print("|---|---|---|---|---|---|---|---|")
        for r in validate_vidur():
            if "note" in r:
                print(f"| {r['file']} | {r['op']} | {r['gpus']} | | {r['note']} | | | |")
            else:
                print(f"| {r['file']} | {r['op']} | {r['gpus']} | {r['n']} | {100 * r['mape']:.1f}% | "
                      f"{100 * r['max']:.1f}% | {100 * r['bias']:+.1f}% | {100 * r['mape_large']:.1f}% |")
        print("\n### vTrain A100 all-reduce (no refit)\n")
        print("| GPUs | MAPE | max | MAPE >= 16 MiB | max >= 16 MiB | MAPE < 16 MiB | median bias < 16 MiB |")
        print("|---|---|---|---|---|---|---|")
        for r in validate_vtrain():
            print(f"| {r['gpus']} | {100 * r['mape']:.1f}% | {100 * r['max']:.1f}% | {100 * r['mape_large']:.1f}% | "
                  f"{100 * r['max_large']:.1f}% | {100 * r['mape_small']:.1f}% | {100 * r['bias_small']:+.1f}% |")
    if args.plots:
        plots(rows, pred)
        print("plots written to docs/img/collectives_<op>.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
