"""Protocol conformance: every family's entry point is ``model(spec, *, temperature=0.0) -> Metrics``, passes the
``diffsys.testing.check_model`` checks (jit == eager, vmap == loop, finite gradients at temperature 0 and > 0, no
retrace) and sweeps a tiny space; unknown metric names raise everywhere."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffsys as D
from diffsys import Metrics, chiplet, llm, memory, power, problems, roofline, topologies
from diffsys.optimize import Problem, genetic_search, gradient_search, sweep
from diffsys.space import Categorical, Continuous, DesignSpace, Integer, PowerOfTwo
from diffsys.testing import check_model

H100 = D.hardware.h100_sxm()


def stack(*specs):
    return jax.tree_util.tree_map(lambda *x: jnp.stack([jnp.asarray(v) for v in x]), *specs)


def _op(flops):
    return roofline.OpSpec(flops, flops / 100.0, flops / 400.0, H100, matrix=0.5)


def roofline_case():
    specs = stack(_op(1e9), _op(1e12))
    space = DesignSpace({"flops": Continuous(1e9, 1e13, log=True, grid=4),
                         "bytes_read": Continuous(1e6, 1e10, log=True, grid=3)}, base=_op(1e9))
    return roofline.op_model, specs, ("flops", "bytes_read"), space, "time_s"


def topologies_case():
    system = topologies.system_preset("hgx_h100")
    specs = stack(*(topologies.CollectiveSpec(system, s) for s in (2.0**20, 2.0**30)))
    space = DesignSpace({"size_B": PowerOfTwo(2**16, 2**30)}, base=topologies.CollectiveSpec(system, 2.0**20))
    return topologies.collective_model, specs, ("size_B",), space, "time_s"


def power_case():
    def spec(clock):
        return power.DevicePowerSpec(H100, 1e12, 1e9, clock, power_cap_W=700.0)

    specs = stack(spec(1.2e9), spec(1.9e9))
    space = DesignSpace({"clock_Hz": Continuous(0.8e9, 1.98e9, grid=5),
                         "die_temperature_K": Continuous(320.0, 370.0, grid=3)}, base=spec(1.5e9))
    return power.device_power_model, specs, ("clock_Hz", "flops", "die_temperature_K"), space, "energy_J"


def memory_case():
    specs = stack(*(memory.GemmTrafficSpec(1024.0, 4096.0, 4096.0, s) for s in (2.0**20, 2.0**24)))
    space = DesignSpace({"sram_B": PowerOfTwo(2**16, 2**26), "k": Integer(1024, 4096, step=1024)},
                        base=memory.GemmTrafficSpec(1024.0, 4096.0, 4096.0, 2.0**20))
    return memory.gemm_traffic_model, specs, None, space, "bytes"


@functools.cache
def _training_base():
    return llm.default_training_design(gpus=64, global_batch=128)


def llm_training_case():
    base = _training_base()
    specs = _vary(stack(base, base), "par.tp", (2.0, 8.0))
    space = DesignSpace({"par.tp": PowerOfTwo(1, 8), "par.pp": PowerOfTwo(1, 4)}, base=base)
    return llm.training_model, specs, ("par.microbatch", "cluster.accelerator.memory.hbm.bandwidth_Bps"), space, \
        "time_s"


def _vary(specs, path, values):
    """``specs`` (a batch of 2) with the leaf at ``path`` set to ``values``."""
    import equinox as eqx

    from diffsys.space import get_path

    leaf = get_path(specs, path)
    return eqx.tree_at(lambda t: get_path(t, path), specs, jnp.asarray(values, dtype=jnp.result_type(leaf)))


def llm_inference_case():
    base = llm.InferenceDesign(llm.transformer_preset("llama3_8b"), llm.cluster_preset("hgx_h100", 8),
                               llm.Parallelism(tp=2), llm.Serving(batch=8, prompt_len=1024, decode_len=128))
    specs = _vary(stack(base, base), "serving.batch", (4.0, 32.0))
    space = DesignSpace({"serving.batch": PowerOfTwo(1, 64), "par.tp": PowerOfTwo(1, 8)}, base=base)
    return llm.inference_model, specs, ("serving.batch", "serving.prompt_len"), space, "tpot_s"


@functools.cache
def _mcm():
    w = chiplet.transformer(layers=1, batch=2)
    graph = chiplet.D2DGraph.build(2, 2, placements=["west", "west_east"])
    return chiplet.MCMModel(w, graph)


def chiplet_case():
    mcm = _mcm()
    pk = chiplet.ChipletPackage.split(4, "organic")
    a = chiplet.PackageSpec(mcm.uniform_design("token", "none", "west"), pk)
    b = chiplet.PackageSpec(mcm.uniform_design("channel", "none", "west_east"), pk)
    space = DesignSpace({"design.memory": Integer(0, 1), "package.peak_flops": Continuous(50e12, 200e12, grid=3)},
                        base=a)
    return chiplet.package_model(mcm), stack(a, b), ("design.partition_logits", "package.peak_flops"), space, \
        "edp_Js"


def problems_case():
    base = problems.AcceleratorDesign()
    specs = _vary(stack(base, base), "peak_flops", (500e12, 2000e12))
    space = DesignSpace({"peak_flops": Continuous(100e12, 4000e12, log=True, grid=4), "sram_MiB": PowerOfTwo(4, 64)},
                        base=base)
    return problems.accelerator_model, specs, None, space, "time_s"


CASES = {"roofline": roofline_case, "topologies": topologies_case, "power": power_case, "memory": memory_case,
         "llm_training": llm_training_case, "llm_inference": llm_inference_case, "chiplet": chiplet_case,
         "problems": problems_case}
#: the LLM and chiplet models are large graphs: several compilations of a minute or so on a loaded 2-core machine
SLOW = {"llm_training", "llm_inference", "chiplet"}


@pytest.mark.parametrize("family", [pytest.param(f, marks=pytest.mark.slow) if f in SLOW else f for f in sorted(CASES)])
def test_entry_point_conforms_and_sweeps(family):
    model, specs, wrt, space, metric = CASES[family]()
    # the LLM graphs take minutes to differentiate on a loaded CPU: one relaxed gradient here (their gradients are
    # finite-difference checked in tests/test_llm_training.py)
    temps = (0.1,) if family.startswith("llm") else (0.0, 0.1)
    batched = check_model(model, specs, metric=metric, wrt=wrt, grad_temperatures=temps, rtol=1e-5, atol=1e-12)
    assert isinstance(batched, Metrics)
    assert {"feasible", "violation", metric} <= set(type(batched).metric_names())
    res = sweep(model, space, metric, top_k=3, chunk_size=8, progress=False)
    assert res.n_evaluated == space.size
    finite = res.top_objective[np.isfinite(res.top_objective)]
    assert finite.size and np.all(np.diff(finite) >= 0)
    np.testing.assert_allclose(getattr(res.top_metrics, metric)[: finite.size], finite, rtol=1e-5)
    # an unknown metric name raises before anything compiles, naming the available ones
    with pytest.raises(ValueError, match=rf"feasible 'feasable' is not a metric of {type(batched).__name__}; "
                                         rf"available metrics: feasible, violation, "):
        sweep(model, space, metric, feasible="feasable", progress=False)


def test_public_entry_points_are_reexported():
    for obj in (roofline.op_model, topologies.collective_model, power.device_power_model,
                memory.gemm_traffic_model, llm.training_model, llm.inference_model, chiplet.package_model):
        assert callable(obj)
    assert D.Metrics is D.primitives.Metrics


def test_metrics_base():
    class M(Metrics):
        time_s: jax.Array

    m = M(jnp.asarray(1.0))
    assert bool(m.feasible) and float(m.violation) == 0.0
    assert M.metric_names() == ("feasible", "violation", "time_s")
    assert m.metric("time_s") == 1.0 and set(m.as_dict()) == {"feasible", "violation", "time_s"}
    with pytest.raises(ValueError, match="objective 'time' is not a metric of M; available metrics: feasible, "
                                         "violation, time_s"):
        m.metric("time", "objective")


@pytest.mark.parametrize("kw,what", [({"objective": "costt"}, "objective 'costt'"),
                                     ({"objective": "cost", "feasible": "feasable"}, "feasible 'feasable'"),
                                     ({"objective": "cost", "violation": "violations"}, "violation 'violations'")])
def test_searches_reject_unknown_metric_names(kw, what):
    pb = Problem(problems.toy_model, problems.toy_space(), **kw)
    with pytest.raises(ValueError, match=f"{what} is not a metric of ToyMetrics; available metrics: .*budget_use"):
        gradient_search(pb, key=jax.random.key(0), n_starts=2, steps=2)
    with pytest.raises(ValueError, match=what):
        genetic_search(pb, key=jax.random.key(0), population=4, generations=1)


def test_searches_reject_models_outside_the_protocol():
    space = problems.toy_space()
    with pytest.raises(TypeError, match="returned dict"):
        gradient_search(lambda d, *, temperature=0.0: {"cost": d.x}, space, key=jax.random.key(0), objective="cost")
    with pytest.raises(TypeError, match="does not follow the model protocol"):
        gradient_search(lambda d: problems.toy_model(d), space, key=jax.random.key(0), objective="cost")


def test_categorical_space_over_a_protocol_model():
    """A categorical parameter (the systolic dataflow) sweeps through the protocol path too."""
    base = problems.SystolicDesign()
    space = DesignSpace({"dataflow": Categorical(problems.DATAFLOWS), "num_arrays": PowerOfTwo(1, 4)}, base=base)
    res = sweep(problems.systolic_model, space, "edp_Js", top_k=2, chunk_size=16, progress=False)
    assert res.n_evaluated == 9 and np.isfinite(res.top_objective[0])
