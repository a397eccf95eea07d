"""``diffsys train``: table and JSON output, one-line errors naming the flag, precision and scaling invariants, and
the NeMo DGX-H100 accuracy bound (docs/llm.md, "diffsys train").

Compiles: the training step is compiled once per static structure (MLP kind, embedding tying, cluster, dtype);
the command gives every model the same display name, so the Llama-family rows and the CLI runs share the bf16 and
fp8 compilations of one dense SwiGLU model on DGX-H100.
"""

import importlib.util
import json
import pathlib

import pytest

from diffsys.cli import build_parser, main
from diffsys.cli._cmd_train import evaluate

ROOT = pathlib.Path(__file__).resolve().parents[1]
LLAMA = ["--model", "meta-llama/Llama-3.1-8B", "--system", "dgx_h100", "--seq", "4096"]


def _train(*argv):
    return evaluate(build_parser().parse_args(["train", *LLAMA, "--no-cache", *argv]))


@pytest.fixture(scope="module")
def base():
    """One bf16 report (compiles the step once for the module)."""
    return _train("--gpus", "8", "--gbs", "64")


def test_json_keys_and_breakdown_sums_to_step(base, capsys):
    assert main(["train", *LLAMA, "--gpus", "8", "--gbs", "64", "--json", "--no-cache"]) == 0
    out = json.loads(capsys.readouterr().out)
    for k in ("step_s", "tokens_per_s_per_gpu", "mfu", "mem_GiB", "tflops_per_gpu", "fits", "memory_GiB",
              "breakdown_s", "breakdown_fraction", "parallelism", "recipe"):
        assert k in out
    for k in ("compute_fwd", "compute_bwd", "recompute", "tp_comm", "pp_comm", "dp_comm", "ep_comm", "bubble",
              "optimizer"):
        assert k in out["breakdown_s"]
    assert out["step_s"] == pytest.approx(base["step_s"])
    assert sum(out["breakdown_s"].values()) == pytest.approx(out["step_s"], rel=1e-4)
    assert 0 < out["mfu"] < 1 and out["parallelism"]["dp"] == 8 and out["parallelism"]["microbatches"] == 8
    # tokens/s/GPU is the batch over the step and the GPUs
    assert out["tokens_per_s_per_gpu"] == pytest.approx(64 * 4096 / out["step_s"] / 8, rel=1e-5)


def test_table_output(base, capsys):
    assert main(["train", *LLAMA, "--gpus", "8", "--gbs", "64", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("meta-llama/Llama-3.1-8B on dgx_h100, 8 GPUs, bf16")
    for k in ("step_s", "tokens_per_s_per_gpu", "mfu", "mem_GiB", "breakdown_s", "dp_comm", "bubble"):
        assert k in out


@pytest.mark.parametrize("argv, needle", [
    (["--model", "meta-llama/Llama-3.1-8b-instruc"], "--model: unknown model id"),
    (["--model", "not-a-model"], "config.json path or a preset"),
    (["--tp", "3"], "--tp 3 must divide the model's 32 attention heads (valid: 1, 2, 4, 8"),
    (["--gpus", "16", "--tp", "2", "--dp", "4"], "--gpus 16 must equal tp·pp·dp·cp = 8"),
    (["--gpus", "12", "--tp", "8"], "--gpus 12 must be a multiple of tp·pp·cp = 8"),
    (["--system", "dgx_a100", "--dtype", "fp4"], "--dtype fp4 needs fp4 matrix units, which A100-SXM4-80GB lacks"),
    (["--system", "dgx_a100", "--dtype", "fp8"], "supported training dtypes there: ['bf16']"),
    (["--system", "dgx_h100", "--dtype", "fp4"], "H100-SXM5-80GB lacks"),
    (["--gbs", "12"], "--gbs 12 must be a multiple of dp·mbs = 8"),
    (["--pp", "3", "--gpus", "3"], "--pp·--vp = 3 must divide the model's 32 layers"),
    (["--vp", "2"], "--vp 2 needs --pp > 1"),
    (["--ep", "2"], "--ep 2 needs a mixture-of-experts model"),
    (["--model", "mistralai/Mixtral-8x7B-v0.1", "--ep", "16", "--gpus", "16"], "--ep 16 must divide the model's 8"),
    (["--model", "deepseek-ai/DeepSeek-V3", "--ep", "3"], "--ep 3 must divide the model's 256"),
    (["--seq", "200000"], "--seq must be in [1, 131072]"),
    (["--zero", "4"], "argument --zero: must be an integer in [0, 3]"),
    (["--tp", "0"], "argument --tp: must be an integer in [1,"),
    (["--system", "dgx_h10"], "did you mean 'dgx_h100'"),
    (["--document-length", "-5"], "argument --document-length: must be a finite number in [0, inf], got -5"),
])
def test_errors_are_one_line_naming_the_flag(argv, needle, capsys):
    assert main(["train", *LLAMA, "--gpus", "8", "--no-cache", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_packed_documents_speed_up_only_attention(base):
    """``--document-length``: packed 256-token documents make the step faster (attention spans one document) by
    less than the attention core's share; the sequence length itself changes nothing; MFU counts the packed
    attention's FLOPs."""
    packed = _train("--gpus", "8", "--gbs", "64", "--document-length", "256")
    whole = _train("--gpus", "8", "--gbs", "64", "--document-length", "4096")
    assert whole["step_s"] == pytest.approx(base["step_s"], rel=1e-6)
    assert 0.75 * base["step_s"] < packed["step_s"] < 0.98 * base["step_s"]
    assert packed["tflops_per_gpu"] < base["tflops_per_gpu"]


def test_fp8_faster_than_bf16_on_a_compute_bound_model():
    """Llama-3.1-70B at TP 8 with its TP communication overlapped (the linear layers' GEMMs dominate the step): the
    FP8 recipe's step is faster, by much less than the 2x of the GEMM peaks (1.07x: the calibrated FP8 GEMM kernels
    reach a lower fraction of their peak on the thin TP-sharded shapes; attention and the output layer stay BF16;
    the activation quantisation kernels move h-wide tensors per token while the GEMMs shrink with TP 8), and its
    quantised weight copies cost memory."""
    argv = ("--model", "meta-llama/Llama-3.1-70B", "--gpus", "8", "--tp", "8", "--gbs", "8", "--sequence-parallel",
            "--recompute", "full", "--tp-overlap", "1")
    bf16 = evaluate(build_parser().parse_args(["train", *argv, "--no-cache"]))
    fp8 = evaluate(build_parser().parse_args(["train", *argv, "--dtype", "fp8", "--no-cache"]))
    assert fp8["recipe"] == "fp8_per_tensor"
    assert 1.03 < bf16["step_s"] / fp8["step_s"] < 2.0
    assert fp8["memory_GiB"]["weights"] > bf16["memory_GiB"]["weights"]


def test_data_parallel_scaling_invariants(base):
    """More DP at a fixed global batch: the step gets faster; weak scaling (batch grows with DP, no ZeRO so the
    optimizer step is the same): the step never gets faster and tokens/s/GPU never grows (the gradient all-reduce
    only adds), while the job's tokens/s grows."""
    strong = _train("--gpus", "16", "--gbs", "64")
    assert strong["step_s"] < base["step_s"]
    b0, weak = (_train("--gpus", g, "--gbs", b, "--zero", "0") for g, b in (("8", "64"), ("16", "128")))
    assert weak["step_s"] >= b0["step_s"] * (1 - 1e-6)
    assert weak["tokens_per_s_per_gpu"] <= b0["tokens_per_s_per_gpu"] * (1 + 1e-6)
    assert weak["tokens_per_s_per_gpu"] * 16 > b0["tokens_per_s_per_gpu"] * 8  # the job's throughput still grows


def _validation():
    spec = importlib.util.spec_from_file_location("train_validation", ROOT / "examples" / "train_validation.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_nemo_h100_llama_rows_within_bound(validation_dir):
    """The Llama pre-training rows of the NeMo 24.07 DGX-H100 table (FP8; one compile), recomputed: MAPE <= 6 %,
    max <= 10 % (measured 4.3 % / 8.0 %: docs/llm.md). Of these, LLAMA2-7B and LLAMA3-8B are in the sustained
    clock's fit split; the other three are held out."""
    mod = _validation()
    res = mod.validate(lambda r: r["model"].startswith("LLAMA") and r["task"] == "pretrain")
    st = mod.stats(res)["all"]
    assert st["n"] == 5
    assert st["mape"] <= 0.06 and st["max"] <= 0.10, st


def test_nemo_long_context_rows(validation_dir):
    """The NeMo context-parallel study (4k-1M tokens, CP up to 32; FP8), in NeMo's own model-FLOP count
    (attention over the full s x s square). DGX-B200 (Llama-3 8B, NeMo 25.04; unseen hardware: the joint A100/H100
    kernel constants, no sustained-clock fit): MAPE <= 5 %, max <= 12 % (measured 4.1 % / 10.7 %). DGX-H100
    (Llama-2 7B, NeMo 24.03): predicted fast, more so as attention dominates: within -5 %..+42 %, MAPE <= 22 %
    (measured 20.5 % / 40.0 %, a known miss: docs/llm.md). The causal reading of the count cannot be the study's:
    it would put the flat B200 measurements 40-49 % above the prediction at 128k-1M tokens."""
    res = _validation().long_context()
    b200 = [x for x in res if x["system"] == "DGX-B200"]
    h100 = [x for x in res if x["system"] == "DGX-H100"]
    assert len(b200) == 8 and len(h100) == 9

    def mape(rows, key="rel_error"):
        return sum(abs(x[key]) for x in rows) / len(rows)

    assert mape(b200) <= 0.05 and max(abs(x["rel_error"]) for x in b200) <= 0.12, b200
    err = [x["rel_error"] for x in h100]
    assert all(-0.05 <= e <= 0.42 for e in err) and mape(h100) <= 0.22, err
    assert err[-1] > err[0]  # the attention-bound end is the miss
    assert min(x["rel_error_causal"] for x in b200 if x["seq"] >= 128 * 1024) < -0.39


def test_shipped_nemo_table_within_bound():
    """The full table the docs quote (docs/train_validation.json, from examples/train_validation.py): MAPE <= 7 %,
    every row within 21 % (measured 5.8 % / 19.5 %); the held-out rows (pipelined pre-training and SFT) alone:
    MAPE <= 8 %, max <= 21 %."""
    data = json.loads((ROOT / "docs" / "train_validation.json").read_text())
    assert data["stats"]["all"]["n"] == 15
    assert data["stats"]["all"]["mape"] <= 0.07 and data["stats"]["all"]["max"] <= 0.21
    held = [abs(r["rel_error"]) for r in data["rows"] if not (r["task"] == "pretrain" and r["pp"] == 1)]
    assert len(held) == 10 and sum(held) / len(held) <= 0.08 and max(held) <= 0.21, held
