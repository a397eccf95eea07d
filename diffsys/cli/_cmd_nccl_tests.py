"""``diffsys nccl-tests``: nccl-tests' table (size, count, type, time, algbw, busbw) from the analytical model.

    diffsys nccl-tests --op all_reduce -b 1M -e 8G -f 2 -g 8 [--nodes N] --system PRESET_OR_JSON

Sizes step like nccl-tests (``-b/-e`` with K/M/G suffixes in powers of 1024, ``-f`` factor or ``-i`` increment).
A JSON system file holds ``{"name": ..., "accelerator": ..., "dims": [{"kind": "switch", "size": 8,
"bandwidth_Bps": 3e11, "latency_s": 4e-6, ...}, ...]}`` (fields of :class:`diffsys.topologies.Dimension`).
"""

from __future__ import annotations

import os
import sys

from .._checks import arg_number, check_name

OPS = {"all_reduce": "all_reduce", "allreduce": "all_reduce", "all_gather": "all_gather",
       "allgather": "all_gather", "reduce_scatter": "reduce_scatter", "reducescatter": "reduce_scatter",
       "alltoall": "all_to_all", "all_to_all": "all_to_all", "broadcast": "broadcast", "reduce": "reduce",
       "sendrecv": "send_recv", "send_recv": "send_recv"}
_DIM_FIELDS = ("kind", "size", "bandwidth_Bps", "latency_s", "nic_bandwidth_Bps", "efficiency", "overhead_s",
               "in_network_Bps", "in_network", "local_Bps")
#: sane maxima of the command's counts
MAX_NODES, MAX_GPUS_PER_NODE, MAX_RANKS, MAX_SIZES = 2**17, 4096, 2**20, 10_000
#: numeric fields of a system file's dimension: (lo, hi, lo_open, integer, unit)
_DIM_NUMBERS = {"size": (1, MAX_RANKS, False, True, "ranks"), "bandwidth_Bps": (0.0, None, True, False, "B/s"),
                "latency_s": (0.0, None, False, False, "s"), "nic_bandwidth_Bps": (0.0, None, True, False, "B/s"),
                "efficiency": (0.0, 1.0, True, False, ""), "overhead_s": (0.0, None, False, False, "s"),
                "in_network_Bps": (0.0, None, False, False, "B/s"), "local_Bps": (0.0, None, True, False, "B/s")}


def register(subparsers) -> None:
    p = subparsers.add_parser("nccl-tests", help="nccl-tests-style collective bandwidth table from the model",
                              description="Prints nccl-tests' columns for each message size, computed by the "
                                          "analytical collective model instead of running NCCL.")
    p.add_argument("--op", default="all_reduce", choices=sorted(OPS), help="collective (default all_reduce)")
    p.add_argument("-b", "--minbytes", default="32M", help="smallest size (K/M/G suffixes, powers of 1024)")
    p.add_argument("-e", "--maxbytes", default="32M", help="largest size")
    p.add_argument("-f", "--stepfactor", default="2", help="multiplicative step (default 2)")
    p.add_argument("-i", "--stepbytes", default=None, help="additive step (overrides -f)")
    p.add_argument("-g", "--ngpus", type=arg_number("-g/--ngpus", 1, MAX_GPUS_PER_NODE, integer=True), default=None,
                   help="GPUs per node (default: the system's)")
    p.add_argument("--nodes", type=arg_number("--nodes", 1, MAX_NODES, integer=True), default=1,
                   help="number of nodes (outermost dimension), default 1")
    p.add_argument("--system", default="dgx_a100", help="system preset name or a JSON file (default dgx_a100)")
    p.add_argument("-d", "--datatype", default="float", help="element type (sets the element count)")
    p.add_argument("-o", "--op_type", default="sum", help="reduction op (printed only)")
    p.add_argument("-r", "--root", type=arg_number("-r/--root", 0, MAX_RANKS, integer=True), default=0,
                   help="root rank for broadcast/reduce (printed only)")
    p.add_argument("--algorithm", default="auto", help="auto (NCCL-like choice), all, or one algorithm name")
    p.add_argument("--protocol", default="auto", help="auto, ll, ll128 or simple")
    p.set_defaults(func=run)


def load_system(spec: str):
    """A system preset name, or a JSON file describing one."""
    from ..topologies import Dimension, System, system_preset

    if spec.endswith((".json", ".yaml", ".yml")) or os.path.sep in spec or os.path.exists(spec):
        from .._checks import check_keys, check_number
        from .._files import read_structured

        data = read_structured(spec, "system file")
        if not isinstance(data, dict):
            raise ValueError(f"{spec}: expected an object with 'dims'")

        check_keys(spec, data, ("name", "accelerator", "dims", "description"))
        if not isinstance(data.get("dims"), list) or not data["dims"]:
            raise ValueError(f"{spec}: 'dims' must be a non-empty list of dimensions")
        dims = []
        for i, d in enumerate(data["dims"]):
            if not isinstance(d, dict):
                raise ValueError(f"{spec}: dims[{i}] must be an object with kind, size, bandwidth_Bps, ...")
            check_keys(f"{spec}: dims[{i}]", d, _DIM_FIELDS)
            for req in ("kind", "size", "bandwidth_Bps"):
                if req not in d:
                    raise ValueError(f"{spec}: dims[{i}] needs '{req}'")
            d = dict(d)
            for k, (lo, hi, lo_open, integer, unit) in _DIM_NUMBERS.items():
                if k in d:
                    d[k] = check_number(f"{spec}: dims[{i}].{k}", d[k], lo, hi, lo_open=lo_open, unit=unit,
                                        integer=integer)
            if not isinstance(d.get("in_network", False), bool):
                raise ValueError(f"{spec}: dims[{i}].in_network must be true or false, got {d['in_network']!r}")
            if not isinstance(d["kind"], str):
                raise ValueError(f"{spec}: dims[{i}].kind must be a string, got {d['kind']!r}")
            dims.append(Dimension(**d))
        return System(str(data.get("name", os.path.basename(spec))), tuple(dims),
                      str(data.get("accelerator", "unknown")), str(data.get("description", "")))
    from .._checks import did_you_mean
    from ..topologies import SYSTEM_PRESETS

    try:
        return system_preset(spec)
    except ValueError as e:  # unknown preset: suggest the closest, say a file is allowed too
        raise ValueError(f"--system: {e} (or a .json/.yaml system file){did_you_mean(spec, SYSTEM_PRESETS)}") from None


def run(args) -> int:
    import numpy as np

    from ..io import NCCL_DTYPE_BYTES as DTYPE_BYTES, format_nccl_tests, nccl_sizes
    from ..topologies import ALGORITHMS, PROTOCOLS, collective_time

    op = OPS[args.op]
    check_name("-d/--datatype", args.datatype, DTYPE_BYTES)
    check_name("--algorithm", args.algorithm, ("auto", "all", *ALGORITHMS))
    check_name("--protocol", args.protocol, ("auto", *PROTOCOLS))
    if args.algorithm not in ("auto", "all"):  # defined for this op? (the flat model checks, in microseconds)
        try:
            collective_time(op, 1.0, 2.0, 1e9, 0.0, algorithm=args.algorithm)
        except ValueError as e:
            raise ValueError(f"--algorithm {args.algorithm}: {e}") from None
    size_list = nccl_sizes(args.minbytes, args.maxbytes, args.stepfactor, args.stepbytes, max_sizes=MAX_SIZES)
    system = load_system(args.system)
    if len(system.dims) > 1:
        system = system.with_nodes(args.nodes, args.ngpus)
    elif args.nodes != 1:
        raise ValueError(f"system {system.name!r} has a single dimension; --nodes must be 1")
    elif args.ngpus is not None:
        system = system.with_sizes(args.ngpus)
    n = round(float(system.n_ranks))
    if n > MAX_RANKS:
        raise ValueError(f"--nodes × GPUs per node = {n:,} ranks; at most {MAX_RANKS:,} are modelled")
    if op in ("broadcast", "reduce") and args.root >= n:
        raise ValueError(f"-r/--root must be a rank in [0, {n - 1}], got {args.root}")
    word = DTYPE_BYTES[args.datatype]
    sizes = []
    for s in size_list:
        per = n if op in ("all_gather", "reduce_scatter", "all_to_all") else 1
        count = int(s // (word * per))
        sizes.append((int(count * word * per), count))
    size_arr = np.array([s for s, _ in sizes], dtype=float)
    res = system.collective_time(op, size_arr, algorithm=args.algorithm, protocol=args.protocol,
                                dtype=args.datatype)
    from .._checks import check_finite_tree

    check_finite_tree("collective model: result ", {"time_s": res.time_s, "algbw_Bps": res.algbw_Bps,
                                                   "busbw_Bps": res.busbw_Bps})
    root = args.root if op in ("broadcast", "reduce") else -1
    redop = args.op_type if op in ("all_reduce", "reduce_scatter", "reduce") else "none"
    print(f"# diffsys nccl-tests (analytical model): {op} on {system.name} ({system.description}); "
          f"nRanks {n} ({args.nodes} node(s)); minBytes {sizes[0][0]} maxBytes {sizes[-1][0]}")
    print(format_nccl_tests([s for s, _ in sizes], [c for _, c in sizes], args.datatype, redop,
                            np.asarray(res.time_s), np.asarray(res.algbw_Bps), np.asarray(res.busbw_Bps),
                            root=root))
    print("# Out of bounds values : 0 OK")
    print(f"# Avg bus bandwidth    : {float(np.mean(np.asarray(res.busbw_Bps))) / 1e9:.4g}")
    print("#")
    sys.stdout.flush()
    return 0
