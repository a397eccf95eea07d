"""``diffsys serve``: TTFT, TPOT and throughput of an LLM serving deployment, or a search for the best one.

    diffsys serve --model meta-llama/Llama-3.1-8B --system h100 --backend trtllm --precision fp8 --tp 1 \\
        --isl 1024 --osl 128 --concurrency 32 [--mode disagg --prefill-workers 1 --prefill-tp 2 \\
        --decode-workers 2 --decode-tp 2] [--json]
    diffsys serve --model Qwen/Qwen3-32B --search --gpus 8 --ttft-ms 1000 --tpot-ms 50 [--plot pareto.png]

The model is a Hugging Face id of the catalogue (``diffsys.llm.CATALOG_IDS``) or a ``config.json`` path. The search
sweeps TP, EP, concurrency, agg vs disagg and the P:D split (for each precision) with ``diffsys.optimize.sweep``
and reports the deployment with the most tokens/s/GPU that meets both SLAs, and the Pareto front of tokens/s/GPU
vs tokens/s/user. Models, sources and validation: docs/serving.md.
"""

from __future__ import annotations

import json
import sys

from .._checks import arg_number
from ._args import add_counts, count, print_report


#: the serving knobs' flags: (low, high, (low open, high open), default, help); ``--kv-bits`` -> ``kv_bits``
KNOBS = {
    "--kv-bits": (1.0, 32.0, (False, False), None, "bits per cached K/V element (default: the KV dtype's)"),
    "--kv-keep": (0.0, 1.0, (True, False), 1.0, "fraction of the context kept after KV eviction (default 1)"),
    "--kv-remat": (0.0, 1.0, (False, False), 0.0,
                   "fraction of layers caching X and rematerializing K/V (XQuant; default 0)"),
    "--spec-tokens": (0.0, 64.0, (False, False), 0.0, "draft tokens per step (speculative decoding; default 0)"),
    "--spec-acceptance": (0.0, 1.0, (False, True), 0.0, "probability a draft token is accepted"),
    "--draft-cost": (0.0, 1.0, (False, False), 0.0, "one draft step's time over one target step's"),
    "--comm-overlap": (0.0, 1.0, (False, False), 0.0,
                       "fraction of TP/EP communication that may hide behind compute (TokenWeave/Comet)"),
}


def register(subparsers) -> None:
    from ..llm import SERVING_BACKENDS as BACKENDS, SERVING_MODES as MODES, SERVING_PRECISIONS as PRECISIONS, SERVING_SYSTEMS as SYSTEMS

    p = subparsers.add_parser("serve", help="LLM serving TTFT/TPOT/throughput (or --search for the best deployment)",
                              description="Serving metrics of one deployment, or a sweep for the best one.")
    p.add_argument("--model", required=True, help="Hugging Face id (e.g. meta-llama/Llama-3.1-8B) or config.json")
    p.add_argument("--system", default="h100", choices=sorted(SYSTEMS))
    p.add_argument("--backend", default="trtllm", choices=BACKENDS)
    p.add_argument("--precision", default="fp8", choices=PRECISIONS)
    add_counts(p, {"--tp": 1, "--pp": 1, "--ep": 1, "--attention-dp": 1, "--isl": 1024, "--osl": 1024,
                   "--concurrency": 32, "--prefill-workers": 1, "--prefill-attention-dp": 1, "--decode-workers": 1})
    p.add_argument("--prefill-tp", type=count("--prefill-tp"), default=None, help="prefill workers' TP (disagg)")
    p.add_argument("--prefill-ep", type=count("--prefill-ep"), default=None, help="prefill workers' EP (disagg)")
    p.add_argument("--decode-tp", type=count("--decode-tp"), default=None, help="decode workers' TP (disagg)")
    p.add_argument("--mode", default="agg", choices=MODES)
    g = p.add_argument_group("KV compression, speculative decoding, overlap (docs/serving.md)")
    for flag, (lo, hi, opens, default, text) in KNOBS.items():
        g.add_argument(flag, type=arg_number(flag, lo, hi, lo_open=opens[0], hi_open=opens[1]), default=default,
                       help=text)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--search", action="store_true", help="sweep deployments for max tokens/s/GPU under the SLAs")
    p.add_argument("--gpus", type=count("--gpus"), default=8, help="GPU budget of the search (default 8)")
    p.add_argument("--ttft-ms", type=arg_number("--ttft-ms", 0.0, None, lo_open=True), default=2000.0)
    p.add_argument("--tpot-ms", type=arg_number("--tpot-ms", 0.0, None, lo_open=True), default=50.0)
    p.add_argument("--plot", default=None, help="write the Pareto front (tokens/s/GPU vs tokens/s/user) as PNG")
    p.set_defaults(func=run)


def _spec(args):
    from ..llm import serving_spec

    return serving_spec(args.model, system=args.system, backend=args.backend, precision=args.precision, tp=args.tp,
                        pp=args.pp, attention_dp=args.attention_dp, ep=args.ep, isl=args.isl, osl=args.osl,
                        concurrency=args.concurrency, mode=args.mode, prefill_workers=args.prefill_workers,
                        prefill_tp=args.prefill_tp, prefill_attention_dp=args.prefill_attention_dp,
                        prefill_ep=args.prefill_ep, decode_workers=args.decode_workers, decode_tp=args.decode_tp,
                        **{k: getattr(args, k) for k in (f[2:].replace("-", "_") for f in KNOBS)})


def report(metrics) -> dict:
    """The printed fields (ms, GiB, tokens/s) of a :class:`~diffsys.llm.ServingMetrics`."""
    f = lambda name: float(getattr(metrics, name))  # noqa: E731
    ms = lambda name: 1e3 * f(name)  # noqa: E731
    gib = 2.0**30
    return {
        "ttft_ms": ms("ttft_s"), "tpot_ms": ms("tpot_s"), "tokens_per_s": f("tokens_per_s"),
        "tokens_per_s_per_gpu": f("tokens_per_s_per_gpu"), "tokens_per_s_per_user": f("tokens_per_s_per_user"),
        "requests_per_s": f("requests_per_s"), "kv_cache_GiB": f("kv_cache_B") / gib, "batch": f("batch"),
        "gpus": f("gpus"), "kv_capacity_requests": f("kv_capacity_requests"),
        "weights_GiB_per_gpu": f("weights_B_per_gpu") / gib, "feasible": bool(metrics.feasible),
        "ttft_percentiles_ms_poisson": {"p50": ms("ttft_p50_s"), "p90": ms("ttft_p90_s"), "p99": ms("ttft_p99_s")},
        "breakdown_ms": {k: ms(k + "_s") for k in (
            "decode_step", "decode_gemm", "decode_attention", "decode_comm", "decode_overhead", "prefill",
            "prefill_gemm", "prefill_attention", "prefill_comm", "queue", "kv_transfer")},
    }


def run(args) -> int:
    if args.search:
        return _search(args)
    from ..llm import serving_model

    spec = _spec(args)
    m = serving_model(spec)
    if not bool(m.feasible):
        raise ValueError(f"tp/ep: the deployment does not fit: {float(m.weights_B_per_gpu) / 2**30:.1f} GiB of "
                         f"weights per GPU leave no KV cache for one request in "
                         f"{float(spec.accel.main_memory.capacity_B) / 2**30:.0f} GiB of HBM; raise --tp/--ep/"
                         f"--attention-dp or lower --precision")
    print_report(report(m), args.json)
    return 0


def _search(args) -> int:
    from ..problems import search_deployments

    res = search_deployments(_spec(args), gpus=args.gpus, ttft_s=args.ttft_ms / 1e3, tpot_s=args.tpot_ms / 1e3,
                             plot=args.plot)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        best = res["best"]
        print("best:", json.dumps(best) if best else "no deployment meets the SLAs")
        print(f"evaluated {res['evaluated']} deployments, {res['evals_per_s']:.3g} evaluations/s "
              f"(compile {res['compile_s']:.1f} s" + (f", {res['run_evals_per_s']:.3g}/s after compilation)"
                                                      if res["run_evals_per_s"] else ")"))
        if args.plot:
            print(f"wrote {args.plot}")
    return 0 if res["best"] else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(0)
