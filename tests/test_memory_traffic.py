"""Tiling-aware traffic, AMAT and miss-ratio curves."""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffsys.memory as M
from diffsys.testing import TraceCounter, assert_grad_matches_fd, assert_jit_matches_eager, assert_vmap_matches_loop, float64


# -- tiling ---------------------------------------------------------------------------------------------------------
_traffic = jax.jit(lambda m, n, k, s, t: M.gemm_traffic(m, n, k, s, 2, temperature=t))
_traffic_q = jax.jit(lambda m, n, k, s, t: M.gemm_traffic(m, n, k, s, 2, quantize=True, temperature=t))

dims = st.floats(16.0, 1e5)


@settings(max_examples=25, deadline=None)
@given(dims, dims, dims, st.floats(1e3, 1e9), st.floats(1.01, 16.0), st.sampled_from([0.0, 0.05]))
def test_bigger_sram_never_more_traffic(m, n, k, s, factor, temp):
    for f in (_traffic, _traffic_q):
        small = f(m, n, k, s, temp)
        big = f(m, n, k, s * factor, temp)
        assert float(big.bytes) <= float(small.bytes) * (1 + 1e-5)
        assert float(big.lower_bound_bytes) <= float(small.lower_bound_bytes) * (1 + 1e-5)


@settings(max_examples=25, deadline=None)
@given(dims, dims, dims, st.floats(1e3, 1e9))
def test_achievable_traffic_respects_the_lower_bound_and_compulsory_traffic(m, n, k, s):
    tr = _traffic(m, n, k, s, 0.0)
    assert float(tr.bytes) >= float(tr.lower_bound_bytes) * (1 - 1e-5)
    assert float(tr.bytes) >= float(tr.compulsory_bytes) * (1 - 1e-5)
    # the square-tile schedule is optimal up to the output write when all dims exceed the tile (Smith et al.)
    t = float(tr.tile)
    if min(m, n) > t:
        assert float(tr.bytes) <= (float(tr.lower_bound_bytes) + m * n * 2) * (1 + 1e-5)


def test_traffic_is_compulsory_when_everything_fits_and_matches_2mnk_over_sqrt_s():
    m, n, k = 512.0, 256.0, 1024.0
    fits = M.gemm_traffic(m, n, k, sram_B=2 * 600.0**2)
    assert float(fits.bytes) == pytest.approx(float(fits.compulsory_bytes), rel=1e-6)
    big = M.gemm_traffic(8192, 8192, 8192, sram_B=2 * 256.0**2)  # S = 65536 words, tile 256
    assert float(big.bytes_read) == pytest.approx(2 * 8192**3 / 256 * 2, rel=1e-5)
    assert float(big.lower_bound_bytes) == pytest.approx(2 * 8192**3 / 256 * 2, rel=1e-5)
    # quantized passes equal ceil(n/t) passes exactly
    q = M.gemm_traffic(1000, 1000, 100, sram_B=2 * 300.0**2, quantize=True)
    assert float(q.bytes_read) == pytest.approx((1000 * 100 * 4 + 100 * 1000 * 4) * 2, rel=1e-6)
    db = M.gemm_traffic(8192, 8192, 8192, sram_B=2 * 256.0**2, buffers=2)
    assert float(db.bytes_read) == pytest.approx(float(big.bytes_read) * np.sqrt(2), rel=1e-5)


def test_conv_traffic():
    # ResNet-50 conv3 3x3 layer; everything fits in a huge buffer -> compulsory
    fits = M.conv2d_traffic(1, 28, 28, 128, 128, 3, 1, sram_B=1e9)
    assert float(fits.bytes) == pytest.approx(float(fits.compulsory_bytes), rel=1e-6)
    sizes = [16e3, 64e3, 256e3, 1e6]
    t = [float(M.conv2d_traffic(32, 56, 56, 64, 64, 3, 1, sram_B=s).bytes) for s in sizes]
    assert all(b <= a for a, b in zip(t, t[1:]))
    assert t[0] > t[-1]


def test_traffic_transformations_and_gradients():
    def f(x):
        tr = M.gemm_traffic(2 ** x[0], 2 ** x[1], 2 ** x[2], 2 ** x[3], temperature=0.05)
        return jnp.log(tr.bytes)

    xs = jnp.array([[10.0, 11.0, 12.0, 18.0], [12.0, 12.0, 9.0, 22.0], [6.0, 14.0, 10.0, 16.0]])
    assert_jit_matches_eager(f, xs[0])
    assert_vmap_matches_loop(jax.jit(f), xs)
    g = jax.vmap(jax.grad(f))(xs)
    assert np.all(np.isfinite(np.asarray(g)))
    assert np.all(np.asarray(g)[:, 3] <= 0)  # more SRAM, less traffic
    counter = TraceCounter(f)
    jf = jax.jit(counter)
    jf(xs[0])
    jf(xs[1])
    assert counter.count == 1
    with float64():
        f64 = jax.jit(f)
        for x in xs[:2]:
            assert_grad_matches_fd(f64, jnp.asarray(np.asarray(x), jnp.float64), rtol=1e-4)


# -- AMAT ---------------------------------------------------------------------------------------------------------
def test_amat_textbook_example():
    # Hennessy & Patterson (5th ed., App. B): L1 hit 1 cycle, 4 % misses; L2 hit 10 cycles, 50 % local misses;
    # memory 200 cycles -> AMAT = 1 + 0.04 × (10 + 0.5 × 200) = 5.4 cycles
    assert float(M.amat(jnp.array([1.0, 10.0]), jnp.array([0.04, 0.5]), 200.0)) == pytest.approx(5.4)
    np.testing.assert_allclose(M.global_miss_ratios(jnp.array([0.04, 0.5])), [0.04, 0.02])
    batch = jax.vmap(M.amat, in_axes=(None, 0, None))(jnp.array([1.0, 10.0]), jnp.array([[0.04, 0.5], [0.1, 0.2]]),
                                                       200.0)
    np.testing.assert_allclose(batch, [5.4, 1 + 0.1 * (10 + 0.2 * 200)], rtol=1e-6)
    g = jax.grad(lambda m: M.amat(jnp.array([1.0, 10.0]), m, 200.0))(jnp.array([0.04, 0.5]))
    assert np.all(np.asarray(g) > 0)


# -- miss-ratio curves ------------------------------------------------------------------------------------------------
def test_power_law_sqrt2_rule():
    m1 = M.power_law_miss_ratio(64e3, 32e3, 0.1)
    assert float(m1) == pytest.approx(0.1 / np.sqrt(2), rel=1e-6)
    assert float(M.power_law_miss_ratio(100.0, 32e3, 0.1)) == 1.0  # clipped
    assert float(M.power_law_miss_ratio(100.0, 32e3, 0.1, temperature=0.01)) == pytest.approx(1.0, abs=0.01)


def _lru_simulate(trace, capacity):
    cache = collections.OrderedDict()
    misses = 0
    for a in trace:
        if a in cache:
            cache.move_to_end(a)
        else:
            misses += 1
            cache[a] = True
            if len(cache) > capacity:
                cache.popitem(last=False)
    return misses / len(trace)


def test_reuse_histogram_mrc_matches_an_lru_simulation():
    rng = np.random.default_rng(0)
    # a trace with locality: a random walk over 200 lines plus occasional far jumps
    pos, trace = 0, []
    for _ in range(4000):
        pos = (pos + int(rng.integers(-3, 4))) % 200 if rng.random() > 0.05 else int(rng.integers(0, 200))
        trace.append(pos)
    d, c, cold = M.reuse_histogram(trace)
    caps = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256])
    mrc = np.asarray(M.miss_ratio_from_reuse_histogram(jnp.asarray(caps, float), d, c, cold))
    sim = np.array([_lru_simulate(trace, int(cap)) for cap in caps])
    np.testing.assert_allclose(mrc, sim, atol=1e-6)
    # smooth twin: converges to the exact curve and stays monotone in capacity
    errs = [np.max(np.abs(np.asarray(M.miss_ratio_from_reuse_histogram(jnp.asarray(caps, float), d, c, cold, t))
                          - mrc)) for t in (0.5, 0.1, 0.01)]
    assert errs[0] > errs[-1] and errs[-1] < 0.05
    soft = np.asarray(M.miss_ratio_from_reuse_histogram(jnp.logspace(0, 3, 50), d, c, cold, 0.2))
    assert np.all(np.diff(soft) <= 1e-7)
    g = jax.grad(lambda cap: M.miss_ratio_from_reuse_histogram(cap, d, c, cold, 0.2))(16.0)
    assert np.isfinite(g) and g < 0


@settings(max_examples=25, deadline=None)
@given(st.floats(1.0, 1e4), st.floats(1.01, 8.0), st.floats(0.1, 0.9), st.one_of(st.just(0.0), st.floats(1e-3, 1.0)))
def test_mrc_never_increases_with_capacity(cap, factor, alpha, temp):
    a = float(M.power_law_miss_ratio(cap, 100.0, 0.3, alpha, temp))
    b = float(M.power_law_miss_ratio(cap * factor, 100.0, 0.3, alpha, temp))
    assert b <= a + 1e-7


def test_bad_input():
    with pytest.raises(ValueError, match="temperature"):
        M.power_law_miss_ratio(1e3, 1e3, 0.1, temperature=-1.0)


def test_sweep_and_example_problems_use_the_one_tiled_traffic_formula():
    # memory-bound limit (huge peak): the accelerator co-design problem (``diffsys sweep --problem roofline``) and
    # the systolic example take their DRAM traffic from diffsys.memory.gemm_traffic with three tiles in the SRAM
    from diffsys.problems import AcceleratorDesign, accelerator_model
    from diffsys.problems._accelerator import LAYER_GEMMS

    bw = 3e12
    m, n, k = (LAYER_GEMMS[:, i] for i in range(3))
    for sram_mib, bpe in ((4.0, 2.0), (64.0, 1.0), (1024.0, 2.0)):
        d = AcceleratorDesign(peak_flops=1e30, hbm_bandwidth_Bps=bw, sram_MiB=sram_mib, bytes_per_element=bpe)
        ref = jnp.sum(M.gemm_traffic(m, n, k, sram_mib * 2**20, bpe, buffers=3).bytes) / bw
        assert float(accelerator_model(d).time_s) == pytest.approx(float(ref), rel=1e-5)
    import inspect

    from diffsys.problems import _problems

    src = inspect.getsource(_problems.systolic_model)
    assert "gemm_traffic(" in src and "jnp.sqrt(S / (3.0" not in src
