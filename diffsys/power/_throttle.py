"""Sustained clock under a power cap and a junction-temperature limit, fed back into step times through a
clock-scaled :class:`~diffsys.hardware.Accelerator`.

Coupled model at clock ``f`` (voltage ``V(f)`` from the :class:`~diffsys.power.DVFSCurve`):

* power ``P(f, T)`` of one workload step (the roofline-driven :func:`~diffsys.power.device_power`: idle +
  leakage ``∝ V·exp(β(T − T_ref))`` + switching ``∝ u_c·f·V²`` and the memory system's share);
* junction temperature ``T = T_amb + R_th·P`` (a lumped junction-to-ambient resistance, the datasheet θ_JA view
  of the package, JEDEC JESD51) or any thermal model ``T = thermal(P)`` such as HotSpot's block model
  (:class:`BlockJunction`: peak silicon temperature of a :class:`~diffsys.power.SteadySolver` with a power split);
* the leakage–temperature loop ``T = thermal(P(f, T))`` is an :func:`optimistix.fixed_point` (plain iteration, the
  HotSpot ``-leakage_used`` loop; a contraction while ``R_th·∂P/∂T < 1``), clipped at HotSpot's runaway temperature
  so a runaway clock stays finite and violates the limit;
* the sustained clock is the highest ``f ∈ [f_min, f_max]`` with ``P ≤ cap`` and ``T ≤ T_limit``
  (:func:`~diffsys.power.constrained_clock`: optimistix bisection in ``log f``, implicit-function gradients).

The clock then scales the accelerator (:func:`scale_clock`) the way CMOS physics says: peak FLOP/s of the matrix
and vector units are ``units × FLOP/cycle × f`` (NVIDIA H100 whitepaper, 2022: the datasheet peaks are quoted at the
boost clock), on-chip memories (register file/SMEM, L2) move a fixed number of bytes per cycle, so their
bandwidth scales with ``f`` and their latency (a cycle count) with ``1/f``; the main memory (HBM) and the links run
on their own clocks and are unchanged; switching energy per FLOP and per on-chip byte scales with ``V²``
(``E = C·V²``, Horowitz, ISSCC 2014). Every model that takes the accelerator — the roofline op model, the GEMM and
attention kernels (cycle-based overheads use ``frequency_Hz``), and through them the LLM training and inference
steps — therefore sees the slower clock. With loose limits the clock is exactly ``f_max`` and the accelerator is
returned unchanged, so step times are bit-identical to the unthrottled ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx

from .._checks import check_range
from .._status import log_unconverged, succeeded
from ..hardware import Accelerator
from ._device import _f_min, constrained_clock, default_dvfs, device_power, logger
from ._dvfs import DVFSCurve
from ._leakage_loop import RUNAWAY_K
from ._thermal_block import SteadySolver


def scale_clock(accel: Accelerator, clock_Hz, voltage_V=None, nominal_voltage_V=None) -> Accelerator:
    """``accel`` running at ``clock_Hz`` (and ``voltage_V``): the clock-domain fields scaled, the rest unchanged.

    With ``r = clock_Hz / accel.frequency_Hz``: matrix and vector peaks ``× r``; ``frequency_Hz = clock_Hz``; the
    memory levels *before* the main memory (on-chip SRAM/L2) bandwidth ``× r`` and latency ``÷ r``; main memory,
    host tiers, links, NIC and the power spec unchanged. With a voltage (and the nominal voltage, default 1 V),
    ``energy_J_per_flop`` and the on-chip levels' ``energy_J_per_B`` scale by ``(V/V₀)²``. ``r = 1`` and
    ``V = V₀`` leave every field bit-identical.
    """
    f0 = accel.frequency_Hz
    r = jnp.asarray(clock_Hz) / f0
    e = 1.0 if voltage_V is None else (jnp.asarray(voltage_V) / (1.0 if nominal_voltage_V is None
                                                                 else nominal_voltage_V)) ** 2
    mem = tuple(
        eqx.tree_at(lambda m: (m.bandwidth_Bps, m.latency_s, m.energy_J_per_B), lvl,
                    (lvl.bandwidth_Bps * r, lvl.latency_s / r, lvl.energy_J_per_B * e))
        if i < accel.main_memory_index else lvl
        for i, lvl in enumerate(accel.memory))
    return eqx.tree_at(
        lambda a: (a.matrix_flops, a.vector_flops, a.memory, a.frequency_Hz, a.energy_J_per_flop), accel,
        ({k: v * r for k, v in accel.matrix_flops.items()}, {k: v * r for k, v in accel.vector_flops.items()},
         mem, f0 * r, accel.energy_J_per_flop * e))


class BlockJunction(eqx.Module):
    """Junction temperature from HotSpot's block model: the peak silicon temperature (K) of ``solver`` when the
    device power is spread over the blocks by ``power_split`` (n,), which sums to 1."""

    solver: SteadySolver
    power_split: jax.Array

    def __call__(self, power_W):
        return self.solver(power_W * self.power_split).peak_K


class Throttled(NamedTuple):
    """The sustained operating point and the clock-scaled accelerator."""

    accel: Accelerator  # the device at the sustained clock (feed it to any step model)
    clock_Hz: jnp.ndarray
    clock_ratio: jnp.ndarray  # clock / boost clock
    voltage_V: jnp.ndarray
    power_W: jnp.ndarray  # workload power at the sustained clock and its junction temperature
    junction_K: jnp.ndarray
    time_s: jnp.ndarray  # the workload's time at that clock (device_power's roofline)
    throttled: jnp.ndarray  # bool: clock below the boost clock
    power_limited: jnp.ndarray  # bool: the power cap is the active constraint
    thermal_limited: jnp.ndarray  # bool: the temperature limit is the active constraint
    feasible: jnp.ndarray  # bool: both limits hold (False when even f_min violates them)
    violation: jnp.ndarray  # max relative violation at the clock (≤ 0 when feasible)
    converged: jnp.ndarray  # bool: clock root find and leakage–temperature loop converged


def _check_limits(power_cap_W, t_limit_K, ambient_K, r_th_K_per_W, thermal):
    """Eager checks of concrete limits (traced values are left to the metrics: ``feasible``/``violation``)."""
    check_range("power_cap_W", power_cap_W, 0.0, None, lo_open=True, allow_inf=True)
    check_range("t_limit_K", t_limit_K, 0.0, None, lo_open=True, allow_inf=True)
    check_range("ambient_K", ambient_K, 0.0, None, lo_open=True)
    check_range("r_th_K_per_W", r_th_K_per_W, 0.0, None)
    if thermal is not None and not callable(thermal):
        raise ValueError(f"thermal must be a callable power_W -> junction_K, got {type(thermal).__name__}")
    try:
        t_lim, amb = float(jnp.min(t_limit_K)), float(jnp.max(ambient_K))
    except (TypeError, jax.errors.ConcretizationTypeError):
        return
    if thermal is None and t_lim <= amb:
        raise ValueError(f"t_limit_K must be above ambient_K ({amb:g} K), got {t_lim:g} K")


def throttled_accelerator(accel: Accelerator, workload, bytes_moved=None, *, power_cap_W=jnp.inf,
                          t_limit_K=jnp.inf, ambient_K=308.15, r_th_K_per_W=0.0, thermal: Callable | None = None,
                          dvfs: DVFSCurve | None = None, f_min_Hz=None, dtype: str = "bf16", tol_K=1e-4,
                          max_leak_steps: int = 100, temperature=0.0, **power_kw) -> Throttled:
    """Sustained clock of ``accel`` running ``workload`` under ``power_cap_W`` and ``t_limit_K``, and the
    accelerator at that clock.

    Args:
        workload: the per-device work of one step, as :func:`device_power` takes it: an
            :class:`~diffsys.roofline.OpCost` (e.g. ``roofline.gemm(m, n, k)``, or a sum/scale of ops), or a FLOP
            count with ``bytes_moved`` (main-memory bytes).
        power_cap_W: board power cap (default: none).
        t_limit_K: junction-temperature limit (default: none).
        ambient_K, r_th_K_per_W: lumped thermal path ``T = ambient_K + r_th_K_per_W·P`` (``r_th = 0``: the junction
            sits at ambient). Ignored when ``thermal`` is given.
        thermal: a callable ``power_W -> junction_K`` (e.g. :class:`BlockJunction`; an ``eqx.Module`` so jitted
            calls do not retrace).
        dvfs: V–f curve (default :func:`default_dvfs`: top point = the accelerator's boost clock at 1 V);
            ``f_min_Hz`` the lowest clock considered (default the curve's, else 10 % of the top clock).
        tol_K, max_leak_steps: the leakage–temperature fixed point's max-norm tolerance and step limit.
        temperature: relaxation temperature of the constraint max and of the roofline (0 = exact).
        power_kw: passed to :func:`device_power` (``compute_share``, ``beta_per_K``, ``ref_temperature_K``,
            ``efficiency``).

    Returns a :class:`Throttled`; ``.accel`` is ``accel`` scaled by :func:`scale_clock` (identical to ``accel``
    when no limit is active). Gradients w.r.t. the limits, the thermal path and the workload are the implicit
    ones of both solves. Non-positive limits, a negative ``r_th_K_per_W`` or a lumped limit at or below ambient
    raise ``ValueError`` naming the argument.
    """
    _check_limits(power_cap_W, t_limit_K, ambient_K, r_th_K_per_W, thermal)
    arr = lambda x: x if x is None else jnp.asarray(x, float)  # arrays, so new values do not retrace
    return _throttled_accelerator(accel, workload, arr(bytes_moved), arr(power_cap_W), arr(t_limit_K),
                                  arr(ambient_K), arr(r_th_K_per_W), thermal, dvfs, arr(f_min_Hz), dtype,
                                  arr(tol_K), max_leak_steps, arr(temperature), power_kw)


@eqx.filter_jit
def _throttled_accelerator(accel, workload, bytes_moved, power_cap_W, t_limit_K, ambient_K, r_th_K_per_W, thermal,
                           dvfs, f_min_Hz, dtype, tol_K, max_leak_steps, temperature, power_kw) -> Throttled:
    dvfs = default_dvfs(accel) if dvfs is None else dvfs
    junction = (lambda p: ambient_K + r_th_K_per_W * p) if thermal is None else thermal

    def power(f, v, T):
        return device_power(accel, workload, bytes_moved, dtype=dtype, clock_Hz=f, dvfs=dvfs, voltage_V=v,
                            die_temperature_K=jnp.minimum(T, RUNAWAY_K), temperature=temperature, **power_kw)

    def steady(f):
        """Leakage–temperature fixed point at clock f: (power, junction temperature, converged)."""
        v = dvfs.voltage(f)  # once per clock: the loop changes only the temperature
        T0 = junction(power(f, v, junction(0.0 * f)).power_W)
        sol = optx.fixed_point(lambda T, fv: junction(power(*fv, T).power_W),
                               optx.FixedPointIteration(rtol=0.0, atol=tol_K, norm=optx.max_norm), T0, (f, v),
                               max_steps=max_leak_steps, throw=False)
        T = jnp.minimum(sol.value, RUNAWAY_K)
        p = power(f, v, T)
        return p, junction(p.power_W), succeeded(sol.result)

    def viol(f):
        p, T, _ = steady(f)
        return p.power_W / power_cap_W - 1.0, T / t_limit_K - 1.0

    cc = constrained_clock(viol, _f_min(dvfs, f_min_Hz), dvfs.f_max_Hz, temperature=temperature)
    p, T, leak_ok = steady(cc.clock_Hz)
    log_unconverged(logger, leak_ok, "leakage-temperature loop of the throttle")
    v_p, v_t = p.power_W / power_cap_W - 1.0, T / t_limit_K - 1.0
    v0 = dvfs.v_max_V
    scaled = scale_clock(accel, cc.clock_Hz, p.voltage_V, v0)
    # bit-identical accelerator when unthrottled (the voltage solve at f_max may differ from v_max by an ulp)
    new = jax.tree.map(lambda a, b: jnp.where(cc.throttled, a, b), scaled, accel)
    return Throttled(new, cc.clock_Hz, cc.clock_Hz / accel.frequency_Hz, p.voltage_V, p.power_W, T, p.time_s,
                     cc.throttled, cc.throttled & (v_p >= v_t), cc.throttled & (v_t > v_p), cc.feasible,
                     cc.violation, cc.converged & leak_ok)


def throttled_step(step_fn: Callable, *, where: Callable, workload, **throttle_kw) -> Callable:
    """Wrap a step model so it runs on the throttled accelerator.

    ``where(args)`` selects the :class:`~diffsys.hardware.Accelerator` inside the positional arguments of
    ``step_fn`` (for :func:`diffsys.llm.training_step` / ``inference_step(model, cluster, par, ...)``:
    ``where=lambda args: args[1].accelerator``). ``workload`` is the per-device work of one step (an ``OpCost``,
    or ``(flops, bytes_moved)``), or a callable ``workload(*args)`` returning one. ``throttle_kw`` go to
    :func:`throttled_accelerator` (``power_cap_W``, ``t_limit_K``, ``ambient_K``, ``r_th_K_per_W``, ``thermal``,
    ...). The wrapper returns ``(step_fn(*args_with_the_throttled_accelerator, **kw), Throttled)``.
    """

    def run(*args, **kw):
        wl = workload(*args) if callable(workload) else workload
        flops, nbytes = (wl, None) if not isinstance(wl, tuple) or hasattr(wl, "_fields") else wl
        th = throttled_accelerator(where(args), flops, nbytes, **throttle_kw)
        new_args = eqx.tree_at(where, args, th.accel)
        return step_fn(*new_args, **kw), th

    return run
