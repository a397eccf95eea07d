"""Design spaces from JSON/YAML, so sweeps can be described in a file (``diffsys sweep --space FILE``).

Format::

    params:
      accel.memory.hbm.bandwidth_Bps: {kind: continuous, lo: 1.0e12, hi: 8.0e12, log: true, grid: 8}
      tp: {kind: divisor, n: 64}
      pp: {kind: power_of_two, lo: 1, hi: 64}
      layers_per_stage: {kind: integer, lo: 1, hi: 12}
      recompute: {kind: categorical, options: [none, selective, full]}
      cluster.network.dims.1.algorithm: {kind: categorical, options: [auto, ring, tree],
                                         vocabulary: [auto, ring, tree, halving_doubling, direct, bruck, in_network]}
    constraints:
      - {product: [tp, pp, dp], equals: 1024}
"""

from __future__ import annotations

import os

from .._checks import check_keys, check_number
from .._files import read_structured
from ._domains import Categorical, Continuous, DivisorOf, Integer, PowerOfTwo
from ._space import DesignSpace, product_equals

_KINDS = {
    "continuous": (Continuous, {"lo", "hi", "log", "grid"}),
    "integer": (Integer, {"lo", "hi", "step"}),
    "power_of_two": (PowerOfTwo, {"lo", "hi"}),
    "divisor": (DivisorOf, {"n", "lo", "hi"}),
    "categorical": (Categorical, {"options", "vocabulary"}),
}


def domain_from_dict(d: dict, where="domain"):
    if not isinstance(d, dict) or "kind" not in d:
        raise ValueError(f"{where}: expected an object with a 'kind' in {sorted(_KINDS)}")
    kind = d["kind"]
    if not isinstance(kind, str) or kind not in _KINDS:
        raise ValueError(f"{where}.kind must be one of {sorted(_KINDS)}, got {kind!r}")
    cls, allowed = _KINDS[kind]
    args = {k: v for k, v in d.items() if k != "kind"}
    check_keys(where, args, allowed)
    try:
        return cls(**args)
    except (TypeError, OverflowError) as e:  # a wrong type or an infinite count in the file
        raise ValueError(f"{where}: {e}") from None


def space_from_dict(d: dict, base=None, where="space") -> DesignSpace:
    """A :class:`DesignSpace` from a dict (see the module docstring for the format)."""
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected an object with 'params'")
    check_keys(where, d, {"params", "constraints"})
    if "params" not in d or not d["params"] or not isinstance(d["params"], dict):
        raise ValueError(f"{where}: 'params' must map at least one path to a domain")
    params = {name: domain_from_dict(spec, f"{where}.params.{name}") for name, spec in d["params"].items()}
    constraints = []
    if not isinstance(d.get("constraints", []) or [], list):
        raise ValueError(f"{where}.constraints must be a list of {{product: [names], equals: number}}")
    for i, c in enumerate(d.get("constraints", []) or []):
        check_keys(f"{where}.constraints[{i}]", c, {"product", "equals"})
        product = c.get("product", [])
        if not isinstance(product, list) or not all(isinstance(n, str) for n in product):
            raise ValueError(f"{where}.constraints[{i}].product must be a list of parameter names")
        missing = [n for n in product if n not in params]
        if missing or "equals" not in c:
            raise ValueError(f"{where}.constraints[{i}]: needs 'product' (names of params) and 'equals'; "
                             f"unknown names {missing}")
        constraints.append(product_equals(product, check_number(f"{where}.constraints[{i}].equals", c["equals"],
                                                                0.0, None, lo_open=True)))
    return DesignSpace(params, base=base, constraints=constraints)


def load_space(path: str | os.PathLike, base=None) -> DesignSpace:
    """A :class:`DesignSpace` from a JSON or YAML file."""
    return space_from_dict(read_structured(path, "space file"), base=base, where=os.fspath(path))
