"""Long-context decode: where it becomes KV-cache-bandwidth bound and attention dominates, and what KV
quantisation / eviction buys.

Llama-3 70B (GQA, 8 KV heads) served with TP=8 on one HGX H100 node, batch 8, 256 output tokens, contexts from 1k to
128k tokens. For each context the model gives the time per output token, the share of decode HBM traffic that is
KV cache, the share of decode time in the attention core, and the memory footprint; the KV knobs are the cache
precision (16/8/4 bits) and the fraction of tokens kept after eviction (1.0, 0.25). Writes docs/img/long_context.png.

    python examples/long_context.py
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from diffsys import llm

HERE = pathlib.Path(__file__).resolve().parent


def curves(model, cluster, par, contexts, batch, kv_bits, keep):
    def one(ctx):
        s = llm.Serving(batch=batch, prompt_len=ctx, decode_len=256.0, kv_bits=kv_bits, kv_keep_ratio=keep)
        return llm.inference_step(model, cluster, par, s)

    return jax.jit(jax.vmap(one))(jnp.asarray(contexts, jnp.float32))


def main():
    model = llm.transformer_preset("llama3_70b")
    cluster = llm.cluster_preset("hgx_h100", 8)
    par = llm.Parallelism(tp=8)
    contexts = np.geomspace(1024, 131072, 29)
    batch = 8
    variants = [("bf16 cache", 16.0, 1.0), ("int8 cache", 8.0, 1.0), ("int4 cache", 4.0, 1.0),
                ("bf16, keep 25 %", 16.0, 0.25)]
    res = {name: curves(model, cluster, par, contexts, batch, bits, keep) for name, bits, keep in variants}
    base = res["bf16 cache"]
    kv_frac = np.asarray(base.kv_read_fraction)
    attn = np.asarray(base.attention_time_fraction)
    cross_kv = float(np.interp(0.5, kv_frac, contexts))
    cross_attn = float(np.interp(0.5, attn, contexts)) if attn.max() > 0.5 else float("nan")
    fits = np.asarray(base.fits)
    max_fit = float(contexts[fits].max()) if fits.any() else float("nan")
    print(f"Llama-3 70B, TP=8 on H100, batch {batch}:")
    print(f"  KV-cache reads exceed weight reads (decode KV-bandwidth bound) from ~{cross_kv:,.0f} tokens")
    print(f"  attention core > 50 % of decode time from ~{cross_attn:,.0f} tokens")
    print(f"  bf16 cache fits in 8 x 80 GiB up to ~{max_fit:,.0f} tokens")
    for name, r in res.items():
        i = np.searchsorted(contexts, 65536)
        print(f"  {name:16s} TPOT @64k: {float(r.tpot_s[i]) * 1e3:6.1f} ms, memory/GPU "
              f"{float(r.memory_B[i]) / 2**30:6.1f} GiB, fits {bool(r.fits[i])}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)
    for name, r in res.items():
        f = np.asarray(r.fits)
        a.plot(contexts, np.asarray(r.tpot_s) * 1e3, "-", label=name)
        a.plot(contexts[~f], np.asarray(r.tpot_s)[~f] * 1e3, "x", color="gray", ms=4)
    a.set_xscale("log", base=2)
    a.set_xlabel("context length (tokens)")
    a.set_ylabel("time per output token (ms)")
    a.set_title("Llama-3 70B decode, TP=8 H100, batch 8 (x: exceeds HBM)")
    a.grid(True, which="both", alpha=0.3)
    a.legend(fontsize=8)
    b.plot(contexts, kv_frac, label="KV share of decode HBM traffic")
    b.plot(contexts, attn, label="attention share of decode time")
    b.axhline(0.5, color="k", lw=0.6)
    b.axvline(cross_kv, color="C0", ls="--", lw=0.8)
    b.set_xscale("log", base=2)
    b.set_ylim(0, 1)
    b.set_xlabel("context length (tokens)")
    b.set_title(f"KV-bandwidth bound beyond ~{cross_kv / 1024:.0f}k tokens (bf16 cache)")
    b.grid(True, which="both", alpha=0.3)
    b.legend(fontsize=8)
    fig.tight_layout()
    out = HERE.parent / "docs" / "img" / "long_context.png"
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
