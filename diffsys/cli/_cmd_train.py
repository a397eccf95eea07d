"""``diffsys train``: step time, throughput, MFU, memory and the step's breakdown of one LLM training configuration.

    diffsys train --model meta-llama/Llama-3.1-70B --system dgx_h100 --gpus 64 --tp 4 --pp 4 --vp 5 \\
        --gbs 128 --mbs 1 --seq 8192 --dtype fp8 [--cp 1 --ep 1 --dp 4] [--recompute selective] [--zero 1] \\
        [--sequence-parallel] [--document-length N] [--json]

The model is a Hugging Face id of the catalogue (``diffsys.llm.CATALOG_IDS``), a ``config.json`` path, or a
:func:`diffsys.llm.transformer_preset` name (``gpt3_175b``, ``llama2_70b``, ...). ``dp = gpus / (tp·pp·cp)``; expert
parallelism is carved out of ``dp·cp``. The step is :func:`diffsys.llm.training_step` on
:func:`diffsys.llm.cluster_preset`; FP8/FP4 follow :func:`diffsys.llm.precision_recipe` (per-tensor FP8 on Hopper,
MXFP8 and NVFP4 on Blackwell). Formulas, sources and the NeMo validation: docs/llm.md ("diffsys train").
"""

from __future__ import annotations

import dataclasses

from .._checks import arg_number
from ._args import add_counts, count, print_report

#: --system name -> diffsys.llm.cluster_preset name
SYSTEMS = {"dgx_a100": "dgx_a100", "dgx_h100": "dgx_h100", "dgx_h200": "dgx_h200", "dgx_b200": "dgx_b200",
           "gb200_nvl72": "gb200_nvl72"}
_GIB = 2.0**30
_BREAKDOWN = ("compute_fwd", "compute_bwd", "recompute", "tp_comm", "cp_comm", "ep_comm", "pp_comm", "bubble",
              "dp_comm", "optimizer", "offload")


def register(subparsers) -> None:
    from ..llm import RECOMPUTE_MODES, TRAINING_DTYPES
    from ._provenance import add_cache_arguments

    p = subparsers.add_parser("train", help="LLM training step time, tokens/s/GPU, MFU, memory and breakdown",
                              description="Step time, throughput, MFU, per-GPU memory and the step's breakdown of "
                                          "one distributed LLM training configuration.")
    p.add_argument("--model", required=True,
                   help="Hugging Face id (e.g. meta-llama/Llama-3.1-8B), config.json path or diffsys preset name")
    p.add_argument("--system", default="dgx_h100", choices=sorted(SYSTEMS))
    add_counts(p, {"--gpus": 8, "--tp": 1, "--pp": 1, "--cp": 1, "--vp": 1, "--ep": 1, "--mbs": 1},
               {"--vp": "virtual pipeline stages per GPU (interleaved 1F1B)", "--mbs": "micro-batch (sequences)"})
    p.add_argument("--dp", type=count("--dp"), default=None, help="data parallel degree (default gpus/(tp·pp·cp))")
    p.add_argument("--gbs", type=count("--gbs"), default=None, help="global batch in sequences (default dp·mbs)")
    p.add_argument("--seq", type=count("--seq"), default=None, help="sequence length (default: the model's)")
    p.add_argument("--dtype", default="bf16", choices=TRAINING_DTYPES, help="GEMM precision of the linear layers")
    p.add_argument("--recompute", default="none", choices=RECOMPUTE_MODES)
    p.add_argument("--zero", type=arg_number("--zero", 0, 3, integer=True), default=1,
                   help="ZeRO stage 0-3 (default 1: Megatron's distributed optimizer)")
    p.add_argument("--sequence-parallel", action="store_true", help="Megatron sequence parallelism (with tp > 1)")
    p.add_argument("--tp-overlap", type=arg_number("--tp-overlap", 0.0, 1.0), default=0.0,
                   help="fraction of TP communication overlapped with GEMMs (default 0)")
    p.add_argument("--dp-overlap", type=arg_number("--dp-overlap", 0.0, 1.0), default=1.0,
                   help="fraction of DP communication overlapped with the backward (default 1)")
    p.add_argument("--pp-overlap", type=arg_number("--pp-overlap", 0.0, 1.0), default=0.0,
                   help="fraction of each pipeline send/receive overlapped with one model chunk's compute "
                        "(Megatron-Core overlap_p2p_comm, interleaved schedule; default 0)")
    p.add_argument("--sustained-clock", type=arg_number("--sustained-clock", 0.0, 1.0, lo_open=True), default=None,
                   help="core clock under sustained training load, as a fraction of the boost clock (default: "
                        "the system preset's, diffsys.llm.SUSTAINED_CLOCK_SOURCES)")
    p.add_argument("--document-length", type=arg_number("--document-length", 0.0, None), default=0.0,
                   help="mean tokens per document packed into a sequence (packed fine-tuning: attention stays "
                        "within each document); default 0 = one document per sequence")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_cache_arguments(p)
    p.set_defaults(func=run)


def resolve_model(name: str):
    """``(Transformer, ModelArch or None, source)`` of a ``--model`` value: a catalogue id, a ``config.json`` path or
    a transformer preset name. Features the training step does not model raise ``ValueError`` naming them."""
    from ..llm import PRESET_SOURCES, model_arch, transformer_preset

    key = str(name).lower().replace("-", "_").replace(".", "_")
    if key in PRESET_SOURCES:
        return transformer_preset(key), None, PRESET_SOURCES[key]
    try:
        arch = model_arch(name)
    except ValueError as e:
        msg = str(e).removeprefix("model: ")
        presets = ", ".join(sorted(PRESET_SOURCES))
        msg = msg.replace("(or pass a config.json path)", f"(or pass a config.json path or a preset: {presets})")
        raise ValueError(f"--model: {msg}") from None
    return arch.transformer, arch, arch.source


def _divisors(n: int, limit: int) -> str:
    return ", ".join(str(d) for d in range(1, min(n, limit) + 1) if n % d == 0)


def build(args):
    """``(model, cluster, parallelism, info)`` of the parsed arguments, every inconsistency a ``ValueError`` naming the
    flag and its valid values."""
    from ..llm import Parallelism, check_parallelism, cluster_preset, precision_recipe

    model, arch, source = resolve_model(args.model)
    heads, kv, layers = int(float(model.n_heads)), int(float(model.n_kv_heads)), int(float(model.n_layers))
    experts, max_seq = int(float(model.n_experts)), int(float(model.max_seq_len))
    seq = int(float(model.seq_len)) if args.seq is None else args.seq
    tp, pp, cp, vp, ep, mbs, gpus = args.tp, args.pp, args.cp, args.vp, args.ep, args.mbs, args.gpus

    def need(cond, msg):
        if not cond:
            raise ValueError(msg)

    need(seq <= max_seq, f"--seq must be in [1, {max_seq}] (the model's context window), got {seq}")
    need(heads % tp == 0, f"--tp {tp} must divide the model's {heads} attention heads (valid: "
                          f"{_divisors(heads, max(gpus, tp))})")
    need(kv % tp == 0 or tp % kv == 0, f"--tp {tp} and the model's {kv} KV heads: one must divide the other")
    need(vp == 1 or pp > 1, f"--vp {vp} needs --pp > 1 (interleaving splits each pipeline stage)")
    need(layers % (pp * vp) == 0, f"--pp·--vp = {pp * vp} must divide the model's {layers} layers (valid pp·vp: "
                                  f"{_divisors(layers, layers)})")
    need(gpus % (tp * pp * cp) == 0, f"--gpus {gpus} must be a multiple of tp·pp·cp = {tp * pp * cp} "
                                      f"(dp = gpus / (tp·pp·cp))")
    dp = gpus // (tp * pp * cp)
    if args.dp is not None:
        need(args.dp == dp, f"--gpus {gpus} must equal tp·pp·dp·cp = {tp * pp * args.dp * cp}")
    gbs = dp * mbs if args.gbs is None else args.gbs
    need(gbs % (dp * mbs) == 0, f"--gbs {gbs} must be a multiple of dp·mbs = {dp * mbs}")
    need(cp == 1 or seq % (2 * cp) == 0, f"--cp {cp}: 2·cp must divide --seq {seq} (load-balanced causal split)")
    if experts > 1:
        need(experts % ep == 0, f"--ep {ep} must divide the model's {experts} experts (valid: "
                                f"{_divisors(experts, dp * cp)})")
        need((dp * cp) % ep == 0, f"--ep {ep} must divide dp·cp = {dp * cp} (expert parallelism is carved out of "
                                  f"data and context parallelism)")
    else:
        need(ep == 1, f"--ep {ep} needs a mixture-of-experts model; {args.model} is dense (valid: 1)")
    try:
        recipe = precision_recipe(_accelerator(args.system), args.dtype)
    except ValueError as e:  # "dtype fp4 needs fp4 matrix units, which ... lacks; supported ...": name the flag
        raise ValueError(f"--{e}") from None
    # one display name for every model: the name is static structure of the compiled step, so models that differ
    # only in their sizes share one compilation
    model = dataclasses.replace(model, name="train", seq_len=seq)
    clock = {} if args.sustained_clock is None else {"sustained_clock": args.sustained_clock}
    cluster = cluster_preset(SYSTEMS[args.system], gpus, dtype=args.dtype, **clock)
    par = Parallelism(tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, microbatch=mbs, global_batch=gbs, interleave=vp,
                      sequence_parallel=bool(args.sequence_parallel), recompute=args.recompute,
                      zero_stage=args.zero, tp_overlap=args.tp_overlap, dp_overlap=args.dp_overlap,
                      pp_overlap=args.pp_overlap, flash_attention=True,
                      document_length=args.document_length)
    check_parallelism(model, cluster, par)
    notes = []
    if arch is not None and float(arch.sliding_fraction) > 0:
        notes.append(f"sliding-window attention ({float(arch.sliding_fraction):.0%} of the layers, window "
                     f"{float(arch.sliding_window):g}) is timed as full causal attention (an upper bound)")
    info = dict(model=args.model, source=source, system=args.system, gpus=gpus, seq=seq, gbs=gbs, dp=dp,
                recipe=recipe["recipe"], notes=notes)
    return model, cluster, par, info


def _accelerator(system: str):
    from ..hardware import preset
    from ..llm import CLUSTER_ACCELERATORS

    return preset(CLUSTER_ACCELERATORS[SYSTEMS[system]])


def report(metrics, cluster, info, args) -> dict:
    """The printed fields of a :class:`~diffsys.llm.TrainingMetrics` (seconds, GiB, tokens/s)."""
    f = lambda name: float(getattr(metrics, name))  # noqa: E731
    gpus = info["gpus"]
    step = f("time_s")
    out = {
        "model": info["model"], "system": info["system"], "gpus": gpus, "dtype": args.dtype, "recipe": info["recipe"],
        "parallelism": {"tp": args.tp, "pp": args.pp, "dp": info["dp"], "cp": args.cp, "ep": args.ep, "vp": args.vp,
                        "gbs": info["gbs"], "mbs": args.mbs, "seq": info["seq"], "microbatches": f("n_microbatches"),
                        "recompute": args.recompute, "zero": args.zero,
                        "sequence_parallel": bool(args.sequence_parallel)},
        "step_s": step, "tokens_per_s_per_gpu": f("tokens_per_s") / gpus, "tflops_per_gpu": f("tflops_per_gpu"),
        "mfu": f("mfu"), "hfu": f("hfu"), "mem_GiB": f("memory_B") / _GIB, "fits": bool(metrics.fits),
        "memory_GiB": {k: f(k + "_B") / _GIB for k in ("weights", "gradients", "optimizer", "activations")}
        | {"capacity": f("memory_capacity_B") / _GIB},
        "breakdown_s": {k: f(k + "_s") for k in _BREAKDOWN},
        "breakdown_fraction": {k: f(k + "_s") / step for k in _BREAKDOWN},
        "power_W": f("power_W"), "energy_J_per_step": f("energy_J"),
        "notes": list(info["notes"]),
    }
    if not out["fits"]:
        out["notes"].append(f"needs {out['mem_GiB']:.1f} GiB per GPU, more than the "
                            f"{out['memory_GiB']['capacity']:.0f} GiB of HBM: raise --tp/--pp/--zero or --recompute")
    return out


def evaluate(args) -> dict:
    """The report of one parsed ``diffsys train`` command (what ``run`` prints)."""
    from ..llm import training_step

    model, cluster, par, info = build(args)
    return report(training_step(model, cluster, par), cluster, info, args)


def run(args) -> int:
    from ._provenance import enable_compilation_cache

    enable_compilation_cache(args.cache_dir, not args.no_cache)
    out = evaluate(args)
    if args.json:
        print_report(out, True)
        return 0
    title = (f"{out['model']} on {out['system']}, {out['gpus']} GPUs, {out['dtype']} ({out['recipe']})")
    notes = out.pop("notes")
    print_report(out, False, title=title)
    for n in notes:
        print(f"note: {n}")
    return 0
