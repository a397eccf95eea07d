"""``diffsys hotspot``: a drop-in for HotSpot's command line (block and grid steady state, transient trace).

    diffsys hotspot -c CONFIG -f FLP -p PTRACE -steady_file OUT [-model_type block|grid] [-o TTRACE]
                    [-name value ...] [--heatmap PNG]

Like HotSpot, any configuration name may also be given on the command line (``-r_convec 0.2``) and overrides the
config file; the steady state uses the average power of the trace; the transient starts from ``init_temp`` and
advances ``sampling_intvl`` per trace line.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

import numpy as np

from .._files import atomic_write, check_output_file, write_text


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "hotspot", prefix_chars="-",
        help="HotSpot-compatible thermal simulation (block or grid model)",
        description="HotSpot 6 compatible steady-state and transient thermal simulation. Reads HotSpot's config, "
                    "floorplan (.flp) and power trace (.ptrace); writes HotSpot's steady and transient formats.")
    p.add_argument("-c", dest="config", help="HotSpot config file (-name value lines)")
    p.add_argument("-f", dest="flp", required=True, help="floorplan file (.flp)")
    p.add_argument("-p", dest="ptrace", required=True, help="power trace file (.ptrace)")
    p.add_argument("-o", dest="ttrace", help="transient temperature trace output")
    p.add_argument("-steady_file", dest="steady_file", help="steady-state temperatures output")
    p.add_argument("-grid_steady_file", dest="grid_steady_file", help="grid model: per-cell silicon temperatures")
    p.add_argument("-model_type", dest="model_type", choices=("block", "grid"))
    p.add_argument("-init_file", dest="init_file", help="initial temperatures (a steady file) for the transient")
    p.add_argument("--heatmap", dest="heatmap", help="write a PNG heat map of the silicon layer (grid model)")
    p.add_argument("--precision", choices=("float64", "float32"), default="float64",
                   help="arithmetic precision (default float64, like HotSpot)")
    from ..io import HOTSPOT_USED_OPTIONS as _USED

    for name in _USED + ("block_omit_lateral", "grid_rows", "grid_cols", "grid_map_mode", "leakage_used"):
        p.add_argument(f"-{name}", dest=f"override_{name}", metavar="VALUE", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _overrides(extra):
    """``-name value`` pairs from the unparsed command-line tail."""
    pairs, i = [], 0
    while i < len(extra):
        tok = extra[i]
        if not tok.startswith("-") or i + 1 >= len(extra):
            raise ValueError(f"expected '-name value' on the command line, got {' '.join(extra[i:])!r}")
        pairs.append((tok.lstrip("-"), extra[i + 1]))
        i += 2
    return pairs


def run(args, extra=()) -> int:
    import jax

    prev = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", args.precision == "float64")
    try:
        return _run(args, extra)
    finally:
        jax.config.update("jax_enable_x64", prev)


def _run(args, extra=()) -> int:
    import jax.numpy as jnp

    from .. import power as P
    from .. import io as hio

    pairs = []
    if args.config:
        for lineno, line in hio.read_hotspot_lines(args.config):
            parts = line.split()
            if not parts[0].startswith("-") or len(parts) != 2:
                raise ValueError(f"{args.config}:{lineno}: expected '-name value', got {line!r}")
            pairs.append((parts[0][1:], parts[1]))
    pairs += [(k[len("override_"):], v) for k, v in vars(args).items() if k.startswith("override_") and v is not None]
    pairs += _overrides(list(extra))
    if args.model_type:
        pairs.append(("model_type", args.model_type))
    conf = hio.parse_hotspot_config_pairs(pairs, where=args.config or "command line")
    cfg = conf.thermal
    leakage = conf.table.get("leakage_used", "0") not in ("0", "0.0")
    # every input is checked, and every output path, before anything is computed or written
    outputs = {"-steady_file": args.steady_file, "-grid_steady_file": args.grid_steady_file, "-o": args.ttrace,
               "--heatmap": args.heatmap}
    for flag, path in outputs.items():
        if path:
            check_output_file(path, f"{flag} output")
    if len({os.path.abspath(p) for p in outputs.values() if p}) < sum(1 for p in outputs.values() if p):
        raise ValueError("output files must be distinct (-steady_file, -grid_steady_file, -o, --heatmap)")
    if args.ttrace and cfg.model_type != "block":
        raise ValueError("-o (transient trace) is supported with -model_type block")
    if cfg.model_type != "grid" and (args.grid_steady_file or args.heatmap):
        raise ValueError("-grid_steady_file and --heatmap need -model_type grid")

    flp = hio.read_flp(args.flp)
    trace = hio.read_ptrace(args.ptrace)
    power = trace.for_floorplan(flp)
    avg = jnp.asarray(power.mean(axis=0))
    init_table = hio.read_steady(args.init_file) if args.ttrace and args.init_file else None
    writes = []  # (writer, args) run once every result is computed, so a failure leaves no partial output

    if cfg.model_type == "block":
        net = P.block_network(flp, cfg)
        if leakage:
            res = P.steady_state_with_leakage(net, avg, area_m2=flp.area_m2, n_iter=100)
            if bool(res.runaway):
                raise ValueError("too many iterations before temperature-leakage convergence -- possible thermal "
                                 "runaway. Double-check power inputs and package settings.")
            temps = res.temperatures.nodes_K
        else:
            temps = P.solve_steady(net, avg).nodes_K
        names = net.names
    else:
        gnet = P.grid_network(flp, cfg)
        g = P.grid_steady_state(gnet, avg, map_mode=cfg.grid_map_mode)
        temps = np.concatenate([np.asarray(g.layer_block_K).ravel(), np.asarray(g.extra_K)])
        names = P.grid_node_names(flp.names)
        if args.grid_steady_file:
            silicon = np.asarray(g.cells_K[0])[::-1]  # row 0 = north edge, as HotSpot's grid arrays
            if not np.all(np.isfinite(silicon)):
                raise ValueError("grid model: non-finite cell temperature (check the power and package inputs)")
            writes.append((write_text, (args.grid_steady_file,
                                        "".join(f"{i}\t{t:.2f}\n" for i, t in enumerate(silicon.ravel())),
                                        "-grid_steady_file output")))
        if args.heatmap:
            writes.append((_save_heatmap, (args.heatmap, P.plot_heatmap(
                flp, g.cells_K[0], title=f"{pathlib.Path(args.flp).name}: silicon layer (steady)"))))

    steady_text = hio.format_steady(names, temps)  # raises on a non-finite temperature
    if args.steady_file:
        writes.append((write_text, (args.steady_file, steady_text, "-steady_file output")))

    if args.ttrace:
        net = P.block_network(flp, cfg)
        init = cfg.init_temp
        if init_table is not None:
            missing = [n for n in net.names if n not in init_table]
            if missing:
                raise ValueError(f"{args.init_file}: no temperature for node(s) {missing[:5]}")
            init = jnp.asarray([init_table[n] for n in net.names])
        # exact zero-order-hold solve per sampling interval (power constant over each sample, as HotSpot assumes)
        tr = P.transient(net, jnp.asarray(power), cfg.sampling_intvl, init, method="exact")
        writes.append((hio.write_ttrace, (args.ttrace, flp.names, np.asarray(tr.block_K))))

    for write, write_args in writes:
        write(*write_args)
    for name in conf.unknown:  # after the run, so that an error stays the only line on stderr
        print(f"warning: unknown configuration parameter -{name} (ignored)", file=sys.stderr)
    if not args.steady_file:
        sys.stdout.write(hio.format_steady(names[:flp.n_blocks], np.asarray(temps)[:flp.n_blocks]))
    return 0


def _save_heatmap(path, fig) -> None:
    with atomic_write(path, "--heatmap output", binary=True) as f:
        fig.savefig(f, format="png", dpi=150, bbox_inches="tight")


def main(argv=None) -> int:
    """Stand-alone entry (``python -m diffsys.cli._cmd_hotspot ...``)."""
    parser = argparse.ArgumentParser(prog="diffsys hotspot")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args, extra = parser.parse_known_args(["hotspot", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run(args, extra)
    except (ValueError, OSError) as e:  # the same one-line error and status as the diffsys command
        print(f"diffsys hotspot: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
