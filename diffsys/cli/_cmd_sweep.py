"""``diffsys sweep``: the main job — sweep a design space, print the best configurations and the throughput, write
a Pareto plot (PNG) and the front as CSV/JSON.

The embedded default (``--problem llm``) is a full-stack co-design sweep of GPT-3 175B training on 1,024 HGX H100
GPUs (:func:`diffsys.llm.training_step`): tensor/pipeline parallel degrees (data parallelism fills the rest),
microbatch, interleaving, activation recompute, ZeRO stage, sequence parallelism × NVLink and scale-out bandwidth ×
HBM capacity and bandwidth — 2,540,160 configurations, about a minute on a 2-core CPU including compilation — with
the cluster's capital cost as the second objective. ``--model``/``--system``/``--gpus`` change the workload and
machine, ``--space FILE`` the parameters (paths into :class:`diffsys.llm.TrainingDesign`, e.g. ``par.tp``,
``cluster.network.dims.1.bandwidth_Bps``, ``cluster.network.dims.1.algorithm``,
``cluster.accelerator.memory.hbm.capacity_B``); ``--space full_stack`` sweeps the collective algorithm of each
network dimension and the scale-up domain size with the workload, bandwidths and HBM bandwidth (1,451,520 points).

``--problem roofline`` is the accelerator co-design sweep on the roofline model: the GEMMs of one GPT-3 175B layer
(training, 4,096 tokens per microbatch) plus a batch-8 decode step, over matrix-unit peak, HBM bandwidth and on-chip
SRAM capacity, with a silicon+HBM cost proxy as the second objective.
"""

from __future__ import annotations

import json
import os
import sys

from ..problems import AcceleratorDesign, accelerator_model as roofline_model, accelerator_space as roofline_space
from ..space import load_space
from .._checks import SEED_MAX, arg_number, did_you_mean, with_suggestion
from .._files import check_input_file, check_output_dir, check_output_file
from . import _provenance
from ._sweep_report import column_units, format_table, json_safe, plot_front, write_rows

#: sane maxima of the command's counts
MAX_GPUS, MAX_GLOBAL_BATCH, MAX_TOP = 2**20, 2**24, 10_000

_LLM_COLUMNS = (("par.tp", "tp"), ("par.pp", "pp"), ("dp", "dp"), ("par.microbatch", "mb"), ("par.interleave", "v"),
                ("par.recompute", "recompute"), ("par.zero_stage", "zero"), ("par.sequence_parallel", "sp"),
                ("cluster.network.dims.0.size", "scaleup_gpus"),
                ("cluster.network.dims.0.algorithm", "scaleup_alg"), ("cluster.network.dims.1.algorithm", "scaleout_alg"),
                ("cluster.network.dims.0.bandwidth_Bps", "nvlink_GBps"),
                ("cluster.network.dims.1.bandwidth_Bps", "nic_GBps"),
                ("cluster.accelerator.memory.hbm.capacity_B", "hbm_GiB"),
                ("cluster.accelerator.memory.hbm.bandwidth_Bps", "hbm_TBps"), ("time_s", "step_s"), ("mfu", "mfu"),
                ("memory_B", "mem_GiB"), ("capex_usd", "capex_MUSD"), ("power_W", "power_kW"))
_SCALE = {"nvlink_GBps": 1e-9, "nic_GBps": 1e-9, "hbm_GiB": 2.0**-30, "hbm_TBps": 1e-12, "mem_GiB": 2.0**-30,
          "capex_MUSD": 1e-6, "power_kW": 1e-3}
_RECOMPUTE = ("none", "selective", "full")
_LLM_NAMES = dict(_LLM_COLUMNS)


def llm_rows(rows: list) -> list:
    """Readable rows (units in the column names) from sweep labels of the LLM problem: the one naming of the
    printed table, the summary JSON and the front's CSV/JSON."""
    out = []
    for r in rows:
        row = {}
        for key, name in _LLM_COLUMNS:
            if key not in r:
                continue
            v = r[key]
            if name == "recompute" and not isinstance(v, str):
                v = _RECOMPUTE[int(round(v))]
            elif name in _SCALE:
                v = float(v) * _SCALE[name]
            row[name] = v
        # any other swept path of a --space file keeps its path as the column name
        row.update({k: v for k, v in r.items() if "." in k and k not in _LLM_NAMES})
        out.append(row)
    return out


def register(sub):
    p = sub.add_parser("sweep", help="sweep a design space (default: GPT-3 175B training on 1,024 H100s)",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--problem", choices=("llm", "roofline"), default="llm",
                   help="llm: distributed training co-design (default); roofline: accelerator co-design")
    p.add_argument("--model", default="gpt3_175b",
                   help="transformer preset (e.g. gpt3_175b, llama3_70b, mixtral_8x7b) or a Calculon model JSON")
    p.add_argument("--system", default="hgx_h100",
                   help="cluster preset (hgx_h100, dgx_a100, hgx_h200, hgx_b200) or a Calculon system JSON")
    p.add_argument("--gpus", type=int, default=1024, help="GPUs in the job (default 1024)")
    p.add_argument("--global-batch", type=int, default=1536, help="sequences per step (default 1536)")
    p.add_argument("--space", help="JSON/YAML design space replacing the default parameters, or a named space: "
                                   "full_stack (workload x collective algorithm x network shape and bandwidths x "
                                   "HBM; diffsys.llm.full_stack_space)")
    p.add_argument("--samples", type=arg_number("--samples", 1, 2**31 - 1, integer=True), default=None,
                   help="random samples instead of the full grid")
    p.add_argument("--top", type=int, default=10, help="how many best configurations to print (default 10)")
    p.add_argument("--out", default="diffsys_out",
                   help="output folder for the plot and the front (default diffsys_out)")
    p.add_argument("--chunk-size", type=arg_number("--chunk-size", 1, 1 << 24, integer=True), default=1 << 16,
                   help="points per jitted chunk")
    p.add_argument("--checkpoint", help="checkpoint file; with --resume, continue an interrupted sweep")
    p.add_argument("--resume", action="store_true", help="resume from --checkpoint")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary instead of tables")
    p.add_argument("--seed", type=arg_number("--seed", 0, SEED_MAX, integer=True), default=0,
                   help="PRNG seed of --samples in [0, 2^63-1] (default 0; recorded in the outputs)")
    p.add_argument("--shard", type=parse_shard, default=None, metavar="I/N",
                   help="evaluate only shard I of N (0-based; disjoint blocks of chunks); combine the N output "
                        "folders with `diffsys merge`")
    p.add_argument("--force", action="store_true", help="overwrite a previous run's outputs in --out")
    _provenance.add_cache_arguments(p)
    p.set_defaults(func=run)


def parse_shard(text: str):
    """``I/N`` -> ``(I, N)`` with ``0 <= I < N``."""
    import argparse

    try:
        i, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard must be I/N (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n or n > 1 << 20:
        raise argparse.ArgumentTypeError(f"--shard I/N needs 1 <= N <= {1 << 20:,} and 0 <= I < N, got {text!r}")
    return i, n


def _llm_problem(args):
    from .. import llm

    if not 1 <= args.gpus <= MAX_GPUS:
        raise ValueError(f"--gpus must be >= 1 and <= {MAX_GPUS:,}, got {args.gpus}")
    if not 1 <= args.global_batch <= MAX_GLOBAL_BATCH:
        raise ValueError(f"--global-batch must be >= 1 and <= {MAX_GLOBAL_BATCH:,}, got {args.global_batch}")
    if args.model.endswith(".json"):
        from ..io import read_calculon_model

        model = read_calculon_model(args.model)
    else:
        model = _preset("--model", llm.transformer_preset, args.model)
    if args.system.endswith(".json"):
        from ..io import read_calculon_system

        system = read_calculon_system(args.system, n_gpus=args.gpus)
    else:
        system = _preset("--system", llm.cluster_preset, args.system, args.gpus)
    base = llm.default_training_design(model, system, args.gpus, args.global_batch)
    named = {"default": llm.default_training_space, "full_stack": llm.full_stack_space}
    space = (named[args.space](base) if args.space in named
             else load_space(args.space, base=base) if args.space else llm.default_training_space(base))
    return space, llm.training_model


def _preset(flag, factory, name, *extra):
    try:
        return factory(name, *extra)
    except ValueError as e:  # unknown preset: suggest the closest name
        raise with_suggestion(flag, e, name) from None


def _check_outputs(args) -> None:
    """Output folder and checkpoint checked before the sweep runs (a bad path must not cost a sweep)."""
    check_output_dir(args.out, "--out folder")
    _provenance.check_fresh_output(args.out, getattr(args, "force", False))
    if args.resume and not args.checkpoint:
        raise ValueError("--resume needs --checkpoint FILE")
    if args.checkpoint:
        if args.resume:
            check_input_file(args.checkpoint, "--checkpoint file")
        check_output_file(args.checkpoint, "--checkpoint file")


def _check_metrics(model, space, names) -> None:
    """Every metric the command reads (objective, Pareto objectives, ``feasible``) must be one the model returns;
    an unknown name is an error with the closest known name (the sweep would otherwise treat it as absent)."""
    from ..optimize import metrics_type

    try:  # shapes only: one abstract trace of the model, shared with the sweep engine (memoized)
        known = set(metrics_type(model, space).metric_names())
    except Exception:  # noqa: BLE001 (a best-effort probe; the sweep itself reports model errors)
        return
    if not known:
        return
    for name in names:
        if name not in known:
            raise ValueError(f"metric {name!r} is not returned by the model; it returns "
                             f"{', '.join(sorted(known))}{did_you_mean(name, known)}")


_PROBLEMS: dict = {}  # problem_of memo: repeated commands in one process (tests, notebooks) reuse compiled engines


def problem_of(args):
    """The sweep problem of the parsed arguments: ``(space, model, pareto, title, axis labels, row naming)``.

    Memoized on the arguments that define it (and the space file's modification time), so a second command in the
    same process gets the same space object and hence the compiled sweep engine."""
    files = [f for f in (args.space, args.model, args.system) if f and os.path.isfile(f)]
    memo = (args.problem, args.space, args.model, args.system, args.gpus, args.global_batch,
            tuple(os.stat(f).st_mtime_ns for f in files))
    if memo not in _PROBLEMS:
        if len(_PROBLEMS) >= 8:
            _PROBLEMS.pop(next(iter(_PROBLEMS)))
        _PROBLEMS[memo] = _build_problem(args)
    return _PROBLEMS[memo]


def _build_problem(args):
    if args.problem == "roofline":
        space = load_space(args.space, base=AcceleratorDesign()) if args.space else roofline_space()
        return (space, roofline_model, ("time_s", "cost_usd"), "Accelerator co-design: GPT-3 layer time vs cost",
                ("cost proxy (USD)", "time per layer (s)"), list)
    space, model = _llm_problem(args)
    return (space, model, ("time_s", "capex_usd"), f"{args.model} on {args.gpus} GPUs: step time vs cluster capex",
            ("cluster capital cost (million USD)", "training step time (s)"), llm_rows)


def run(args) -> int:
    if not 1 <= args.top <= MAX_TOP:
        raise ValueError(f"--top must be >= 1 and <= {MAX_TOP:,}, got {args.top}")
    _check_outputs(args)
    cache = _provenance.enable_compilation_cache(args.cache_dir, not args.no_cache)
    space, model, pareto, *_ = problem = problem_of(args)
    _check_metrics(model, space, ("time_s", "feasible", *pareto))
    result = _sweep(model, space, pareto, args)
    return report(args, problem, result, "sweep", cache)


def report(args, problem, result, command: str, cache=None, extra=None) -> int:
    """Write the outputs of a sweep (or a merge of shards) to ``args.out`` — front CSV/JSON with a provenance
    sidecar, Pareto plot with provenance metadata, ``summary.json`` and ``sweep_result.npz`` — and print the table
    or the JSON summary. One naming (``to_rows``) for the table, the summary and the front files."""
    from ..optimize import save_result

    space, _, pareto, title, labels, to_rows = problem
    front_raw = result.pareto_labels()
    best_raw = result.labels()[: args.top]
    front, best = to_rows(front_raw), to_rows(best_raw)
    names = {p: _LLM_NAMES.get(p, p) if to_rows is llm_rows else p for p in pareto}
    record = _provenance.provenance(args, command, fingerprint=space.fingerprint(),
                                    seed=args.seed if args.samples is not None else None,
                                    extra={"shards": [list(s) for s in result.shards],
                                           "compilation_cache": cache, **(extra or {})})
    writer = _is_writer()
    os.makedirs(args.out, exist_ok=True)
    files = []
    if writer:
        files = write_rows(front, os.path.join(args.out, "pareto_front"), provenance=record)
        if front:
            files.append(plot_front(front, names[pareto[1]], names[pareto[0]],
                                    os.path.join(args.out, "pareto_front.png"), title, best[0] if best else None,
                                    xlabel=labels[0], ylabel=labels[1],
                                    metadata=_provenance.png_metadata(record)))
        files.append(save_result(result, os.path.join(args.out, "sweep_result.npz")))
    summary = {
        "problem": args.problem,
        "configs_evaluated": result.n_evaluated,
        "configs_feasible": result.n_feasible,
        "seconds": result.seconds,
        "compile_seconds": result.compile_seconds,
        "run_seconds": result.run_seconds,
        "configs_per_second": result.evals_per_s,
        "configs_per_second_after_compile": getattr(result, "steady_per_s", result.run_evals_per_s),
        "first_chunk_seconds": getattr(result, "first_chunk_s", float("nan")),
        "best": best[0] if best else None,
        "top": best,
        "columns": column_units(best or front),
        "pareto_front_size": len(front),
        "files": files + [os.path.join(args.out, "summary.json")],
        "provenance": record,
    }
    if writer:
        from .._files import atomic_write

        with atomic_write(os.path.join(args.out, "summary.json"), "summary") as f:
            json.dump(json_safe(summary), f, indent=2)
    if not writer:
        return 0
    if args.json:
        json.dump(json_safe(summary), sys.stdout, indent=2)
        print()
        return 0
    print(format_table(best))
    shards = "" if result.shards == [(0, 1)] else f" [shard {', '.join(f'{i}/{n}' for i, n in result.shards)}]"
    print(f"\n{result.n_evaluated:,} configurations ({result.n_feasible:,} feasible){shards} in "
          f"{result.seconds:.2f} s = {result.evals_per_s:,.0f} configs/s overall; compile "
          f"{result.compile_seconds:.2f} s, run {result.run_seconds:.2f} s = {result.run_evals_per_s:,.0f} configs/s after compilation")
    print(f"Pareto front ({len(front)} points) -> {', '.join(files)}")
    return 0


def _is_writer() -> bool:
    import jax

    return jax.process_index() == 0


def _sweep(model, space, pareto, args):
    import time

    import jax

    from ..optimize import sweep

    key = None if args.samples is None else jax.random.key(args.seed)
    stamps = []

    def callback(done, total):
        stamps.append((done, time.perf_counter()))

    t0 = time.perf_counter()
    result = sweep(model, space, "time_s", top_k=args.top, pareto=pareto, n_samples=args.samples, key=key,
                   chunk_size=args.chunk_size, checkpoint=args.checkpoint, resume=args.resume,
                   progress=not args.json, callback=callback, shard=args.shard)
    t_end = time.perf_counter()
    # throughput after the first chunk, whose dispatch includes compilation (later chunks run asynchronously, so
    # the rate is taken over the wall time from the first chunk to the end)
    result.first_chunk_s = stamps[0][1] - t0 if stamps else float("nan")
    if len(stamps) >= 2:
        done0, total = stamps[0][0], stamps[-1][0]
        rest = result.n_evaluated * (total - done0) / total
        result.steady_per_s = rest / max(t_end - stamps[0][1], 1e-9)
    else:
        result.steady_per_s = float("nan")
    return result


__all__ = ["llm_rows", "parse_shard", "problem_of", "register", "report", "roofline_model", "roofline_space",
           "run"]
