"""``diffsys booksim``: BookSim2's overall latency/throughput lines from the analytical NoC model.

    diffsys booksim CONFIG [key=value ...]

Reads a BookSim2 config (``key = value;``, ``//`` comments; ``key=value`` overrides like BookSim) for a mesh or
torus with dimension-order routing, and prints ``Packet latency average = X`` and ``Accepted packet rate average
= Y`` (packets/node/cycle), or a clear message when the injection rate is past saturation. Keys the analytical
model ignores, and unknown keys, are reported on stderr.
"""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("booksim", help="BookSim2-compatible NoC latency/throughput from the model",
                              description="Analytical k-ary n-cube NoC model driven by a BookSim2 config.")
    p.add_argument("config", help="BookSim2 configuration file")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides, as on BookSim's command line")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..io import booksim_model, read_booksim_config
    from ..topologies import noc_latency, traffic_matrix

    cfg = read_booksim_config(args.config, args.overrides)
    m = booksim_model(cfg)  # validate every value before anything is printed
    if cfg.ignored:
        print(f"diffsys booksim: note: keys with no effect on the analytical model: {', '.join(cfg.ignored)}",
              file=sys.stderr)
    if cfg.unknown:
        print(f"diffsys booksim: warning: unsupported keys ignored: {', '.join(cfg.unknown)}", file=sys.stderr)
    traffic = m.traffic
    if traffic == "hotspot":
        traffic = traffic_matrix("hotspot", m.k, m.n, hotspot_nodes=m.hotspot_nodes,
                                 hotspot_fraction=m.hotspot_fraction)
    r = noc_latency(m.injection_rate, m.params, traffic, k=m.k, n=m.n, topology=m.topology)
    print(f"// diffsys analytical model: {m.k}-ary {m.n}-{m.topology}, dor, traffic = {m.traffic}, "
          f"packet_size = {float(m.params.packet_size):g}, injection_rate = {m.injection_rate:g}")
    print(f"// saturation throughput = {float(r.saturation_rate):.6g} packets/node/cycle "
          f"(max channel utilization {float(r.max_channel_utilization):.4g})")
    if bool(r.saturated):
        print(f"Simulation unstable: injection rate {m.injection_rate:g} is past the saturation throughput "
              f"{float(r.saturation_rate):.6g} packets/node/cycle; latency grows without bound.")
        print(f"Accepted packet rate average = {float(r.accepted_rate):.6g} (saturated)")
        return 0
    from .._checks import check_finite_tree

    check_finite_tree("analytical NoC model: result ", {k: getattr(r, k) for k in (
        "latency_cycles", "network_latency_cycles", "zero_load_latency_cycles", "accepted_rate", "hops_avg")})
    print("====== Overall Traffic Statistics ======")
    print("====== Traffic class 0 ======")
    print(f"Packet latency average = {float(r.latency_cycles):.6g} (1 samples)")
    print(f"Network latency average = {float(r.network_latency_cycles):.6g} (1 samples)")
    print(f"Zero-load latency = {float(r.zero_load_latency_cycles):.6g}")
    print(f"Injected packet rate average = {m.injection_rate:.6g} (1 samples)")
    print(f"Accepted packet rate average = {float(r.accepted_rate):.6g} (1 samples)")
    print(f"Hops average = {float(r.hops_avg):.6g} (1 samples)")
    return 0
