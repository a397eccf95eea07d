"""BookSim2 configuration files: ``key = value;`` statements, ``//`` and ``/* */`` comments, ``key=value``
command-line overrides (BookSim2 ``config_utils.cpp``), mapped onto :func:`diffsys.topologies.noc_latency`."""

from __future__ import annotations

import re
from typing import NamedTuple

from .._checks import check_name, check_number, parse_number

#: keys the analytical model uses
SUPPORTED_KEYS = ("topology", "k", "n", "routing_function", "num_vcs", "vc_buf_size", "routing_delay",
                  "vc_alloc_delay", "sw_alloc_delay", "credit_delay", "traffic", "packet_size", "injection_rate",
                  "injection_rate_uses_flits", "channel_latency", "hotspot_fraction", "hotspot_nodes")
#: keys read but without an effect on the analytical model (reported as ignored)
NO_EFFECT_KEYS = ("sim_type", "wait_for_tail_credit", "vc_allocator", "sw_allocator", "alloc_iters",
                  "input_speedup", "output_speedup", "internal_speedup", "sample_period", "warmup_periods",
                  "max_samples", "sim_count", "seed", "print_activity", "router", "injection_process",
                  "priority", "latency_thres", "watch_out", "stats_out", "deadlock_warn_timeout")
#: BookSim2 defaults for the supported keys (booksim_config.cpp)
DEFAULTS = {"topology": "torus", "k": 8, "n": 2, "routing_function": "none", "num_vcs": 16, "vc_buf_size": 8,
            "routing_delay": 1, "vc_alloc_delay": 1, "sw_alloc_delay": 1, "credit_delay": 1, "traffic": "uniform",
            "packet_size": 1, "injection_rate": 0.1, "injection_rate_uses_flits": 0, "channel_latency": 1,
            "hotspot_fraction": 0.1, "hotspot_nodes": "{0}"}
_STATEMENT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$", re.DOTALL)


class BooksimConfig(NamedTuple):
    values: dict  # every key given (file then overrides), parsed to int/float/str
    ignored: tuple  # keys given that have no effect on the analytical model
    unknown: tuple  # keys diffsys does not know at all


def _value(text: str):
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    return t


def parse_booksim(text: str, overrides=(), *, source="config") -> BooksimConfig:
    """Parse BookSim2 config text plus ``key=value`` overrides (later ones win, like BookSim)."""
    body = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    body = re.sub(r"//[^\n]*", "", body)
    values = {}
    statements = body.split(";")
    if statements and statements[-1].strip():
        raise ValueError(f"{source}: statement {statements[-1].strip()!r} is missing its terminating ';'")
    for stmt in statements[:-1]:
        if not stmt.strip():
            continue
        m = _STATEMENT.match(stmt)
        if not m:
            raise ValueError(f"{source}: cannot parse statement {stmt.strip()!r} (expected 'key = value;')")
        values[m.group(1)] = _value(m.group(2))
    for ov in overrides:
        if "=" not in ov:
            raise ValueError(f"override {ov!r} must look like key=value")
        key, val = ov.split("=", 1)
        key = key.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"override {ov!r}: bad key {key!r}")
        values[key] = _value(val.rstrip(";"))
    ignored = tuple(k for k in values if k in NO_EFFECT_KEYS)
    unknown = tuple(k for k in values if k not in SUPPORTED_KEYS and k not in NO_EFFECT_KEYS)
    return BooksimConfig(values, ignored, unknown)


def read_booksim_config(path, overrides=()) -> BooksimConfig:
    """Read a BookSim2 config file (see :func:`parse_booksim`)."""
    from .._files import read_text

    return parse_booksim(read_text(path, "BookSim config"), overrides, source=str(path))


class BooksimModel(NamedTuple):
    """What :func:`diffsys.topologies.noc_latency` needs, built from a config."""

    k: int
    n: int
    topology: str
    traffic: str
    params: object  # NocParams
    injection_rate: float  # packets/node/cycle
    hotspot_nodes: tuple
    hotspot_fraction: float


#: sane maxima of the numeric keys (cycles, flits, buffers)
_MAX_CYCLES = 1e6


def _int(values, key, lo=0, hi=2**31 - 1):
    return check_number(key, values.get(key, DEFAULTS[key]), lo, hi, integer=True)


def _float(values, key, lo=0.0, hi=_MAX_CYCLES, unit="cycles"):
    return check_number(key, values.get(key, DEFAULTS[key]), lo, hi, unit=unit)


def booksim_model(cfg: BooksimConfig) -> BooksimModel:
    """Validate a parsed config against what the analytical model supports and build its inputs."""
    from ..topologies import NOC_TOPOLOGIES, TRAFFIC_PATTERNS, NocParams

    v = cfg.values
    topology = str(v.get("topology", DEFAULTS["topology"]))
    check_name("topology", topology, NOC_TOPOLOGIES)
    routing = str(v.get("routing_function", "dor"))
    if routing not in ("dor", "dim_order"):
        raise ValueError(f"routing_function must be 'dor' (dimension-order), got {routing!r}")
    k, n = _int(v, "k", 2, 1024), _int(v, "n", 1, 10)
    if k**n > 1024:
        raise ValueError(f"k^n must be <= 1024 nodes for the analytical route table, got {k**n}")
    traffic = str(v.get("traffic", DEFAULTS["traffic"]))
    check_name("traffic", traffic, TRAFFIC_PATTERNS)
    packet = _float(v, "packet_size", 1.0, unit="flits")
    flits = _int(v, "injection_rate_uses_flits", 0, 1)
    # a Bernoulli injection probability per node and cycle (of a packet, or of a flit with uses_flits = 1)
    rate = _float(v, "injection_rate", 0.0, 1.0, unit="flits/node/cycle" if flits else "packets/node/cycle")
    if flits:
        rate = rate / packet
    nodes = str(v.get("hotspot_nodes", DEFAULTS["hotspot_nodes"])).strip("{} ")
    hot = tuple(parse_number("hotspot_nodes", x, 0, k**n - 1, integer=True) for x in nodes.split(",")
                if x.strip()) or (0,)
    params = NocParams(routing_delay=_float(v, "routing_delay"), vc_alloc_delay=_float(v, "vc_alloc_delay"),
                       sw_alloc_delay=_float(v, "sw_alloc_delay"), credit_delay=_float(v, "credit_delay"),
                       link_delay=_float(v, "channel_latency", 1.0), packet_size=packet,
                       num_vcs=_float(v, "num_vcs", 1.0, unit="VCs"), vc_buf_size=_float(v, "vc_buf_size", 1.0,
                                                                                         unit="flits"))
    return BooksimModel(k, n, topology, traffic, params, rate, hot,
                        _float(v, "hotspot_fraction", 0.0, 1.0, unit=""))
