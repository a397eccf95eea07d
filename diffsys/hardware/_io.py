"""Load and save :class:`Accelerator` specs as JSON or YAML so users can describe their own chips.

Format (all numbers SI)::

    {"name": "MyChip",
     "matrix_flops": {"bf16": 1e15, "fp8": 2e15},
     "vector_flops": {"fp32": 6e13},
     "memory": [{"name": "sram", "capacity_B": 2e8, "bandwidth_Bps": 3e13, "latency_s": 2e-8,
                 "energy_J_per_B": 3e-13},
                {"name": "hbm", "capacity_B": 8e10, "bandwidth_Bps": 3e12}],
     "power": {"tdp_W": 500, "idle_W": 60, "static_fraction": 0.3},
     "main_memory": "hbm",
     "frequency_Hz": 1.8e9, "num_cores": 128, "sparsity_speedup": 2,
     "link_bandwidth_Bps": 4.5e11, "nic_bandwidth_Bps": 5e10, "energy_J_per_flop": 3e-13,
     "compute_memory_overlap": 1,
     "calibration": {"gemm": {"bf16": {"launch_s": 2.5e-6}}}}

``calibration`` (optional) holds fitted kernel constants, ``{kind: {dtype: {name: value}}}``; see
:attr:`Accelerator.calibration`.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import yaml

from .._checks import check_keys
from .._files import read_structured
from ._presets import preset
from ._spec import Accelerator, MemoryLevel, PowerSpec

_TOP_KEYS = {"name", "matrix_flops", "vector_flops", "memory", "power", "main_memory", "frequency_Hz", "num_cores",
             "sparsity_speedup", "link_bandwidth_Bps", "nic_bandwidth_Bps", "energy_J_per_flop", "compute_memory_overlap",
             "calibration"}
_MEM_KEYS = {"name", "capacity_B", "bandwidth_Bps", "latency_s", "energy_J_per_B", "area_mm2"}
_POWER_KEYS = {"tdp_W", "idle_W", "static_fraction"}
_SCALARS = ("frequency_Hz", "num_cores", "sparsity_speedup", "link_bandwidth_Bps", "nic_bandwidth_Bps",
            "energy_J_per_flop", "compute_memory_overlap")


def _num(x):
    v = float(np.asarray(x))
    return None if math.isnan(v) else v


def accelerator_to_dict(acc: Accelerator) -> dict:
    """A JSON-serialisable dict describing ``acc`` (inverse of :func:`accelerator_from_dict`)."""
    return {
        "name": acc.name,
        "matrix_flops": {k: _num(v) for k, v in acc.matrix_flops.items()},
        "vector_flops": {k: _num(v) for k, v in acc.vector_flops.items()},
        "memory": [{k: (m.name if k == "name" else _num(getattr(m, k))) for k in
                    ("name", "capacity_B", "bandwidth_Bps", "latency_s", "energy_J_per_B", "area_mm2")}
                   for m in acc.memory],
        "power": {k: _num(getattr(acc.power, k)) for k in ("tdp_W", "idle_W", "static_fraction")},
        "main_memory": acc.main_memory.name,
        **{k: _num(getattr(acc, k)) for k in _SCALARS},
        "calibration": {kind: {d: {c: _num(v) for c, v in consts.items()} for d, consts in table.items()}
                        for kind, table in acc.calibration.items()},
    }


def accelerator_from_dict(d: dict, where: str = "accelerator") -> Accelerator:
    """Build an :class:`Accelerator` from a dict; unknown or missing keys raise ``ValueError`` naming them."""
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected an object, got {type(d).__name__}")
    check_keys(where, d, _TOP_KEYS)
    for req in ("name", "matrix_flops", "memory", "power"):
        if req not in d:
            raise ValueError(f"{where}: missing required key {req!r}")
    if not isinstance(d["memory"], list) or not d["memory"]:
        raise ValueError(f"{where}.memory must be a non-empty list of memory levels")
    for key in ("matrix_flops", "vector_flops"):
        if not isinstance(d.get(key, {}), dict):
            raise ValueError(f"{where}.{key} must map dtype names to FLOP/s, got {d[key]!r:.60}")
    levels = []
    for i, m in enumerate(d["memory"]):
        check_keys(f"{where}.memory[{i}]", m, _MEM_KEYS)
        for req in ("name", "capacity_B", "bandwidth_Bps"):
            if req not in m:
                raise ValueError(f"{where}.memory[{i}]: missing required key {req!r}")
        kw = {k: (math.nan if v is None else v) for k, v in m.items() if k != "name"}
        if not isinstance(m["name"], str):
            raise ValueError(f"{where}.memory[{i}].name must be a string, got {m['name']!r}")
        levels.append(MemoryLevel(m["name"], **kw))
    check_keys(f"{where}.power", d["power"], _POWER_KEYS)
    names = [m.name for m in levels]
    main = d.get("main_memory", names[-1])
    if main not in names:
        raise ValueError(f"{where}.main_memory must be one of {names}, got {main!r}")
    scalars = {k: d[k] for k in _SCALARS if k in d and d[k] is not None}
    return Accelerator(d["name"], d["matrix_flops"], d.get("vector_flops", {}), levels, PowerSpec(**d["power"]),
                       main_memory_index=names.index(main), calibration=d.get("calibration"), **scalars)


def save_accelerator(acc: Accelerator, path: str | os.PathLike) -> None:
    """Write ``acc`` as JSON (``.json``) or YAML (``.yaml``/``.yml``)."""
    data = accelerator_to_dict(acc)
    path = os.fspath(path)
    with open(path, "w") as f:
        if path.endswith((".yaml", ".yml")):
            yaml.safe_dump(data, f, sort_keys=False)
        else:
            json.dump(data, f, indent=2)


def load_accelerator(path_or_name: str | os.PathLike) -> Accelerator:
    """An accelerator from a JSON/YAML file, or a preset name when no such file exists."""
    path = os.fspath(path_or_name)
    if not os.path.exists(path) and not path.endswith((".json", ".yaml", ".yml")):
        return preset(path)
    return accelerator_from_dict(read_structured(path, "accelerator file"), where=path)
