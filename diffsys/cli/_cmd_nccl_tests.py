"""``diffsys nccl-tests``: nccl-tests' table (size, count, type, time, algbw, busbw) from the analytical model.

    diffsys nccl-tests --op all_reduce -b 1M -e 8G -f 2 -g 8 [--nodes N] --system PRESET_OR_JSON

Sizes step like nccl-tests (``-b/-e`` with K/M/G suffixes in powers of 1024, ``-f`` factor or ``-i`` increment).
A JSON system file holds ``{"name": ..., "accelerator": ..., "dims": [{"kind": "switch", "size": 8,
"bandwidth_Bps": 3e11, "latency_s": 4e-6, ...}, ...]}`` (fields of :class:`diffsys.topologies.Dimension`).
"""

from __future__ import annotations

import os
import sys

OPS = {"all_reduce": "all_reduce", "allreduce": "all_reduce", "all_gather": "all_gather",
       "allgather": "all_gather", "reduce_scatter": "reduce_scatter", "reducescatter": "reduce_scatter",
       "alltoall": "all_to_all", "all_to_all": "all_to_all", "broadcast": "broadcast", "reduce": "reduce",
       "sendrecv": "send_recv", "send_recv": "send_recv"}
_DIM_FIELDS = ("kind", "size", "bandwidth_Bps", "latency_s", "nic_bandwidth_Bps", "efficiency", "overhead_s",
               "in_network_Bps", "in_network", "local_Bps")


def register(subparsers) -> None:
    p = subparsers.add_parser("nccl-tests", help="nccl-tests-style collective bandwidth table from the model",
                              description="Prints nccl-tests' columns for each message size, computed by the "
                                          "analytical collective model instead of running NCCL.")
    p.add_argument("--op", default="all_reduce", choices=sorted(OPS), help="collective (default all_reduce)")
    p.add_argument("-b", "--minbytes", default="32M", help="smallest size (K/M/G suffixes, powers of 1024)")
    p.add_argument("-e", "--maxbytes", default="32M", help="largest size")
    p.add_argument("-f", "--stepfactor", default="2", help="multiplicative step (default 2)")
    p.add_argument("-i", "--stepbytes", default=None, help="additive step (overrides -f)")
    p.add_argument("-g", "--ngpus", type=int, default=None, help="GPUs per node (default: the system's)")
    p.add_argument("--nodes", type=int, default=1, help="number of nodes (outermost dimension), default 1")
    p.add_argument("--system", default="dgx_a100", help="system preset name or a JSON file (default dgx_a100)")
    p.add_argument("-d", "--datatype", default="float", help="element type (sets the element count)")
    p.add_argument("-o", "--op_type", default="sum", help="reduction op (printed only)")
    p.add_argument("-r", "--root", type=int, default=0, help="root rank for broadcast/reduce (printed only)")
    p.add_argument("--algorithm", default="auto", help="auto (NCCL-like choice), all, or one algorithm name")
    p.add_argument("--protocol", default="auto", help="auto, ll, ll128 or simple")
    p.set_defaults(func=run)


def load_system(spec: str):
    """A system preset name, or a JSON file describing one."""
    from ..topologies import Dimension, System, system_preset

    if spec.endswith((".json", ".yaml", ".yml")) or os.path.exists(spec):
        from .._checks import check_keys
        from .._files import read_structured

        data = read_structured(spec, "system file")
        if not isinstance(data, dict):
            raise ValueError(f"{spec}: expected an object with 'dims'")

        check_keys(spec, data, ("name", "accelerator", "dims", "description"))
        if not isinstance(data.get("dims"), list) or not data["dims"]:
            raise ValueError(f"{spec}: 'dims' must be a non-empty list of dimensions")
        dims = []
        for i, d in enumerate(data["dims"]):
            check_keys(f"{spec}: dims[{i}]", d, _DIM_FIELDS)
            for req in ("kind", "size", "bandwidth_Bps"):
                if req not in d:
                    raise ValueError(f"{spec}: dims[{i}] needs '{req}'")
            dims.append(Dimension(**d))
        return System(str(data.get("name", os.path.basename(spec))), tuple(dims),
                      str(data.get("accelerator", "unknown")), str(data.get("description", "")))
    return system_preset(spec)


def run(args) -> int:
    import numpy as np

    from ..io._nccl import DTYPE_BYTES, format_nccl_tests, nccl_sizes

    op = OPS[args.op]
    if args.datatype not in DTYPE_BYTES:
        raise ValueError(f"datatype must be one of {sorted(DTYPE_BYTES)}, got {args.datatype!r}")
    if args.ngpus is not None and args.ngpus < 1:
        raise ValueError(f"-g/--ngpus must be >= 1, got {args.ngpus}")
    if args.nodes < 1:
        raise ValueError(f"--nodes must be >= 1, got {args.nodes}")
    system = load_system(args.system)
    if len(system.dims) > 1:
        system = system.with_nodes(args.nodes, args.ngpus)
    elif args.nodes != 1:
        raise ValueError(f"system {system.name!r} has a single dimension; --nodes must be 1")
    elif args.ngpus is not None:
        system = system.with_sizes(args.ngpus)
    n = round(float(system.n_ranks))
    word = DTYPE_BYTES[args.datatype]
    sizes = []
    for s in nccl_sizes(args.minbytes, args.maxbytes, args.stepfactor, args.stepbytes):
        per = n if op in ("all_gather", "reduce_scatter", "all_to_all") else 1
        count = int(s // (word * per))
        sizes.append((int(count * word * per), count))
    size_arr = np.array([s for s, _ in sizes], dtype=float)
    res = system.collective_time(op, size_arr, algorithm=args.algorithm, protocol=args.protocol)
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
