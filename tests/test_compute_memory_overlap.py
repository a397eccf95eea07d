"""Accelerator.compute_memory_overlap: the roofline max (1), the serialized sum (0, Calculon's no_overlap) and
everything between, in the roofline op model and the GEMM kernel model; Calculon's processing_mode."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffsys.hardware as H
import diffsys.roofline as R
from diffsys.io._calculon import read_calculon_system, run_calculon
from diffsys.testing import TraceCounter, assert_grad_matches_fd, assert_vmap_matches_loop, float64

H100 = H.preset("h100")
SHAPES = jnp.asarray([[1.0, 8192, 8192], [16, 4096, 4096], [4096, 4096, 4096], [2048, 12288, 1536]])


def _with(accel, overlap):
    return eqx.tree_at(lambda a: a.compute_memory_overlap, accel, jnp.asarray(overlap, dtype=float))


def test_roofline_between_max_and_sum():
    t_c, t_m = 3e-3, 1e-3  # 3e12 FLOP at 1e15 FLOP/s, 1e9 B at 1e12 B/s
    at = lambda o: float(R.roofline(3e12, 1e9, 1e15, 1e12, overlap=o, overhead_s=2e-6).time_s)
    assert at(1.0) == pytest.approx(t_c + 2e-6)
    assert at(0.0) == pytest.approx(t_c + t_m + 2e-6)
    assert at(0.25) == pytest.approx(t_c + 0.75 * t_m + 2e-6)
    times = [at(o) for o in np.linspace(0, 1, 11)]
    assert all(a >= b for a, b in zip(times, times[1:]))  # more overlap is never slower
    # zero traffic: nothing to overlap, the compute time alone
    assert float(R.roofline(3e12, 0.0, 1e15, 1e12, overlap=0.0).time_s) == pytest.approx(t_c)


def test_op_time_reads_the_accelerator():
    op = R.elementwise(2**28, 1.0, 2, 1, 2.0)
    r1 = R.op_time(op, H100, efficiency=(0.8, 0.9))
    r0 = R.op_time(op, _with(H100, 0.0), efficiency=(0.8, 0.9))
    assert float(r0.time_s) == pytest.approx(float(r1.compute_time_s + r1.memory_time_s), rel=1e-6)
    assert float(r1.time_s) == pytest.approx(max(float(r1.compute_time_s), float(r1.memory_time_s)), rel=1e-6)


def test_gemm_kernel_serializes_its_ceilings():
    m, n, k = SHAPES.T
    full = R.gemm_time(m, n, k, H100, "bf16")
    none = R.gemm_time(m, n, k, _with(H100, 0.0), "bf16")
    half = R.gemm_time(m, n, k, _with(H100, 0.5), "bf16")
    launch = float(H100.kernel_constants("gemm", "bf16")["launch_s"])
    assert np.all(np.asarray(none.time_s) >= np.asarray(full.compute_time_s + full.memory_time_s) + launch * 0.999)
    assert np.all(np.asarray(none.time_s) > np.asarray(half.time_s))
    assert np.all(np.asarray(half.time_s) > np.asarray(full.time_s))
    np.testing.assert_allclose(np.asarray(half.time_s), 0.5 * np.asarray(none.time_s + full.time_s), rtol=1e-5)
    # the default (1) is the kernel model unchanged: the preset's own field
    assert float(H100.compute_memory_overlap) == 1.0


def test_grad_vmap_jit_and_no_retrace():
    m, n, k = SHAPES.T

    def total(o):
        return jnp.sum(R.gemm_time(m, n, k, _with(H100, o), "bf16").time_s) * 1e3

    g = jax.grad(total)(0.4)
    assert np.isfinite(float(g)) and float(g) < 0  # more overlap, less time
    assert_vmap_matches_loop(total, jnp.asarray([0.0, 0.3, 1.0]))
    counter = TraceCounter(total)
    f = jax.jit(counter)
    f(0.2)
    f(0.7)
    assert counter.count == 1
    with float64():
        rl = lambda v: R.roofline(v[0], v[1], 1e15, 1e12, overlap=v[2], temperature=0.1).time_s * 1e3
        assert_grad_matches_fd(rl, jnp.asarray([3e12, 2e9, 0.3]), rtol=1e-5, atol=1e-12)


def test_bad_overlap_names_the_field(tmp_path):
    with pytest.raises(ValueError, match="compute_memory_overlap"):
        _ = H.Accelerator("x", {"bf16": 1e15}, {}, H100.memory, H100.power, compute_memory_overlap=1.5)
    d = H.accelerator_to_dict(_with(H100, 0.25))
    assert d["compute_memory_overlap"] == 0.25
    path = tmp_path / "chip.json"
    path.write_text(json.dumps(d))
    assert float(H.load_accelerator(path).compute_memory_overlap) == 0.25


def test_calculon_processing_mode(calc):
    sys_file = json.loads((calc / "systems/a100_80g.json").read_text())
    assert sys_file["processing_mode"] == "no_overlap"
    assert float(read_calculon_system(sys_file).accelerator.compute_memory_overlap) == 0.0
    roof = {**sys_file, "processing_mode": "roofline"}
    assert float(read_calculon_system(roof).accelerator.compute_memory_overlap) == 1.0
    with pytest.raises(ValueError, match="processing_mode"):
        read_calculon_system({**sys_file, "processing_mode": "overlap"})
    # a whole training step: the serialized ceilings cost time (Calculon's megatron-1T sample on its 3,072 GPUs)
    model, exe = calc / "models/megatron-1T.json", calc / "executions/3072_t4_p64_d12_mbs4_full.json"
    t_serial = run_calculon(model, exe, sys_file)["total_time"]
    t_roof = run_calculon(model, exe, roof)["total_time"]
    assert t_roof < t_serial
