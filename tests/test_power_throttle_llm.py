"""Throttling fed back into the LLM training and inference steps through the accelerator (compile-heavy: the LLM
step calls the calibrated kernels, ~3-7 min per compile on 2 shared cores, hence the ``slow`` marker; the throttle
itself is tested on the roofline op model in ``test_power_throttle.py``)."""

import jax
import numpy as np
import pytest

import diffsys.power as P
from diffsys import llm

MODEL = llm.transformer_preset("llama2_7b")
CLUSTER = llm.cluster_preset("hgx_h100", 8)
PAR = llm.Parallelism(tp=8, pp=1, dp=1, microbatch=1, global_batch=8, sequence_parallel=1, recompute="selective",
                      zero_stage=1)
# per-GPU work of one step: 6·N·tokens/GPUs FLOPs (N = 6.7e9, 8 × 4096 tokens) and the weights, gradients and
# Adam state streamed once (34 B per local parameter)
WORKLOAD = (6 * 6.7e9 * 8 * 4096 / 8, 34 * 6.7e9 / 8)
WHERE = lambda args: args[1].accelerator  # noqa: E731  (model, cluster, par[, serving])
LIMITS = dict(t_limit_K=360.15, ambient_K=308.15, r_th_K_per_W=50.0 / 700.0)


@pytest.mark.slow
def test_training_step_sees_the_throttled_clock():
    run = jax.jit(lambda cap: P.throttled_step(llm.training_step, where=WHERE, workload=WORKLOAD, power_cap_W=cap,
                                               **LIMITS)(MODEL, CLUSTER, PAR))
    base = jax.jit(llm.training_step)(MODEL, CLUSTER, PAR)
    loose, th_loose = run(5000.0)
    assert not bool(th_loose.throttled)
    # the accelerator is bit-identical (test_power_throttle.py); the two compiled programs differ, so allow one ulp
    np.testing.assert_allclose(float(loose.time_s), float(base.time_s), rtol=2e-7)
    tight, th = run(350.0)
    assert bool(th.power_limited) and float(th.clock_ratio) < 0.9
    assert float(tight.time_s) > float(base.time_s)
    assert float(tight.time_s) <= float(base.time_s) / float(th.clock_ratio) * 1.001  # comm/HBM parts do not slow


@pytest.mark.slow
def test_inference_decode_is_memory_bound_and_barely_slows():
    serving = llm.Serving(batch=8, prompt_len=2048, decode_len=256)
    run = jax.jit(lambda cap: P.throttled_step(llm.inference_step, where=WHERE, workload=WORKLOAD, power_cap_W=cap,
                                               **LIMITS)(MODEL, CLUSTER, PAR, serving))
    loose, _ = run(5000.0)
    base = jax.jit(llm.inference_step)(MODEL, CLUSTER, PAR, serving)
    np.testing.assert_allclose(float(loose.tpot_s), float(base.tpot_s), rtol=2e-7)
    tight, th = run(350.0)
    assert bool(th.throttled)
    slow_prefill = float(tight.ttft_s / base.ttft_s)
    slow_decode = float(tight.tpot_s / base.tpot_s)
    assert slow_prefill > slow_decode >= 1.0  # compute-bound prefill slows with the clock, HBM-bound decode hardly
