"""What the serving knobs buy: KV eviction and quantization (ThinKV-style), KV rematerialization (XQuant),
speculative decoding and compute-communication overlap (TokenWeave), on the calibrated serving model.

Llama-3.1-70B in FP8 with TensorRT-LLM's constants on H100, 8k-token prompts and 1k outputs, 64 clients. Each panel
sweeps one knob with ``jax.vmap`` over the jitted ``diffsys.llm.serving_model`` (one compilation per panel):

a. TPOT and KV capacity vs the fraction of the context kept, at 8/4/2 cache bits (TP 4);
b. XQuant: the share of layers caching ``X`` instead of K/V, at TP 1 (Llama-3.1-8B) and TP 4 (70B), 2-bit ``X``;
c. speculative decoding: TPOT speed-up vs the acceptance rate for 2/4/8 draft tokens (draft step 5 % of a target
   step);
d. overlap: TPOT vs the overlapped fraction of the TP all-reduce at TP 2/4/8.

Writes docs/img/serving_knobs.png and prints the numbers the docs quote.

    python examples/serving_knobs.py
"""

from __future__ import annotations

import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from diffsys import llm

HERE = pathlib.Path(__file__).resolve().parent
SETTING = dict(system="h100", backend="trtllm", precision="fp8", isl=8192, osl=1024, concurrency=64)


def sweep(spec, name, values, **fixed):
    """``serving_model`` over ``values`` of the knob ``name`` (the other knobs in ``fixed``)."""
    for k, v in fixed.items():
        spec = eqx.tree_at(lambda s: getattr(s, k), spec, jnp.asarray(v, jnp.float32), is_leaf=lambda x: x is None)

    def one(v):
        return llm.serving_model(eqx.tree_at(lambda s: getattr(s, name), spec, v, is_leaf=lambda x: x is None))

    return jax.jit(jax.vmap(one))(jnp.asarray(values, jnp.float32))


def main():
    m70 = "meta-llama/Llama-3.1-70B"
    tp4 = llm.serving_spec(m70, tp=4, **SETTING)
    base = llm.serving_model(tp4)
    keep = np.linspace(0.1, 1.0, 19)
    eviction = {bits: sweep(tp4, "kv_keep", keep, kv_bits=bits) for bits in (8.0, 4.0, 2.0)}
    remat = np.linspace(0.0, 1.0, 11)
    xquant = {"Llama-3.1-8B, TP 1": sweep(llm.serving_spec("meta-llama/Llama-3.1-8B", tp=1, **SETTING), "kv_remat",
                                          remat, kv_bits=2.0),
              "Llama-3.1-70B, TP 4": sweep(tp4, "kv_remat", remat, kv_bits=2.0)}
    alpha = np.linspace(0.0, 0.95, 20)
    spec = {g: sweep(tp4, "spec_acceptance", alpha, spec_tokens=g, draft_cost=0.05) for g in (2, 4, 8)}
    overlap = np.linspace(0.0, 1.0, 11)
    weave = {tp: sweep(llm.serving_spec(m70, tp=tp, **SETTING), "comm_overlap", overlap) for tp in (2, 4, 8)}

    t0 = float(base.tpot_s) * 1e3
    print(f"Llama-3.1-70B FP8, TP 4, H100, isl 8192, osl 1024, 64 clients: TPOT {t0:.1f} ms, "
          f"KV capacity {float(base.kv_capacity_requests):.0f} requests, batch {float(base.batch):.1f}")
    for bits, r in eviction.items():
        i = int(np.argmin(np.abs(keep - 0.25)))
        print(f"  {bits:.0f}-bit cache, keep 25 %: TPOT {float(r.tpot_s[i]) * 1e3:.1f} ms, capacity "
              f"{float(r.kv_capacity_requests[i]):.0f} requests")
    for name, r in xquant.items():
        print(f"  XQuant {name}: capacity x{float(r.kv_capacity_requests[-1] / r.kv_capacity_requests[0]):.2f}, "
              f"TPOT x{float(r.tpot_s[-1] / r.tpot_s[0]):.2f} (all layers 2-bit X vs 2-bit K/V)")
    for g, r in spec.items():
        sp = float(base.tpot_s) / np.asarray(r.tpot_s)
        be = float(np.interp(1.0, sp, alpha)) if sp.max() > 1 else float("nan")
        print(f"  speculation, {g} draft tokens: x{sp[np.argmin(np.abs(alpha - 0.8))]:.2f} at acceptance 0.8, "
              f"break-even acceptance {be:.2f}")
    for tp, r in weave.items():
        print(f"  overlap, TP {tp}: TPOT {float(r.tpot_s[0]) * 1e3:.1f} -> {float(r.tpot_s[-1]) * 1e3:.1f} ms "
              f"(x{float(r.tpot_s[0] / r.tpot_s[-1]):.2f})")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ((a, b), (c, d)) = plt.subplots(2, 2, figsize=(11, 8), dpi=120)
    for bits, r in eviction.items():
        a.plot(keep, np.asarray(r.tpot_s) * 1e3, label=f"TPOT, {bits:.0f}-bit cache")
    a.set_xlabel("fraction of the context kept (eviction)")
    a.set_ylabel("TPOT (ms)")
    a2 = a.twinx()
    for bits, r in eviction.items():
        a2.plot(keep, np.asarray(r.kv_capacity_requests), ":", label=f"capacity, {bits:.0f}-bit")
    a2.set_yscale("log")
    a2.set_ylabel("KV capacity (requests, dotted)")
    a.set_title("a. KV eviction x quantization (70B, TP 4)")
    a.legend(fontsize=7, loc="upper left")
    for name, r in xquant.items():
        b.plot(remat, np.asarray(r.kv_capacity_requests / r.kv_capacity_requests[0]), label=f"capacity, {name}")
        b.plot(remat, np.asarray(r.tpot_s / r.tpot_s[0]), "--", label=f"TPOT, {name}")
    b.set_yscale("log")
    b.set_xlabel("share of layers caching X (XQuant), 2-bit")
    b.set_ylabel("relative to 2-bit K/V")
    b.set_title("b. KV rematerialization (XQuant)")
    b.legend(fontsize=7)
    for g, r in spec.items():
        c.plot(alpha, float(base.tpot_s) / np.asarray(r.tpot_s), label=f"{g} draft tokens")
    c.axhline(1.0, color="k", lw=0.6)
    c.set_xlabel("acceptance rate")
    c.set_ylabel("TPOT speed-up over no speculation")
    c.set_title("c. speculative decoding (draft step 5 % of target)")
    c.legend(fontsize=7)
    for tp, r in weave.items():
        d.plot(overlap, np.asarray(r.tpot_s) * 1e3, label=f"TP {tp}")
    d.set_xlabel("overlapped fraction of TP all-reduce (TokenWeave)")
    d.set_ylabel("TPOT (ms)")
    d.set_title("d. compute-communication overlap (70B)")
    d.legend(fontsize=7)
    for ax in (a, b, c, d):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    out = HERE.parent / "docs" / "img" / "serving_knobs.png"
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
