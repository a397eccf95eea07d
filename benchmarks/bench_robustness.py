"""Numerical robustness: each family's main model at random design points over wide ranges, in float32, counting
NaN/inf in the metric values and in their gradients.

    python benchmarks/bench_robustness.py [--points 100000] [--chunk 4096] [--families roofline,power_device,...]

For each family a base spec is perturbed along a few of its leaves (log-uniform over several decades around the
base, or uniform over a bounded domain such as an injection rate in [0, 1]); the model is ``jit(vmap)``-ed over the
points and ``jit(vmap(grad))`` of its main metric w.r.t. those leaves is taken at the same points. Points are valid
inputs (inside each field's documented domain), only extreme: any non-finite value or gradient is a model bug.
``tests/test_robustness.py`` runs the same check on 1,000 points per family.
"""

from __future__ import annotations

import argparse
import functools
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

#: family -> builder returning (scalar model of a parameter vector, parameter names, sampler of the vector, metric)
FAMILIES = {}


def family(fn):
    FAMILIES[fn.__name__] = fn
    return fn


def _log_uniform(key, n, lo, hi):
    return jnp.exp(jax.random.uniform(key, (n,), jnp.float32, jnp.log(lo), jnp.log(hi)))


def _sampler(ranges):
    """Sampler of an (n, len(ranges)) float32 matrix; each range is ("log", lo, hi), ("lin", lo, hi) or ("int", lo,
    hi) (log-uniform, rounded: counts)."""

    def sample(key, n):
        keys = jax.random.split(key, len(ranges))
        cols = [(jax.random.uniform(k, (n,), jnp.float32, lo, hi) if kind == "lin" else
                 _log_uniform(k, n, lo, hi)) for k, (kind, lo, hi) in zip(keys, ranges)]
        cols = [jnp.round(c) if kind == "int" else c for c, (kind, _, _) in zip(cols, ranges)]
        return jnp.stack(cols, axis=1)

    return sample


def _setter(base, getters):
    """``f(x)``: ``base`` with the leaves selected by ``getters`` replaced by ``x[i]`` (float32)."""

    def build(x):
        return eqx.tree_at(lambda t: [g(t) for g in getters], base, [x[i].astype(jnp.float32)
                                                                     for i in range(len(getters))])

    return build


@family
def roofline():
    from diffsys import hardware
    from diffsys.roofline import OpSpec, op_model

    h100 = hardware.h100_sxm()
    base = OpSpec(1e12, 1e9, 1e8, h100, matrix=1.0)
    getters = [lambda s: s.flops, lambda s: s.bytes_read, lambda s: s.bytes_written, lambda s: s.matrix]
    build = _setter(base, getters)
    ranges = [("log", 1.0, 1e18), ("log", 1.0, 1e15), ("log", 1.0, 1e15), ("lin", 0.0, 1.0)]
    return lambda x: op_model(build(x)), ["flops", "bytes_read", "bytes_written", "matrix"], _sampler(ranges), \
        "time_s"


@family
def topologies():
    from diffsys.topologies import CollectiveSpec, collective_model, system_preset

    base = CollectiveSpec(system_preset("hgx_h100"), 2.0**20)
    getters = [lambda s: s.size_B, lambda s: s.system.dims[0].bandwidth_Bps, lambda s: s.system.dims[1].bandwidth_Bps,
               lambda s: s.system.dims[0].latency_s, lambda s: s.system.dims[1].size]
    build = _setter(base, getters)
    ranges = [("log", 1.0, 2.0**44), ("log", 1e8, 1e14), ("log", 1e8, 1e13), ("log", 1e-9, 1e-3),
              ("int", 2.0, 65536.0)]
    return lambda x: collective_model(build(x)), ["size_B", "bw0", "bw1", "lat0", "nodes"], _sampler(ranges), \
        "time_s"


@family
def power_device():
    from diffsys import hardware
    from diffsys.power import DevicePowerSpec, device_power_model

    base = DevicePowerSpec(hardware.h100_sxm(), 1e12, 1e9, 1.5e9, power_cap_W=700.0)
    getters = [lambda s: s.flops, lambda s: s.bytes_moved, lambda s: s.clock_Hz, lambda s: s.die_temperature_K,
               lambda s: s.power_cap_W]
    build = _setter(base, getters)
    ranges = [("log", 1.0, 1e18), ("log", 1.0, 1e15), ("log", 1e7, 5e9), ("lin", 250.0, 420.0), ("log", 1.0, 1e5)]
    return lambda x: device_power_model(build(x)), ["flops", "bytes", "clock", "temp", "cap"], _sampler(ranges), \
        "energy_J"


class _Thermal(eqx.Module):
    time_s: jax.Array  # hottest block temperature (K), under the name the harness reads


@family
def power_thermal():
    """Block thermal model (HotSpot ev6-like 4-block case): steady state vs block powers and the convection
    resistance."""
    import pathlib

    from diffsys import power
    from diffsys.io import read_flp

    here = pathlib.Path(__file__).resolve().parents[2] / "shared" / "validation" / "hotspot" / "caseD.flp"
    flp = read_flp(here) if here.is_file() else power.Floorplan(("a", "b"), [0.01, 0.01], [0.01, 0.01],
                                                               [0.0, 0.01], [0.0, 0.0])
    cfg0 = power.ThermalConfig()
    nb = flp.n_blocks

    def model(x):
        cfg = eqx.tree_at(lambda c: (c.r_convec, c.k_chip), cfg0, (x[nb].astype(jnp.float32),
                                                                   x[nb + 1].astype(jnp.float32)))
        net = power.block_network(flp, cfg)
        temps = power.solve_steady(net, x[:nb]).nodes_K
        return _Thermal(jnp.max(temps[:nb]))

    ranges = [("log", 1e-3, 1e3)] * nb + [("log", 1e-3, 10.0), ("log", 1.0, 1000.0)]
    return model, [f"P{i}" for i in range(nb)] + ["r_convec", "k_chip"], _sampler(ranges), "time_s"


@family
def llm():
    from diffsys import llm as L

    base = L.default_training_design(gpus=64, global_batch=128)
    paths = ["cluster.accelerator.memory.hbm.bandwidth_Bps", "cluster.accelerator.memory.hbm.capacity_B",
             "par.microbatch"]
    from diffsys.space import get_path

    getters = [functools.partial(lambda p, t: get_path(t, p), p) for p in paths]
    build = _setter(base, getters)
    ranges = [("log", 1e10, 1e14), ("log", 2.0**30, 2.0**40), ("int", 1.0, 2.0)]
    return lambda x: L.training_model(build(x)), paths, _sampler(ranges), "time_s"


@family
def chiplet():
    from diffsys import chiplet as C

    w = C.transformer(layers=1, batch=2)
    graph = C.D2DGraph.build(2, 2, placements=["west", "west_east"])
    mcm = C.MCMModel(w, graph)
    base = C.PackageSpec(mcm.uniform_design("token", "none", "west"), C.ChipletPackage.split(4, "organic"))
    model = C.package_model(mcm)
    getters = [lambda s: s.package.peak_flops]
    build = _setter(base, getters)
    return lambda x: model(build(x)), ["peak_flops"], _sampler([("log", 1e9, 1e17)]), "edp_Js"


class _Noc(eqx.Module):
    time_s: jax.Array


@family
def noc():
    from diffsys.topologies import NocParams, noc_latency

    def model(x):
        p = NocParams(routing_delay=x[1], vc_alloc_delay=1.0, sw_alloc_delay=1.0, credit_delay=1.0, link_delay=x[2],
                      packet_size=x[3], num_vcs=8.0, vc_buf_size=x[4])
        return _Noc(noc_latency(x[0], p, "uniform", k=4, n=2, topology="mesh").latency_cycles)

    ranges = [("lin", 0.0, 1.0), ("lin", 0.0, 8.0), ("log", 1.0, 100.0), ("log", 1.0, 64.0), ("log", 1.0, 64.0)]
    return model, ["rate", "routing", "link", "packet", "buf"], _sampler(ranges), "time_s"


def _values(metrics):
    leaves = [jnp.asarray(v) for v in jax.tree_util.tree_leaves(metrics)]
    return [v for v in leaves if jnp.issubdtype(v.dtype, jnp.floating)]


def check_family(name: str, n_points: int, chunk: int = 4096, seed: int = 0) -> dict:
    """Counts of points with a non-finite metric value / gradient for one family."""
    model, names, sample, metric = FAMILIES[name]()

    def scalar(x):
        return getattr(model(x), metric)

    values = jax.jit(jax.vmap(lambda x: jnp.stack([jnp.all(jnp.isfinite(v)) for v in _values(model(x))])))
    grads = jax.jit(jax.vmap(jax.grad(scalar)))
    key = jax.random.key(seed)
    bad_v = bad_g = done = 0
    worst = None
    t0 = time.perf_counter()
    while done < n_points:
        key, sub = jax.random.split(key)
        m = min(chunk, n_points - done)
        x = sample(sub, chunk)
        ok_v = np.asarray(values(x))[:m].all(axis=1)
        ok_g = np.isfinite(np.asarray(grads(x)))[:m].all(axis=1)
        if worst is None and not (ok_v.all() and ok_g.all()):
            i = int(np.argmin(ok_v & ok_g))
            worst = dict(zip(names, map(float, np.asarray(x[i]))))
        bad_v += int((~ok_v).sum())
        bad_g += int((~ok_g).sum())
        done += m
    return {"family": name, "points": done, "non_finite_values": bad_v, "non_finite_gradients": bad_g,
            "seconds": time.perf_counter() - t0, "first_bad_point": worst}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, default=100_000)
    p.add_argument("--chunk", type=int, default=4096)
    p.add_argument("--families", default=",".join(FAMILIES))
    args = p.parse_args(argv)
    print(f"{'family':<14}{'points':>10}{'NaN/inf values':>16}{'NaN/inf grads':>15}{'seconds':>9}")
    total_bad = 0
    for name in args.families.split(","):
        r = check_family(name, args.points, args.chunk)
        total_bad += r["non_finite_values"] + r["non_finite_gradients"]
        print(f"{name:<14}{r['points']:>10,}{r['non_finite_values']:>16,}{r['non_finite_gradients']:>15,}"
              f"{r['seconds']:>9.1f}" + (f"   e.g. {r['first_bad_point']}" if r["first_bad_point"] else ""),
              flush=True)
    return 1 if total_bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
