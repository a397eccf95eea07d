"""Edge orchestration (stages of an LLM on an SoC's GPU/NPU/CPU) and the one device-power model: contracts,
invariants, the LLM step's power == diffsys.power.device_power, search cross-checks, errors."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffsys import llm
from diffsys.hardware import preset
from diffsys.optimize import exact_search, sweep
from diffsys.power import device_power
from diffsys.problems import (
    EdgeOrchestration,
    edge_orchestration_model,
    edge_orchestration_problem,
    edge_orchestration_space,
)
from diffsys.testing import (
    TraceCounter,
    assert_finite_grads,
    assert_grad_matches_fd,
    assert_jit_matches_eager,
    assert_vmap_matches_loop,
    float64,
)

PLACEMENTS = np.array(list(itertools.product(range(3), range(3), range(3))), dtype=np.float32)  # (27, 3)


def _specs(bits, scale=1.0):
    n = len(PLACEMENTS)
    return EdgeOrchestration(PLACEMENTS[:, 0], PLACEMENTS[:, 1], PLACEMENTS[:, 2], jnp.full(n, bits),
                             jnp.full(n, scale), jnp.full(n, 512.0), jnp.full(n, 128.0))


_batched = jax.jit(jax.vmap(lambda s: edge_orchestration_model(s)))


def test_jit_eager_vmap_loop_and_grads():
    s = EdgeOrchestration(0.0, 1.0, 2.0, 8.0)
    assert_jit_matches_eager(lambda x: edge_orchestration_model(x), s, rtol=1e-5)
    batch = EdgeOrchestration(jnp.array([0.0, 2.0]), jnp.array([1.0, 1.0]), jnp.array([1.0, 0.0]),
                              jnp.array([16.0, 4.0]), jnp.array([1.0, 0.7]), jnp.array([512.0, 64.0]),
                              jnp.array([128.0, 16.0]))
    assert_vmap_matches_loop(lambda x: edge_orchestration_model(x), batch, rtol=1e-5)

    x = jnp.array([0.4, 6.0, 0.8, 300.0])
    f = jax.jit(_relaxed_objective)
    assert_finite_grads(f, x)
    g = jax.grad(f)(x)
    assert float(g[2]) < 0  # more DRAM bandwidth: less energy and latency


def _relaxed_objective(x):
    m = edge_orchestration_model(EdgeOrchestration(x[0], 1.0, 1.0, x[1], x[2], x[3], 128.0), temperature=0.1)
    return jnp.log(m.energy_per_token_J) + jnp.log(m.latency_s)


@pytest.mark.slow
def test_fd_gradients_float64():
    with float64():
        assert_grad_matches_fd(jax.jit(_relaxed_objective), jnp.array([0.4, 6.0, 0.8, 300.0]), eps=1e-6, rtol=1e-3)


def test_no_retrace():
    counted = TraceCounter(lambda s: edge_orchestration_model(s).energy_J)
    g = jax.jit(counted)
    g(EdgeOrchestration(0.0, 1.0, 2.0, 8.0))
    g(EdgeOrchestration(2.0, 0.0, 1.0, 4.0, 1.3, 100.0, 10.0))
    assert counted.count == 1


def test_more_bandwidth_never_slower_and_int4_never_more_energy():
    lo, hi = _batched(_specs(16.0, 0.6)), _batched(_specs(16.0, 1.4))
    assert np.all(np.asarray(hi.latency_s) <= np.asarray(lo.latency_s) * (1 + 1e-6))
    assert np.all(np.asarray(hi.tpot_s) <= np.asarray(lo.tpot_s) * (1 + 1e-6))
    fp16, int8, int4 = (_batched(_specs(b)) for b in (16.0, 8.0, 4.0))
    # memory-bound decode: fewer weight bytes -> shorter steps -> never more energy, same placement
    e16, e8, e4 = (np.asarray(m.energy_per_token_J) for m in (fp16, int8, int4))
    assert np.all(e4 <= e8 * (1 + 1e-6)) and np.all(e8 <= e16 * (1 + 1e-6))
    assert np.all(np.asarray(int4.quality_loss) > np.asarray(fp16.quality_loss))
    # an all-GPU Orin decode step streams the 2.5 GB of fp16 weights: TPOT >= bytes / 204.8 GB/s
    assert float(fp16.tpot_s[0]) >= 2.47e9 / 204.8e9
    # splitting the decode across engines costs hand-offs: all-GPU (0,0,0) beats GPU/DLA split (0,0,1) on TPOT
    assert float(fp16.tpot_s[0]) < float(fp16.tpot_s[1])


def test_stage_energy_is_device_power():
    """A single-engine request's energy is device_power of its stages (no second power model)."""
    s = EdgeOrchestration(1.0, 1.0, 1.0, 16.0, prompt_len=256.0, decode_len=8.0)
    m = edge_orchestration_model(s)
    from diffsys.problems._edge import SmallLLM, _stage_costs  # the same stage costs the model uses

    flops, nbytes, *_ = _stage_costs(SmallLLM(), s)
    p = device_power(preset("jetson_orin_dla"), flops, nbytes, dtype="fp16")
    expect = float(p.energy_J[0] + 8.0 * (p.energy_J[1] + p.energy_J[2]))
    assert float(m.energy_J) == pytest.approx(expect, rel=1e-5)


MODEL = llm.transformer_preset("llama3_8b")
CL = llm.cluster_preset("hgx_h100", 1)
PAR = llm.Parallelism(tp=1)


def _step_power_from_device_power(r, cluster, serving):
    """device_power of the FLOPs/bytes one GPU runs in a continuous-batching iteration, from the step's metrics."""
    B, P, D = serving.batch, serving.prompt_len, serving.decode_len
    ctx = P + 0.5 * D
    flops = B * MODEL.forward_flops_per_token(ctx) + B / D * P * MODEL.forward_flops_per_token(0.5 * P)
    nbytes = (r.mbu * r.decode_step_s * cluster.hbm_bandwidth_Bps + MODEL.vocab * MODEL.hidden * 2.0
              + B / D * r.weights_B)
    return device_power(cluster.accelerator, flops, nbytes, dtype=cluster.dtype, time_s=r.cb_iteration_s).power_W


def test_inference_power_is_device_power_and_moves_with_it():
    serving = llm.Serving(batch=4, prompt_len=1024, decode_len=128)
    r = llm.inference_step(MODEL, CL, PAR, serving)
    expect = _step_power_from_device_power(r, CL, serving)
    assert float(r.power_W) == pytest.approx(float(expect), rel=1e-4)
    # a memory-bound decode draws well under TDP (device_power), not the old utilisation interpolation
    assert float(CL.accelerator.power.idle_W) < float(r.power_W) < 0.8 * float(CL.accelerator.power.tdp_W)
    # mutation: halve the dynamic power budget (TDP - idle) -> the step's power moves with device_power
    acc = CL.accelerator
    budget = acc.power.tdp_W - acc.power.idle_W
    cl2 = eqx.tree_at(lambda c: c.accelerator.power.tdp_W, CL, acc.power.idle_W + 0.5 * budget)
    r2 = llm.inference_step(MODEL, cl2, PAR, serving)
    assert float(r2.power_W) < float(r.power_W)
    assert float(r2.power_W) == pytest.approx(float(_step_power_from_device_power(r2, cl2, serving)), rel=1e-4)
    assert float(r2.energy_per_token_J) == pytest.approx(float(r2.power_W * r2.cb_iteration_s / 4), rel=1e-5)


def test_device_power_time_override():
    acc = preset("jetson_orin")
    p0 = device_power(acc, 1e9, 1e9, dtype="fp16")
    same = device_power(acc, 1e9, 1e9, dtype="fp16", time_s=p0.time_s)
    assert float(same.power_W) == pytest.approx(float(p0.power_W), rel=1e-6)
    slow = device_power(acc, 1e9, 1e9, dtype="fp16", time_s=4 * p0.time_s)  # overheads stretch the step
    assert float(p0.idle_W) < float(slow.power_W) < float(p0.power_W)
    assert float(slow.energy_J) > float(p0.energy_J)
    with pytest.raises(ValueError, match="time_s"):
        device_power(acc, 1e9, 1e9, time_s=-1.0)


def test_sweep_pareto_and_exact_search_agree():
    res = sweep(edge_orchestration_model, edge_orchestration_space(), "energy_per_token_J",
                pareto=("latency_s", "energy_per_token_J", "quality_loss"), progress=False)
    assert res.n_evaluated == 81 and res.pareto_objectives is not None and len(res.pareto_objectives) >= 3
    ex = exact_search(edge_orchestration_problem())
    assert ex.objective == pytest.approx(float(res.top_objective[0]), rel=1e-5)
    # the energy optimum is int4 (memory-bound decode); the fp16 point with least energy is on the front too
    assert ex.point["weight_bits"] == pytest.approx(4.0)
    assert np.min(res.pareto_objectives[:, 2]) == pytest.approx(0.0)


@pytest.mark.parametrize("kw, field", [
    (dict(weight_bits=2.0), "weight_bits"), (dict(prefill_device=3.0), "prefill_device"),
    (dict(dram_bandwidth_scale=0.0), "dram_bandwidth_scale"), (dict(decode_len=0.0), "decode_len"),
])
def test_bad_input_errors(kw, field):
    with pytest.raises(ValueError, match=field):
        EdgeOrchestration(**kw)


def test_bad_platform():
    with pytest.raises(ValueError, match="platform"):
        edge_orchestration_model(EdgeOrchestration(), platform="pixel")


def test_registered_as_an_embedded_problem():
    from diffsys.problems import problem

    p = problem("edge_orchestration")
    assert p.name == "edge_orchestration" and p.objective == "energy_per_token_J"
    assert p is problem("edge_orchestration")  # one instance: compiled searches are reused
