import os
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffsys import Metrics
from diffsys.optimize import pareto_candidates, pareto_front, pareto_mask, sweep
from diffsys.optimize._sweep import _Engine
from diffsys.space import Continuous, DesignSpace, Integer


class AB(eqx.Module):
    a: jax.Array = eqx.field(converter=jnp.asarray, default=0.0)
    b: jax.Array = eqx.field(converter=jnp.asarray, default=0.0)


class TE(Metrics):
    time_s: jax.Array
    energy_J: jax.Array


def space():
    return DesignSpace({"a": Continuous(0.0, 1.0, grid=50), "b": Integer(0, 59)}, base=AB())


def model(d: AB, *, temperature=0.0) -> TE:
    t = (d.a - 0.3) ** 2 + (d.b - 40.0) ** 2 / 1e4 + 0.01 * jnp.sin(7 * d.a * d.b)
    e = (d.a - 0.8) ** 2 + d.b / 100.0
    return TE(t, e, feasible=(d.b % 7) != 3)


def brute_force():
    sp = space()
    pts, _ = sp.grid_chunk(sp.digits(0), sp.size)
    m = jax.vmap(lambda p: model(sp.apply(p)))(pts)
    t = np.where(np.asarray(m.feasible), np.asarray(m.time_s), np.inf)
    return pts, m, t


def test_top_k_matches_brute_force_across_chunks():
    pts, m, t = brute_force()
    res = sweep(model, space(), "time_s", top_k=7, chunk_size=256, progress=False)  # 12 chunks, last one partial
    order = np.argsort(t, kind="stable")[:7]
    np.testing.assert_allclose(res.top_objective, t[order], rtol=1e-6)
    np.testing.assert_allclose(res.top_points["a"], np.asarray(pts["a"])[order], rtol=1e-6)
    assert res.n_evaluated == 3000
    assert res.n_feasible == int(np.isfinite(t).sum())
    assert all(np.asarray(res.top_metrics.feasible))  # infeasible points never enter the top-k
    assert res.labels()[0]["time_s"] == pytest.approx(float(t[order[0]]))
    np.testing.assert_array_equal(res.top_index, order)  # global grid positions of the kept points


def test_top_k_metrics_compiled_beside_the_chunks():
    """The top-k metrics program compiles on a background thread while the chunks run; the result is the model's
    metrics at the kept points (the same as evaluating them directly), and a batch of another shape still works."""
    pts, m, t = brute_force()
    res = sweep(model, space(), "energy_J", top_k=5, chunk_size=512, progress=False)
    direct = jax.vmap(lambda p: model(space().apply(p)))({k: jnp.asarray(v) for k, v in res.top_points.items()})
    np.testing.assert_allclose(np.asarray(res.top_metrics.time_s), np.asarray(direct.time_s), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(res.top_metrics.energy_J), res.top_objective, rtol=1e-6)
    engine = _Engine(model, space(), "time_s", None, 3, None, 8, None, 256, None, None, None)
    engine.prepare_metrics({"a": jnp.zeros(3), "b": jnp.zeros(3)})
    other = engine.evaluate_points({"a": jnp.asarray([0.3, 0.5]), "b": jnp.asarray([40.0, 2.0])})
    assert engine._metrics_compiled is not None and np.asarray(other.time_s).shape == (2,)
    assert float(other.time_s[0]) == pytest.approx(float(model(AB(0.3, 40.0)).time_s), rel=1e-6)


def test_pareto_front_matches_exhaustive_dominance():
    pts, m, t = brute_force()
    vals = np.stack([t, np.where(np.isfinite(t), np.asarray(m.energy_J), np.inf)], -1)
    exact = np.asarray(pareto_mask(jnp.asarray(vals)))
    res = sweep(model, space(), "time_s", pareto=("time_s", "energy_J"), pareto_capacity=512, chunk_size=512,
                progress=False)
    got = {tuple(np.round(r, 6)) for r in res.pareto_objectives}
    want = {tuple(np.round(r, 6)) for r in vals[exact]}
    assert got == want


def test_pareto_helpers():
    v = jnp.asarray([[1.0, 5.0], [2.0, 3.0], [3.0, 4.0], [4.0, 1.0], [2.0, 3.0], [jnp.inf, 0.0]])
    np.testing.assert_array_equal(pareto_mask(v), [True, True, False, True, False, False])
    idx, ok = pareto_front(v, 8)
    assert sorted(np.asarray(idx)[np.asarray(ok)].tolist()) == [0, 1, 3]
    # capacity smaller than the front: thinned evenly, ends kept
    w = jnp.stack([jnp.arange(10.0), 10.0 - jnp.arange(10.0)], -1)
    idx, ok = pareto_front(w, 4)
    assert np.asarray(ok).all() and np.asarray(idx)[[0, -1]].tolist() == [0, 9]
    # three objectives: every returned point is non-dominated in the full set
    x = jax.random.uniform(jax.random.key(1), (300, 3))
    full = np.asarray(pareto_mask(x))
    idx, ok = pareto_front(x, 64)
    assert np.all(full[np.asarray(idx)[np.asarray(ok)]])
    # candidates of a large set: the front of the candidates is part of the true front, and in 2-D (boxes finer
    # than the front's spacing) it is all of it
    mask = jax.jit(pareto_mask)  # fused: eagerly, each pairwise comparison of 4000 points is a 16M-element array
    for m in (2, 3):
        y = jax.random.uniform(jax.random.key(m), (4000, m))
        truth = set(np.flatnonzero(np.asarray(mask(y))).tolist())
        cand = np.asarray(jax.jit(pareto_candidates)(y))
        cand = cand[cand < len(y)]
        sub = cand[np.asarray(pareto_mask(y[cand]))]
        assert set(sub.tolist()) <= truth
        if m == 2:
            assert set(sub.tolist()) == truth


def test_histograms_and_random_sampling_determinism():
    res = sweep(model, space(), "time_s", n_samples=2000, key=jax.random.key(7), chunk_size=512, progress=False,
                histograms={"time_s": (0.0, 1.0, 20)})
    h = res.histograms["time_s"]
    assert h.shape == (22,) and int(h.sum()) == res.n_feasible
    res2 = sweep(model, space(), "time_s", n_samples=2000, key=jax.random.key(7), chunk_size=512, progress=False)
    np.testing.assert_array_equal(res.top_objective, res2.top_objective)
    assert res.n_evaluated == 2000


def test_second_chunk_does_not_retrace():
    eng = _Engine(model, space(), "time_s", "feasible", 5, ("time_s", "energy_J"), 64, None, 128, None, None, None)
    state = eng.init_state()
    state = eng.step(state, 0)
    first = eng.trace_count  # the decode, evaluate and reduce stages, once each
    for c in range(1, 4):
        state = eng.step(state, c)
    jax.block_until_ready(state)
    assert first == 3 and eng.trace_count == first


def test_checkpoint_resume_after_interruption_gives_same_result(tmp_path):
    ck = str(tmp_path / "sweep.ckpt.npz")
    full = sweep(model, space(), "time_s", top_k=5, pareto=("time_s", "energy_J"), chunk_size=128,
                 progress=False)

    class Stop(Exception):
        pass

    def stop_after_5(done, total):
        if done == 5:
            raise Stop

    with pytest.raises(Stop):
        sweep(model, space(), "time_s", top_k=5, pareto=("time_s", "energy_J"), chunk_size=128, progress=False,
              checkpoint=ck, checkpoint_every=2, callback=stop_after_5)
    assert os.path.exists(ck)
    resumed = sweep(model, space(), "time_s", top_k=5, pareto=("time_s", "energy_J"), chunk_size=128,
                    progress=False, checkpoint=ck, resume=True)
    np.testing.assert_array_equal(resumed.top_objective, full.top_objective)
    np.testing.assert_array_equal(resumed.top_points["b"], full.top_points["b"])
    np.testing.assert_array_equal(np.sort(resumed.pareto_objectives, 0), np.sort(full.pareto_objectives, 0))
    assert resumed.n_feasible == full.n_feasible
    # a checkpoint of another space is refused
    other = DesignSpace({"a": Continuous(0.0, 1.0, grid=49), "b": Integer(0, 59)}, base=AB())
    with pytest.raises(ValueError, match="fingerprint"):
        sweep(model, other, "time_s", top_k=5, pareto=("time_s", "energy_J"), chunk_size=128, progress=False,
              checkpoint=ck, resume=True)


def test_bad_arguments():
    with pytest.raises(ValueError, match="objective 'nope' is not a metric of TE; available metrics: feasible, "
                                         "violation, time_s, energy_J"):
        sweep(model, space(), "nope", progress=False)
    with pytest.raises(ValueError, match="key"):
        sweep(model, space(), "time_s", n_samples=10, progress=False)
    with pytest.raises(ValueError, match="2 or 3"):
        sweep(model, space(), "time_s", pareto=("time_s",), progress=False)


def test_unknown_metric_names_raise_before_compiling():
    """A misspelled ``feasible=`` used to treat every point as feasible; every name is now checked."""
    with pytest.raises(ValueError, match="feasible 'feasable' is not a metric of TE"):
        sweep(model, space(), "time_s", feasible="feasable", progress=False)
    with pytest.raises(ValueError, match="pareto objective 'energy' is not a metric of TE.*energy_J"):
        sweep(model, space(), "time_s", pareto=("time_s", "energy"), progress=False)
    with pytest.raises(ValueError, match="histogram metric 'power_W' is not a metric"):
        sweep(model, space(), "time_s", histograms={"power_W": (0.0, 1.0, 4)}, progress=False)


def test_models_must_follow_the_protocol():
    with pytest.raises(TypeError, match="returned dict; models must return a diffsys.Metrics"):
        sweep(lambda d, *, temperature=0.0: {"time_s": d.a}, space(), progress=False)
    with pytest.raises(TypeError, match="does not follow the model protocol"):
        sweep(lambda d: TE(d.a, d.b), space(), progress=False)


def test_nan_points_are_flagged_not_fatal():
    def nan_model(d, *, temperature=0.0):
        return TE(jnp.where(d.b > 50, jnp.nan, d.a + d.b), d.a)

    res = sweep(nan_model, space(), "time_s", feasible=None, chunk_size=512, progress=False)
    assert res.n_feasible == 50 * 51 and np.isfinite(res.top_objective).all()


def test_sharded_over_two_forced_cpu_devices():
    code = textwrap.dedent("""
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        import jax, jax.numpy as jnp, numpy as np
        from diffsys import Metrics
        from diffsys.optimize import sweep
        from diffsys.space import Continuous, DesignSpace, Integer
        assert len(jax.devices()) == 2
        class T(Metrics):
            time_s: jax.Array
        sp = DesignSpace({"a": Continuous(0.0, 1.0, grid=50), "b": Integer(0, 59)})
        f = lambda d, *, temperature=0.0: T((d["a"] - 0.3) ** 2 + (d["b"] - 40.0) ** 2 / 1e4)
        r2 = sweep(f, sp, "time_s", top_k=4, chunk_size=256, progress=False)
        r1 = sweep(f, sp, "time_s", top_k=4, chunk_size=256, progress=False, devices=jax.devices()[:1])
        np.testing.assert_allclose(r2.top_objective, r1.top_objective)
        print("OK", r2.n_evaluated)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "OK 3000" in out.stdout


def test_repeated_sweep_reuses_the_compiled_step():
    sp = space()
    sweep(model, sp, "time_s", chunk_size=1024, progress=False)
    sweep(model, sp, "time_s", chunk_size=1024, progress=False)
    from diffsys.optimize._sweep import _engine_for

    eng = _engine_for(model, sp, "time_s", "feasible", 10, None, 256, None, 1024, None, None, None)
    assert eng.trace_count == 3
