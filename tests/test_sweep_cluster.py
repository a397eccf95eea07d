"""The Dask recipe of docs/sweep.md on a local 2-worker cluster (the optional ``[cluster]`` extra): shards swept in
worker processes and merged on the client equal the single run."""

import numpy as np
import pytest

distributed = pytest.importorskip("dask.distributed", reason="the [cluster] extra (dask[distributed]) is not installed")


def sweep_shard(i, n):
    """What each worker runs: one shard of the toy problem's sweep (built inside the worker)."""
    import os

    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    from diffsys.optimize import sweep
    from diffsys.problems import problem

    return sweep(problem("toy"), top_k=5, chunk_size=256, shard=(i, n), progress=False,
                 pareto=("cost", "budget_use"))


def test_dask_local_cluster_shards_merge_to_the_single_run():
    import cloudpickle

    import test_sweep_cluster
    from diffsys.optimize import merge

    cloudpickle.register_pickle_by_value(test_sweep_cluster)  # workers need not import the tests
    n = 4
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  env={"JAX_PLATFORMS": "cpu"}) as cluster, distributed.Client(cluster) as client:
        futures = client.map(sweep_shard, range(n), n=n)
        parts = client.gather(futures, errors="raise")
    merged = merge(parts)
    whole = sweep_shard(0, 1)
    np.testing.assert_array_equal(merged.top_objective, whole.top_objective)
    np.testing.assert_array_equal(merged.top_index, whole.top_index)
    assert merged.labels() == whole.labels() and merged.pareto_labels() == whole.pareto_labels()
    assert (merged.n_evaluated, merged.n_feasible) == (whole.n_evaluated, whole.n_feasible)
