"""``diffsys sweep``: the main job — sweep a design space, print the best configurations and the throughput, write
a Pareto plot (PNG) and the front as CSV/JSON.

The embedded default is an accelerator co-design sweep on the roofline model: the GEMMs of one GPT-3 175B layer
(training, 4,096 tokens per microbatch) plus a batch-8 decode step, over matrix-unit peak, HBM bandwidth and on-chip
SRAM capacity, with a silicon+HBM cost proxy as the second objective.
"""

from __future__ import annotations

import json
import os
import sys

import jax.numpy as jnp
import numpy as np

from ..roofline import roofline
from ..space import Continuous, DesignSpace, PowerOfTwo, load_space
from ._sweep_report import format_table, json_safe, plot_front, write_rows

# GPT-3 175B (Brown et al. 2020): hidden 12288, 96 heads, FFN 4h. GEMM shapes (M, N, K) of one layer's forward for a
# 4,096-token microbatch (QKV, attention projection, MLP up, MLP down) and the same weights at decode batch 8.
_H = 12288
_LAYER_GEMMS = np.array([(4096, 3 * _H, _H), (4096, _H, _H), (4096, 4 * _H, _H), (4096, _H, 4 * _H),
                         (8, 3 * _H, _H), (8, _H, _H), (8, 4 * _H, _H), (8, _H, 4 * _H)], dtype=np.float32)
_BPE = 2.0  # bf16

# Cost proxy (documented estimates): matrix-unit density 1.2 TFLOP/s per mm² (H100: 989 TFLOP/s bf16 dense on a
# ~814 mm² die of which roughly 800 mm² is SMs+L2, NVIDIA Hopper whitepaper 2022); SRAM 0.5 mm² per MiB at 5 nm
# (TSMC N5 high-density bit cell 0.021 µm², Chang et al. ISSCC 2020, ×2.5 for periphery); silicon $0.25/mm²
# (~$17k per 300 mm wafer); HBM3 stacks of 819 GB/s (JEDEC JESD238) at $150 each (industry estimate).
_TFLOPS_PER_MM2, _MM2_PER_MIB, _USD_PER_MM2, _STACK_BPS, _USD_PER_STACK = 1.2e12, 0.5, 0.25, 819e9, 150.0


def default_space() -> DesignSpace:
    return DesignSpace({
        "peak_flops": Continuous(100e12, 4000e12, log=True, grid=160),
        "hbm_bandwidth_Bps": Continuous(0.5e12, 12e12, log=True, grid=160),
        "sram_MiB": PowerOfTwo(4, 1024),
        "bytes_per_element": Continuous(1.0, 2.0, grid=2),
    })


def default_model(design):
    """Roofline time of the GEMM suite on a hypothetical accelerator, its cost proxy and feasibility."""
    peak, bw, sram = design["peak_flops"], design["hbm_bandwidth_Bps"], design["sram_MiB"] * 2**20
    bpe = design.get("bytes_per_element", _BPE)
    m, n, k = _LAYER_GEMMS[:, 0], _LAYER_GEMMS[:, 1], _LAYER_GEMMS[:, 2]
    tile = jnp.sqrt(sram / (3.0 * bpe))  # square output-stationary tiles: 3 tiles of side t fit in SRAM
    compulsory = bpe * (m * k + k * n + m * n)
    tiled = bpe * (m * n * k * (1.0 / jnp.minimum(tile, n) + 1.0 / jnp.minimum(tile, m)) + m * n)
    # fp8 (1 byte) runs at twice the bf16 matrix peak (H100 datasheet)
    r = roofline(2 * m * n * k, jnp.maximum(compulsory, tiled), peak * (2.0 / bpe), bw)
    area = peak / _TFLOPS_PER_MM2 + design["sram_MiB"] * _MM2_PER_MIB
    cost = area * _USD_PER_MM2 + jnp.ceil(bw / _STACK_BPS) * _USD_PER_STACK
    return {"time_s": jnp.sum(r.time_s), "cost_usd": cost, "die_area_mm2": area,
            "feasible": area <= 858.0}  # reticle limit 26 × 33 mm


def register(sub):
    p = sub.add_parser("sweep", help="sweep a design space (default: accelerator co-design on the roofline)",
                       description=__doc__)
    p.add_argument("--space", help="JSON/YAML design space replacing the default parameters")
    p.add_argument("--top", type=int, default=10, help="how many best configurations to print (default 10)")
    p.add_argument("--out", default="diffsys_out", help="output folder for the plot and the front (default diffsys_out)")
    p.add_argument("--chunk-size", type=int, default=1 << 16, help="points per jitted chunk")
    p.add_argument("--checkpoint", help="checkpoint file; with --resume, continue an interrupted sweep")
    p.add_argument("--resume", action="store_true", help="resume from --checkpoint")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary instead of tables")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    space = load_space(args.space) if args.space else default_space()
    result = _sweep(space, args)
    front = result.pareto_labels()
    best = result.labels()[: args.top]
    os.makedirs(args.out, exist_ok=True)
    files = write_rows(front, os.path.join(args.out, "pareto_front"))
    if front:
        files.append(plot_front(front, "cost_usd", "time_s", os.path.join(args.out, "pareto_front.png"),
                                "Accelerator co-design: GPT-3 layer time vs cost", best[0] if best else None,
                                xlabel="cost proxy (USD)", ylabel="time per layer (s)"))
    summary = {
        "configs_evaluated": result.n_evaluated,
        "configs_feasible": result.n_feasible,
        "seconds": result.seconds,
        "configs_per_second": result.evals_per_s,
        "best": best[0] if best else None,
        "top": best,
        "pareto_front_size": len(front),
        "files": files,
    }
    if args.json:
        json.dump(json_safe(summary), sys.stdout, indent=2)
        print()
        return 0
    print(format_table(best))
    print(f"\n{result.n_evaluated:,} configurations ({result.n_feasible:,} feasible) in {result.seconds:.2f} s "
          f"= {result.evals_per_s:,.0f} configs/s")
    print(f"Pareto front ({len(front)} points) -> {', '.join(files)}")
    return 0


def _sweep(space, args):
    from ..optimize import sweep

    return sweep(default_model, space, "time_s", top_k=args.top, pareto=("time_s", "cost_usd"),
                 chunk_size=args.chunk_size, checkpoint=args.checkpoint, resume=args.resume,
                 progress=not args.json)


__all__ = ["default_model", "default_space", "register", "run"]
