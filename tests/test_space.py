import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffsys.hardware as hw
from diffsys.space import (
    Categorical, Continuous, DesignSpace, DivisorOf, Integer, PowerOfTwo, get_path, load_space, product_equals,
    space_from_dict,
)
from diffsys.testing import TraceCounter

DOMAINS = [
    Continuous(1.0, 5.0, grid=5),
    Continuous(1e9, 1e12, log=True, grid=7),
    Integer(2, 20, step=3),
    PowerOfTwo(1, 64),
    DivisorOf(24),
    Categorical(["ring", "tree", "direct"]),
    Categorical([8, 16, 4]),
]


@pytest.mark.parametrize("dom", DOMAINS, ids=lambda d: type(d).__name__)
def test_domain_roundtrips(dom):
    key = jax.random.key(0)
    x = dom.sample(key, (200,))
    assert np.all(np.asarray(dom.contains(x)))
    # sampled lattice points are their own projection
    if not isinstance(dom, Continuous):
        np.testing.assert_array_equal(dom.discretize(x), x)
        np.testing.assert_array_equal(dom.relax(x, 0.0), x)
    # unconstrained bijection
    u = dom.to_unconstrained(x)
    np.testing.assert_allclose(dom.from_unconstrained(u), x, rtol=2e-4, atol=1e-5 * (dom.upper - dom.lower))
    # grid values are all distinct, sorted and inside the hull
    g = np.asarray(dom.grid_value(jnp.arange(dom.size)))
    assert np.all(np.diff(g) > 0) and g[0] == pytest.approx(dom.lower) and g[-1] == pytest.approx(dom.upper)


def test_lattice_values():
    assert PowerOfTwo(4, 64).values == (4, 8, 16, 32, 64)
    assert DivisorOf(12).values == (1, 2, 3, 4, 6, 12)
    assert Integer(0, 10, step=5).values == (0, 5, 10)
    assert Categorical([16, 8]).values == (8, 16)
    assert Categorical(["a", "b"]).label(1.0) == "b"
    # log-coordinate nearest value: 3 is closer to 4 than to 2 in log2 (1.58 vs 2)
    assert float(PowerOfTwo(1, 64).discretize(3.0)) == 4.0
    assert float(DivisorOf(24).discretize(5.0)) == 6.0


def test_relax_converges_to_discretize():
    dom = DivisorOf(64)
    x = jnp.asarray([1.3, 2.9, 5.0, 10.0, 40.0])
    exact = np.asarray(dom.discretize(x))
    errs = [np.max(np.abs(np.asarray(dom.relax(x, t)) - exact)) for t in (0.1, 0.03, 0.01, 0.003)]
    assert all(b <= a + 1e-6 for a, b in zip(errs, errs[1:])) and errs[-1] < 1e-3
    g = jax.grad(lambda v: jnp.sum(dom.relax(v, 0.3)))(x)
    assert np.all(np.isfinite(np.asarray(g)))
    gi = jax.grad(lambda v: jnp.sum(Integer(0, 9).relax(v, 0.2)))(x / 5)
    assert np.all(np.isfinite(np.asarray(gi)))


def test_bad_domains_have_clear_errors():
    with pytest.raises(ValueError, match="lo > 0"):
        Continuous(0.0, 1.0, log=True)
    with pytest.raises(ValueError, match="power of two"):
        PowerOfTwo(3, 16)
    with pytest.raises(ValueError, match="no divisor"):
        DivisorOf(7, lo=2, hi=6)
    with pytest.raises(ValueError, match="distinct"):
        Categorical(["a", "a"])


def small_space():
    return DesignSpace({"a": Integer(0, 2), "b": Categorical(["x", "y"]), "c": Continuous(0.0, 1.0, grid=3)})


def test_grid_enumerates_cartesian_product_in_order():
    sp = small_space()
    assert sp.size == 18
    pts, ok = sp.grid_chunk(sp.digits(0), 20)
    assert np.asarray(ok).tolist() == [True] * 18 + [False] * 2
    got = list(zip(*(np.asarray(pts[n])[:18].tolist() for n in sp.names)))
    want = list(itertools.product([0, 1, 2], [0, 1], [0.0, 0.5, 1.0]))
    assert got == want
    # decoding from any starting index agrees with decoding from zero (carry propagation)
    for start in (1, 5, 7, 13):
        p2, _ = sp.grid_chunk(sp.digits(start), 4)
        for n in sp.names:
            np.testing.assert_array_equal(np.asarray(p2[n]), np.asarray(pts[n])[start:start + 4])


def test_huge_space_decodes_beyond_int32():
    sp = DesignSpace({f"p{i}": Integer(0, 999) for i in range(5)})  # 1e15 points
    start = 10**15 - 3
    pts, ok = jax.jit(lambda d: sp.grid_chunk(d, 5))(jnp.asarray(sp.digits(start)))
    assert np.asarray(ok).tolist() == [True, True, True, False, False]
    assert [float(pts["p4"][i]) for i in range(3)] == [997.0, 998.0, 999.0]
    assert all(float(pts[f"p{i}"][0]) == 999.0 for i in range(4))


def test_grid_chunk_no_retrace():
    sp = small_space()
    fn = TraceCounter(lambda d: sp.grid_chunk(d, 8))
    jf = jax.jit(fn)
    jf(jnp.asarray(sp.digits(0)))
    jf(jnp.asarray(sp.digits(8)))
    assert fn.count == 1


def test_apply_paths_into_accelerator_and_vmap():
    acc = hw.h100_sxm()
    sp = DesignSpace({"memory.hbm.bandwidth_Bps": Continuous(1e12, 4e12, grid=4), "matrix_flops.bf16":
                      Continuous(1e14, 1e15, grid=2), "memory.2.capacity_B": Continuous(1e10, 2e10, grid=2)},
                     base=acc)
    pts, _ = sp.grid_chunk(sp.digits(0), sp.size)
    specs = jax.vmap(sp.apply)(pts)
    np.testing.assert_allclose(specs.main_memory.bandwidth_Bps, np.repeat([1e12, 2e12, 3e12, 4e12], 4), rtol=1e-6)
    np.testing.assert_allclose(get_path(specs, "matrix_flops.bf16")[:4], [1e14, 1e14, 1e15, 1e15], rtol=1e-6)
    # untouched leaves keep their values
    assert float(sp.apply(sp.grid_point(0)).matrix_flops["fp8"]) == float(acc.matrix_flops["fp8"])
    with pytest.raises(KeyError, match="nope"):
        DesignSpace({"memory.nope.bandwidth_Bps": Continuous(1, 2)}, base=acc)


def test_constraints_product_equals_and_feasibility():
    sp = DesignSpace({"tp": DivisorOf(64), "pp": DivisorOf(64), "dp": DivisorOf(64)},
                     constraints=[product_equals(["tp", "pp", "dp"], 64)])
    pts, ok = sp.grid_chunk(sp.digits(0), sp.size)
    feas = np.asarray(sp.feasible(pts))
    prods = np.asarray(pts["tp"]) * np.asarray(pts["pp"]) * np.asarray(pts["dp"])
    np.testing.assert_array_equal(feas, prods == 64)
    assert feas.sum() == 28  # ordered factorizations of 2^6 into 3 factors: C(8, 2)
    v = np.asarray(sp.violations(pts))[:, 0]
    assert np.all(v[feas] < 1e-5) and np.all(v[~feas] > 0.1)
    g = jax.grad(lambda x: sp.violations(sp.from_vector(x))[0])(jnp.asarray([3.0, 5.0, 7.0]))
    assert np.all(np.isfinite(np.asarray(g)))


def test_unconstrained_roundtrip_and_vectors():
    sp = small_space()
    p = sp.sample(jax.random.key(3), 10)
    back = sp.from_unconstrained(sp.to_unconstrained(p))
    for n in sp.names:
        np.testing.assert_allclose(back[n], p[n], atol=1e-4)
    v = sp.to_vector(p)
    assert v.shape == (10, 3)
    np.testing.assert_array_equal(sp.to_vector(sp.from_vector(v)), v)
    assert sp.label(sp.grid_point(17)) == {"a": 2, "b": "y", "c": 1.0}


def test_space_from_file(tmp_path):
    spec = {"params": {"tp": {"kind": "divisor", "n": 8}, "bw": {"kind": "continuous", "lo": 1, "hi": 2,
                                                                "log": True, "grid": 3},
                       "alg": {"kind": "categorical", "options": ["ring", "tree"]}},
            "constraints": [{"product": ["tp"], "equals": 8}]}
    path = tmp_path / "space.json"
    path.write_text(json.dumps(spec))
    sp = load_space(path)
    assert sp.size == 4 * 3 * 2 and sp.names == ("tp", "bw", "alg")
    with pytest.raises(ValueError, match="kind"):
        space_from_dict({"params": {"x": {"kind": "bogus"}}})
    with pytest.raises(ValueError, match="unknown key"):
        space_from_dict({"params": {"x": {"kind": "integer", "lo": 0, "hi": 3, "size": 2}}})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="malformed"):
        load_space(bad)


@pytest.mark.parametrize("dom", DOMAINS, ids=lambda d: type(d).__name__)
def test_reparametrization_inside_jit(dom):
    x = dom.sample(jax.random.key(1), (16,))
    u = jax.jit(dom.to_unconstrained)(x)
    np.testing.assert_allclose(jax.jit(dom.from_unconstrained)(u), dom.from_unconstrained(dom.to_unconstrained(x)),
                               rtol=1e-5)
    assert np.all(np.isfinite(np.asarray(jax.jit(jax.vmap(jax.grad(dom.from_unconstrained)))(u))))
