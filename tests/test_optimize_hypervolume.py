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
