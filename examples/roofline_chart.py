"""Roofline chart of a Llama-style transformer layer (prefill and decode) and ResNet-50 on an H100.

Run: ``python examples/roofline_chart.py [OUT_DIR]`` — writes two PNGs and prints per-op times.
"""

import pathlib
import sys

import diffsys.hardware as H
import diffsys.roofline as R


def main(out_dir="."):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    h100 = H.preset("h100")
    kw = dict(n_kv_heads=8, d_ff=14336, gated_mlp=True, norm="rmsnorm")
    prefill = R.transformer_layer_ops(1, 4096, 4096, 32, mode="prefill", **kw)
    decode = R.transformer_layer_ops(32, 1, 4096, 32, mode="decode", kv_len=4096, **kw)
    graph = prefill.prefixed("prefill.") + decode.prefixed("decode.")
    res = R.graph_time(graph, h100)
    print(f"{'op':28s} {'time (us)':>10s} {'bound':>8s} {'TFLOP/s':>9s} {'FLOP/B':>9s}")
    for i, name in enumerate(graph.names):
        r = res.per_op
        print(f"{name:28s} {float(r.time_s[i]) * 1e6:10.1f} {'compute' if bool(r.compute_bound[i]) else 'memory':>8s} "
              f"{float(r.achieved_flops[i]) / 1e12:9.1f} {float(r.arithmetic_intensity[i]):9.1f}")
    print(f"prefill layer: {float(R.graph_time(prefill, h100).time_s) * 1e3:.3f} ms, "
          f"decode step layer (batch 32): {float(R.graph_time(decode, h100).time_s) * 1e6:.1f} us")
    p1, p2 = out / "roofline_llama_layer_h100.png", out / "roofline_resnet50_h100.png"
    R.plot_roofline(graph, h100, p1, title="Llama-style layer on H100 SXM (bf16): prefill 4k vs decode")
    R.plot_roofline(R.resnet50_layers(batch=32), h100, p2, annotate=False,
                    title="ResNet-50 (batch 32) on H100 SXM (bf16)")
    print("wrote", p1, "and", p2)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
