"""Numerical robustness: 1,000 random float32 design points per family over wide ranges give finite metric values and
finite gradients of the main metric (the same harness as ``benchmarks/bench_robustness.py``, which runs 10⁵)."""

import importlib.util
import pathlib

import pytest

_PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_robustness.py"
_spec = importlib.util.spec_from_file_location("bench_robustness", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

#: families whose model compiles for a minute or more on a loaded 2-core CPU
SLOW = {"power_device", "llm", "chiplet"}
#: known non-finite gradients, tracked until the model is fixed (strict: the test turns red once it passes)
KNOWN: dict[str, str] = {}


def _param(name):
    marks = [pytest.mark.slow] if name in SLOW else []
    if name in KNOWN:
        marks.append(pytest.mark.xfail(reason=KNOWN[name], strict=True))
    return pytest.param(name, marks=marks)


@pytest.mark.parametrize("family", [_param(f) for f in bench.FAMILIES])
def test_random_points_are_finite(family):
    r = bench.check_family(family, 1000, chunk=1000)
    assert r["non_finite_values"] == 0 and r["non_finite_gradients"] == 0, r
