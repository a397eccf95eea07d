"""Evaluation rate of the serving model: direct ``jit(vmap)`` and the ``diffsys serve --search`` sweep.

    python benchmarks/bench_serving.py [--n 65536] [--genz PYTHON]

``--genz PYTHON`` times one eager evaluation of GenZ (``pip install genz-llm``) run by that interpreter (a separate
environment, GenZ's dependencies are not the library's) for the ratio. Writes benchmarks/results/serving.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from diffsys.llm import serving_model, serving_spec  # noqa: E402
from diffsys.problems import search_deployments  # noqa: E402

GENZ_SNIPPET = r"""
import time, warnings
warnings.filterwarnings("ignore")
from GenZ import decode_moddeling, prefill_moddeling
t0 = time.perf_counter()
for _ in range(3):
    prefill_moddeling(model="llama3_8b", batch_size=32, input_tokens=1024, system_name="H100_GPU", bits="bf16",
                      tensor_parallel=1)
    decode_moddeling(model="llama3_8b", batch_size=32, input_tokens=1024, output_tokens=128,
                     system_name="H100_GPU", bits="bf16", tensor_parallel=1)
print((time.perf_counter() - t0) / 3)
"""


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=65536)
    ap.add_argument("--genz", default=None, help="python interpreter with genz-llm installed")
    args = ap.parse_args(argv)
    spec = serving_spec("meta-llama/Llama-3.1-8B", precision="bf16", isl=1024, osl=128, concurrency=32)
    conc = jnp.exp2(jnp.arange(args.n) % 10).astype(jnp.float32)
    tp = jnp.exp2(jnp.arange(args.n) // 10 % 4).astype(jnp.float32)
    f = jax.jit(jax.vmap(lambda c, t: serving_model(eqx.tree_at(lambda s: (s.concurrency, s.tp), spec, (c, t))
                                                    ).tokens_per_s_per_gpu))
    t0 = time.perf_counter()
    f(conc, tp).block_until_ready()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    f(conc, tp).block_until_ready()
    direct = args.n / (time.perf_counter() - t0)
    res = search_deployments(spec, gpus=8, ttft_s=1.0, tpot_s=0.05, precisions=("bf16", "fp8"))
    search_rate = res["evals_per_s"]
    out = {"direct_evals_per_s": direct, "compile_s": compile_s, "search_evals_per_s": search_rate,
           "search_run_evals_per_s": res["run_evals_per_s"], "search_compile_s": res["compile_s"],
           "search_evaluated": res["evaluated"], "search_best": res["best"], "cpu_count": os.cpu_count(),
           "jax_devices": [str(d) for d in jax.devices()]}
    if args.genz:
        r = subprocess.run([args.genz, "-c", GENZ_SNIPPET], capture_output=True, text=True)
        try:
            genz_s = float(r.stdout.strip().splitlines()[-1])
            out["genz_eager_s_per_eval"] = genz_s
            out["speedup_vs_genz"] = direct * genz_s
        except (ValueError, IndexError):
            out["genz_error"] = (r.stderr or r.stdout).strip().splitlines()[-1:]
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "benchmarks", "results", "serving.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
