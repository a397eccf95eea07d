"""The training step on multi-dimensional ``topologies.System`` networks (torus, racks behind a rail)."""

import jax
import numpy as np
import pytest

from diffsys import llm, topologies
from diffsys.llm import _comm

GPT3 = llm.transformer_preset("gpt3_175b")
_step = jax.jit(llm.training_step)


def _par(**kw):
    base = dict(tp=8, pp=8, dp=16, microbatch=1, global_batch=1536, sequence_parallel=1, recompute="selective",
                zero_stage=1)
    base.update(kw)
    return llm.Parallelism(**base)


def _three_level(middle_size, middle_bw=100e9, outer_bw=50e9):
    two = llm.cluster_preset("hgx_h100", 1024).network
    up, out = two.dims
    mid = out.replace(size=middle_size, bandwidth_Bps=middle_bw)
    return topologies.System("h100_rails", (up, mid, out.replace(size=128 / middle_size, bandwidth_Bps=outer_bw)),
                             two.accelerator, "HGX H100 nodes, racks on a rail, spine")


@pytest.mark.parametrize("g,stride,expect", [(8, 1, (4, 2, 1)), (16, 8, (1, 2, 8)), (64, 1, (4, 4, 4)),
                                             (2, 2, (2, 1, 1)), (32, 2, (2, 4, 4))])
def test_nested_placement_on_a_torus(g, stride, expect):
    net = topologies.system_preset("tpu_v4_pod", x=4, y=4, z=4)
    sizes = tuple(float(d.size) for d in _comm.group_dims(net, g, stride))
    assert sizes == expect
    assert np.prod(sizes) == g


def test_middle_dimension_of_size_one_equals_two_level_network():
    cl = llm.cluster_preset("hgx_h100", 1024)
    up, out = cl.network.dims
    three = topologies.System("x", (up, out.replace(size=1.0), out), cl.network.accelerator, "")
    a = _step(GPT3, cl, _par()).time_s
    b = _step(GPT3, llm.cluster_preset("hgx_h100", 1024, network=three), _par()).time_s
    np.testing.assert_allclose(float(b), float(a), rtol=1e-6)


def test_training_step_runs_on_a_torus_and_bandwidth_helps():
    def cluster(bw):
        dims = tuple(topologies.Dimension("ring", 16, bw, 1e-6) for _ in range(3))
        return llm.cluster_preset("hgx_h100", 4096, network=topologies.System("torus", dims, "h100", "3D torus"))

    slow = _step(GPT3, cluster(45e9), _par(dp=64)).time_s
    fast = _step(GPT3, cluster(90e9), _par(dp=64)).time_s
    assert np.isfinite(float(slow)) and float(fast) < float(slow)


def test_middle_tier_bandwidth_moves_dp_all_reduce():
    # dp groups (stride 64) span the rail (middle) tier: a slower rail must slow the step; the spine is not used
    par = _par(dp_overlap=0.0)
    fast = _step(GPT3, llm.cluster_preset("hgx_h100", 1024, network=_three_level(16, 100e9)), par)
    slow = _step(GPT3, llm.cluster_preset("hgx_h100", 1024, network=_three_level(16, 12.5e9)), par)
    assert float(slow.time_s) > float(fast.time_s) * 1.01
