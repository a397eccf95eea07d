"""Footprints, SRAM/DRAM scaling laws and HBM stacks, checked against published figures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffsys.hardware as H
import diffsys.memory as M

GB = 1e9


# -- footprints -----------------------------------------------------------------------------------------------------
def test_zero_paper_figure1_memory_per_device():
    """Rajbhandari et al. 2020, Fig. 1: Ψ = 7.5B, N_d = 64, K = 12 -> 120, 31.4, 16.6, 1.9 GB per device."""
    psi = 7.5e9
    got = [M.training_state_bytes(psi, stage, 64) / GB for stage in (0, 1, 2, 3)]
    np.testing.assert_allclose(got, [120.0, 31.4, 16.6, 1.9], rtol=0.02)
    assert M.weights_bytes(psi) + M.gradients_bytes(psi) + M.optimizer_state_bytes(psi) == 16 * psi


@pytest.mark.parametrize("h, a", [(6144, 64), (12288, 96), (20480, 128), (25600, 160)])
def test_korthikanti_sequence_parallel_plus_selective_recompute_saves_about_5x(h, a):
    """Korthikanti et al. 2022: SP + selective recompute cut activation memory ~5x vs tensor parallelism alone
    (their 22B, 175B, 530B, 1T models; s = 2048, t = 8)."""
    s, b, t = 2048, 1, 8
    base = M.transformer_activation_bytes(s, b, h, a, tp=t)
    best = M.transformer_activation_bytes(s, b, h, a, tp=t, sequence_parallel=True, recompute="selective")
    assert best == pytest.approx(34 * s * b * h / t)
    assert 4.5 < base / best < 6.5


def test_activation_formula_variants_are_consistent():
    s, b, h, a = 2048, 4, 4096, 32
    none = M.transformer_activation_bytes(s, b, h, a)
    assert none == pytest.approx(s * b * h * (34 + 5 * a * s / h))
    # t = 1: tensor-parallel and sequence-parallel formulas coincide with the unparallelised one
    assert M.transformer_activation_bytes(s, b, h, a, tp=1, sequence_parallel=True) == pytest.approx(none)
    sel = M.transformer_activation_bytes(s, b, h, a, recompute="selective")
    full = M.transformer_activation_bytes(s, b, h, a, recompute="full")
    assert full == 2 * s * b * h < sel == 34 * s * b * h < none
    assert M.transformer_activation_bytes(s, b, h, a, n_layers=24) == pytest.approx(24 * none)


def test_kv_cache_llama2_70b_and_dtypes():
    # Llama-2-70B: 80 layers, 8 KV heads (GQA), head dim 128 -> 320 KiB per token in bf16
    per_token = M.kv_cache_bytes(1, 1, 80, 8, 128, "bf16")
    assert per_token == 320 * 1024
    assert M.kv_cache_bytes(1, 1, 80, 8, 128, "fp8") == per_token / 2
    assert M.kv_cache_bytes(1, 1, 80, 8, 128, 4) == per_token * 2
    assert M.kv_cache_bytes(16, 4096, 80, 8, 128, tp=8) == 16 * 4096 * per_token / 8


def test_footprints_are_traceable_and_differentiable():
    f = jax.jit(jax.vmap(lambda s: M.transformer_activation_bytes(s, 2.0, 4096.0, 32.0, tp=4.0) +
                         M.kv_cache_bytes(2.0, s, 32.0, 8.0, 128.0)))
    out = f(jnp.array([512.0, 1024.0]))
    assert np.all(np.diff(np.asarray(out)) > 0)
    g = jax.grad(lambda s: M.transformer_activation_bytes(s, 2.0, 4096.0, 32.0))(1024.0)
    assert float(g) > 0


def test_footprint_bad_input():
    with pytest.raises(ValueError, match="recompute"):
        M.transformer_activation_bytes(1, 1, 1, 1, recompute="some")
    with pytest.raises(ValueError, match="zero_stage"):
        M.training_state_bytes(1e9, zero_stage=4)
    with pytest.raises(ValueError, match="optimizer"):
        M.optimizer_state_bytes(1e9, optimizer="adamax")
    with pytest.raises(ValueError, match="dtype"):
        M.kv_cache_bytes(1, 1, 1, 1, 1, dtype="bf8")


# -- scaling laws: fit on some published points, report on the held-out one -----------------------------------------
def test_sram_energy_power_law_on_held_out_horowitz_point():
    pred = float(M.sram_energy_J_per_B(32e3)) * 8
    err = abs(pred / M.HOROWITZ_SRAM_READ_J[32e3] - 1)
    assert err < 0.10, err  # 3.2 % (fit on 8 KB and 1 MB)
    # fitted points are reproduced exactly; energy grows sub-linearly with capacity
    assert float(M.sram_energy_J_per_B(1e6)) * 8 == pytest.approx(100e-12)
    assert 0.3 < M.SRAM_READ_ENERGY.beta < 0.6


def test_sram_latency_power_law_on_held_out_zen2_l2():
    pred_cycles = float(M.sram_latency_s(512 * 1024, clock_Hz=1e9)) * 1e9
    err = abs(pred_cycles / M.ZEN2_LATENCY_CYCLES[512 * 1024] - 1)
    assert err < 0.15, err  # 8.3 % (fit on L1D and L3)


def test_sram_area_and_cost():
    a = M.sram_area_mm2(50 * 2**20, "n5")
    # 50 MiB of N5 high-density SRAM: ~12 mm² of macros (419 Mbit × 0.021 µm² / 0.7)
    assert a == pytest.approx(50 * 2**20 * 8 * 0.021 / 0.7 * 1e-6)
    assert M.sram_area_mm2(2e6, "n7") > M.sram_area_mm2(2e6, "n5")
    c = M.sram_cost(jnp.array([32e3, 1e6, 32e6]))
    for f in c:
        assert np.all(np.diff(np.asarray(f)) > 0)
    with pytest.raises(ValueError, match="node"):
        M.sram_area_mm2(1e6, "n2")


def test_dram_energy():
    assert M.dram_energy_J_per_B("hbm2") == pytest.approx(3.9e-12 * 8)
    assert M.dram_energy_J_per_B("hbm2") < M.dram_energy_J_per_B("gddr5")
    with pytest.raises(ValueError, match="kind"):
        M.dram_energy_J_per_B("sdram")


# -- HBM stacks -------------------------------------------------------------------------------------------------------
def test_hbm_per_stack_jedec_figures():
    assert M.hbm_config(1, "hbm2").bandwidth_Bps == pytest.approx(256e9)
    assert M.hbm_config(1, "hbm3").bandwidth_Bps == pytest.approx(819.2e9)


@pytest.mark.parametrize("preset, stacks, gen, pin, stack_gb, cap_gb", [
    ("h100_sxm", 5, "hbm3", 5.23, 16, 80),      # H100 SXM5: 5 active HBM3 stacks, 80 GB
    ("a100_80gb", 5, "hbm2e", 3.186, 16, 80),   # A100 80 GB: 5 HBM2e stacks, 80 GB
    ("mi300x", 8, "hbm3", 5.2, 24, 192),        # MI300X: 8 HBM3 stacks, 192 GB
])
def test_hbm_stacks_reproduce_product_datasheets(preset, stacks, gen, pin, stack_gb, cap_gb):
    cfg = M.hbm_config(stacks, gen, pin_rate_Gbps=pin, stack_capacity_B=stack_gb * GB)
    acc = H.preset(preset)
    assert cfg.bandwidth_Bps == pytest.approx(float(acc.main_memory.bandwidth_Bps), rel=0.01)
    assert cfg.capacity_B == pytest.approx(cap_gb * GB)


def test_hbm_power_scales_and_is_traceable():
    p = jax.vmap(lambda n: M.hbm_config(n, "hbm3", utilization=0.5).power_W)(jnp.array([1.0, 4.0, 8.0]))
    np.testing.assert_allclose(np.asarray(p) / float(p[0]), [1, 4, 8], rtol=1e-6)
    # one HBM3 stack at full bandwidth: 819 GB/s × 3.4 pJ/bit ≈ 22 W of access power (+10 % background)
    assert M.hbm_config(1, "hbm3").power_W == pytest.approx(819.2e9 * 8 * 3.4e-12 * 1.1)
    with pytest.raises(ValueError, match="generation"):
        M.hbm_config(4, "hbm4x")
    with pytest.raises(ValueError, match="n_stacks"):
        M.hbm_config(-1)
