"""``diffsys train`` against measured NeMo / Megatron-Core training throughput on DGX-H100 (docs/llm.md).

Runs the ``diffsys train`` command on every pre-training and SFT configuration of
``shared/validation/nemo/training_throughput_h100.csv`` (NeMo 24.07, FP8, DGX-H100) and compares the predicted
tokens/s/GPU with the measured value: the command's defaults plus one stated rule per recipe setting (below). LoRA
rows are skipped (the training step has no frozen-weight / adapter model).

One constant is fitted: the ``dgx_h100`` preset's sustained training clock (``Cluster.sustained_clock``), on the
single-stage pre-training rows (``pp = 1``: compute, TP and DP only, so the clock is what they identify); the
pipelined pre-training rows and the SFT rows are held out and reported separately. The script refits it and
reports the fit next to the preset's stored value.

Recipe settings not in the table, one rule for every row (Megatron-Core / NeMo performance-recipe defaults):
sequence parallelism on when ``tp > 1``; the distributed optimizer (``--zero 1``) with gradient-reduce and
parameter-gather overlap (``--dp-overlap 1``); no activation recompute; no TP communication overlap; with the
interleaved schedule (``vp > 1``) the pipeline sends and receives overlapped (``--pp-overlap 1``: NeMo's
``overlap_p2p_comm: True``, which Megatron-Core supports only for the interleaved schedule).

    python examples/train_validation.py [--fit] [--out docs/img/train_validation.png] [--json docs/train_validation.json]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import pathlib
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = pathlib.Path(os.environ.get("DIFFSYS_SHARED", ROOT.parent / "shared")) / "validation" / "nemo"

# Models of the NeMo recipes that are neither catalogue ids nor diffsys presets, as Hugging Face config.json fields.
# GPT-3 5B/20B: NeMo ``GPTConfig5B``/``GPTConfig20B`` (nemo/collections/llm/gpt/model/base.py; GeLU MLP, tied
# embeddings, GPT-2 vocabulary padded to 50304). Nemotron: ``Nemotron3Config8B``/``Nemotron3Config22B``/
# ``Nemotron4Config340B`` (nemo/collections/llm/gpt/model/nemotron.py; squared-ReLU two-matrix MLP, untied
# embeddings, 256k vocabulary).
_GPT3 = {"vocab_size": 50304, "max_position_embeddings": 2048, "hidden_act": "gelu", "tie_word_embeddings": True}
_NEMOTRON = {"vocab_size": 256000, "max_position_embeddings": 4096, "hidden_act": "relu2",
             "tie_word_embeddings": False}
CONFIGS = {
    "GPT3-5B": {**_GPT3, "hidden_size": 4096, "intermediate_size": 16384, "num_hidden_layers": 24,
                "num_attention_heads": 32},
    "GPT3-20B": {**_GPT3, "hidden_size": 6144, "intermediate_size": 24576, "num_hidden_layers": 44,
                 "num_attention_heads": 48},
    "Nemotron-8B": {**_NEMOTRON, "hidden_size": 4096, "intermediate_size": 16384, "num_hidden_layers": 32,
                    "num_attention_heads": 32},
    "Nemotron-22B": {**_NEMOTRON, "hidden_size": 6144, "intermediate_size": 24576, "num_hidden_layers": 40,
                     "num_attention_heads": 48},
    "Nemotron-340B": {**_NEMOTRON, "hidden_size": 18432, "intermediate_size": 73728, "num_hidden_layers": 96,
                      "num_attention_heads": 96, "num_key_value_heads": 8},
}
#: mean tokens of one SQuAD-v1.1 sample (a Wikipedia paragraph of ~140 words, the question and the answer, at
#: ~1.3 Llama tokens per word): an assumption about the data set, not a fit. The NeMo SFT rows pack these samples
#: into 4,096-token sequences (the table's footnote: "SQuAD-v1.1 ... inputs are packed to 4096 tokens"), so attention
#: spans one sample (``diffsys train --document-length``); the predictions move < 1 % between 100 and 400 tokens
SQUAD_DOCUMENT_TOKENS = 200
#: recipe name -> diffsys transformer preset
PRESETS = {"GPT3-175B": "gpt3_175b", "LLAMA2-7B": "llama2_7b", "LLAMA2-13B": "llama2_13b",
           "LLAMA2-70B": "llama2_70b", "LLAMA3-8B": "llama3_8b", "LLAMA3-70B": "llama3_70b"}


def _int(x, default=1):
    return int(x) if x not in ("", "n/a", None) else default


def rows(path=DATA / "training_throughput_h100.csv"):
    """The pre-training and SFT rows (LoRA skipped)."""
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r["task"] in ("pretrain", "sft") and r["variant"] == "primary"]


def command(row, config_dir) -> list:
    """The ``diffsys train`` arguments of one measured row."""
    name = row["model"]
    if name in CONFIGS:
        model = os.path.join(config_dir, f"{name}.json")
        if not os.path.exists(model):
            with open(model, "w") as f:
                json.dump(CONFIGS[name], f)
    else:
        model = PRESETS[name]
    tp, pp = _int(row["tp"]), _int(row["pp"])
    argv = ["train", "--model", model, "--system", "dgx_h100", "--gpus", row["num_gpus"], "--tp", str(tp),
            "--pp", str(pp), "--cp", str(_int(row["cp"])), "--vp", str(_int(row["vp"])), "--gbs", row["gbs"],
            "--mbs", row["mbs"], "--seq", row["seq_len"], "--dtype", row["precision"].lower(), "--zero", "1",
            "--recompute", "none", "--dp-overlap", "1", "--json", "--no-cache"]
    if tp > 1:
        argv.append("--sequence-parallel")
    if _int(row["vp"]) > 1:
        argv += ["--pp-overlap", "1"]
    if row["task"] == "sft":
        argv += ["--document-length", str(SQUAD_DOCUMENT_TOKENS)]
    return argv


def in_fit_split(row) -> bool:
    """The rows the sustained clock is fitted on: single-stage pre-training (``pp = 1``)."""
    return row["task"] == "pretrain" and _int(row["pp"]) == 1


def fit_sustained_clock():
    """Least-squares fit (relative residuals) of ``Cluster.sustained_clock`` on the fit split, through the
    differentiable training step (``diffsys._fit.fit_least_squares``). Returns the ``FitResult``."""
    import equinox as eqx
    import jax.numpy as jnp

    from diffsys._fit import fit_least_squares
    from diffsys.cli import build_parser
    from diffsys.cli._cmd_train import build
    from diffsys.llm import training_step

    specs, measured = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in rows():
            if in_fit_split(r):
                model, cluster, par, _ = build(build_parser().parse_args(command(r, tmp)))
                specs.append((model, cluster, par))
                measured.append(float(r["tokens_per_sec_per_gpu"]))

    def predict(params, _):
        return jnp.stack([training_step(mo, eqx.tree_at(lambda c: c.sustained_clock, cl, params["sustained_clock"]),
                                        pa).tokens_per_s / cl.n_gpus for mo, cl, pa in specs])

    return fit_least_squares(predict, {"sustained_clock": 0.9}, None, jnp.asarray(measured), rtol=1e-5, atol=1e-6,
                             max_steps=64)


def predict(row, config_dir) -> dict:
    """The ``diffsys train --json`` report of a row (run in-process through the command's entry point)."""
    from diffsys.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(command(row, config_dir))
    if rc:
        raise RuntimeError(f"diffsys train failed on {row['model']}: rc {rc}")
    return json.loads(buf.getvalue())


def validate(select=None) -> list:
    """Predicted vs measured tokens/s/GPU of every row (``select(row)`` filters)."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in rows():
            if select is not None and not select(r):
                continue
            rep = predict(r, tmp)
            meas = float(r["tokens_per_sec_per_gpu"])
            pred = rep["tokens_per_s_per_gpu"]
            out.append({"task": r["task"], "model": r["model"], "gpus": int(r["num_gpus"]), "tp": _int(r["tp"]),
                        "pp": _int(r["pp"]), "cp": _int(r["cp"]), "vp": _int(r["vp"]), "gbs": int(r["gbs"]),
                        "seq": int(r["seq_len"]), "measured_tokens_per_s_per_gpu": meas,
                        "predicted_tokens_per_s_per_gpu": pred, "rel_error": pred / meas - 1.0,
                        "predicted_step_s": rep["step_s"], "measured_step_s":
                            int(r["gbs"]) * int(r["seq_len"]) / (meas * int(r["num_gpus"])),
                        "mem_GiB": rep["mem_GiB"], "breakdown_fraction": rep["breakdown_fraction"]})
    return out


#: the models of the context-parallel study (their position limits are lifted, as the study does): Llama-2 7B's
#: sizes (not in the catalogue; the ``llama2_7b`` preset's), Llama-3 8B = the catalogue's Llama-3.1 8B sizes
LONG_CONTEXT_MODELS = {
    "LLAMA2-7B": {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                  "num_attention_heads": 32, "vocab_size": 32000},
    "LLAMA3-8B": "meta-llama/Llama-3.1-8B",
}
LONG_CONTEXT_SYSTEMS = {"DGX-H100": "dgx_h100", "DGX-B200": "dgx_b200"}


def nemo_model_flops_per_token(cfg, seq, causal=False):
    """Model FLOPs per token of NeMo's throughput reports (``nemo/utils/flops_formulas.py``, ``llama2``/``llama3``,
    the 2024-2025 releases): ``L·h²·(12 + 12·g/a + 18·f/h + 12·s/h + 6·V/(L·h))`` per token, the attention core
    over the full ``s × s`` square; ``causal=True`` halves the ``12·s/h`` term (what later releases count)."""
    h, L, V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    a, g = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    core = 12.0 * seq / h * (0.5 if causal else 1.0)
    return L * h * h * (12.0 + 12.0 * g / a + 18.0 * cfg["intermediate_size"] / h + core + 6.0 * V / (L * h))


def long_context(path=DATA / "long_context_cp.csv") -> list:
    """The NeMo context-parallel study: Llama-2 7B on DGX-H100 (NeMo 24.03) and Llama-3 8B on DGX-B200 (NeMo
    25.04), FP8, 4k-1M tokens, TP/PP/DP/CP and global batch as published. Predicted model TFLOP/s/GPU = the
    predicted tokens/s/GPU times NeMo's own FLOP count (:func:`nemo_model_flops_per_token`); the causal reading is
    reported beside it. The B200 rows run on the printed TP·PP·DP·CP GPUs: their GPU column is exactly 4x that
    product in every row (README), and the printed DP is the one the global batch allows (gbs >= dp at 512k and
    1M tokens; 4x the DP is not)."""
    from diffsys.cli import main
    from diffsys.llm import model_config

    out = []
    with open(path, newline="") as f, tempfile.TemporaryDirectory() as tmp:
        for r in csv.DictReader(f):
            name, system = r["model"], LONG_CONTEXT_SYSTEMS[r["system"]]
            sizes = LONG_CONTEXT_MODELS[name]
            sizes = model_config(sizes) if isinstance(sizes, str) else sizes
            cfg = {**sizes, "max_position_embeddings": 1 << 21, "hidden_act": "silu", "tie_word_embeddings": False}
            model = os.path.join(tmp, f"{name}.json")
            with open(model, "w") as g:
                json.dump(cfg, g)
            tp, pp, dp, cp = (int(r[k]) for k in ("tp", "pp", "dp", "cp"))
            gpus, seq = tp * pp * dp * cp, int(r["seq_len_k"]) * 1024
            argv = ["train", "--model", model, "--system", system, "--gpus", str(gpus), "--tp", str(tp),
                    "--pp", str(pp), "--cp", str(cp), "--dp", str(dp), "--gbs", r["global_batch_size"],
                    "--seq", str(seq), "--dtype", "fp8", "--zero", "1", "--recompute", "none", "--json",
                    "--no-cache"] + (["--sequence-parallel"] if tp > 1 else [])
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                if main(argv):
                    raise RuntimeError(f"diffsys train failed on {argv}")
            rep = json.loads(buf.getvalue())
            meas = float(r["tflops_per_gpu_with_cp"])
            tok = rep["tokens_per_s_per_gpu"]
            pred = tok * nemo_model_flops_per_token(cfg, seq) / 1e12
            causal = tok * nemo_model_flops_per_token(cfg, seq, causal=True) / 1e12
            out.append({"task": "long_context", "model": name, "system": r["system"], "release": r["container"],
                        "seq": seq, "gpus": gpus, "tp": tp, "pp": pp, "dp": dp, "cp": cp,
                        "measured_tflops_per_gpu": meas, "predicted_tflops_per_gpu": pred,
                        "rel_error": pred / meas - 1.0, "predicted_causal_tflops_per_gpu": causal,
                        "rel_error_causal": causal / meas - 1.0, "predicted_tokens_per_s_per_gpu": tok,
                        "mem_GiB": rep["mem_GiB"], "breakdown_fraction": rep["breakdown_fraction"]})
    return out


def stats(results) -> dict:
    """MAPE and max |error| overall, per task and per model family (GPT3, LLAMA2, LLAMA3, Nemotron)."""
    def agg(sel):
        e = np.abs([x["rel_error"] for x in sel])
        return {"n": int(e.size), "mape": float(e.mean()), "max": float(e.max()),
                "bias": float(np.mean([x["rel_error"] for x in sel]))}

    groups = {"all": results}
    for x in results:
        groups.setdefault(f"task={x['task']}", []).append(x)
        groups.setdefault(f"family={x['model'].split('-')[0]}", []).append(x)
    return {k: agg(v) for k, v in groups.items()}


def plot(results, path):
    from diffsys._plotting import figure_and_axes, save_figure

    fig, ax = figure_and_axes(figsize=(5.2, 4.6))
    fams = sorted({x["model"].split("-")[0] for x in results})
    for fam, mk in zip(fams, "osD^v"):
        sel = [x for x in results if x["model"].startswith(fam)]
        ax.scatter([x["measured_tokens_per_s_per_gpu"] for x in sel], [x["predicted_tokens_per_s_per_gpu"]
                   for x in sel], marker=mk, label=fam)
    lim = [200, 40000]
    ax.plot(lim, lim, "k-", lw=0.8)
    ax.fill_between(lim, [v * 0.8 for v in lim], [v * 1.2 for v in lim], color="0.9", zorder=0, label="±20 %")
    ax.set_xscale("log"), ax.set_yscale("log"), ax.set_xlim(lim), ax.set_ylim(lim)
    ax.set_xlabel("measured tokens/s/GPU (NeMo 24.07, DGX-H100, FP8)")
    ax.set_ylabel("diffsys train, tokens/s/GPU")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=130)


def plot_long_context(results, path):
    """Measured and predicted model TFLOP/s/GPU against the sequence length, one line pair per system."""
    from diffsys._plotting import figure_and_axes, save_figure

    fig, ax = figure_and_axes(figsize=(5.6, 4.0))
    for (system, sel), c in zip(((s, [x for x in results if x["system"] == s]) for s in LONG_CONTEXT_SYSTEMS),
                                ("C0", "C1")):
        seq = [x["seq"] / 1024 for x in sel]
        ax.plot(seq, [x["measured_tflops_per_gpu"] for x in sel], "o-", color=c,
                label=f"{system} {sel[0]['model']} measured ({sel[0]['release']})")
        ax.plot(seq, [x["predicted_tflops_per_gpu"] for x in sel], "s--", color=c, mfc="none",
                label=f"{system} diffsys train")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sequence length (k tokens), CP grows with it")
    ax.set_ylabel("model TFLOP/s/GPU (NeMo's FLOP count)")
    ax.set_ylim(0, None)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=130)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "img" / "train_validation.png"))
    ap.add_argument("--json", default=str(ROOT / "docs" / "train_validation.json"))
    ap.add_argument("--fit", action="store_true",
                    help="refit the sustained clock on the fit split (one compile of five steps: minutes)")
    a = ap.parse_args(argv)
    from diffsys.llm import SUSTAINED_CLOCK_SOURCES, cluster_preset

    if a.fit:
        fit = fit_sustained_clock()
        print(f"sustained clock fitted on the single-stage pre-training rows: {fit.params['sustained_clock']:.4f} "
              f"(converged {fit.success}, {fit.steps} steps; fit-split MAPE {100 * fit.mape:.1f} %, max "
              f"{100 * fit.max_error:.1f} %)")
    res = validate()
    st = stats(res)
    lc = long_context()
    for x in lc:
        print(f"long-context {x['system']} {x['model']} seq {x['seq']:8d} gpus {x['gpus']:4d} tp{x['tp']} pp{x['pp']}"
              f" dp{x['dp']} cp{x['cp']:<3d} measured {x['measured_tflops_per_gpu']:6.0f} predicted "
              f"{x['predicted_tflops_per_gpu']:6.0f} TFLOP/s/GPU {100 * x['rel_error']:+6.1f} % (causal count "
              f"{x['predicted_causal_tflops_per_gpu']:6.0f}, {100 * x['rel_error_causal']:+6.1f} %)")
    lc_stats = {}
    for system in LONG_CONTEXT_SYSTEMS:
        sel = [x for x in lc if x["system"] == system]
        lc_stats[system] = stats(sel)["all"]
        lc_stats[system]["causal_count"] = stats([{**x, "rel_error": x["rel_error_causal"]} for x in sel])["all"]
        for name, v in (("NeMo count", lc_stats[system]), ("causal count", lc_stats[system]["causal_count"])):
            print(f"long-context {system} ({name}) n={v['n']} MAPE {100 * v['mape']:.1f} % max "
                  f"{100 * v['max']:.1f} % bias {100 * v['bias']:+.1f} %")
    for x in res:
        print(f"{x['task']:8s} {x['model']:14s} {x['gpus']:4d} tp{x['tp']} pp{x['pp']} cp{x['cp']} vp{x['vp']:<3d}"
              f" measured {x['measured_tokens_per_s_per_gpu']:8.0f} predicted {x['predicted_tokens_per_s_per_gpu']:8.0f}"
              f" {100 * x['rel_error']:+6.1f} %")
    for k, v in st.items():
        print(f"{k:18s} n={v['n']:2d} MAPE {100 * v['mape']:5.1f} %  max {100 * v['max']:5.1f} %  "
              f"bias {100 * v['bias']:+5.1f} %")
    with open(a.json, "w") as f:
        json.dump({"source": "shared/validation/nemo/training_throughput_h100.csv (NeMo 24.07, DGX-H100)",
                   "fitted": {"dgx_h100 sustained_clock": float(cluster_preset("dgx_h100").sustained_clock),
                              "source": SUSTAINED_CLOCK_SOURCES["hgx_h100"],
                              "held_out": "every row but the pretrain rows with pp = 1"},
                   "stats": st, "held_out": stats([x for x in res if not in_fit_split(x)])["all"],
                   "rows": res,
                   "long_context": {"source": "shared/validation/nemo/long_context_cp.csv",
                                    "flop_count": "NeMo flops_formulas (full s x s attention square)",
                                    "stats": lc_stats, "rows": lc}}, f, indent=1)
    plot(res, a.out)
    lc_png = str(pathlib.Path(a.out).with_name("train_long_context.png"))
    plot_long_context(lc, lc_png)
    print(f"wrote {a.out}, {lc_png} and {a.json}")


if __name__ == "__main__":
    main()
