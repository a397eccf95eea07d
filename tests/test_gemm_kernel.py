"""GEMM kernel model: measured TensorRT-LLM GEMMs, mutations, invariants, JAX transformations, op_time dispatch."""

import hashlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffsys.hardware as H
import diffsys.roofline as R
from diffsys.testing import (
    TraceCounter, assert_finite_grads, assert_grad_matches_fd, assert_jit_matches_eager, assert_vmap_matches_loop,
    float64,
)

H100 = H.preset("h100")
A100 = H.preset("a100_80gb")
STEP = 3  # every third row of each file (the full-file statistics are in docs/roofline.md)

# (file, preset, dtype, MAPE bound with the shipped constants) — achieved on these rows: 7.7 %, 5.7 %, 10.4 %
# (every row: 7.6 %, 5.7 %, 10.3 %; docs/roofline.md)
FILES = [("gemm_h100_sxm_bfloat16.csv", "h100_sxm", "bf16", 0.082),
         ("gemm_h100_sxm_fp8.csv", "h100_sxm", "fp8", 0.062),
         ("gemm_a100_sxm_bfloat16.csv", "a100_80gb", "bf16", 0.11)]


@pytest.fixture(scope="module")
def gemm_data(validation_dir):
    path = validation_dir / "gemm"
    if not path.is_dir():
        pytest.skip(f"no GEMM measurements at {path}")
    out = {}
    for name, *_ in FILES:
        d = np.genfromtxt(path / name, delimiter=",", names=True)[::STEP]
        out[name] = tuple(np.asarray(d[c], dtype=np.float32) for c in ("m", "n", "k")) + (d["latency_us"] * 1e-6,)
    return out


def _held_out(m, n, k):
    """The report half of benchmarks/calibrate_gemm.py: shapes whose md5("m,n,k") first byte is odd (not fitted)."""
    return np.array([hashlib.md5(f"{int(a)},{int(b)},{int(c)}".encode()).digest()[0] % 2 == 1
                     for a, b, c in zip(m, n, k)])


@jax.jit
def _times(m, n, k, accel):
    return R.gemm_time(m, n, k, accel, "bf16").time_s


@jax.jit
def _times_fp8(m, n, k, accel):
    return R.gemm_time(m, n, k, accel, "fp8").time_s


def _mape(data, accel, dtype):
    m, n, k, t = data
    p = np.asarray((_times_fp8 if dtype == "fp8" else _times)(m, n, k, accel), dtype=float)
    return float(np.mean(np.abs(p / t - 1.0)))


# -- measured data ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, preset, dtype, bound", FILES)
def test_default_op_time_matches_measured_gemms(gemm_data, name, preset, dtype, bound):
    """op_time(gemm(m, n, k), preset, dtype) — the default — within the achieved MAPE on every shape of the file."""
    m, n, k, t = gemm_data[name]
    accel = H.preset(preset)
    p = np.asarray(jax.jit(lambda m, n, k: R.op_time(R.gemm(m, n, k), accel, dtype).time_s)(m, n, k), dtype=float)
    rel = p / t - 1.0
    assert np.mean(np.abs(rel)) <= bound, np.mean(np.abs(rel))
    assert abs(np.median(rel)) < 0.03  # no systematic optimism or pessimism left


@pytest.mark.parametrize("name, preset, dtype, bound", FILES)
def test_rows_not_used_in_the_fit_meet_the_bound(gemm_data, name, preset, dtype, bound):
    """The held-out half alone (the fit never saw these shapes) meets the same bound, with no systematic bias."""
    m, n, k, t = gemm_data[name]
    sel = _held_out(m, n, k)
    assert 0.4 < sel.mean() < 0.6
    m, n, k, t = m[sel], n[sel], k[sel], t[sel]
    p = np.asarray((_times_fp8 if dtype == "fp8" else _times)(m, n, k, H.preset(preset)), dtype=float)
    rel = p / t - 1.0
    assert np.mean(np.abs(rel)) <= bound, np.mean(np.abs(rel))
    assert abs(np.median(rel)) < 0.03


def test_constants_carry_to_the_gpu_they_were_not_fitted_on(gemm_data):
    """H100 constants on A100 and A100 constants on H100: only datasheet fields differ (achieved on these rows
    13.6 %, 16.5 %; every row 13.4 %, 16.3 %)."""
    h_on_a = A100.with_calibration("gemm", {"bf16": dict(H100.kernel_constants("gemm", "bf16"))})
    a_on_h = H100.with_calibration("gemm", {"bf16": dict(A100.kernel_constants("gemm", "bf16"))})
    assert _mape(gemm_data["gemm_a100_sxm_bfloat16.csv"], h_on_a, "bf16") <= 0.14
    assert _mape(gemm_data["gemm_h100_sxm_bfloat16.csv"], a_on_h, "bf16") <= 0.17


@pytest.mark.parametrize("name, constant, dtype", [
    ("gemm_h100_sxm_bfloat16.csv", "launch_s", "bf16"),
    ("gemm_h100_sxm_bfloat16.csv", "compute_efficiency", "bf16"),
    ("gemm_h100_sxm_bfloat16.csv", "memory_efficiency", "bf16"),
    ("gemm_h100_sxm_fp8.csv", "quant_s", "fp8"),
    ("gemm_a100_sxm_bfloat16.csv", "memory_efficiency", "bf16"),
    ("gemm_a100_sxm_bfloat16.csv", "launch_s", "bf16"),
    ("gemm_a100_sxm_bfloat16.csv", "compute_efficiency", "bf16"),
])
def test_halving_a_term_breaks_the_bound(gemm_data, name, constant, dtype):
    """Mutation check: the validation bounds above have teeth (halving one fitted term fails them)."""
    preset, bound = next((p, b) for f, p, d, b in FILES if f == name and d == dtype)
    accel = H.preset(preset)
    consts = dict(accel.kernel_constants("gemm", dtype))
    consts[constant] = consts[constant] * 0.5
    mutated = accel.with_calibration("gemm", {dtype: consts})
    assert _mape(gemm_data[name], mutated, dtype) > bound


def test_halving_the_sm_count_breaks_the_bound(gemm_data):
    """Wave quantization and stream-K spread over ``num_cores``: a wrong SM count is visible in the error."""
    accel = eqx.tree_at(lambda a: a.num_cores, H100, H100.num_cores * 0.5)
    assert _mape(gemm_data["gemm_h100_sxm_bfloat16.csv"], accel, "bf16") > FILES[0][3]


# -- physics ------------------------------------------------------------------------------------------------------
def test_fp8_floor_and_fallback():
    tiny_bf16 = float(R.gemm_time(1, 32, 32, H100, "bf16").time_s)
    tiny_fp8 = float(R.gemm_time(1, 32, 32, H100, "fp8").time_s)
    assert 1.5e-6 < tiny_bf16 < 3.5e-6  # measured floor ~2.5 us
    assert 10e-6 < tiny_fp8 < 14e-6  # dynamic quantization: measured floor ~12 us
    # large compute-bound GEMMs: fp8 runs on a peak twice the bf16 one (measured 8192³: 1405 us vs 885 us)
    big = [float(R.gemm_time(8192, 8192, 8192, H100, d).time_s) for d in ("bf16", "fp8")]
    assert 1.35 < big[0] / big[1] < 1.75
    # A100 has no fp8 tensor cores: an fp8 GEMM runs as a bf16 one
    assert float(R.gemm_time(4096, 4096, 4096, A100, "fp8").time_s) == float(
        R.gemm_time(4096, 4096, 4096, A100, "bf16").time_s)


def test_decode_gemm_streams_the_weights():
    # m = 1: the weight read at the achievable HBM bandwidth bounds the time
    r = R.gemm_time(1, 16384, 16384, H100)
    w = 16384 * 16384 * 2
    bw = float(H100.main_memory.bandwidth_Bps)
    assert w / bw < float(r.time_s) < 1.4 * w / bw
    assert not bool(r.compute_bound)


def test_wave_quantization_step():
    # one more tile row past a full wave costs a whole extra wave of tiles for a compute-bound shape
    base = float(R.gemm_time(4096, 4096, 8192, H100).time_s)
    more = float(R.gemm_time(4097, 4096, 8192, H100).time_s)
    assert more > base * 1.005


# -- invariants ---------------------------------------------------------------------------------------------------
def _scaled(accel, peak=1.0, bw=1.0, l2_bw=1.0):
    return eqx.tree_at(lambda a: (a.matrix_flops["bf16"], a.memory[2].bandwidth_Bps, a.memory[1].bandwidth_Bps),
                       accel, (accel.matrix_flops["bf16"] * peak, accel.memory[2].bandwidth_Bps * bw,
                               accel.memory[1].bandwidth_Bps * l2_bw))


SHAPES = jnp.asarray(np.stack(np.meshgrid([1.0, 7, 64, 129, 1000, 4096, 30000], [32.0, 1000, 4096, 51200],
                                          [32.0, 777, 8192, 65536]), -1).reshape(-1, 3))


@pytest.mark.parametrize("accel", [H100, A100], ids=["h100", "a100"])
def test_more_peak_or_bandwidth_is_never_slower(accel):
    m, n, k = SHAPES.T
    base = np.asarray(_times(m, n, k, accel))
    for kw in ({"peak": 1.7}, {"bw": 1.7}, {"l2_bw": 1.7}):
        faster = np.asarray(_times(m, n, k, _scaled(accel, **kw)))
        assert np.all(faster <= base * (1 + 1e-6)), kw


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_time_is_monotone_in_each_size(axis):
    """Non-decreasing in m, n and k at temperature 0 (wave quantization makes it a staircase, never a drop)."""
    grid = np.unique(np.round(np.geomspace(1, 70000, 160)))
    fixed = [(1.0, 4096.0), (257.0, 1000.0), (4096.0, 8192.0)]
    for a, b in fixed:
        cols = [np.full_like(grid, a), np.full_like(grid, b)]
        cols.insert(axis, grid)
        t = np.asarray(_times(*(jnp.asarray(c, dtype=jnp.float32) for c in cols), H100))
        assert np.all(np.diff(t) >= -1e-6 * t[1:]), (axis, a, b)


# -- JAX transformations ------------------------------------------------------------------------------------------
def _model(x, temperature=0.3):
    """x = (log2 m, log2 n, log2 k, peak scale, bandwidth scale) -> Roofline of a bf16 GEMM on a scaled H100."""
    return R.gemm_time(2.0 ** x[0], 2.0 ** x[1], 2.0 ** x[2], _scaled(H100, x[3], x[4]), "bf16",
                       temperature=temperature)


POINTS = jnp.asarray([[0.0, 12.0, 12.0, 1.0, 1.0], [10.3, 11.7, 9.1, 0.8, 1.3], [12.2, 5.5, 15.0, 1.2, 0.7],
                      [7.0, 14.0, 4.5, 1.0, 1.0]])


def test_jit_vmap_and_no_retrace():
    for t in (0.0, 0.3):
        assert_jit_matches_eager(lambda x: _model(x, t), POINTS[1])
        assert_vmap_matches_loop(jax.jit(lambda x: _model(x, t)), POINTS)
    counter = TraceCounter(lambda x: _model(x, 0.0))
    f = jax.jit(jax.vmap(counter))
    f(POINTS)
    f(POINTS + 0.1)
    assert counter.count == 1


def test_finite_grads_everywhere_and_fd_check_when_smooth():
    for t in (0.0, 0.3):
        g = jax.jit(jax.vmap(jax.grad(lambda z: jnp.log(_model(z, t).time_s))))(POINTS)
        assert np.all(np.isfinite(np.asarray(g))), t
    with float64():
        logt = jax.jit(lambda z: jnp.log(_model(z, 0.5).time_s))
        x = jnp.asarray(np.asarray(POINTS[1]), dtype=jnp.float64)
        assert_grad_matches_fd(logt, x, eps=1e-6, rtol=2e-3, atol=1e-6)


def test_gradients_wrt_every_accelerator_field_are_finite():
    shapes = jnp.asarray([[1.0, 8192, 8192], [4096, 4096, 4096], [77, 300, 65536]])
    grad = eqx.filter_jit(eqx.filter_grad(lambda a, t: jnp.sum(R.gemm_time(*shapes.T, a, "bf16",
                                                                          temperature=t).time_s)))
    for t in (0.0, 0.2):  # a traced temperature: one compilation, exact (0) and relaxed branches
        leaves = jax.tree_util.tree_leaves(eqx.filter(grad(H100, jnp.asarray(t)), eqx.is_inexact_array))
        assert all(np.all(np.isfinite(np.asarray(v))) for v in leaves), t
    g = grad(H100, jnp.asarray(0.0))
    assert float(g.matrix_flops["bf16"]) < 0 and float(g.memory[2].bandwidth_Bps) < 0


def test_smooth_twin_converges_to_exact():
    m, n, k = SHAPES.T
    exact = np.asarray(_times(m, n, k, H100))
    traced = jax.jit(lambda tt: R.gemm_time(m, n, k, H100, temperature=tt).time_s)
    errs = [np.max(np.abs(np.asarray(traced(jnp.asarray(t))) / exact - 1)) for t in (0.1, 0.001, 0.0001)]
    assert errs[0] >= errs[1] >= errs[2] and errs[2] < 0.005, errs
    np.testing.assert_allclose(np.asarray(traced(jnp.asarray(0.0))), exact, rtol=1e-6)


# -- op_time dispatch, op algebra, calibration ----------------------------------------------------------------------
@jax.jit
def _op_seconds(op):
    return R.op_time(op, H100, "bf16").time_s


def test_op_time_defaults_to_the_kernel_model_and_composes():
    t = lambda op: float(_op_seconds(op))
    one = float(_times(1024.0, 4096.0, 4096.0, H100))
    assert t(R.gemm(1024, 4096, 4096)) == pytest.approx(one, rel=1e-6)
    assert t(R.gemm(1024, 4096, 4096).scale(3)) == pytest.approx(3 * one, rel=1e-6)  # three launches
    two = R.gemm(1024, 4096, 4096) + R.gemm(1024, 1024, 4096)
    assert t(two) == pytest.approx(one + float(_times(1024.0, 1024.0, 4096.0, H100)), rel=1e-6)
    # a GEMM fused with elementwise work: the GEMM kernel plus the roofline of the rest
    ew = R.elementwise(1024 * 4096)
    fused = t(R.gemm(1024, 4096, 4096) + ew)
    assert fused == pytest.approx(one + t(ew), rel=1e-5)
    # an explicit efficiency asks for the generic roofline
    generic = R.op_time(R.gemm(1024, 4096, 4096), H100, "bf16", efficiency=1.0)
    assert float(generic.time_s) == pytest.approx(2 * 1024 * 4096 * 4096 / 989.4e12, rel=1e-6)
    # graphs: the per-op times are the kernel model's for GEMMs and the roofline's for the rest
    g = R.transformer_layer_ops(2, 512, 1024, 16, mode="prefill")
    gt = jax.jit(lambda g: R.graph_time(g, H100).time_s)(g)
    ops = [t(op) for _, op in g.items() if float(jnp.sum(op.gemm.count)) > 0]
    assert len(ops) == 4  # qkv, out, up, down projections
    assert float(gt) > sum(ops)


def test_batched_and_shared_weight_gemms():
    # a shared weight is one GEMM of batch·m rows; a batched GEMM is one launch of batch problems
    shared = R.op_time(R.gemm(128, 4096, 4096, batch=8, shared_b=True), H100).time_s
    assert float(shared) == pytest.approx(float(R.gemm_time(1024, 4096, 4096, H100).time_s), rel=1e-6)
    batched = float(R.op_time(R.gemm(128, 4096, 4096, batch=8), H100).time_s)
    assert batched == pytest.approx(float(R.gemm_time(128, 4096, 4096, H100, batch=8).time_s), rel=1e-6)
    assert batched > float(shared)  # eight weights to stream instead of one


def test_presets_carry_the_shipped_constants():
    prov = H.calibration_provenance("gemm")
    assert prov["date"] == "2026-12-02" and "fit_least_squares" in prov["fit"] and prov["split"]
    assert float(H100.kernel_constants("gemm", "fp8")["quant_s"]) > 1e-6
    # H200 / B200 / GB200 use the portable "*" entry (the H100 fit) with their own datasheet fields
    for name in ("h200", "b200", "gb200"):
        c = H.preset(name).kernel_constants("gemm", "bf16")
        assert float(c["compute_efficiency"]) == float(H100.kernel_constants("gemm", "bf16")["compute_efficiency"])
    # more HBM bandwidth, same compute: H200 streams a decode GEMM faster than H100, same large-GEMM time
    h200 = H.preset("h200")
    assert float(R.gemm_time(1, 8192, 8192, h200).time_s) < 0.8 * float(R.gemm_time(1, 8192, 8192, H100).time_s)
    big = [float(R.gemm_time(8192, 8192, 8192, a).time_s) for a in (H100, h200)]
    assert big[1] == pytest.approx(big[0], rel=0.02)


def test_unit_peaks_is_an_accelerator_method():
    assert R.unit_peaks(H100, "bf16") == H100.unit_peaks("bf16")
    assert float(H.preset("v100").unit_peaks("fp32")[0]) == pytest.approx(15.7e12)
    assert A100.matrix_dtype("fp8") == "bf16" and H100.matrix_dtype("fp8") == "fp8"


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match="dtype"):
        R.gemm_time(8, 8, 8, H100, "bf15")
    with pytest.raises(ValueError, match="temperature"):
        R.gemm_time(8, 8, 8, H100, temperature=-1.0)
    with pytest.raises(ValueError, match="gemm constant"):
        R.gemm_time(8, 8, 8, H100, constants={"launch": 1e-6})
