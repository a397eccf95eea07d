"""The collective algorithm of a network dimension as a design variable (``Dimension.algorithm``)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffsys import llm
from diffsys.space import Categorical, DesignSpace
from diffsys.testing import (assert_grad_matches_fd, assert_jit_matches_eager, assert_no_retrace,
                             assert_vmap_matches_loop, float64)
from diffsys.topologies import (ALGORITHMS, DIMENSION_ALGORITHM_CHOICES, VALID_ALGORITHMS, Dimension,
                                hierarchical_collective_time, system_preset)

OPS = ("all_reduce", "reduce_scatter", "all_gather", "all_to_all", "broadcast")
CODE = {name: float(k) for k, name in enumerate(DIMENSION_ALGORITHM_CHOICES)}


def _with(dims, *codes):
    return tuple(d.replace(algorithm=c) for d, c in zip(dims, codes))


def _t(op, dims, size=64e6, **kw):
    return float(hierarchical_collective_time(op, size, dims, **kw).time_s)


@pytest.mark.parametrize("system", ["hgx_h100", "tpu_v4_pod"])
@pytest.mark.parametrize("op", OPS)
def test_auto_code_equals_no_choice(system, op):
    dims = system_preset(system).dims
    assert _t(op, _with(dims, *[0.0] * len(dims))) == pytest.approx(_t(op, dims), rel=1e-12)


@pytest.mark.parametrize("op", OPS)
def test_forced_algorithm_on_one_dimension_is_that_algorithm(op):
    d = Dimension("switch", 16, 50e9, 5e-6, overhead_s=4e-6, in_network=True)
    auto = _t(op, (d,))
    for name in ALGORITHMS:
        forced = _t(op, _with((d,), CODE[name]))
        if name in VALID_ALGORITHMS[op]:
            assert forced == pytest.approx(_t(op, (d,), algorithm=name), rel=1e-12), name
            assert forced >= auto * (1 - 1e-12) or name not in ("ring", "tree", "in_network"), name
        else:  # not defined for the op: NCCL's choice stands
            assert forced == pytest.approx(auto, rel=1e-12), name


def test_algorithm_the_kind_cannot_run_falls_back_to_auto():
    ring = Dimension("ring", 8, 100e9, 2e-6)
    assert _t("all_reduce", _with((ring,), CODE["direct"])) == pytest.approx(_t("all_reduce", (ring,)), rel=1e-12)


def test_forcing_a_non_ring_algorithm_drops_the_flat_ring():
    inner = Dimension("switch", 8, 400e9, 2e-6)
    outer = Dimension("switch", 16, 50e9, 8e-6)
    res = hierarchical_collective_time("all_reduce", 1e9, (inner, outer))
    assert float(res.flat_ring_s) <= float(res.time_s)  # the flat ring wins here
    forced = _t("all_reduce", _with((inner, outer), CODE["ring"], CODE["tree"]), 1e9)
    seq = float(np.sum(hierarchical_collective_time("all_reduce", 1e9, _with((inner, outer), CODE["ring"],
                                                                               CODE["tree"])).per_dimension_s))
    assert forced == pytest.approx(seq, rel=1e-12) and forced > float(res.time_s)
    # ring everywhere keeps the flat ring among the candidates
    assert _t("all_reduce", _with((inner, outer), CODE["ring"], CODE["ring"]), 1e9) <= float(res.flat_ring_s) * (
        1 + 1e-12)


def test_a_forced_choice_changes_the_nccl_modelled_system():
    dims = system_preset("hgx_h100", nodes=4).dims
    auto = _t("all_reduce", dims, 256e6)
    assert _t("all_reduce", _with(dims, CODE["tree"], CODE["tree"]), 256e6) > 1.2 * auto
    assert _t("all_reduce", _with(dims, CODE["ring"], CODE["ring"]), 256e6) == pytest.approx(auto, rel=1e-9)


def test_code_is_checked():
    with pytest.raises(ValueError, match="Dimension.algorithm"):
        Dimension("switch", 8, 1e11, algorithm=7)
    with pytest.raises(ValueError, match="Dimension.algorithm"):
        Dimension("switch", 8, 1e11, algorithm=-0.5)


def test_relaxed_choice_is_jit_vmap_grad_clean():
    dims = system_preset("hgx_h100", nodes=4).dims

    def time(code, temperature=0.1):
        return hierarchical_collective_time("all_reduce", 256e6, _with(dims, code, code),
                                            temperature=temperature).time_s

    codes = jnp.array([0.0, 0.6, 1.3, 2.5, 3.9, 6.0])
    assert_jit_matches_eager(time, codes[2])
    assert_vmap_matches_loop(time, codes)
    assert_no_retrace(time, (codes[1],), (codes[3],))
    with float64():
        scalar = jax.jit(lambda x: time(x[0]))  # one compilation for the three points' finite differences
        for c in (0.4, 1.3, 2.7):
            g = assert_grad_matches_fd(scalar, jnp.array([c]), rtol=1e-3)
            assert np.all(np.isfinite(g))
    # exact mode rounds the code: 1.3 is ring, 1.6 is tree
    assert float(time(1.3, 0.0)) == pytest.approx(float(time(1.0, 0.0)), rel=1e-12)
    assert float(time(1.6, 0.0)) == pytest.approx(float(time(2.0, 0.0)), rel=1e-12)


def test_categorical_vocabulary_encodes_names_as_the_model_reads_them():
    dom = Categorical(("tree", "auto"), vocabulary=DIMENSION_ALGORITHM_CHOICES)
    assert dom.options == ("auto", "tree") and dom.values == (0.0, 2.0)
    assert dom.label(2.0) == "tree"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        Categorical(("auto", "mesh"), vocabulary=DIMENSION_ALGORITHM_CHOICES)


def test_space_sets_an_unset_optional_leaf():
    design = llm.default_training_design()
    assert design.cluster.network.dims[1].algorithm is None
    space = DesignSpace({"cluster.network.dims.1.algorithm":
                         Categorical(("auto", "tree"), vocabulary=DIMENSION_ALGORITHM_CHOICES)}, base=design)
    spec = space.apply({"cluster.network.dims.1.algorithm": jnp.asarray(2.0)})
    assert float(spec.cluster.network.dims[1].algorithm) == 2.0
    assert spec.cluster.network.dims[0].algorithm is None


def test_training_step_reads_the_scale_out_algorithm():
    design = llm.default_training_design()
    par = eqx.tree_at(lambda p: p.dp_overlap, design.par, 0.0)
    cluster = design.cluster
    net = cluster.network
    step = jax.jit(llm.training_step)

    def with_code(code):
        dims = (net.dims[0],) + (net.dims[1].replace(algorithm=code),)
        return llm.cluster_preset("hgx_h100", 1024, network=type(net)(net.name, dims, net.accelerator,
                                                                       net.description))

    auto = step(design.model, cluster, par)
    same = step(design.model, with_code(0.0), par)
    tree = step(design.model, with_code(CODE["tree"]), par)
    np.testing.assert_allclose(float(same.time_s), float(auto.time_s), rtol=1e-6)
    assert float(tree.dp_comm_s) != pytest.approx(float(auto.dp_comm_s), rel=1e-3)
