"""`diffsys sweep` with the LLM default problem: outputs, infeasible points excluded, options, errors."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffsys import llm
from diffsys.cli import main
from diffsys.optimize import sweep

SMALL_SPACE = {
    "params": {
        "par.tp": {"kind": "power_of_two", "lo": 1, "hi": 16},
        "par.pp": {"kind": "power_of_two", "lo": 1, "hi": 16},
        "par.microbatch": {"kind": "power_of_two", "lo": 1, "hi": 4},
        "par.recompute": {"kind": "categorical", "options": ["none", "selective", "full"]},
        "cluster.network.dims.1.bandwidth_Bps": {"kind": "continuous", "lo": 12.5e9, "hi": 100e9, "log": True,
                                                 "grid": 3},
    }
}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    space = out / "space.json"
    space.write_text(json.dumps(SMALL_SPACE))
    return out, space


def test_sweep_json_summary_and_files(small_run, capsys):
    out, space = small_run
    assert main(["sweep", "--space", str(space), "--top", "5", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["configs_evaluated"] == 5 * 5 * 3 * 3 * 3
    assert summary["configs_per_second"] > 0 and summary["first_chunk_seconds"] > 0
    assert "configs_per_second_after_compile" in summary
    best = summary["best"]
    assert best is not None and best["step_s"] > 0 and best["tp"] * best["pp"] * best["dp"] == 1024
    for f in ("pareto_front.png", "pareto_front.csv", "pareto_front.json"):
        assert (out / f).exists() and (out / f).stat().st_size > 0
    front = json.loads((out / "pareto_front.json").read_text())
    times = [r["step_s"] for r in front]  # the table's column names and units (one naming for every output)
    capex = [r["capex_MUSD"] for r in front]
    # a Pareto front sorted by time has non-increasing cost
    assert all(c2 <= c1 * (1 + 1e-6) for c1, c2 in zip(capex, capex[1:])) and times == sorted(times)


def test_top_k_excludes_infeasible_points():
    base = llm.default_training_design()
    space = llm.default_training_space(base)
    res = sweep(llm.training_model, space, "time_s", n_samples=4096, key=jax.random.PRNGKey(3), top_k=8,
                progress=False)
    assert 0 < res.n_feasible < res.n_evaluated  # the space has OOM and non-dividing points
    for row in res.labels():
        assert row["feasible"] and row["divisible"] and row["fits"]
        assert row["memory_B"] <= row["memory_capacity_B"]
        assert abs(row["dp"] - round(row["dp"])) < 1e-6


def test_other_model_system_and_table_rows(tmp_path):
    import argparse

    from diffsys.cli._cmd_sweep import _llm_problem, llm_rows
    from diffsys.cli._sweep_report import format_table

    args = argparse.Namespace(model="llama3_8b", system="dgx_a100", gpus=64, global_batch=256, space=None)
    space, model = _llm_problem(args)
    assert float(space.base.cluster.n_gpus) == 64 and space.base.model.name == "Llama-3 8B"
    res = sweep(model, space, "time_s", n_samples=2048, key=jax.random.PRNGKey(0), top_k=3, progress=False)
    rows = llm_rows(res.labels())
    text = format_table(rows)
    assert "step_s" in text and "recompute" in text and rows[0]["recompute"] in ("none", "selective", "full")
    assert rows[0]["tp"] * rows[0]["pp"] * rows[0]["dp"] == 64


def test_sweep_bad_options(tmp_path, capsys):
    assert main(["sweep", "--gpus", "0", "--out", str(tmp_path)]) == 2
    assert "--gpus" in capsys.readouterr().err
    assert main(["sweep", "--model", "gpt-9", "--out", str(tmp_path)]) == 2
    assert "unknown transformer preset" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"params": {"par.nonexistent": {"kind": "power_of_two", "lo": 1, "hi": 4}}}))
    assert main(["sweep", "--space", str(bad), "--out", str(tmp_path)]) == 2


def test_default_space_size_documented():
    assert llm.default_training_space().size == 2_540_160
    assert np.isclose(float(llm.gpu_capex_usd(llm.cluster_preset("hgx_h100"))), 32_000, rtol=0.05)


def test_parallelism_space_constraints_and_exact_sweep():
    base = llm.default_training_design(gpus=256, global_batch=512)
    space = llm.parallelism_space(base)
    res = sweep(llm.exact_parallelism_model, space, "time_s", top_k=5, progress=False)
    assert res.n_evaluated == space.size and 0 < res.n_feasible < space.size
    for row in res.labels():
        assert row["par.tp"] * row["par.pp"] * row["par.dp"] == 256
        assert 96 % row["par.tp"] == 0 and 96 % row["par.pp"] == 0 and row["feasible"]
    # relaxed points (for gradient search) violate the product constraint smoothly
    relaxed = {"par.tp": jnp.asarray(5.0), "par.pp": jnp.asarray(7.0), "par.dp": jnp.asarray(8.0),
               "par.microbatch": jnp.asarray(1.0)}
    assert float(space.violations(relaxed)[0]) > 0 and not bool(space.feasible(relaxed))
