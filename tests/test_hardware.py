import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffsys.hardware as hw
from diffsys.roofline import roofline
from diffsys.testing import (
    TraceCounter, assert_finite_grads, assert_grad_matches_fd, assert_jit_matches_eager, assert_vmap_matches_loop,
    float64,
)


@pytest.mark.parametrize("name", sorted(hw.PRESETS))
def test_presets_are_consistent(name):
    acc = hw.preset(name)
    caps = [float(m.capacity_B) for m in acc.memory]
    bws = [float(m.bandwidth_Bps) for m in acc.memory]
    assert caps[acc.main_memory_index] == max(caps), "main memory is the largest level"
    assert bws == sorted(bws, reverse=True), "faster levels have more bandwidth"
    assert float(acc.power.tdp_W) > float(acc.power.idle_W) > 0
    # the matrix peak at the narrowest supported float type is at least the vector fp32 peak
    assert float(acc.peak_flops("bf16")) >= float(acc.vector_flops.get("fp32", 0.0))
    # round trip through the file format
    again = hw.accelerator_from_dict(json.loads(json.dumps(hw.accelerator_to_dict(acc))))
    assert jax.tree_util.tree_structure(again) == jax.tree_util.tree_structure(acc)
    for a, b in zip(jax.tree_util.tree_leaves(again), jax.tree_util.tree_leaves(acc)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, equal_nan=True)


def test_datasheet_figures():
    h100 = hw.h100_sxm()
    assert float(h100.peak_flops("bf16")) == pytest.approx(989.4e12)
    assert float(h100.peak_flops("fp8", sparse=True)) == pytest.approx(2 * 1978.9e12)
    assert float(h100.main_memory.bandwidth_Bps) == pytest.approx(3.35e12)
    assert float(hw.a100_80gb().main_memory.bandwidth_Bps) == pytest.approx(2039e9)
    assert float(hw.h200().main_memory.capacity_B) == pytest.approx(141e9)
    # fp8 on A100 falls back to the bf16/fp16 tensor-core peak, not int8
    assert float(hw.a100_40gb().peak_flops("fp8")) == pytest.approx(312e12)
    with pytest.raises(ValueError, match="no matrix unit for fp64"):
        hw.v100().peak_flops("fp64")


def test_gemm_8192_cubed_on_h100_is_compute_bound_at_datasheet_time():
    acc = hw.h100_sxm()
    n = 8192.0
    r = roofline(2 * n**3, 2 * 3 * n * n, acc.peak_flops("bf16"), acc.main_memory.bandwidth_Bps)
    assert bool(r.compute_bound)
    assert float(r.time_s) == pytest.approx(2 * n**3 / 989.4e12, rel=1e-6)


def test_bad_input_errors_name_the_field(tmp_path):
    with pytest.raises(ValueError, match=r"bandwidth_Bps must be in \(0, inf\]"):
        hw.MemoryLevel("hbm", 1e9, -5.0)
    with pytest.raises(ValueError, match="bandwidth_Bps must be a number"):
        hw.MemoryLevel("hbm", 1e9, float("nan"))
    with pytest.raises(ValueError, match="unknown accelerator preset 'h900'"):
        hw.preset("h900")
    with pytest.raises(ValueError, match="static_fraction"):
        hw.PowerSpec(300.0, 50.0, 1.5)
    d = hw.accelerator_to_dict(hw.a100_80gb())
    d["bogus"] = 1
    with pytest.raises(ValueError, match="unknown key"):
        hw.accelerator_from_dict(d)
    bad = tmp_path / "chip.json"
    bad.write_text('{"name": "x", ')
    with pytest.raises(ValueError, match="malformed JSON"):
        hw.load_accelerator(bad)
    with pytest.raises(FileNotFoundError):
        hw.load_accelerator(tmp_path / "missing.json")


def test_save_load_yaml_and_json(tmp_path):
    acc = hw.tpu_v5e()
    for suffix in ("json", "yaml"):
        path = tmp_path / f"chip.{suffix}"
        hw.save_accelerator(acc, path)
        again = hw.load_accelerator(path)
        assert again.name == acc.name and again.main_memory.name == "hbm"
        assert float(again.peak_flops("bf16")) == pytest.approx(197e12)


def roofline_time(acc, flops, nbytes):
    return roofline(flops, nbytes, acc.peak_flops("bf16"), acc.main_memory.bandwidth_Bps, temperature=0.05).time_s


def test_specs_are_jit_vmap_grad_clean():
    acc = hw.h100_sxm()
    assert_jit_matches_eager(roofline_time, acc, 1e12, 1e9)
    batch = jax.tree_util.tree_map(lambda x: jnp.stack([x, 2 * x, 3 * x]), acc)
    assert_vmap_matches_loop(lambda a: roofline_time(a, 1e12, 1e9), batch)
    g = assert_finite_grads(lambda a: roofline_time(a, 1e12, 1e9), acc)
    assert float(g.matrix_flops["bf16"]) < 0  # more peak, less time
    counter = TraceCounter(roofline_time)
    f = jax.jit(counter)
    f(acc, 1e12, 1e9)
    f(acc, 2e12, 3e9)
    assert counter.count == 1


def test_roofline_float64_fd_gradient():
    with float64():
        x = jnp.asarray([1e12, 5e9, 989e12, 3.35e12])
        assert_grad_matches_fd(lambda v: roofline(v[0], v[1], v[2], v[3], temperature=0.1).time_s * 1e3, x,
                               rtol=1e-5, atol=1e-12)
