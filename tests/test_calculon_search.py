"""`diffsys calculon llm-optimal-execution` / `llm-all-executions`: Calculon's execution space, its rejections,
its output formats, and the vmapped evaluation against single runs."""

import csv
import json

import pytest

from diffsys.cli import main
from diffsys.io import run_calculon
from diffsys.io._calculon_search import (
    EXECUTION_KEYS,
    _calculon_accepts,
    enumerate_executions,
    optimal_executions,
    write_all,
    write_optimal,
)
from diffsys.io._calculon import STATS_FIELDS, DIFFSYS_FIELDS



def _json(path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("model, procs, batch, mem2, count", [
    # Calculon's own "Total executions" (its llm-all-executions -d) for these searches
    ("megatron-126M", 8, 64, True, 298072),
    ("megatron-126M", 2, 8, True, 6080),
])
def test_execution_space_is_calculons(calc, model, procs, batch, mem2, count):
    system = _json(calc / "systems/a100_80g.json")
    if not mem2:
        system["mem2"]["GiB"] = 0
    exes = list(enumerate_executions(_json(calc / f"models/{model}.json"), system, procs, batch, "float16"))
    assert len(exes) == count
    assert all(set(e) == set(EXECUTION_KEYS) for e in exes[:100])
    # no duplicates, every execution uses all processors
    assert len({tuple(e.values()) for e in exes}) == count
    assert all(e["tensor_par"] * e["pipeline_par"] * e["data_par"] == procs for e in exes)


def test_reduced_space_and_options(calc):
    model, system = _json(calc / "models/megatron-126M.json"), _json(calc / "systems/a100_80g.json")
    system["mem2"]["GiB"] = 0
    exes = list(enumerate_executions(model, system, 4, 16, "float16", (True, False), tp_overlap=False,
                                     dp_overlap=False))
    assert not any(e["weight_offload"] or e["activations_offload"] or e["optimizer_offload"] for e in exes)
    assert {e["tensor_par_overlap"] for e in exes} == {"none"} and not any(e["data_par_overlap"] for e in exes)
    assert {e["fused_activation"] for e in exes} == {True, False}
    assert all(e["seq_par_ag_redo"] <= (e["tensor_par_comm_type"] == "rs_ag" and e["activation_recompute"] != "full")
               for e in exes)
    assert all(e["batch_size"] == (16 // e["data_par"]) * e["data_par"] for e in exes)


def test_calculon_rejections(calc):
    model, system = _json(calc / "models/megatron-1T.json"), _json(calc / "systems/a100_80g.json")
    exe = _json(calc / "executions/3072_t4_p64_d12_mbs4_full.json")
    assert _calculon_accepts(exe, model, system, 128)
    assert not _calculon_accepts({**exe, "data_par_net": 0}, model, system, 128)  # 48 > 8 on the scale-up tier
    assert not _calculon_accepts({**exe, "tensor_par": 3, "tensor_par_net": 0, "pipeline_par": 1}, model, system,
                                 128)  # 3 does not fill the 8-processor tier (must_be_filled)
    assert not _calculon_accepts({**exe, "optimizer_offload": True}, model, system, 128)  # 2 blocks / processor


def _row(i, rate):
    exe = dict(zip(EXECUTION_KEYS, [8, 1, 1, 8, 0, 0, 0, 64, i + 1, "float16", True, "multihead", "none", 1,
                                    False, "ar", "none", False, False, False, False, False, True]))
    stats = {k: float(i) for k in STATS_FIELDS}
    stats.update({k: 0.5 for k in DIFFSYS_FIELDS}, sample_rate=rate, diffsys_fits=True)
    return exe, stats


def test_outputs_in_calculons_formats(tmp_path):
    rows = [_row(0, 10.0), _row(1, 30.0), _row(2, 20.0)]
    best = optimal_executions(rows, 2)
    assert [b[1]["sample_rate"] for b in best] == [30.0, 20.0]
    write_optimal(best, tmp_path / "o.json")
    out = _json(tmp_path / "o.json")
    assert list(out) == ["0", "1"] and set(out["0"]) == {"execution", "stats"}
    assert out["0"]["execution"]["microbatch_size"] == 2 and out["0"]["stats"]["sample_rate"] == 30.0
    write_optimal(best, tmp_path / "o.csv")
    head, *body = list(csv.reader(open(tmp_path / "o.csv")))
    assert head[0] == "" and head[1:1 + len(EXECUTION_KEYS)] == list(EXECUTION_KEYS) and body[0][0] == "0"
    write_all(rows, tmp_path / "a.csv")
    recs = list(csv.DictReader(open(tmp_path / "a.csv")))
    assert len(recs) == 3 and float(recs[1]["sample_rate"]) == 30.0 and recs[0]["tensor_par_comm_type"] == "ar"
    with pytest.raises(ValueError, match="csv"):
        write_all(rows, tmp_path / "a.json")


def test_cli_argument_errors(calc, tmp_path, capsys):
    m, s = str(calc / "models/megatron-126M.json"), str(calc / "systems/a100_80g.json")
    assert main(["calculon", "llm-optimal-execution", m, "8", "64", "float16", s, str(tmp_path / "o.json"),
                 "-t", "0"]) == 2
    assert "top-n" in capsys.readouterr().err
    assert main(["calculon", "llm-all-executions", m, "8", "64", "float99", s, str(tmp_path / "o.csv")]) == 2


@pytest.mark.slow
def test_search_vmap_equals_single_runs(calc, tmp_path, capsys):
    """A small search through the CLI: the vmapped sweep's best execution and its statistics equal a single
    ``diffsys calculon`` run of that execution; every accepted execution appears in the all-executions CSV."""
    model = tmp_path / "tiny.json"
    model.write_text(json.dumps({"hidden": 512, "feedforward": 2048, "seq_size": 512, "attn_heads": 8,
                                 "attn_size": 64, "num_blocks": 4}))
    sysd = _json(calc / "systems/a100_80g.json")
    sysd["mem2"]["GiB"] = 0
    system = tmp_path / "sys.json"
    system.write_text(json.dumps(sysd))
    out = tmp_path / "best.json"
    assert main(["calculon", "llm-optimal-execution", str(model), "2", "4", "float16", str(system), str(out),
                 "-t", "3", "--no-tp-overlap", "--no-dp-overlap"]) == 0
    best = _json(out)
    rates = [best[k]["stats"]["sample_rate"] for k in ("0", "1", "2")]
    assert rates == sorted(rates, reverse=True)
    single = run_calculon(model, best["0"]["execution"], system)
    for k in ("total_time", "sample_rate", "proc_mem_tier1_cap_req", "tp_comm_exposed_time"):
        assert best["0"]["stats"][k] == pytest.approx(single[k], rel=2e-5, abs=1e-12)
    assert main(["calculon", "llm-all-executions", str(model), "2", "4", "float16", str(system),
                 str(tmp_path / "all.csv")]) == 0
    recs = list(csv.DictReader(open(tmp_path / "all.csv")))
    assert max(float(r["sample_rate"]) for r in recs) >= rates[0] * (1 - 1e-6)
