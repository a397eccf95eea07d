"""The full-stack (workload × collective × network × memory) training space and its `diffsys sweep` entry."""

import json

import jax
import numpy as np
import pytest

from diffsys import llm
from diffsys.cli import main
from diffsys.optimize import sweep
from diffsys.space import load_space


def test_full_stack_space_layers_and_size():
    space = llm.full_stack_space()
    assert space.size == 1_451_520
    assert {llm.full_stack_layer(p) for p in space.names} == set(llm.FULL_STACK_LAYERS)
    assert llm.full_stack_layer("cluster.network.dims.1.algorithm") == "collective"
    assert llm.full_stack_layer("cluster.network.dims.0.size") == "network"
    coll = llm.full_stack_space(layers=("collective",))
    assert coll.names == ("cluster.network.dims.0.algorithm", "cluster.network.dims.1.algorithm")
    assert coll.size == 4 * 5
    with pytest.raises(ValueError, match="unknown layer 'topology'"):
        llm.full_stack_space(layers=("topology",))


def test_larger_scale_up_domain_costs_more():
    small = llm.cluster_preset("hgx_h100", 1024)
    big = llm.cluster_preset("hgx_h100", 1024, gpus_per_node=64)
    assert float(llm.gpu_capex_usd(big)) == pytest.approx(float(llm.gpu_capex_usd(small)) + 3 * 1500.0, rel=1e-6)


def test_collective_layer_search_never_loses_to_nccl_and_algorithms_matter():
    space = llm.full_stack_space(layers=("collective",))
    res = sweep(llm.training_model, space, "time_s", top_k=20, progress=False)
    assert res.n_evaluated == 20
    rows = res.labels()
    auto = [r for r in rows if r["cluster.network.dims.0.algorithm"] == "auto"
            and r["cluster.network.dims.1.algorithm"] == "auto"][0]
    base = llm.training_design_metrics(space.base)
    np.testing.assert_allclose(auto["time_s"], float(base["time_s"]), rtol=1e-5)
    assert rows[0]["time_s"] <= auto["time_s"] * (1 + 1e-6)
    times = [r["time_s"] for r in rows]
    assert max(times) > 1.01 * min(times)  # a poor algorithm choice shows in the step time


def test_space_file_with_an_algorithm_path(tmp_path):
    f = tmp_path / "space.json"
    f.write_text(json.dumps({"params": {
        "par.tp": {"kind": "power_of_two", "lo": 4, "hi": 8},
        "cluster.network.dims.1.algorithm": {"kind": "categorical", "options": ["auto", "tree"],
                                             "vocabulary": ["auto", "ring", "tree", "halving_doubling", "direct",
                                                            "bruck", "in_network"]}}}))
    space = load_space(f, base=llm.default_training_design())
    assert space.params["cluster.network.dims.1.algorithm"].values == (0.0, 2.0)
    # the decoded design carries the code the topologies model reads (a sweep over this path: the collective-layer
    # test above)
    spec = space.apply({"par.tp": jax.numpy.asarray(8.0), "cluster.network.dims.1.algorithm": jax.numpy.asarray(2.0)})
    assert float(spec.cluster.network.dims[1].algorithm) == 2.0 and float(spec.par.tp) == 8.0
    assert space.params["cluster.network.dims.1.algorithm"].label(2.0) == "tree"


def test_cli_full_stack_space(tmp_path, capsys):
    assert main(["sweep", "--space", "full_stack", "--samples", "512", "--top", "3", "--out", str(tmp_path),
                 "--json"]) == 0
    best = json.loads(capsys.readouterr().out)["best"]
    assert best["scaleup_alg"] in ("auto", "ring", "tree", "in_network")
    assert best["scaleout_alg"] in ("auto", "ring", "tree", "halving_doubling", "direct")
    assert best["scaleup_gpus"] in (8, 16, 32, 64) and best["step_s"] > 0


def _example(name):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_scale_up_vs_scale_out_crossover():
    ex = _example("scale_up_vs_scale_out")
    res = ex.study(batches=(16,), bandwidths_Bps=(0.1e9, 1e9, 100e9))[16]
    up, out = res["scale_up"]["tokens_per_s"], res["scale_out"]["tokens_per_s"]
    # one node never touches the scale-out network; two nodes get faster with it and cross over in between
    np.testing.assert_allclose(up, up[0], rtol=1e-6)
    assert np.all(np.diff(out) >= 0) and out[-1] > 1.3 * out[0]
    assert out[0] < up[0] < out[-1]
    assert 0.1e9 < res["crossover_Bps"] < 100e9
