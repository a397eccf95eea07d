"""Size-dependent efficiency: the achievable fraction of a ceiling as a smooth saturating function of op size.

``η(s) = η_max · sʰ / (sʰ + s_halfʰ)`` (a Hill / Michaelis–Menten curve). With ``h = 1`` and ``s_half = P·t₀`` the
curve is exactly a fixed start-up cost: ``s / (P·η(s)) = (s + P·t₀) / (P·η_max)``, i.e. an op of ``s`` units on a
ceiling ``P`` pays ``t₀/η_max`` of ramp time (pipeline fill, one wave of tiles, Little's-law latency). The
parameters are array leaves, so they can be swept or fitted to measurements with ``jax.grad``.

Default constants and their sources
-----------------------------------
* :data:`MATRIX_EFFICIENCY_MAX` = 0.83 — asymptotic fraction of the dense matrix-unit peak reached by large,
  well-shaped cuBLAS GEMMs on A100, reported at roughly 80–85 % (~82 %) of the 312 TFLOP/s bf16/fp16 peak (NVIDIA
  Deep Learning Performance Guide, "Matrix multiplication background"; GEMM microbenchmarks in Narayanan et al.,
  "Efficient large-scale language model training on GPU clusters", SC 2021).
* :data:`MATRIX_RAMP_S` = 2 µs — matrix work worth 2 µs at peak halves the efficiency (one wave of output tiles plus
  the main-loop prologue/epilogue; small GEMMs of ≲ 1 GFLOP do not saturate an A100, same guide, "wave quantization").
* :data:`VECTOR_EFFICIENCY` = 0.7 — vector-unit (CUDA-core) work rarely exceeds ~70 % of the FMA peak (issue slots
  shared with loads and address arithmetic; Jia et al., "Dissecting the NVIDIA Volta GPU architecture via
  microbenchmarking", 2018).
* :data:`MEMORY_EFFICIENCY_MAX` = 0.86 — STREAM-like kernels reach 0.83–0.89 of the HBM datasheet bandwidth
  (McIntosh-Smith et al., "BabelStream", 2016/2018 results on V100/A100; Jia et al. 2018: 750 of 900 GB/s on V100).
* memory ``s_half = bandwidth × latency`` — Little's law: bytes that must be in flight to cover the access latency.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from .._checks import check_range
from .._pytree import as_float

MATRIX_EFFICIENCY_MAX = 0.83
MATRIX_RAMP_S = 2.0e-6
VECTOR_EFFICIENCY = 0.7
MEMORY_EFFICIENCY_MAX = 0.86


class EfficiencyCurve(eqx.Module):
    """``η(s) = eff_max · sʰ / (sʰ + s_halfʰ)``; ``s_half = 0`` gives the constant ``eff_max``.

    Attributes:
        eff_max: asymptotic efficiency for very large ops, in (0, 1].
        s_half: op size (FLOPs or bytes, the same unit as the argument) at which ``η = eff_max/2``.
        hill: steepness ``h`` (1 = fixed start-up cost; larger = sharper knee).
    """

    eff_max: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    s_half: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    hill: jnp.ndarray = eqx.field(converter=as_float, default=1.0)

    def __check_init__(self):
        check_range("EfficiencyCurve.eff_max", self.eff_max, 0.0, 1.0, lo_open=True)
        check_range("EfficiencyCurve.s_half", self.s_half, 0.0, None)
        check_range("EfficiencyCurve.hill", self.hill, 0.0, None, lo_open=True)

    def __call__(self, size):
        s = jnp.maximum(jnp.asarray(size, dtype=jnp.result_type(float, size)), 0.0)
        sh = s ** self.hill
        den = sh + self.s_half ** self.hill
        ok = den > 0
        return self.eff_max * jnp.where(ok, sh / jnp.where(ok, den, 1.0), 1.0)


class Efficiency(eqx.Module):
    """Efficiency of the matrix units (a curve of the op's matrix FLOPs), the vector units (a constant) and the
    memory system (a curve of the op's bytes)."""

    matrix: EfficiencyCurve
    memory: EfficiencyCurve
    vector: jnp.ndarray = eqx.field(converter=as_float, default=VECTOR_EFFICIENCY)

    def __check_init__(self):
        check_range("Efficiency.vector", self.vector, 0.0, 1.0, lo_open=True)


def constant_efficiency(compute=1.0, memory=1.0) -> Efficiency:
    """Size-independent efficiencies (``compute`` applies to matrix and vector units alike)."""
    return Efficiency(EfficiencyCurve(compute), EfficiencyCurve(memory), compute)


def default_efficiency(accel, dtype="bf16", *, level=None) -> Efficiency:
    """The default size-dependent efficiency of ``accel`` (constants and sources in the module docstring).

    ``level``: memory level name whose bandwidth and latency set the Little's-law knee (default: main memory).
    """
    mem = accel.main_memory if level is None else accel.level(level)
    return Efficiency(
        matrix=EfficiencyCurve(MATRIX_EFFICIENCY_MAX, accel.unit_peaks(dtype)[0] * MATRIX_RAMP_S),
        memory=EfficiencyCurve(MEMORY_EFFICIENCY_MAX, mem.bandwidth_Bps * mem.latency_s),
        vector=VECTOR_EFFICIENCY,
    )


def as_efficiency(efficiency, accel=None, dtype="bf16", *, level=None) -> Efficiency:
    """Normalise the ``efficiency`` argument of the op models.

    ``None`` -> :func:`default_efficiency`; a number -> constant for compute and memory; a pair
    ``(compute, memory)`` -> constants; an :class:`Efficiency` passes through.
    """
    if efficiency is None:
        if accel is None:
            raise ValueError("efficiency=None needs an accelerator for its default curves")
        return default_efficiency(accel, dtype, level=level)
    if isinstance(efficiency, Efficiency):
        return efficiency
    if isinstance(efficiency, EfficiencyCurve):
        return Efficiency(efficiency, EfficiencyCurve(1.0), efficiency.eff_max)
    if isinstance(efficiency, (tuple, list)):
        if len(efficiency) != 2:
            raise ValueError(f"efficiency must be a number, a (compute, memory) pair or an Efficiency, "
                             f"got a sequence of length {len(efficiency)}")
        return constant_efficiency(*efficiency)
    check_range("efficiency", efficiency, 0.0, 1.0, lo_open=True)
    return constant_efficiency(efficiency, efficiency)


def fit_efficiency_curve(sizes, efficiencies, *, init=None, steps=2000, learning_rate=0.05,
                         fit_hill=True) -> EfficiencyCurve:
    """Least-squares fit of an :class:`EfficiencyCurve` to measured ``(size, efficiency)`` pairs (optax Adam).

    Parameters are optimised unconstrained (``eff_max = sigmoid(a)``, ``s_half = exp(b)``, ``hill = exp(c)``);
    the loss is the mean squared error of ``η(size)`` in float32. ``init`` is a starting curve (default: the largest
    measured efficiency and the median size).
    """
    import jax
    import optax

    s = jnp.asarray(sizes, dtype=float)
    y = jnp.asarray(efficiencies, dtype=float)
    check_range("efficiencies", y, 0.0, 1.0)
    if init is None:
        init = EfficiencyCurve(jnp.minimum(jnp.max(y) * 1.02, 0.999), jnp.median(s), 1.0)
    e0 = jnp.clip(init.eff_max, 1e-4, 1 - 1e-4)
    params = jnp.stack([jnp.log(e0 / (1 - e0)), jnp.log(jnp.maximum(init.s_half, 1e-30)), jnp.log(init.hill)])
    scale = jnp.log(jnp.maximum(jnp.median(s), 1e-30))  # s_half is fitted around the data's scale

    def curve(p):
        hill = jnp.exp(p[2]) if fit_hill else init.hill
        return jax.nn.sigmoid(p[0]), jnp.exp(p[1]), hill

    def loss(p):
        emax, shalf, hill = curve(p)
        pred = emax / (1.0 + jnp.exp(hill * (jnp.log(shalf) - jnp.log(s))))
        return jnp.mean((pred - y) ** 2)

    opt = optax.adam(learning_rate)
    params = params.at[1].add(-scale)

    def shifted(p):
        return loss(p.at[1].add(scale))

    @jax.jit
    def run(p):
        def step(carry, _):
            p, st = carry
            g = jax.grad(shifted)(p)
            upd, st = opt.update(g, st, p)
            return (optax.apply_updates(p, upd), st), None

        (p, _), _ = jax.lax.scan(step, (p, opt.init(p)), None, length=steps)
        return p

    p = run(params).at[1].add(scale)
    emax, shalf, hill = curve(p)
    return EfficiencyCurve(emax, shalf, hill)
