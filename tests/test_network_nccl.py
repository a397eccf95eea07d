"""NCCL-faithful collective model: held-out accuracy on measured nccl-tests, mutations, properties, transformations.

Accuracy tests read ``validation/collectives/nccl_intranode.csv`` (skipped when absent). The shipped constants
(``diffsys/topologies/nccl_constants.json``) were fitted on the rows with an even log2(size); these tests report on
the odd ones (held out), per (system, op, GPUs) group, as ``docs/network.md`` tabulates.
"""

import csv

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffsys._fit import error_stats
from diffsys.testing import (
    TraceCounter,
    assert_finite_grads,
    assert_grad_matches_fd,
    assert_jit_matches_eager,
    assert_vmap_matches_loop,
    float64,
)
from diffsys.topologies import (
    NcclParams,
    chosen_algorithm,
    collective_time,
    nccl_fabrics,
    nccl_params,
    nccl_provenance,
    system_preset,
)

OPS = {"all_reduce": "all_reduce", "all_gather": "all_gather", "reduce_scatter": "reduce_scatter",
       "alltoall": "all_to_all"}
PRESET = {"a100_sxm": "hgx_a100", "h100_sxm": "hgx_h100"}
LARGE = 16 * 2**20
#: achieved held-out bounds per (system, op, GPUs) group (docs/network.md; targets 15 % and 10 %)
BOUND_ALL, BOUND_LARGE = 0.12, 0.09


def _dim_kwargs(preset, **changes):
    d = system_preset(preset).dims[0]
    kw = {"bandwidth_Bps": d.bandwidth_Bps, "latency_s": d.latency_s, "nccl": d.nccl, "efficiency": d.efficiency,
          "local_Bps": d.local_Bps, "in_network_Bps": d.in_network_Bps if d.in_network else None}
    kw.update(changes)
    return kw


def _predict(preset, op, dtype, S, n, **changes):
    kw = _dim_kwargs(preset, **changes)
    bw, lat = kw.pop("bandwidth_Bps"), kw.pop("latency_s")
    return np.asarray(collective_time(op, S, n, bw, lat, dtype=dtype, **kw).time_s)


@pytest.fixture(scope="module")
def rows(validation_dir):
    path = validation_dir / "collectives" / "nccl_intranode.csv"
    if not path.exists():
        pytest.skip(f"no nccl-tests data at {path}")
    with open(path) as f:
        data = list(csv.DictReader(f))
    out = {}
    for r in data:
        key = (r["system"], OPS[r["op"]], r["dtype"])
        out.setdefault(key, []).append((float(r["num_gpus"]), float(r["message_bytes"]), float(r["latency_us"])))
    return {k: np.array(v).T for k, v in out.items()}


def _group_errors(rows, **changes):
    """{(system, op, GPUs): (MAPE held out, MAPE held out >= 16 MiB)}."""
    acc = {}
    for (system, op, dtype), (n, S, T_us) in rows.items():
        held = np.round(np.log2(S)).astype(int) % 2 == 1
        pred = _predict(PRESET[system], op, dtype, S, n, **changes) * 1e6
        for g in (2.0, 4.0, 8.0):
            m = held & (n == g)
            a = acc.setdefault((system, op, int(g)), [[], [], [], []])
            a[0].append(pred[m]), a[1].append(T_us[m])
            a[2].append(pred[m & (S >= LARGE)]), a[3].append(T_us[m & (S >= LARGE)])
    return {k: (error_stats(np.concatenate(v[0]), np.concatenate(v[1]))["mape"],
                error_stats(np.concatenate(v[2]), np.concatenate(v[3]))["mape"]) for k, v in acc.items()}


def test_held_out_accuracy_per_group(rows):
    errs = _group_errors(rows)
    assert len(errs) == 24  # 2 systems x 4 ops x 3 GPU counts
    for key, (mape, mape_large) in sorted(errs.items()):
        print(key, f"held-out MAPE {100 * mape:.1f}%  >=16MiB {100 * mape_large:.1f}%")
        assert mape < BOUND_ALL, key
        assert mape_large < BOUND_LARGE, key


def test_mutations_break_the_accuracy(rows):
    d = system_preset("hgx_h100").dims[0]
    # halving the NVLink bandwidth: the large-size bound fails for most groups
    half = _group_errors(rows, efficiency=0.5 * _dim_kwargs("hgx_h100")["efficiency"])
    assert sum(v[1] > BOUND_LARGE for v in half.values()) >= 16
    # dropping the latency floor (base and per-step latencies): the all-size bound fails everywhere
    floors = {}
    for preset in ("hgx_a100", "hgx_h100"):
        p = system_preset(preset).dims[0].nccl
        floors[preset] = NcclParams(base_s=0 * p.base_s, hop_s=p.hop_s, bw_fraction=p.bw_fraction,
                                    pipeline_s=0.0, p2p_base_s=0 * p.p2p_base_s, p2p_hop_s=0.0,
                                    p2p_ll_fraction=p.p2p_ll_fraction, nvls_base_s=0.0)
    acc = {}
    for (system, op, dtype), (n, S, T_us) in rows.items():
        pred = _predict(PRESET[system], op, dtype, S, n, nccl=floors[PRESET[system]], latency_s=1e-12) * 1e6
        acc.setdefault((system, op), []).append(error_stats(pred, T_us)["mape"])
    assert all(np.mean(v) > 0.3 for v in acc.values())
    assert d.nccl is not None


def test_presets_and_aliases():
    for name in ("hgx_a100", "dgx_a100", "hgx_h100", "dgx_h100", "hgx_h200", "dgx_h200", "hgx_b200", "dgx_b200"):
        s = system_preset(name)
        assert s.dims[0].nccl is not None and float(s.dims[0].size) == 8
    S = np.array([512.0, 2**29])
    h100 = np.asarray(system_preset("dgx_h100").collective_time("all_reduce", S).time_s)
    h200 = np.asarray(system_preset("dgx_h200").collective_time("all_reduce", S).time_s)
    b200 = np.asarray(system_preset("dgx_b200").collective_time("all_reduce", S).time_s)
    np.testing.assert_allclose(h100, h200)
    assert b200[1] < 0.7 * h100[1]  # NVLink5 doubles the per-GPU bandwidth
    # the 8-GPU H100 all-reduce latency floor measured by nccl-tests is 15.6 us
    assert 13e-6 < h100[0] < 19e-6
    assert set(nccl_fabrics()) >= {"a100_nvswitch", "h100_nvswitch"}
    assert "odd" in nccl_provenance()["split"]


def test_nccl_choices():
    h = system_preset("hgx_h100")
    big = h.collective_time("all_reduce", 2.0**29)
    # NVLS at 512 MiB on 8 H100 in half precision, a ring for int8 (no multimem reduction of 8-bit types)
    from diffsys.topologies import collective_time as ct

    kw = _dim_kwargs("hgx_h100")
    bw, lat = kw.pop("bandwidth_Bps"), kw.pop("latency_s")
    assert chosen_algorithm(ct("all_reduce", 2.0**29, 8, bw, lat, dtype="half", **kw)) == ("in_network", "simple")
    assert chosen_algorithm(ct("all_reduce", 2.0**29, 8, bw, lat, dtype="int8", **kw))[0] == "ring"
    assert chosen_algorithm(ct("all_reduce", 1024.0, 8, bw, lat, **kw)) == ("ring", "ll")
    # all-to-all: NCCL's peer-to-peer rule, LL up to 16 KiB per peer
    assert chosen_algorithm(ct("all_to_all", 8 * 16384.0, 8, bw, lat, **kw)) == ("direct", "ll")
    assert chosen_algorithm(ct("all_to_all", 8 * 16384.0 + 8, 8, bw, lat, **kw)) == ("direct", "simple")
    assert float(big.busbw_Bps) > 400e9
    with pytest.raises(ValueError, match="algorithm for all_gather"):
        ct("all_gather", 1e6, 8, bw, lat, algorithm="halving_doubling", **kw)
    with pytest.raises(TypeError, match="NcclParams"):
        ct("all_gather", 1e6, 8, bw, lat, nccl={"base_s": 1})
    with pytest.raises(ValueError, match="shape"):
        NcclParams(base_s=[1e-6, 2e-6], hop_s=[1e-6] * 3, bw_fraction=[1.0] * 3, pipeline_s=0.0,
                   p2p_base_s=[1e-6] * 2, p2p_hop_s=0.0, p2p_ll_fraction=0.2)


RING_OPS = ("all_reduce", "all_gather", "reduce_scatter")
ANY_OPS = RING_OPS + ("all_to_all", "broadcast", "reduce", "send_recv")


@settings(max_examples=25, deadline=None)
@given(op=st.sampled_from(ANY_OPS), log_size=st.floats(9, 30), n=st.integers(2, 8),
       bw=st.floats(50e9, 900e9), factor=st.floats(1.0, 4.0), preset=st.sampled_from(("hgx_a100", "hgx_h100")))
def test_more_bandwidth_is_never_slower(op, log_size, n, bw, factor, preset):
    kw = _dim_kwargs(preset)
    kw.pop("bandwidth_Bps")
    lat = kw.pop("latency_s")
    slow = float(collective_time(op, 2.0**log_size, n, bw, lat, **kw).time_s)
    fast = float(collective_time(op, 2.0**log_size, n, bw * factor, lat, **kw).time_s)
    assert fast <= slow * (1 + 1e-6)


def test_nvls_follows_the_nvlink_bandwidth():
    """The NVLS throughput of a fitted NVSwitch dimension scales with its link bandwidth: at the preset's bandwidth
    the time is unchanged, and a 1 GiB all-reduce on 8 H100s slows in proportion when the NVLink bandwidth drops
    (it did not: NVLS kept the preset's absolute throughput, so 50 MB/s links all-reduced at 256 GB/s)."""
    from diffsys.topologies import hierarchical_collective_time

    system = system_preset("hgx_h100")
    up = system.dims[0]
    assert float(up.in_network_reference_Bps) == pytest.approx(float(up.bandwidth_Bps))

    def t(scale):
        dim = up.replace(bandwidth_Bps=up.bandwidth_Bps * scale)
        return float(hierarchical_collective_time("all_reduce", 2.0**30, (dim,)).time_s)

    base = t(1.0)
    absolute = up.replace(in_network_reference_Bps=0.0, bandwidth_Bps=up.bandwidth_Bps * 0.25)
    assert float(absolute.in_network_throughput_Bps) == pytest.approx(float(up.in_network_Bps))
    assert t(0.5) > 1.6 * base and t(0.25) > 3.0 * base  # latency and fixed costs do not scale
    assert t(2.0) < base


@settings(max_examples=25, deadline=None)
@given(op=st.sampled_from(RING_OPS), log_size=st.floats(9, 30), n=st.integers(2, 15),
       preset=st.sampled_from(("hgx_a100", "hgx_h100")))
def test_more_ranks_never_cheaper_for_ring(op, log_size, n, preset):
    kw = _dim_kwargs(preset, in_network_Bps=None)
    bw, lat = kw.pop("bandwidth_Bps"), kw.pop("latency_s")
    t = [float(collective_time(op, 2.0**log_size, k, bw, lat, algorithm="ring", **kw).time_s) for k in (n, n + 1)]
    assert t[1] >= t[0] * (1 - 1e-6)


def test_zero_bytes_is_the_latency_floor():
    kw = _dim_kwargs("hgx_h100")
    bw, lat = kw.pop("bandwidth_Bps"), kw.pop("latency_s")
    p = kw["nccl"]
    hop = np.asarray(p.hop_s) * float(lat) / float(p.hop_s[2])
    c = float(p.pipeline_s)
    for n in (2, 4, 8):
        floor = min(float(p.base_s[0]) + 2 * (n - 1) * hop[0],
                    float(p.base_s[1]) + 2 * (n - 1) * hop[1] + c, float(p.base_s[2]) + 2 * (n - 1) * hop[2] + c,
                    float(p.nvls_base_s) + c)
        np.testing.assert_allclose(float(collective_time("all_reduce", 0.0, n, bw, lat, **kw).time_s), floor,
                                   rtol=1e-5)
    a2a = float(collective_time("all_to_all", 0.0, 8, bw, lat, **kw).time_s)
    np.testing.assert_allclose(a2a, float(p.p2p_base_s[0]) + 7 * float(p.p2p_hop_s), rtol=1e-5)
    assert float(collective_time("all_reduce", 1e6, 1, bw, lat, **kw).time_s) == 0.0


def _fn(x, op="all_reduce", temperature=0.0, params=None):
    """Time of ``op`` on the H100 fabric at (log2 size, ranks, bandwidth in 100 GB/s, Simple step latency in µs)."""
    kw = _dim_kwargs("hgx_h100")
    kw.pop("bandwidth_Bps"), kw.pop("latency_s")
    if params is not None:
        kw["nccl"] = params
    return collective_time(op, 2.0 ** x[0], x[1], x[2] * 1e11, x[3] * 1e-6, temperature=temperature, **kw).time_s


POINTS = np.array([[10.0, 8.0, 4.5, 1.4], [20.0, 4.0, 3.0, 1.0], [27.0, 8.0, 4.5, 2.0], [15.0, 2.0, 9.0, 0.5]],
                  dtype=np.float32)


def test_jit_vmap_and_no_retrace():
    for op, temperature in (("all_reduce", 0.0), ("all_gather", 0.05), ("all_to_all", 0.05)):
        fn = lambda x, op=op, t=temperature: _fn(x, op, t)  # noqa: E731
        assert_jit_matches_eager(fn, jnp.asarray(POINTS[0]))
        assert_vmap_matches_loop(jax.jit(fn), jnp.asarray(POINTS))
    counted = TraceCounter(lambda x: _fn(x, "all_reduce"))
    f = jax.jit(counted)
    f(jnp.asarray(POINTS[0]))
    f(jnp.asarray(POINTS[1]))
    assert counted.count == 1


def test_relaxed_choice_approaches_exact():
    x = jnp.asarray(POINTS[2])
    exact = float(_fn(x, "all_reduce", 0.0))
    soft = float(_fn(x, "all_reduce", 1e-4))
    assert abs(soft / exact - 1) < 1e-3


def test_finite_gradients_in_inputs_and_constants():
    params = nccl_params("h100_nvswitch")
    for op in ("all_reduce", "all_to_all"):
        f_x = jax.jit(jax.grad(lambda v, op=op: _fn(v, op, 0.05)))
        f_p = jax.jit(jax.grad(lambda p, x, op=op: _fn(x, op, 0.0, p)))
        for x in POINTS:
            for leaf in jax.tree_util.tree_leaves((f_x(jnp.asarray(x)), f_p(params, jnp.asarray(x)))):
                assert np.all(np.isfinite(np.asarray(leaf)))
    # zero bytes (the sqrt of the pipelined transfer has a finite derivative there)
    kw = _dim_kwargs("hgx_h100")
    bw, lat = kw.pop("bandwidth_Bps"), kw.pop("latency_s")
    assert_finite_grads(lambda s: collective_time("all_gather", s, 8, bw, lat, **kw).time_s, 0.0)


def test_gradient_matches_finite_differences_float64():
    with float64():
        for op, x in (("all_reduce", [20.0, 8.0, 4.5, 1.4]), ("all_to_all", [26.0, 4.0, 3.0, 1.0])):
            f = jax.jit(lambda v, op=op: _fn(v, op, 0.05) * 1e6)
            assert_grad_matches_fd(f, jnp.asarray(x, jnp.float64), rtol=2e-4, atol=1e-9)


def test_more_nodes_never_faster_with_nccl_presets():
    """The multi-node flat ring pays NCCL's base latencies too: a second node never makes a collective faster."""
    S = np.array([1024.0, 2.0**20, 2.0**28])
    for name in ("hgx_a100", "hgx_h100"):
        t = [np.asarray(system_preset(name, nodes=m).collective_time("all_reduce", S).time_s) for m in (1, 2, 16)]
        assert np.all(np.diff(np.stack(t), axis=0) >= 0), name
