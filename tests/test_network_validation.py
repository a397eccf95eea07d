"""Validation against measured all-reduce without refit: vTrain A100 / V100 nccl-tests tables (2-8 GPUs,
1 MiB-1 GiB) and Vidur's A100 kernel times.

The HGX A100 preset runs NCCL's cost model with constants fitted on other data (validation/collectives, see
tests/test_network_nccl.py), so vTrain and Vidur are pure transfers. The generic alpha-beta NVLink constants that
the DGX-1 / PCIe / GB200 presets still use were fitted on the vTrain A100 tables with an *odd* number of GPUs; the
V100 box checks them without refit. Statistics are printed and documented in docs/network.md.
"""

import numpy as np

from diffsys._fit import error_stats
from diffsys.io import read_nccl_tests
from diffsys.topologies import collective_time, system_preset
from diffsys.topologies._systems import (
    NVLINK_LATENCY_S,
    NVLINK_LOCAL_BPS,
    NVLINK_OVERHEAD_S,
)

LARGE = 16 * 2**20


def _errors(validation_dir, gpu, counts):
    big, small = [], []
    for g in counts:
        t = read_nccl_tests(validation_dir / "vtrain" / f"allreduce_{gpu}" / f"AR_GPU{g}_1M_1024M_LUT")
        s = system_preset("dgx_a100").with_sizes(g) if gpu == "a100" else system_preset("dgx1_v100", gpus=g)
        pred = np.asarray(s.collective_time("all_reduce", t.size_B).busbw_Bps)
        err = np.abs(pred / t.busbw_Bps - 1)
        big.append(err[t.size_B >= LARGE])
        small.append(err[t.size_B < LARGE])
    return np.concatenate(big), np.concatenate(small)


def test_a100_vtrain_without_refit(validation_dir):
    """The HGX A100 preset (NCCL model fitted on nccl-tests, validation/collectives) on vTrain's A100 tables."""
    for g in range(2, 9):
        t = read_nccl_tests(validation_dir / "vtrain" / "allreduce_a100" / f"AR_GPU{g}_1M_1024M_LUT")
        pred = np.asarray(system_preset("hgx_a100").with_sizes(g).collective_time(
            "all_reduce", t.size_B, dtype="float").time_s)
        big = t.size_B >= LARGE
        large = error_stats(pred[big], t.time_s[big])
        small = error_stats(pred[~big], t.time_s[~big])
        print(f"vTrain A100 {g} GPUs: >=16MiB MAPE {large['mape']:.3f}; <16MiB MAPE {small['mape']:.3f}")
        assert large["mape"] < 0.08 and small["mape"] < 0.18, g


def test_vidur_single_node_without_refit(validation_dir):
    """Vidur kernel times (single-node rows): DGX A100 all-reduce 2/4/8 GPUs, NVLink-pair A100 all-reduce."""
    import csv

    for name, g, bound_all, bound_large in (("collectives_a100_dgx.csv", 2, 0.20, 0.10),
                                            ("collectives_a100_dgx.csv", 4, 0.20, 0.10),
                                            ("collectives_a100_dgx.csv", 8, 0.22, 0.16),
                                            ("collectives_a100_pairwise_nvlink.csv", 2, 0.11, 0.05)):
        with open(validation_dir / "vidur" / name) as f:
            rows = [r for r in csv.DictReader(f) if r["num_nodes"] == "1" and r["collective"] == "all_reduce"
                    and int(r["num_workers"]) == g]
        S = np.array([float(r["size_bytes"]) for r in rows])
        T = np.array([float(r["time_ms_median"]) * 1e-3 for r in rows])
        pred = np.asarray(system_preset("hgx_a100").with_sizes(g).collective_time("all_reduce", S,
                                                                                 dtype="half").time_s)
        a, b = error_stats(pred, T), error_stats(pred[S >= LARGE], T[S >= LARGE])
        print(f"Vidur {name} {g} GPUs: MAPE {a['mape']:.3f}, >=16MiB {b['mape']:.3f}")
        assert a["mape"] < bound_all and b["mape"] < bound_large, (name, g)


def test_v100_transfer_without_refit(validation_dir):
    # 5 GPUs of a DGX-1 have no Hamiltonian NVLink ring (GPU 4's only NVLink neighbour is GPU 0): out of model
    big, small = _errors(validation_dir, "v100", (2, 3, 4, 6, 7, 8))
    print(f"V100 busbw error (no refit, 5 GPUs excluded): >=16MiB mean {big.mean():.3f} max {big.max():.3f}; "
          f"<16MiB mean {small.mean():.3f} max {small.max():.3f}")
    assert big.mean() < 0.06 and np.mean(big < 0.10) > 0.95
    assert small.mean() < 0.15


def test_fit_on_odd_counts_reproduces_the_preset_constants(validation_dir):
    """Re-fit (coarse grid) the three constants on the odd counts; the preset values must be the fitted ones."""
    data = [read_nccl_tests(validation_dir / "vtrain" / "allreduce_a100" / f"AR_GPU{g}_1M_1024M_LUT")
            for g in (3, 5, 7)]
    import jax
    import jax.numpy as jnp

    @jax.jit
    def loss(alpha, overhead, local):
        total = 0.0
        for g, t in zip((3, 5, 7), data):
            pred = collective_time("all_reduce", jnp.asarray(t.size_B), float(g), 300e9, alpha,
                                   overhead_s=overhead, local_Bps=local, tree="chain").time_s
            total = total + jnp.mean((jnp.log(pred) - jnp.log(jnp.asarray(t.time_s))) ** 2)
        return total

    grid = [(a, o, m) for a in NVLINK_LATENCY_S * np.array([0.7, 1.0, 1.4])
            for o in NVLINK_OVERHEAD_S * np.array([0.8, 1.0, 1.25])
            for m in NVLINK_LOCAL_BPS * np.array([0.8, 1.0, 1.25])]
    values = [float(loss(*p)) for p in grid]
    assert int(np.argmin(values)) == grid.index((NVLINK_LATENCY_S, NVLINK_OVERHEAD_S, NVLINK_LOCAL_BPS))
