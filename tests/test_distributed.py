"""Multi-process sweeps: two JAX processes on localhost (CPU, ``jax.distributed``) give exactly the single-process
result, and only process 0 writes the checkpoint."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

WORKER = textwrap.dedent("""
    import json, os, sys
    import jax
    pid, port, out, ck = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except Exception:
        pass
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=pid,
                               initialization_timeout=60)
    sys.path.insert(0, os.path.join(os.getcwd(), "tests"))
    from test_sweep import model, space
    from diffsys.optimize import sweep
    assert jax.process_count() == 2
    sp = space()
    kw = dict(top_k=6, pareto=("time_s", "energy_J"), pareto_capacity=512, chunk_size=256, progress=False,
              checkpoint=ck, checkpoint_every=2, histograms={"time_s": (0.0, 1.0, 8)})
    r = sweep(model, sp, "time_s", **kw)
    # resuming the finished checkpoint (read by process 0, broadcast to the others) gives the same result
    again = sweep(model, sp, "time_s", resume=True, **kw)
    assert again.top_index.tolist() == r.top_index.tolist() and again.n_feasible == r.n_feasible
    json.dump({"top": r.top_objective.tolist(), "index": r.top_index.tolist(), "front": sorted(r.pareto_index.tolist()),
               "hist": r.histograms["time_s"].tolist(), "n": [r.n_evaluated, r.n_feasible]},
              open(f"{out}.{pid}.json", "w"))
    jax.distributed.shutdown()
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_give_the_single_process_result(tmp_path):
    from test_sweep import model, space

    from diffsys.optimize import sweep

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out, ck = str(tmp_path / "res"), str(tmp_path / "run.ckpt.npz")
    port = str(free_port())
    # the workers compile as this process does (same XLA flags, bit-identical results) but with one CPU device each
    flags = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split()
                     if not f.startswith("--xla_force_host_platform_device_count"))
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    procs = [subprocess.Popen([sys.executable, str(script), str(i), port, out, ck], cwd=root, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        logs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, logs):
        assert p.returncode == 0, err[-3000:]
    got = [json.load(open(f"{out}.{i}.json")) for i in range(2)]
    assert got[0] == got[1]  # every process returns the whole, merged result
    ref = sweep(model, space(), "time_s", top_k=6, pareto=("time_s", "energy_J"), pareto_capacity=512,
                chunk_size=256, progress=False, histograms={"time_s": (0.0, 1.0, 8)})
    np.testing.assert_array_equal(got[0]["top"], ref.top_objective)
    assert got[0]["index"] == ref.top_index.tolist()
    assert got[0]["front"] == sorted(ref.pareto_index.tolist())
    assert got[0]["hist"] == ref.histograms["time_s"].tolist()
    assert got[0]["n"] == [ref.n_evaluated, ref.n_feasible]
    # one checkpoint (process 0 writes it; it holds both processes' states), no per-process copies
    files = sorted(f for f in os.listdir(tmp_path) if "ckpt" in f)
    assert files == ["run.ckpt.npz"], files
