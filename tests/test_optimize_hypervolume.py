"""Hypervolume: exact cases, Monte Carlo agreement in 2-4 objectives, invariants."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from diffsys.optimize._hypervolume import hypervolume, hypervolume_contributions, reference_point


def test_exact_small_cases():
    assert hypervolume([[1.0, 1.0]], [3.0, 2.0]) == pytest.approx(2.0)
    # two overlapping boxes: 2*1 + 1*2 - 1*1
    assert hypervolume([[1.0, 2.0], [2.0, 1.0]], [3.0, 3.0]) == pytest.approx(3.0)
    assert hypervolume([[1.0, 1.0, 1.0]], [2.0, 3.0, 4.0]) == pytest.approx(6.0)
    assert hypervolume([[5.0, 5.0]], [3.0, 3.0]) == 0.0  # beyond the reference


@pytest.mark.parametrize("m", [2, 3, 4])
def test_matches_monte_carlo(m):
    rng = np.random.default_rng(m)
    pts = rng.uniform(0, 1, size=(12, m))
    ref = np.ones(m) * 1.1
    samples = rng.uniform(0, 1.1, size=(200_000, m))
    dominated = np.zeros(len(samples), bool)
    for p in pts:
        dominated |= np.all(samples >= p, axis=1)
    mc = dominated.mean() * 1.1**m
    assert hypervolume(pts, ref) == pytest.approx(mc, rel=0.02)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=10))
def test_invariants(rows):
    pts = np.array(rows)
    ref = np.array([1.5, 1.5, 1.5])
    hv = hypervolume(pts, ref)
    assert 0 <= hv <= 1.5**3 + 1e-12
    # adding a dominated point changes nothing; adding any point never lowers it
    worse = pts[:1] + 0.1
    assert hypervolume(np.vstack([pts, worse]), ref) == pytest.approx(hv)
    assert hypervolume(np.vstack([pts, [[0.0, 0.0, 0.0]]]), ref) >= hv - 1e-12
    contrib = hypervolume_contributions(pts, ref)
    assert np.all(contrib >= -1e-9) and np.sum(contrib) <= hv + 1e-9


def test_errors_and_reference():
    with pytest.raises(ValueError, match="reference"):
        hypervolume([[1.0, 2.0]], [1.0])
    ref = reference_point([[1.0, 4.0], [3.0, 2.0]])
    assert np.all(ref > [3.0, 4.0])


def _front(rng, n, m, dominated=0):
    """``n`` points on the unit sphere's positive orthant (mutually non-dominated) plus ``dominated`` points behind
    them and one duplicate."""
    x = rng.uniform(0.05, 1, size=(n, m))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    extra = x[rng.integers(0, n, dominated)] + rng.uniform(0.01, 0.1, size=(dominated, m))
    return np.vstack([x, extra, x[:1]])


@pytest.mark.parametrize("m", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_moocore_matches_python_reference(m, seed):
    pytest.importorskip("moocore")
    rng = np.random.default_rng(seed)
    pts = _front(rng, 24, m, dominated=6)
    pts = np.vstack([pts, np.full((1, m), np.nan), np.full((1, m), 2.0)])  # a non-finite row, one beyond the box
    ref = np.full(m, 1.2)
    hv_c, hv_py = hypervolume(pts, ref, backend="moocore"), hypervolume(pts, ref, backend="python")
    assert hv_c == pytest.approx(hv_py, rel=1e-12)
    c_c = hypervolume_contributions(pts, ref, backend="moocore")
    c_py = hypervolume_contributions(pts, ref, backend="python")
    np.testing.assert_allclose(c_c, c_py, rtol=1e-9, atol=1e-12)
    assert c_c[-1] == c_c[-2] == c_c[-3] == 0.0  # beyond the box, non-finite, duplicate
    assert hypervolume(pts, ref) == hv_c  # "auto" picks moocore when installed


def test_python_fallback_logs_once(monkeypatch, caplog):
    import builtins
    import logging

    from diffsys.optimize import _hypervolume as H

    real_import = builtins.__import__

    def no_moocore(name, *args, **kwargs):
        if name == "moocore":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_moocore)
    monkeypatch.setattr(H, "_FALLBACK_LOGGED", False)
    with caplog.at_level(logging.INFO, logger=H.__name__):
        assert hypervolume([[1.0, 2.0], [2.0, 1.0]], [3.0, 3.0]) == pytest.approx(3.0)
        hypervolume([[1.0, 1.0]], [2.0, 2.0])
    assert sum("moocore is not installed" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(ValueError, match="moocore"):
        hypervolume([[1.0, 1.0]], [2.0, 2.0], backend="moocore")
    with pytest.raises(ValueError, match="backend"):
        hypervolume([[1.0, 1.0]], [2.0, 2.0], backend="fast")
