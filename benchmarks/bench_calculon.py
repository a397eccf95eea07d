"""Calculon side by side with ``diffsys calculon``: search time and best execution, all-executions agreement, and the
Korthikanti et al. 2022 Table 5 validation.

Calculon (https://github.com/calculon-ai/calculon, Apache-2.0) is run as a subprocess with its own interpreter and
``bin/calculon``; it is never imported here. Point ``--calculon`` at its checkout and ``--calculon-python`` at an
interpreter that has its dependencies (e.g. a separate venv with ``pip install -e <checkout>``).

    python benchmarks/bench_calculon.py [--calculon DIR] [--calculon-python PY] [--quick] [--write-fixture]

1. Search: ``llm-optimal-execution`` of a small model on 4 GPUs with a reduced execution space (no second memory
   tier, so no offloads; ``--no-tp-overlap --no-dp-overlap``), both tools from a cold start, wall time of each,
   the ratio, and whether both pick the same best execution.
2. ``llm-all-executions`` on a few models: the executions both accept joined on the execution fields; Spearman rank
   correlation and median relative difference of ``total_time``; agreement of ``proc_mem_tier1_cap_req``.
3. Table 5 of Korthikanti et al., "Reducing activation recomputation in large transformer models" (MLSys 2023):
   iteration times measured on Selene (A100) for four models with full recompute and with sequence parallelism +
   selective recompute (the values in Calculon's ``llm-validation``), through ``diffsys calculon`` and through
   Calculon, error of each against the measurement. No diffsys constant is fitted to these rows.
4. Forward only (``training: false``): a few executions through both tools, total time and memory side by side.

``--write-fixture`` stores Calculon's memory statistics for a sample of executions (and the Table 5 rows) in
``tests/data/calculon/reference.json``, the data the tests compare the drop-in's Calculon accounting with.
Results go to ``benchmarks/results/calculon.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Table 5 of Korthikanti et al. 2022 (arXiv 2205.05198): seconds per iteration on Selene, as in Calculon's
# llm-validation
TABLE5 = {"megatron-22B": {"full": 1.42, "seqsel": 1.10}, "gpt3-175B": {"full": 18.13, "seqsel": 13.75},
          "turing-530B": {"full": 49.05, "seqsel": 37.83}, "megatron-1T": {"full": 94.42, "seqsel": 71.49}}
MEMORY_KEYS = ("weight_space", "act_space", "act_checkpoint_size", "act_grad_space", "weight_grad_space",
               "optimizer_space", "proc_mem_tier1_cap_req", "proc_mem_tier2_cap_req")
#: Calculon's counting statistics (FLOPs, message sizes, tier-1 shares under offload) the fixture stores beside
#: the memory keys; the drop-in's accounting must reproduce them exactly
COUNT_KEYS = ("block_fw_flops", "block_re_flops", "block_agrad_flops", "block_wgrad_flops", "block_optim_flops",
              "baseblock_fw_tp_size", "edgeblock_fw_tp_size", "baseblock_bw_tp_size", "edgeblock_bw_tp_size",
              "baseblock_recomm_size", "edgeblock_recomm_size", "block_fw_pp_size", "block_bw_pp_size",
              "block_dp_size", "useful_flops", "weight_space_with_offload", "act_space_with_offload",
              "act_checkpoint_size_with_offload", "act_grad_space_with_offload", "weight_grad_space_with_offload",
              "optimizer_space_with_offload", "compute_efficiency", "total_efficiency", "fw_time", "bw_time",
              "optim_step_time")


def _reference(stats):
    """The fixture's Calculon values of one run (``None`` where Calculon reports none)."""
    num = lambda v: None if v in (None, "None", "") else float(v)
    return {k: num(stats[k]) for k in (*MEMORY_KEYS, *COUNT_KEYS, "total_time")}


def calculon(args, *cmd, cwd=None):
    """Run Calculon's command line; returns (seconds, stdout+stderr)."""
    t0 = time.perf_counter()
    r = subprocess.run([args.calculon_python, str(Path(args.calculon) / "bin" / "calculon"), *cmd],
                       capture_output=True, text=True, cwd=cwd or args.calculon,
                       env={**os.environ, "PYTHONPATH": str(args.calculon)})
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"calculon {' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    return dt, r.stdout + r.stderr


def diffsys(*cmd):
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "diffsys", "calculon", *cmd], capture_output=True, text=True,
                       env={**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")})
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"diffsys calculon {' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    return dt, r.stdout + r.stderr


def read_csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


EXEC_KEYS = ("num_procs", "tensor_par", "pipeline_par", "data_par", "tensor_par_net", "pipeline_par_net",
             "data_par_net", "batch_size", "microbatch_size", "datatype", "fused_activation", "attention_type",
             "activation_recompute", "pipeline_interleaving", "optimizer_sharding", "tensor_par_comm_type",
             "tensor_par_overlap", "seq_par_ag_redo", "data_par_overlap", "weight_offload", "activations_offload",
             "optimizer_offload", "training")


def spearman(x, y):
    rx = np.argsort(np.argsort(x)).astype(float)
    ry = np.argsort(np.argsort(y)).astype(float)
    return float(np.corrcoef(rx, ry)[0, 1])


def no_mem2_system(args, tmp):
    """Calculon's a100_80g system without a second memory tier (no offload choices in the search)."""
    sysd = json.loads((Path(args.calculon) / "systems" / "a100_80g.json").read_text())
    sysd["mem2"]["GiB"] = 0
    path = Path(tmp) / "a100_80g_nomem2.json"
    path.write_text(json.dumps(sysd, indent=1))
    return path


def bench_search(args, tmp):
    model = Path(args.calculon) / "models" / f"{args.search_model}.json"
    system = no_mem2_system(args, tmp)
    common = [str(model), str(args.search_procs), str(args.search_batch), "float16", str(system)]
    flags = ["--no-tp-overlap", "--no-dp-overlap"]
    t_c, log_c = calculon(args, "llm-optimal-execution", *common, str(Path(tmp) / "calc_opt.json"), *flags,
                          "-c", str(os.cpu_count() or 1))
    t_d, log_d = diffsys("llm-optimal-execution", *common, str(Path(tmp) / "diff_opt.json"), *flags)
    best_c = json.loads((Path(tmp) / "calc_opt.json").read_text())["0"]
    best_d = json.loads((Path(tmp) / "diff_opt.json").read_text())["0"]
    same = best_c["execution"] == best_d["execution"]
    count = next((int(l.split(":")[-1]) for l in log_c.splitlines() if "Total executions" in l), None)
    count_d = next((int(l.split(":")[-1]) for l in log_d.splitlines() if "Total executions" in l), None)
    diff_keys = sorted(k for k in best_c["execution"] if best_c["execution"][k] != best_d["execution"].get(k))
    out = {"model": args.search_model, "num_procs": args.search_procs, "max_batch_size": args.search_batch,
           "system": "a100_80g without mem2", "flags": flags, "executions_calculon": count,
           "executions_diffsys": count_d, "calculon_s": t_c, "diffsys_s": t_d, "speedup": t_c / t_d,
           "same_best": same, "differing_fields": diff_keys,
           "calculon_best": best_c["execution"], "diffsys_best": best_d["execution"],
           "calculon_best_sample_rate": best_c["stats"]["sample_rate"],
           "diffsys_best_sample_rate": best_d["stats"]["sample_rate"]}
    print(f"search {args.search_model} on {args.search_procs} GPUs ({count} executions): Calculon {t_c:.1f} s, "
          f"diffsys {t_d:.1f} s (cold, incl. compile) -> {t_c / t_d:.1f}x; same best execution: {same}"
          + ("" if same else f" (differs in {diff_keys})"))
    return out


def bench_all(args, tmp, model_name, procs, batch, system_path, fixture_rows=None):
    model = Path(args.calculon) / "models" / f"{model_name}.json"
    common = [str(model), str(procs), str(batch), "float16", str(system_path)]
    c_csv, d_csv = Path(tmp) / f"calc_{model_name}.csv", Path(tmp) / f"diff_{model_name}.csv"
    t_c, _ = calculon(args, "llm-all-executions", *common, str(c_csv), "-c", str(os.cpu_count() or 1))
    t_d, _ = diffsys("llm-all-executions", *common, str(d_csv))
    crow, drow = read_csv(c_csv), read_csv(d_csv)
    key = lambda r: tuple(r[k] for k in EXEC_KEYS)
    dmap = {key(r): r for r in drow}
    both = [(r, dmap[key(r)]) for r in crow if key(r) in dmap]
    tc = np.array([float(a["total_time"]) for a, _ in both])
    td = np.array([float(b["total_time"]) for _, b in both])
    mc = np.array([float(a["proc_mem_tier1_cap_req"]) for a, _ in both])
    md = np.array([float(b["proc_mem_tier1_cap_req"]) for _, b in both])
    rel = (td - tc) / tc
    out = {"model": model_name, "num_procs": procs, "max_batch_size": batch, "system": Path(system_path).name,
           "calculon_rows": len(crow), "diffsys_rows": len(drow), "joined": len(both),
           "spearman_total_time": spearman(tc, td), "median_rel_diff_total_time": float(np.median(rel)),
           "median_abs_rel_diff_total_time": float(np.median(np.abs(rel))),
           "memory_exact_fraction": float(np.mean(np.abs(md - mc) <= 1e-6 * mc)), "calculon_s": t_c,
           "diffsys_s": t_d}
    print(f"all-executions {model_name} on {procs}: {len(crow)} Calculon / {len(drow)} diffsys rows, {len(both)} "
          f"joined; Spearman(total_time) {out['spearman_total_time']:.3f}, median rel. diff "
          f"{100 * out['median_rel_diff_total_time']:+.1f} % (|.| {100 * out['median_abs_rel_diff_total_time']:.1f} %); "
          f"memory identical on {100 * out['memory_exact_fraction']:.1f} %; Calculon {t_c:.1f} s, diffsys {t_d:.1f} s")
    if fixture_rows is not None:
        rng = random.Random(0)
        for r in rng.sample(crow, min(40, len(crow))):
            fixture_rows.append({"model": model_name, "execution": {k: _typed(r[k]) for k in EXEC_KEYS},
                                 "calculon": _reference(r)})
    return out


def _typed(v):
    if v in ("True", "False"):
        return v == "True"
    try:
        return int(v)
    except ValueError:
        return v


#: forward-only (``training: false``) executions: the Table 5 megatron-22B execution with the parallel degrees,
#: TP communication, overlap and pipeline interleaving varied (model, procs, tp, pp, dp, batch, microbatch,
#: tensor_par_comm_type, tensor_par_overlap, pipeline_interleaving, optimizer_sharding)
FORWARD = (("megatron-22B", 8, 8, 1, 1, 4, 4, "rs_ag", "none", 1, False),
           ("megatron-22B", 8, 8, 1, 1, 4, 4, "ar", "none", 1, False),
           ("megatron-22B", 16, 8, 2, 1, 8, 1, "ar", "ring", 1, False),
           ("gpt3-175B", 64, 8, 8, 1, 16, 1, "rs_ag", "pipe", 2, False),
           ("gpt3-175B", 128, 8, 8, 2, 32, 2, "p2p_rs_ag", "none", 1, True),
           ("turing-530B", 280, 8, 35, 1, 70, 1, "rs_ag", "none", 1, False))


def bench_forward(args, fixture_rows=None):
    """``training: false`` (the forward pass only) through both tools on the a100_80e system: total time and
    memory side by side."""
    from diffsys.io import run_calculon

    cal = Path(args.calculon)
    base = json.loads((cal / "validation" / "seqsel" / "tab5" / "megatron-22B_seqsel.json").read_text())
    system = cal / "systems" / "a100_80e.json"
    rows = []
    for model, procs, tp, pp, dp, batch, mb, comm, ov, v, shard in FORWARD:
        exe = {**base, "num_procs": procs, "tensor_par": tp, "pipeline_par": pp, "data_par": dp,
               "batch_size": batch, "microbatch_size": mb, "tensor_par_comm_type": comm, "tensor_par_overlap": ov,
               "pipeline_interleaving": v, "optimizer_sharding": shard, "activation_recompute": "none",
               "seq_par_ag_redo": False, "training": False}
        with tempfile.TemporaryDirectory() as tmp:
            path, out = Path(tmp) / "e.json", Path(tmp) / "o.json"
            path.write_text(json.dumps(exe))
            calculon(args, "llm", str(cal / "models" / f"{model}.json"), str(path), str(system), str(out))
            cst = json.loads(out.read_text())
        st = run_calculon(cal / "models" / f"{model}.json", exe, system)
        rows.append({"model": model, "execution": exe, "calculon_s": cst["total_time"], "diffsys_s": st["total_time"],
                     "rel_diff": st["total_time"] / cst["total_time"] - 1,
                     "memory_identical": all(abs(st[k] - cst[k]) <= 1e-6 * max(abs(cst[k]), 1.0)
                                             for k in MEMORY_KEYS)})
        if fixture_rows is not None:
            fixture_rows.append({"model": model, "execution": exe,
                                 "calculon": _reference(cst)})
    rel = np.array([r["rel_diff"] for r in rows])
    print("forward only (training: false), total_time diffsys vs Calculon: "
          + ", ".join(f"{r['model']}/{r['execution']['num_procs']} {100 * r['rel_diff']:+.1f} %" for r in rows)
          + f"; memory identical on {sum(r['memory_identical'] for r in rows)}/{len(rows)}")
    return {"rows": rows, "mean_abs_rel_diff": float(np.abs(rel).mean()), "max_abs_rel_diff": float(np.abs(rel).max())}


def bench_table5(args, fixture_rows=None):
    from diffsys.io import run_calculon

    cal = Path(args.calculon)
    rows = []
    for model, modes in TABLE5.items():
        for mode, measured in modes.items():
            exe = cal / "validation" / "seqsel" / "tab5" / f"{model}_{mode}.json"
            st = run_calculon(cal / "models" / f"{model}.json", exe, cal / "systems" / "a100_80g.json")
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "o.json"
                calculon(args, "llm", str(cal / "models" / f"{model}.json"), str(exe),
                         str(cal / "systems" / "a100_80g.json"), str(out))
                cst = json.loads(out.read_text())
            rows.append({"model": model, "mode": mode, "measured_s": measured, "diffsys_s": st["total_time"],
                         "calculon_s": cst["total_time"], "diffsys_err": st["total_time"] / measured - 1,
                         "calculon_err": cst["total_time"] / measured - 1,
                         "mem_GiB_calculon": cst["proc_mem_tier1_cap_req"] / 2**30,
                         "mem_GiB_drop_in": st["proc_mem_tier1_cap_req"] / 2**30,
                         "diffsys_mem_GiB": st["diffsys_mem_GiB"]})
            if fixture_rows is not None:
                fixture_rows.append({"model": model, "execution": json.loads(exe.read_text()),
                                     "calculon": _reference(cst)})
    d = np.array([abs(r["diffsys_err"]) for r in rows])
    c = np.array([abs(r["calculon_err"]) for r in rows])
    print("Table 5 (Korthikanti et al. 2022), seconds per iteration:")
    print("| model | mode | measured | diffsys | err | Calculon | err | memory GiB (Calculon = drop-in) | "
          "diffsys_mem_GiB |")
    for r in rows:
        print(f"| {r['model']} | {r['mode']} | {r['measured_s']:.2f} | {r['diffsys_s']:.2f} | "
              f"{100 * r['diffsys_err']:+.1f} % | {r['calculon_s']:.2f} | {100 * r['calculon_err']:+.1f} % | "
              f"{r['mem_GiB_calculon']:.2f} = {r['mem_GiB_drop_in']:.2f} | {r['diffsys_mem_GiB']:.2f} |")
    summary = {"diffsys_mean_abs_err": float(d.mean()), "diffsys_max_abs_err": float(d.max()),
               "calculon_mean_abs_err": float(c.mean()), "calculon_max_abs_err": float(c.max())}
    print(f"mean |err| diffsys {100 * d.mean():.2f} % (max {100 * d.max():.2f} %), Calculon {100 * c.mean():.2f} % "
          f"(max {100 * c.max():.2f} %)")
    return {"rows": rows, **summary}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calculon", default=str(ROOT.parent / "shared" / "peers" / "calculon"))
    ap.add_argument("--calculon-python", default="/work/calcvenv/bin/python")
    ap.add_argument("--search-model", default="megatron-126M")
    ap.add_argument("--search-procs", type=int, default=4)
    ap.add_argument("--search-batch", type=int, default=16)
    ap.add_argument("--quick", action="store_true", help="Table 5 and the search only")
    ap.add_argument("--write-fixture", action="store_true")
    args = ap.parse_args(argv)
    fixture = [] if args.write_fixture else None
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        res["table5"] = bench_table5(args, fixture)
        res["forward_only"] = bench_forward(args, fixture)
        res["search"] = bench_search(args, tmp)
        if not args.quick:
            nomem2 = no_mem2_system(args, tmp)
            res["all_executions"] = [
                bench_all(args, tmp, "megatron-126M", 2, 8, nomem2, fixture),
                bench_all(args, tmp, "megatron-5B", 2, 8, nomem2, fixture),
            ]
    res["load"] = os.getloadavg()
    out = ROOT / "benchmarks" / "results" / "calculon.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=str) + "\n")
    print(f"wrote {out}")
    if fixture is not None:
        fx = ROOT / "tests" / "data" / "calculon" / "reference.json"
        fx.parent.mkdir(parents=True, exist_ok=True)
        fx.write_text(json.dumps({"source": "Calculon (calculon-ai/calculon) llm / llm-all-executions on its own "
                                            "model and system files; written by benchmarks/bench_calculon.py",
                                  "rows": fixture}, indent=1) + "\n")
        print(f"wrote {fx}")


if __name__ == "__main__":
    main()
