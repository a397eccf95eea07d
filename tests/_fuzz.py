"""Shared pieces of the fuzz suite (``tests/test_fuzz_*.py``): hostile values, mutations of files, and the property
every command and reader must satisfy -- a valid, finite result, or a clean rejection (``ValueError`` /
``FileNotFoundError`` from a reader; exit status 2 and one line on stderr from a command, with no partial output)."""

from __future__ import annotations

import atexit
import collections
import json
import math
import os
import re

import jax
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from diffsys.cli import main

#: derandomized, no deadline (the first example of a command compiles its model)
FUZZ = settings(derandomize=True, deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

#: leaves whose non-finite defaults mean "unknown" (NaN area) or "unlimited" (inf caps), documented on their specs
UNLIMITED_LEAVES = ("area_mm2", "nic_bandwidth_Bps", "local_Bps", "power_cap_W", "thermal_threshold")

HOSTILE_NUMBERS = (0, -1, -0.0, 1e-300, 1e300, 2**64, 10**30, float("nan"), float("inf"), float("-inf"), 0.5, 3,
                   -1e9, 7.25)
HOSTILE_VALUES = HOSTILE_NUMBERS + ("fast", "", None, True, False, [], {}, [1, 2], {"x": 1}, "1e999", "NaN")
HOSTILE_TOKENS = ("nan", "NaN", "inf", "-inf", "1e999", "-1", "0", "-0", "1e-320", "1e308", "abc", "0x10", "1,5",
                  "", "\u00e9", "99999999999999999999999", "3.5", "{}", ";", "//", "=", "-")

#: bad inputs tried, by outcome (written by the suite for the reliability docs when DIFFSYS_FUZZ_COUNTS is set)
COUNTS = collections.Counter()


def _dump_counts():
    path = os.environ.get("DIFFSYS_FUZZ_COUNTS")
    if path and COUNTS:
        with open(path, "w") as f:
            json.dump(dict(COUNTS), f, indent=1, sort_keys=True)


atexit.register(_dump_counts)


# --- strategies ----------------------------------------------------------------------------------------------------

def _paths(obj, at=()):
    """Every path to a node of a JSON-like tree (leaves and containers)."""
    out = [at] if at else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*at, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*at, i))
    return out


@st.composite
def mutated_json(draw, base: dict, n_max: int = 3):
    """``base`` (a JSON object) with 1..n_max mutations: a node replaced by a hostile value, deleted, wrapped in a
    list, or an unknown key added."""
    data = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, n_max))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for k in path[:-1]:
            parent = parent[k]
        key = path[-1]
        op = draw(st.sampled_from(("replace", "replace", "replace", "delete", "wrap", "unknown")))
        if op == "replace":
            parent[key] = draw(st.sampled_from(HOSTILE_VALUES))
        elif op == "delete":
            if isinstance(parent, dict):
                del parent[key]
            else:
                parent.pop(key)
        elif op == "wrap":
            parent[key] = [parent[key]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(("bandwith", "tflop", "x", "GiB ")))] = 1
    return data


@st.composite
def mutated_lines(draw, text: str, n_max: int = 3):
    """``text`` with 1..n_max line-level mutations: a whitespace/'='-separated token replaced by a hostile token,
    a line deleted or duplicated, or a garbage line inserted."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, n_max))):
        op = draw(st.sampled_from(("token", "token", "token", "delete", "duplicate", "garbage")))
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        if op == "token":
            toks = re.split(r"(\s+|=|;)", lines[i])
            idx = [j for j, t in enumerate(toks) if t.strip() and t not in ("=", ";")]
            if idx:
                toks[draw(st.sampled_from(idx))] = draw(st.sampled_from(HOSTILE_TOKENS))
                lines[i] = "".join(toks)
        elif op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        else:
            lines.insert(i, draw(st.sampled_from(("garbage", "a b c d e f g h", "-x", "= ;", "\t", "k = ;",
                                                  "name 1 2 3 4", "-name"))))
    return "\n".join(lines) + "\n"


# --- properties ----------------------------------------------------------------------------------------------------

def non_finite_leaves(obj, allow=UNLIMITED_LEAVES) -> list:
    """Paths of the NaN/inf float leaves of a pytree, except the documented "unknown"/"unlimited" ones."""
    bad = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(obj)[0]:
        try:
            arr = np.asarray(leaf)
        except Exception:  # noqa: BLE001 (non-array leaf)
            continue
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            name = jax.tree_util.keystr(path)
            if not any(a in name for a in allow):
                bad.append(name)
    return bad


def check_reader(fn, *args, **kw):
    """Call a reader: a result with finite values, or ``ValueError``/``FileNotFoundError``. Returns the result or
    ``None``."""
    try:
        result = fn(*args, **kw)
    except (ValueError, FileNotFoundError) as e:
        msg = str(e)
        assert msg and "\n" not in msg.strip(), repr(msg)
        COUNTS["reader rejected"] += 1
        return None
    bad = non_finite_leaves(result)
    assert not bad, f"{fn.__name__} accepted non-finite values at {bad}"
    COUNTS["reader accepted (finite)"] += 1
    return result


_NON_FINITE = re.compile(r"(?<![A-Za-z_])(nan|inf|infinity)(?![A-Za-z_])", re.IGNORECASE)


def check_cli(argv, capsys, outputs=(), folder=None):
    """Run ``diffsys ARGV`` in-process: exit 0 with no non-finite number printed or written, or exit 2 with one line
    on stderr and none of ``outputs`` created. Returns (status, stdout)."""
    before = {p: os.path.exists(p) for p in outputs}
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    if rc == 0:
        assert not _NON_FINITE.search(out), out[-2000:]
        for p in outputs:
            if os.path.exists(p):
                with open(p, encoding="utf-8") as f:
                    assert not _NON_FINITE.search(f.read()), p
        COUNTS["command ran (finite output)"] += 1
    else:
        assert rc == 2, (rc, err)
        lines = err.strip().splitlines()
        assert lines and lines[-1].startswith(f"diffsys {argv[0]}: error: "), err
        assert len([ln for ln in lines if ": error: " in ln]) == 1 and len(lines) == 1, err
        for p in outputs:
            assert os.path.exists(p) == before[p], f"partial output {p} left after an error"
        COUNTS["command rejected (exit 2, one line)"] += 1
    if folder is not None:
        assert not [f for f in os.listdir(folder) if f.endswith(".tmp")], "temporary file left behind"
    return rc, out


def finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
