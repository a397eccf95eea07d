"""Serving model: validation bounds on the measured H100 rows, a live recomputation of the cached kernel stage
(so a broken physics term fails), mutations, physical properties, the model protocol and the CLI."""

import json
import os
import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffsys.cli import main
from diffsys.llm import _serving as sv
from diffsys.llm import _serving_data as sd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNELS = os.path.join(ROOT, "diffsys", "llm", "serving_kernels_h100.npz")
HAVE_DATA = os.path.exists(sd.default_csv())
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="validation/serving/measured_h100.csv absent (e.g. sdist)")

#: held-out bounds asserted on the visible data (achieved values in docs/serving.md, with a small margin)
BOUNDS = {"agg": {"tpot": 0.19, "ttft": 0.33}, "disagg": {"tpot": 0.34, "ttft": 3.1}}
FIELDS = list(sv.ServingKernels.__dataclass_fields__)


def _llama_spec(**kw):
    args = dict(system="h100", backend="trtllm", precision="bf16", tp=1, isl=1024, osl=128, concurrency=32)
    args.update(kw)
    return sv.serving_spec("meta-llama/Llama-3.1-8B-Instruct", **args)


@pytest.fixture(scope="module")
def rows():
    return sd.read_rows()


def _cached_kernels(rows):
    data = np.load(KERNELS)
    pos = {i: n for n, i in enumerate(data["ids"])}
    idx = np.asarray([pos[r["id"]] for r in rows])
    return sv.ServingKernels(**{f: jnp.asarray(data[f][idx]) for f in FIELDS})


def _loop(rows, kern):
    base, vals = sd.stacked_spec(rows, sv.serving_spec("meta-llama/Llama-3.1-8B").accel,
                                 sv.serving_spec("meta-llama/Llama-3.1-8B").system)
    m = eqx.filter_vmap(lambda v, k: sv.serving_loop(sd._replace(base, v), k))(vals, kern)
    return np.asarray(m.tpot_s), np.asarray(m.ttft_s)


@needs_data
def test_held_out_mape_bounds(rows):
    held = [r for r in rows if not r["fit"]]
    tpot, ttft = _loop(held, _cached_kernels(held))
    for mode, b in BOUNDS.items():
        sel = np.asarray([r["mode"] == mode for r in held])
        e_p = np.mean(np.abs(tpot[sel] / sd.measured(held, "tpot_s")[sel] - 1))
        e_f = np.mean(np.abs(ttft[sel] / sd.measured(held, "ttft_s")[sel] - 1))
        assert e_p <= b["tpot"], (mode, e_p)
        assert e_f <= b["ttft"], (mode, e_f)


@needs_data
def test_held_out_ttft_follows_concurrency(rows):
    """The agg TTFT's growth with the client count: the median error of the held-out rows stays within 20 % in each
    concurrency range (measured +3.3 % at C 1-8, +12.4 % at 9-32, +13.7 % at 33-128; halving the in-step clients'
    wait gives -30 % at 33-128, doubling it +89 %)."""
    held = [r for r in rows if not r["fit"] and r["mode"] == "agg"]
    _, ttft = _loop(held, _cached_kernels(held))
    log_ratio = np.log(ttft / sd.measured(held, "ttft_s"))
    conc = np.asarray([r["concurrency"] for r in held])
    for lo, hi in ((1, 8), (9, 32), (33, 128)):
        sel = (conc >= lo) & (conc <= hi)
        assert sel.sum() >= 50
        assert abs(np.expm1(np.median(log_ratio[sel]))) <= 0.20, (lo, hi, np.expm1(np.median(log_ratio[sel])))


@needs_data
def test_closed_loop_is_converged(rows, monkeypatch):
    """The closed loop's TPOT is its fixed point, not an iteration count's artefact: more bisection steps change no
    row (a fixed 24 damped iterations moved 9 rows by up to 75 % against 400)."""
    kern = _cached_kernels(rows)
    tpot, ttft = _loop(rows, kern)
    monkeypatch.setattr(sv, "LOOP_BISECTIONS", 2 * sv.LOOP_BISECTIONS)
    tpot2, ttft2 = _loop(rows, kern)
    assert np.max(np.abs(tpot2 / tpot - 1)) < 1e-4 and np.max(np.abs(ttft2 / ttft - 1)) < 1e-4


def test_closed_loop_gradient_matches_finite_differences():
    """The implicit-function gradient of the TPOT root (and the TTFT built on it), float64, on a prefill-heavy
    deployment where the prefill share and the batch both feed back into the TPOT."""
    from diffsys.testing import assert_grad_matches_fd, float64

    with float64():
        spec = _llama_spec(isl=4096, osl=128, concurrency=128)
        kern = sv.serving_kernels(spec)

        def f(x):
            s = eqx.tree_at(lambda s: (s.decode_scale, s.prefill_scale, s.burst_fraction, s.iter_s), spec,
                            (x[0], x[1], x[2], x[3]))
            m = sv.serving_loop(s, kern)
            return jnp.log(m.tpot_s) + jnp.log(m.ttft_s)

        g = assert_grad_matches_fd(f, jnp.array([0.8, 2.0, 0.3, 1e-3]), relative_step=True)
        assert np.all(np.isfinite(g)) and g[0] > 0  # slower decode kernels, slower tokens


def _live_kernels(rows, mutate=None):
    base, vals = sd.stacked_spec(rows, sv.serving_spec("meta-llama/Llama-3.1-8B").accel,
                                 sv.serving_spec("meta-llama/Llama-3.1-8B").system)
    with mutate() if mutate else _null():
        return eqx.filter_vmap(lambda v: sv.serving_kernels(sd._replace(base, v)))(vals)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _subset(rows):
    """A few Llama-3.1-8B rows at TP 1 and 2 (TP all-reduce on)."""
    llama = [r for r in rows if r["model"].startswith("meta-llama/Llama-3.1-8B") and r["tp"] in (1.0, 2.0)]
    return llama[::12][:8]


@needs_data
def test_cached_kernels_match_live_physics(rows):
    sub = _subset(rows)
    live, cached = _live_kernels(sub), _cached_kernels(sub)
    for f in FIELDS:
        np.testing.assert_allclose(np.asarray(getattr(live, f)), np.asarray(getattr(cached, f)), rtol=2e-3,
                                   atol=1e-9, err_msg=f)


class _patch:
    def __init__(self, obj, name, value):
        self.obj, self.name, self.value = obj, name, value

    def __enter__(self):
        self.old = getattr(self.obj, self.name)
        setattr(self.obj, self.name, self.value(self.old))

    def __exit__(self, *a):
        setattr(self.obj, self.name, self.old)
        return False


@needs_data
@pytest.mark.parametrize("mutation", ["kv_bytes", "all_reduce"])
def test_mutations_break_the_physics(rows, mutation):
    """Halving the KV-cache bytes or the TP all-reduce changes the kernel stage and the held-out error."""
    sub = _subset(rows)
    if mutation == "kv_bytes":
        patch = lambda: _patch(sv, "_kv_bytes_per_token", lambda f: lambda *a: 0.5 * f(*a))  # noqa: E731
        field = "kv_capacity_requests"
    else:
        patch = lambda: _patch(sv, "_collective", lambda f: lambda *a: 0.5 * f(*a))  # noqa: E731
        field = "decode_comm_s"
    live = _live_kernels(sub, patch)
    cached = _cached_kernels(sub)
    a, b = np.asarray(getattr(live, field)), np.asarray(getattr(cached, field))
    assert not np.allclose(a, b, rtol=2e-3), f"mutation {mutation} left {field} unchanged"
    if mutation == "all_reduce":  # and the model moves away from the measurements
        tp_ok, tt_ok = _loop(sub, cached)
        tp_bad, tt_bad = _loop(sub, live)
        meas = np.concatenate([sd.measured(sub, "tpot_s"), sd.measured(sub, "ttft_s")])
        err = lambda p, t: np.mean(np.abs(np.concatenate([p, t]) / meas - 1))  # noqa: E731
        assert err(tp_bad, tt_bad) != pytest.approx(err(tp_ok, tt_ok), rel=1e-3)


def test_properties():
    base = _llama_spec()
    m = sv.serving_model(base)
    assert bool(m.feasible) and float(m.tpot_s) > 0 and float(m.ttft_s) > float(m.prefill_s) * 0.99
    # more HBM bandwidth never a slower TPOT
    fast = eqx.tree_at(lambda s: s.accel.main_memory.bandwidth_Bps, base, base.accel.main_memory.bandwidth_Bps * 2)
    assert float(sv.serving_model(fast).tpot_s) <= float(m.tpot_s)
    # higher concurrency never a lower TTFT (agg)
    ttfts = [float(sv.serving_model(eqx.tree_at(lambda s: s.concurrency, base, jnp.asarray(c))).ttft_s)
             for c in (1.0, 8.0, 64.0, 512.0)]
    assert all(b >= a for a, b in zip(ttfts, ttfts[1:])), ttfts
    # one output token: no decode phase, throughput = requests/s
    one = sv.serving_model(eqx.tree_at(lambda s: s.osl, base, jnp.asarray(1.0)))
    assert np.isfinite(float(one.ttft_s)) and float(one.tokens_per_s) == pytest.approx(float(one.requests_per_s))
    # percentiles ordered; the KV cache in use never exceeds what the capacity allows
    assert float(m.ttft_p50_s) <= float(m.ttft_p90_s) <= float(m.ttft_p99_s)
    assert float(m.batch) <= float(m.kv_capacity_requests)


def test_model_protocol_on_the_serving_stage():
    """jit == eager, vmap == loop, no retrace, finite gradients (exact and relaxed), on the serving stage."""
    from diffsys.testing import check_model

    base = _llama_spec()
    kern = sv.serving_kernels(base)
    specs = jax.tree_util.tree_map(lambda x: jnp.stack([x, x * 1.0]), base)
    specs = eqx.tree_at(lambda s: s.concurrency, specs, jnp.asarray([16.0, 64.0]))
    check_model(lambda s, *, temperature=0.0: sv.serving_loop(s, kern, temperature=temperature), specs,
                metric="ttft_s", wrt=("concurrency", "iter_s", "prefill_s"))


def test_full_model_jit_matches_eager_and_grad_is_finite():
    spec = _llama_spec(concurrency=16)
    eager = sv.serving_model(spec)
    jitted = eqx.filter_jit(sv.serving_model)(spec)
    np.testing.assert_allclose(float(jitted.tpot_s), float(eager.tpot_s), rtol=1e-5)
    g = jax.jit(jax.grad(lambda bw: sv.serving_model(eqx.tree_at(lambda s: s.accel.main_memory.bandwidth_Bps, spec, bw),
                                             temperature=0.1).tpot_s))(spec.accel.main_memory.bandwidth_Bps)
    assert np.isfinite(float(g)) and float(g) < 0


def test_skipped_structural_zeros_change_nothing():
    """A dense model without sliding-window layers skips its MoE and windowed-attention terms at trace time; with
    the model's sizes traced (``vmap`` over the architecture) nothing is skipped. Both give the same metrics, and
    a model with windowed layers still pays for them."""
    spec = _llama_spec(concurrency=16)
    direct = jax.jit(sv.serving_model)(spec)
    arch2 = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), spec.arch)
    traced = jax.jit(jax.vmap(lambda a: sv.serving_model(eqx.tree_at(lambda s: s.arch, spec, a))))(arch2)
    for k in ("tpot_s", "ttft_s", "decode_gemm_s", "decode_attention_s", "decode_comm_s", "prefill_s"):
        np.testing.assert_allclose(np.asarray(getattr(traced, k)), float(getattr(direct, k)), rtol=1e-5, err_msg=k)
    windowed = eqx.tree_at(lambda s: (s.arch.sliding_window, s.arch.sliding_fraction), spec,
                           (jnp.asarray(128.0), jnp.asarray(0.5)))
    assert float(jax.jit(sv.serving_model)(windowed).decode_attention_s) < float(direct.decode_attention_s)


@pytest.mark.parametrize("kw, field", [
    (dict(tp=3), "tp"), (dict(isl=130000, osl=2000), "isl \\+ osl"), (dict(concurrency=0), "concurrency"),
    (dict(ep=3), "ep"),
])
def test_bad_input_names_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        _llama_spec(**kw)


def test_cli_json_and_errors():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, "-m", "diffsys", "serve", "--model", "meta-llama/Llama-3.1-8B", "--precision", "bf16",
           "--isl", "1024", "--osl", "128", "--concurrency", "8", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    for k in ("ttft_ms", "tpot_ms", "tokens_per_s", "tokens_per_s_per_gpu", "requests_per_s", "kv_cache_GiB",
              "batch", "breakdown_ms"):
        assert k in data


@pytest.mark.parametrize("bad, needle", [
    (["--model", "meta-llama/Llama-3.1-8b-instruc"], "did you mean"), (["--tp", "3"], "tp"),
    (["--concurrency", "0"], "concurrency"), (["--isl", "131072"], "context window"),
    (["--model", "deepseek-ai/DeepSeek-R1", "--tp", "8", "--ep", "8"], "does not fit")])
def test_cli_bad_input_is_one_line_error(bad, needle, capsys):
    rc = main(["serve", "--model", "meta-llama/Llama-3.1-8B", *bad])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("diffsys serve: error: ") and "Traceback" not in err
