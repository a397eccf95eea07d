"""Device power from roofline utilisation, power caps, throttling, energy and energy-delay product.

Model (at clock ``f`` and voltage ``V = V(f)`` from a :class:`~diffsys.power.DVFSCurve`, die temperature ``T``)::

    P = P_idle + P_leak + P_dyn
    P_leak = s·(TDP − P_idle) · (V/V₀) · exp(β·(T − T_ref))            # s = PowerSpec.static_fraction
    P_dyn  = (1 − s)·(TDP − P_idle) · [w_c·u_c·(f/f₀)(V/V₀)² + (1 − w_c)·u_m]

with roofline utilisations ``u_c = t_compute/t`` and ``u_m = t_memory/t`` (Williams et al., CACM 2009) of the
library's op model (:func:`diffsys.roofline.op_time`, the kernel times the LLM family uses too), so a device
running a compute- and bandwidth-saturating kernel at its nominal clock ``f₀`` and ``T_ref`` draws exactly its TDP,
and memory-bound phases (LLM decode) draw well under TDP (as measured by Patel et al., "POLCA", 2024, and
Stojkovic et al., "DynamoLLM", HPCA 2025). ``w_c`` (default 0.85) is the share of switching power in the SMs/cores
(incl. their SRAM/L2 traffic) versus the off-chip memory system at full load — an assumption, not a fit; the core term scales as ``f·V²`` (CMOS switching),
the memory term does not (HBM runs on its own clock). Leakage follows HotSpot's exponential law with a default
β = 0.02 /K (leakage doubling every ~35 K, an assumption for FinFET-era devices; HotSpot's planar-era default is
0.036 /K).

Power caps and thermal limits set the clock through :func:`constrained_clock`: the highest clock in
``[f_min, f_max]`` at which every constraint holds, found by bisection, with the gradient of the implicit function
theorem (``df*/dθ = −(∂g/∂θ)/(∂g/∂f)`` on the active constraint) so sweeps and optimizers can differentiate through
throttling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import logging

import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx

from ..hardware import Accelerator
from ..primitives import increasing_root, relative_temperature, smooth_max, smooth_min
from ..roofline import OpCost, op_time
from .._checks import check_positive
from .._status import log_unconverged, succeeded
from ._dvfs import DVFSCurve

logger = logging.getLogger(__name__)


def default_dvfs(acc: Accelerator) -> DVFSCurve:
    """An alpha-power-law curve whose top point is the device's boost clock at 1.0 V (a generic assumption; use a
    measured V–f table when you have one)."""
    return DVFSCurve(f_max_Hz=acc.frequency_Hz, v_max_V=1.0, v_min_V=0.65, v_th_V=0.3, alpha=1.3)


class DevicePower(NamedTuple):
    power_W: jnp.ndarray
    dynamic_W: jnp.ndarray
    leakage_W: jnp.ndarray
    idle_W: jnp.ndarray
    time_s: jnp.ndarray
    energy_J: jnp.ndarray
    edp_Js: jnp.ndarray  # energy-delay product
    compute_util: jnp.ndarray
    memory_util: jnp.ndarray
    clock_Hz: jnp.ndarray
    voltage_V: jnp.ndarray


def device_power(acc: Accelerator, flops, bytes_moved=None, *, dtype: str = "bf16", clock_Hz=None,
                 dvfs: DVFSCurve | None = None, die_temperature_K=358.15, ref_temperature_K=358.15,
                 compute_share=0.85, beta_per_K=0.02, efficiency=None, temperature=0.0,
                 voltage_V=None, time_s=None) -> DevicePower:
    """Power, time, energy and EDP of a workload on ``acc``: ``flops`` FLOPs on the matrix units moving
    ``bytes_moved`` bytes to main memory, or an :class:`~diffsys.roofline.OpCost` (e.g. ``roofline.gemm(m, n, k)``,
    whose GEMM kernels the calibrated kernel model times) as ``flops`` with ``bytes_moved=None``.

    The time is the library's op model, :func:`diffsys.roofline.op_time` (``efficiency``: ``None`` = its
    size-dependent / calibrated efficiencies, a number or ``(compute, memory)`` pair = constants); there is no
    separate efficiency model here. ``clock_Hz`` defaults to the device's boost clock; the compute time scales with
    ``acc.frequency_Hz / clock_Hz``, the memory time does not (``t = t_op − max(t_c, t_m) + max(t_c·f₀/f, t_m)``,
    the roofline at the scaled peak). ``die_temperature_K`` is the physical die temperature (kelvin) that sets the
    leakage; ``temperature`` is only the relaxation temperature of the roofline's max (0 = exact). ``voltage_V``
    (default: ``dvfs.voltage(clock_Hz)``) skips the V(f) solve when the caller already has it.

    ``time_s``: the wall time of the workload when a fuller model timed it (e.g. an LLM inference step with its
    kernel launches, attention kernels and collectives, :func:`diffsys.llm.inference_step`); the utilisations are
    then the roofline busy times over that time, ``u = min(t_busy / time_s, 1)`` (smooth at ``temperature > 0``),
    and the energy is ``P · time_s``. This is how the LLM family reports power: one device-power model.
    """
    dvfs = default_dvfs(acc) if dvfs is None else dvfs
    if isinstance(flops, OpCost):
        if bytes_moved is not None:
            raise ValueError("device_power: pass bytes_moved only with a FLOP count, not with an OpCost")
        op = flops
    else:
        if bytes_moved is None:
            raise ValueError("device_power: bytes_moved is required with a FLOP count")
        f_ = jnp.asarray(flops, dtype=float)
        op = OpCost(f_, jnp.asarray(bytes_moved, dtype=float) + 0.0 * f_, 0.0 * f_, 1.0)
    f0 = dvfs.f_max_Hz
    f = f0 if clock_Hz is None else jnp.asarray(clock_Hz)
    v0 = dvfs.v_max_V
    v = dvfs.voltage(f) if voltage_V is None else jnp.asarray(voltage_V)
    rl = op_time(op, acc, dtype, efficiency, temperature)
    t_c0, t_m = rl.compute_time_s, rl.memory_time_s
    t_c = t_c0 * acc.frequency_Hz / f
    T0 = relative_temperature(temperature, t_c0, t_m)
    T1 = relative_temperature(temperature, t_c, t_m)
    if time_s is None:
        time_s = rl.time_s - smooth_max(t_c0, t_m, T0) + smooth_max(t_c, t_m, T1)
        u_c = t_c / time_s
        u_m = t_m / time_s
    else:
        time_s = jnp.asarray(time_s, dtype=float)
        check_positive("device_power.time_s", time_s)
        u_c = smooth_min(t_c / time_s, 1.0, temperature)
        u_m = smooth_min(t_m / time_s, 1.0, temperature)
    spec = acc.power
    budget = spec.tdp_W - spec.idle_W
    leak = spec.static_fraction * budget * (v / v0) * jnp.exp(beta_per_K * (die_temperature_K - ref_temperature_K))
    dyn = (1 - spec.static_fraction) * budget * (compute_share * u_c * (f / f0) * (v / v0) ** 2
                                                 + (1 - compute_share) * u_m)
    p = spec.idle_W + leak + dyn
    e = p * time_s
    return DevicePower(p, dyn, leak, jnp.broadcast_to(spec.idle_W, jnp.shape(p)), time_s, e, e * time_s,
                       u_c, u_m, jnp.broadcast_to(f, jnp.shape(p)), v)


def _f_min(dvfs: DVFSCurve, f_min_Hz):
    """Lowest clock considered: the argument, else the curve's ``f_min_Hz`` when set, else 10% of the top clock."""
    if f_min_Hz is not None:
        return f_min_Hz
    return jnp.where(dvfs.f_min_Hz > 0, dvfs.f_min_Hz, 0.1 * dvfs.f_max_Hz)


class ConstrainedClock(NamedTuple):
    clock_Hz: jnp.ndarray
    feasible: jnp.ndarray  # bool: the constraints hold at clock_Hz (False if even f_min violates them)
    violation: jnp.ndarray  # max relative constraint violation at clock_Hz (≤ 0 when feasible)
    throttled: jnp.ndarray  # bool: clock below f_max
    converged: jnp.ndarray  # bool: the root find met its tolerance (True where no root was needed)


def constrained_clock(violation_fn: Callable, f_min_Hz, f_max_Hz, *, n_bisect: int = 80,
                      temperature=0.0) -> ConstrainedClock:
    """Highest clock with ``violation_fn(f) ≤ 0`` for a violation increasing in ``f``.

    ``violation_fn(f)`` returns one relative violation or a tuple of them (e.g. ``(P/cap − 1, T/T_max − 1)``);
    they are combined with a max (smooth at ``temperature > 0``). The root of the combined violation in ``log f``
    is an :func:`optimistix.root_find` (bisection, at most ``n_bisect`` steps, ``throw=False``, tolerances ~100
    machine epsilons) whose gradient w.r.t. anything ``violation_fn`` closes over is the implicit-function gradient
    ``df*/dθ = −(∂g/∂θ)/(∂g/∂f)`` (optimistix's ``ImplicitAdjoint``); ``converged`` reports its result code. A
    violation with array output (elementwise constraints) is bisected elementwise for ``n_bisect`` halvings.
    """

    def g(f):
        out = violation_fn(f)
        if isinstance(out, (tuple, list)):
            acc = out[0]
            for o in out[1:]:
                acc = smooth_max(acc, o, temperature)
            return acc
        return out

    f_lo, f_hi = jnp.asarray(f_min_Hz, float), jnp.asarray(f_max_Hz, float)
    lo0, hi0 = jax.lax.stop_gradient(jnp.log(f_lo)), jax.lax.stop_gradient(jnp.log(f_hi))
    g_max = g(f_hi)
    g_min = g(f_lo)
    unconstrained = jax.lax.stop_gradient(g_max) <= 0
    infeasible = jax.lax.stop_gradient(g_min) > 0
    if jnp.shape(g_max) == () and jnp.shape(lo0) == () and jnp.shape(hi0) == ():
        f_implicit, val, converged = _clock_root(g, lo0, hi0, unconstrained | infeasible, n_bisect)
    else:
        u, val = increasing_root(lambda u: g(jnp.exp(u)), lo0 + 0.0 * g_max, hi0 + 0.0 * g_max, n_bisect)
        f_implicit = jnp.exp(u)  # value at the feasible end, gradient -g_θ/g_f
        converged = jnp.ones(jnp.shape(val), bool)
    f_star = jnp.where(unconstrained, f_hi, jnp.where(infeasible, f_lo, f_implicit))
    viol = jnp.where(unconstrained, g_max, jnp.where(infeasible, g_min, val))
    converged = converged | unconstrained | infeasible
    log_unconverged(logger, converged, "constrained-clock root find")
    return ConstrainedClock(f_star, ~infeasible, viol, ~unconstrained, converged)


def _clock_root(g, lo, hi, inactive, max_steps):
    """Root of ``g(exp(u))`` in ``u ∈ [lo, hi]`` (``g`` increasing) by :class:`optimistix.Bisection`; where
    ``inactive`` (no sign change in the bracket) the function is replaced by ``u − mid`` so the solve ends at once
    and contributes no gradient. Returns ``(clock, violation at it, converged)``."""
    eps = float(jnp.finfo(jnp.result_type(lo, float)).eps)
    mid = 0.5 * (lo + hi)

    def fn(u, off):
        return jnp.where(off, u - mid, g(jnp.exp(u)))

    sol = optx.root_find(fn, optx.Bisection(rtol=10 * eps, atol=100 * eps, flip=False), mid, inactive,
                         options={"lower": lo, "upper": hi}, max_steps=max_steps, throw=False)
    f = jnp.exp(sol.value)
    return f, g(f), succeeded(sol.result)


@eqx.filter_jit
def power_capped_clock(acc: Accelerator, flops, bytes_moved, cap_W, *, dvfs: DVFSCurve | None = None,
                       f_min_Hz=None, **power_kw) -> ConstrainedClock:
    """Highest clock at which :func:`device_power` stays within ``cap_W`` (a TDP or operator power cap);
    ``f_min_Hz`` defaults to the DVFS curve's ``f_min_Hz`` (or 10% of the top clock when that is 0)."""
    dvfs = default_dvfs(acc) if dvfs is None else dvfs
    fn = lambda f: device_power(acc, flops, bytes_moved, clock_Hz=f, dvfs=dvfs, **power_kw).power_W / cap_W - 1.0
    return constrained_clock(fn, _f_min(dvfs, f_min_Hz), dvfs.f_max_Hz)


class Throttle(NamedTuple):
    clock_Hz: jnp.ndarray
    power_W: jnp.ndarray
    peak_K: jnp.ndarray
    time_s: jnp.ndarray
    energy_J: jnp.ndarray
    feasible: jnp.ndarray
    violation: jnp.ndarray
    throttled: jnp.ndarray


def throttle(acc: Accelerator, flops, bytes_moved, *, thermal, power_split, temp_limit_K, cap_W=None,
             dvfs: DVFSCurve | None = None, f_min_Hz=None, n_leak_iter: int = 100, temperature=0.0,
             **power_kw) -> Throttle:
    """Highest clock such that the peak die temperature ≤ ``temp_limit_K`` and power ≤ ``cap_W``.

    ``thermal`` is a :class:`~diffsys.power.SteadySolver` of the die; ``power_split`` (n,) distributes the device
    power over its blocks (sums to 1). The same solve as :func:`~diffsys.power.throttled_accelerator` with
    ``thermal=BlockJunction(thermal, power_split)`` (leakage–temperature fixed point of at most ``n_leak_iter``
    steps at each clock, leakage at the peak temperature), reported as a :class:`Throttle`.
    """
    from ._throttle import BlockJunction, _throttled_accelerator

    dtype = power_kw.pop("dtype", "bf16")
    cap = jnp.inf if cap_W is None else cap_W
    th = _throttled_accelerator(acc, flops, None if bytes_moved is None else jnp.asarray(bytes_moved, float),
                                jnp.asarray(cap, float),
                                jnp.asarray(temp_limit_K, float), None, None, BlockJunction(thermal, power_split),
                                dvfs, f_min_Hz, dtype, 1e-4, n_leak_iter, temperature, power_kw)
    return Throttle(th.clock_Hz, th.power_W, th.junction_K, th.time_s, th.power_W * th.time_s, th.feasible,
                    th.violation, th.throttled)


def energy_delay(power_W, time_s):
    """``(energy_J, edp_Js, ed2p_Js2)`` of a phase drawing ``power_W`` for ``time_s``."""
    e = power_W * time_s
    return e, e * time_s, e * time_s ** 2
