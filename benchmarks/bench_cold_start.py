"""Cold and warm start of ``diffsys sweep``: two runs in new processes sharing an empty persistent compilation cache.

Prints, per run, the process wall time (imports, model check, compile, sweep, plot, files), the sweep loop's
seconds, ``compile_seconds``, ``run_seconds`` and configs/s, plus the load average (the figures scale with it).
Usage: ``python benchmarks/bench_cold_start.py [extra diffsys sweep arguments]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time


def main(extra: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"), "TF_CPP_MIN_LOG_LEVEL": "3"}
        for name in ("cold", "warm"):
            argv = [sys.executable, "-m", "diffsys", "sweep", "--json", "--force", "--out", os.path.join(tmp, "out"),
                    "--cache-dir", os.path.join(tmp, "cache"), *extra]
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout
            wall = time.perf_counter() - t0
            s = json.loads(out)
            print(f"{name}: process {wall:.1f} s, sweep loop {s['seconds']:.2f} s "
                  f"(compile {s['compile_seconds']:.2f} s, run {s['run_seconds']:.2f} s), {s['configs_evaluated']:,} configs = "
                  f"{s['configs_evaluated'] / wall:.3g}/s end to end, {s['configs_per_second']:.3g}/s in the loop; "
                  f"load average {load:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main(sys.argv[1:])
