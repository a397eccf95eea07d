"""Embedded benchmark problems for the search methods (and the ``diffsys optimize`` command).

Every problem is a protocol model ``model(spec, *, temperature=0.0) -> Metrics`` over an ``equinox.Module`` spec,
a :class:`~diffsys.space.DesignSpace` whose base is that spec, and a :class:`~diffsys.optimize.Problem` tying them
to an objective.

- :func:`edge_soc_problem` (the *default* problem): an edge SoC serving a 1.3B-parameter decoder LLM — compute
  cores, clock (DVFS), L2 size, LPDDR5 channels, batch size and weight precision — minimizing energy per generated
  token under a per-step latency budget, a power cap, a die-area budget, DRAM capacity and a quality budget.
- :func:`systolic_problem`: roofline co-design of a systolic-array accelerator for one transformer layer's GEMMs
  — array rows/columns, number of arrays, on-chip SRAM, HBM stacks, clock and dataflow (weight/output/input
  stationary) — minimizing the energy-delay product under area and power caps.

Both are roofline models (Williams et al., CACM 2009) built from :func:`diffsys.roofline.roofline`. Their
technology constants are order-of-magnitude figures for a 7 nm-class process, each with its source; they make the
problems realistic enough to have interior optima and active constraints, not to predict any product. Every
non-smooth step (max, ceil, selection among dataflows) has its smooth twin selected by ``temperature``.
"""

from __future__ import annotations

import functools

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._pytree import as_float
from ..memory import gemm_traffic
from ..optimize import Problem
from ..primitives import Metrics, relative_temperature, relu, smooth_max, soft_argmin_weights, soft_round
from ..roofline import roofline
from ..space import Categorical, Continuous, DesignSpace, Integer, PowerOfTwo

KiB, MiB, GiB = 2.0**10, 2.0**20, 2.0**30

# -- technology constants (7 nm class) --------------------------------------------------------------------------
#: Energy of one fp16/bf16 multiply-add at the nominal voltage: Horowitz, "Computing's energy problem", ISSCC 2014
#: gives 1.1 pJ (fp16 mul) + 0.4 pJ (fp16 add) at 45 nm; ÷3 for 7 nm (Stillmaker & Baas, Integration 2017).
E_MAC_J = 0.5e-12
#: LPDDR5 access energy ~5 pJ/bit (JEDEC JESD209-5 class devices; Micron TN-62-06), HBM3 ~3.4 pJ/bit
#: (O'Connor et al., MICRO 2017, scaled). Same figures as the hardware presets.
E_LPDDR5_J_PER_B, E_HBM3_J_PER_B = 40e-12, 27e-12
#: 7 nm SRAM bit cell 0.027 µm² (Wu et al., IEDM 2016); ~60 % array efficiency -> ~0.4 mm²/MiB; we use 0.45.
SRAM_MM2_PER_MIB = 0.45
#: Large SRAM read energy per byte ~1 pJ/B at 1-4 MiB, growing ~sqrt(capacity) (CACTI 7, Balasubramonian et al.,
#: TACO 2017).
E_SRAM_J_PER_B_AT_1MIB = 1.0e-12
#: Leakage power density at nominal voltage (7 nm high-performance logic, order of 0.05 W/mm²).
LEAK_W_PER_MM2 = 0.05
#: LPDDR5 x32 channel at 6400 MT/s: 25.6 GB/s peak; PHY ≈ 1.5 mm² per channel; 4 GiB per channel package.
LPDDR5_CHANNEL_BPS, LPDDR5_PHY_MM2, LPDDR5_CHANNEL_B = 25.6e9, 1.5, 4 * GiB
#: HBM3 stack: 1024 bits at 6.4 Gb/s = 819 GB/s (JESD238); PHY ≈ 10 mm² per stack on the logic die.
HBM3_STACK_BPS, HBM3_PHY_MM2 = 819.2e9, 10.0


def _ceil(x, temperature, margin=1e-3):
    """``ceil(x)``; soft: a soft-rounding step placed just above each integer, so exact integer ratios (``K/R``
    with both powers of two) keep their exact value at low temperature (plain soft rounding would give ``n + 1/2``)."""
    if isinstance(temperature, (int, float)) and temperature == 0:
        return jnp.ceil(x)
    t = jnp.asarray(temperature)
    soft = soft_round(x + 0.5 - margin, jnp.where(t > 0, t, 1.0))
    return jnp.where(t > 0, soft, jnp.ceil(x))


def _voltage(f_Hz, f_lo, f_hi, v_lo, v_hi):
    """Linear V–f curve between two DVFS corners (a first-order fit of published DVFS tables)."""
    return v_lo + (v_hi - v_lo) * (f_Hz - f_lo) / (f_hi - f_lo)


# == default problem: edge SoC for LLM decode ===================================================================
class EdgeSoCDesign(eqx.Module):
    """An edge SoC: core count, clock (Hz), L2 capacity (bytes), LPDDR5 channels, decode batch, bytes per weight."""

    num_cores: jax.Array = eqx.field(converter=as_float, default=16.0)
    frequency_Hz: jax.Array = eqx.field(converter=as_float, default=1.0e9)
    l2_B: jax.Array = eqx.field(converter=as_float, default=4 * MiB)
    dram_channels: jax.Array = eqx.field(converter=as_float, default=2.0)
    batch: jax.Array = eqx.field(converter=as_float, default=1.0)
    weight_bytes: jax.Array = eqx.field(converter=as_float, default=1.0)


class EdgeSoCMetrics(Metrics):
    """Decode-step metrics of :func:`edge_soc_model` (``feasible``/``violation``: latency, power, area, DRAM
    capacity and quality budgets)."""

    energy_per_token_J: jax.Array
    step_time_s: jax.Array
    tokens_per_s: jax.Array
    power_W: jax.Array
    area_mm2: jax.Array
    memory_B: jax.Array
    quality_loss: jax.Array  # relative perplexity increase from weight quantization


class DecoderLLM(NamedTuple):
    """A decoder-only transformer for decode steps (GQA KV cache)."""

    n_params: float = 1.3e9
    n_layers: int = 24
    d_model: int = 2048
    d_ff: int = 8192
    kv_fraction: float = 0.25  # n_kv_heads / n_heads (grouped-query attention)
    context: int = 1024
    kv_bytes: float = 2.0


#: Perplexity increase by weight precision (bytes/weight): 4-bit GPTQ ≈ +3 % on 1-3B models (Frantar et al.,
#: ICLR 2023, Table 3), 8-bit ≈ +0.3 % (Dettmers et al., NeurIPS 2022), fp16 baseline.
QUALITY_LOSS = {0.5: 0.03, 1.0: 0.003, 2.0: 0.0}


def edge_soc_model(design: EdgeSoCDesign, *, temperature=0.0, llm=DecoderLLM(), latency_budget_s=0.040,
                   power_cap_W=15.0, area_budget_mm2=120.0, quality_budget=0.01) -> EdgeSoCMetrics:
    """Energy per token of a decode step on an edge SoC (roofline over DRAM, L2 and compute).

    Each core does 256 fp16 MAC/cycle (512 FLOP/cycle). A step decodes one token for ``batch`` sequences: weights
    are streamed from DRAM once per *batch tile* (the fp32 output tile ``batch × d_ff`` must fit in half the L2,
    otherwise the weights are re-read), the KV cache is read once. Voltage follows frequency between
    (0.5 GHz, 0.55 V) and (2 GHz, 0.9 V); dynamic energy scales with V², leakage with V.
    """
    cores, f, l2 = design.num_cores, design.frequency_Hz, design.l2_B
    ch, b, wb = design.dram_channels, design.batch, design.weight_bytes
    v = _voltage(f, 0.5e9, 2.0e9, 0.55, 0.9)
    vr = v / 0.75

    flops = 2.0 * llm.n_params * b + 4.0 * llm.n_layers * llm.context * llm.d_model * b
    kv_per_seq = 2.0 * llm.n_layers * llm.context * llm.d_model * llm.kv_fraction * llm.kv_bytes
    weight_B = llm.n_params * wb
    tile_B = b * llm.d_ff * 4.0
    passes = smooth_max(tile_B / (0.5 * l2), 1.0, relative_temperature(temperature, tile_B / (0.5 * l2), 1.0))
    dram_B = weight_B * passes + kv_per_seq * b
    l2_B_moved = 2.0 * dram_B  # every DRAM byte is written into and read out of the L2
    peak = cores * 512.0 * f
    bw = ch * LPDDR5_CHANNEL_BPS * 0.8  # 80 % achievable DRAM efficiency
    r = roofline(flops, dram_B, peak, bw, compute_efficiency=0.7, temperature=temperature)
    t_l2 = l2_B_moved / (cores * 64.0 * f)  # 64 B/cycle/core L2 bandwidth
    t = smooth_max(r.time_s, t_l2, relative_temperature(temperature, r.time_s, t_l2)) + 20e-6

    area = 20.0 + cores * 0.9 + (l2 / MiB) * SRAM_MM2_PER_MIB + ch * LPDDR5_PHY_MM2
    e_sram = E_SRAM_J_PER_B_AT_1MIB * jnp.sqrt(l2 / MiB)
    dyn = flops / 2.0 * E_MAC_J * vr**2 + dram_B * E_LPDDR5_J_PER_B + l2_B_moved * e_sram * vr**2
    static_W = LEAK_W_PER_MM2 * area * vr + 0.25 * ch  # logic leakage + LPDDR5 background/PHY power per channel
    energy = dyn + static_W * t
    power = energy / t
    memory = weight_B + kv_per_seq * b + 0.5 * GiB  # + runtime/OS reserve
    capacity = ch * LPDDR5_CHANNEL_B
    # exact at the lattice values, linear in log2(bytes) between them (relaxed precisions)
    quality = jnp.interp(jnp.log2(wb), jnp.array([-1.0, 0.0, 1.0]),
                         jnp.array([QUALITY_LOSS[0.5], QUALITY_LOSS[1.0], QUALITY_LOSS[2.0]]))
    ratios = jnp.stack([t / latency_budget_s, power / power_cap_W, area / area_budget_mm2, memory / capacity,
                        quality / quality_budget])
    viol = jnp.sum(relu(ratios - 1.0, temperature * 0.01))
    feasible = jnp.all(ratios <= 1.0)
    return EdgeSoCMetrics(energy / b, t, b / t, power, area, memory, quality, feasible=feasible, violation=viol)


def edge_soc_space() -> DesignSpace:
    """387,072 grid points: cores (16) × clock (16) × L2 (7) × LPDDR5 channels (8) × batch (9) × precision (3)."""
    return DesignSpace({
        "num_cores": Integer(4, 64, step=4),
        "frequency_Hz": Continuous(0.5e9, 2.0e9, grid=16),
        "l2_B": PowerOfTwo(1 * MiB, 64 * MiB),
        "dram_channels": Integer(1, 8),
        "batch": PowerOfTwo(1, 256),
        "weight_bytes": Categorical((0.5, 1.0, 2.0)),
    }, base=EdgeSoCDesign())


def edge_soc_problem(**model_kwargs) -> Problem:
    """The default problem: minimize energy per token of LLM decode on an edge SoC (see :func:`edge_soc_model`)."""

    model = functools.partial(edge_soc_model, **model_kwargs) if model_kwargs else edge_soc_model
    return Problem(model, edge_soc_space(), objective="energy_per_token_J", name="edge_soc")


default_problem = edge_soc_problem


# == roofline accelerator co-design: systolic arrays for a transformer layer =================================
#: GEMMs (M, K, N, count) of one GPT-style layer's prefill: 2048 tokens, d_model 4096, 32 heads of 128, d_ff 16384.
TRANSFORMER_LAYER_GEMMS = np.array([
    (2048, 4096, 12288, 1),  # QKV projection
    (2048, 128, 2048, 32),  # attention scores, per head
    (2048, 2048, 128, 32),  # attention x V, per head
    (2048, 4096, 4096, 1),  # output projection
    (2048, 4096, 16384, 1),  # MLP up
    (2048, 16384, 4096, 1),  # MLP down
], dtype=np.float64)

DATAFLOWS = ("weight_stationary", "output_stationary", "input_stationary")


class SystolicDesign(eqx.Module):
    """A systolic-array accelerator: array rows/cols, arrays, SRAM (bytes), HBM stacks, clock (Hz), dataflow index
    into :data:`DATAFLOWS`."""

    array_rows: jax.Array = eqx.field(converter=as_float, default=32.0)
    array_cols: jax.Array = eqx.field(converter=as_float, default=32.0)
    num_arrays: jax.Array = eqx.field(converter=as_float, default=4.0)
    sram_B: jax.Array = eqx.field(converter=as_float, default=4 * MiB)
    hbm_stacks: jax.Array = eqx.field(converter=as_float, default=2.0)
    frequency_Hz: jax.Array = eqx.field(converter=as_float, default=1.0e9)
    dataflow: jax.Array = eqx.field(converter=as_float, default=0.0)


class SystolicMetrics(Metrics):
    """Layer metrics of :func:`systolic_model` (``feasible``/``violation``: area and power caps)."""

    edp_Js: jax.Array
    time_s: jax.Array
    energy_J: jax.Array
    power_W: jax.Array
    area_mm2: jax.Array
    utilization: jax.Array


def systolic_model(design: SystolicDesign, *, temperature=0.0, gemms=TRANSFORMER_LAYER_GEMMS,
                   area_budget_mm2=300.0, power_cap_W=100.0, bytes_per_element=2.0) -> SystolicMetrics:
    """Time, energy and EDP of a transformer layer on ``num_arrays`` systolic arrays of ``rows × cols`` PEs.

    Compute cycles per GEMM follow SCALE-Sim's analytical model (Samajdar et al., ISPASS 2020): with weight
    stationary, K maps to rows and N to columns, ``⌈K/R⌉·⌈N/C⌉`` folds of ``M + R + C`` cycles each; output
    stationary maps (M, N) and streams K; input stationary maps (K, M) and streams N. Folds are spread over the
    arrays (``⌈folds / arrays⌉``). DRAM traffic is :func:`diffsys.memory.gemm_traffic` (the output-stationary
    square-tile schedule, three tiles of side ``t = sqrt(S / 3b)`` in the SRAM, ``MNK/min(t, N) + MNK/min(t, M) + MN``
    elements: never below the compulsory ``MK + KN + MN``; Hong & Kung, STOC 1981; Smith et al. 2017). Each GEMM is
    a roofline of its compute time and HBM time; the dataflow is chosen by
    the (soft) one-hot of the categorical design value. Voltage follows frequency between (0.6 GHz, 0.65 V) and
    (1.8 GHz, 0.95 V).
    """
    R, C, A, S = design.array_rows, design.array_cols, design.num_arrays, design.sram_B
    stacks, f, df = design.hbm_stacks, design.frequency_Hz, design.dataflow
    g = jnp.asarray(gemms, dtype=jnp.result_type(float))
    M, K, N, cnt = g[:, 0], g[:, 1], g[:, 2], g[:, 3]
    t_lat = temperature  # lattice-unit temperature for the ceilings

    def cycles(rows_dim, cols_dim, stream_dim):
        folds = _ceil(rows_dim / R, t_lat) * _ceil(cols_dim / C, t_lat)
        return _ceil(folds / A, t_lat) * (stream_dim + R + C), folds

    options = [cycles(K, N, M), cycles(M, N, K), cycles(K, M, N)]
    cyc_all = jnp.stack([o[0] for o in options], axis=-1)  # (gemm, dataflow)
    folds_all = jnp.stack([o[1] for o in options], axis=-1)
    w = soft_argmin_weights((df - jnp.arange(3.0)) ** 2, temperature=temperature)  # one-hot of the choice
    cyc = jnp.sum(cyc_all * w, axis=-1)
    folds = jnp.sum(folds_all * w, axis=-1)
    flops = 2.0 * M * K * N
    b = bytes_per_element
    dram_B = gemm_traffic(M, N, K, S, b, buffers=3, temperature=temperature).bytes
    bw = stacks * HBM3_STACK_BPS * 0.85
    t_compute = cyc / f
    # roofline with compute expressed as an equivalent peak: flops / t_compute
    r = roofline(flops, dram_B, flops / t_compute, bw, temperature=temperature)
    t = jnp.sum(r.time_s * cnt)

    v = _voltage(f, 0.6e9, 1.8e9, 0.65, 0.95)
    vr = v / 0.8
    pes = R * C * A
    area = 50.0 + pes * 0.002 + (S / MiB) * SRAM_MM2_PER_MIB + stacks * HBM3_PHY_MM2
    # SRAM -> array traffic per fold: the stationary tile (R·C) plus the streamed operands (stream·R + stream·C)
    stream = jnp.stack([M, K, N], axis=-1)
    sram_elems = folds * (R * C + jnp.sum(stream * w, axis=-1) * (R + C))
    e_sram = E_SRAM_J_PER_B_AT_1MIB * jnp.sqrt(S / MiB)
    dyn = jnp.sum(cnt * (flops / 2.0 * E_MAC_J * vr**2 + sram_elems * b * e_sram * vr**2 + dram_B * E_HBM3_J_PER_B))
    static_W = LEAK_W_PER_MM2 * area * vr
    energy = dyn + static_W * t
    power = energy / t
    util = jnp.sum(cnt * flops) / (t * 2.0 * pes * f)
    ratios = jnp.stack([area / area_budget_mm2, power / power_cap_W])
    viol = jnp.sum(relu(ratios - 1.0, temperature * 0.01))
    return SystolicMetrics(energy * t, t, energy, power, area, util, feasible=jnp.all(ratios <= 1.0),
                           violation=viol)


def systolic_space() -> DesignSpace:
    """379,080 grid points: rows (6) × cols (6) × arrays (5) × SRAM (9) × HBM stacks (6) × clock (13) × dataflow (3)."""
    return DesignSpace({
        "array_rows": PowerOfTwo(8, 256),
        "array_cols": PowerOfTwo(8, 256),
        "num_arrays": PowerOfTwo(1, 16),
        "sram_B": PowerOfTwo(256 * KiB, 64 * MiB),
        "hbm_stacks": Integer(1, 6),
        "frequency_Hz": Continuous(0.6e9, 1.8e9, grid=13),
        "dataflow": Categorical(DATAFLOWS),
    }, base=SystolicDesign())


def systolic_problem(**model_kwargs) -> Problem:
    """Roofline accelerator co-design: minimize the EDP of a transformer layer (see :func:`systolic_model`)."""

    model = functools.partial(systolic_model, **model_kwargs) if model_kwargs else systolic_model
    return Problem(model, systolic_space(), objective="edp_Js", name="systolic")


# == a small toy with a known structure (tests, docs) ==========================================================
class ToyDesign(eqx.Module):
    """The toy's four parameters: an integer ``x``, a power of two ``y``, a log-continuous ``z``, a categorical
    index ``c``."""

    x: jax.Array = eqx.field(converter=as_float, default=0.0)
    y: jax.Array = eqx.field(converter=as_float, default=1.0)
    z: jax.Array = eqx.field(converter=as_float, default=1.0)
    c: jax.Array = eqx.field(converter=as_float, default=0.0)


class ToyMetrics(Metrics):
    """The toy's cost and budget use (always feasible: its constraint lives in the space)."""

    cost: jax.Array
    budget_use: jax.Array


def toy_model(design: ToyDesign, *, temperature=0.0) -> ToyMetrics:
    """A separable bowl over an integer, a power of two, a log-continuous value and a categorical, plus 1."""
    x, y, z, c = design.x, design.y, design.z, design.c
    w = soft_argmin_weights((c - jnp.arange(3.0)) ** 2, temperature=temperature)
    cat_cost = jnp.sum(w * jnp.array([0.5, 0.0, 1.0]))
    cost = 1.0 + 0.1 * (x - 7.3) ** 2 + (jnp.log2(y) - 3.6) ** 2 + 0.3 * jnp.log(z) ** 2 + cat_cost
    return ToyMetrics(cost, x + jnp.log2(y))


def toy_space(budget=10.0) -> DesignSpace:
    """3,528 points with the constraint ``x + log2(y) <= budget`` (active at the optimum for ``budget=10``)."""
    from ..space import less_equal

    return DesignSpace({"x": Integer(0, 20), "y": PowerOfTwo(1, 64), "z": Continuous(0.1, 10.0, log=True, grid=8),
                        "c": Categorical(("a", "b", "c"))},
                       base=ToyDesign(),
                       constraints=[less_equal(lambda p: p["x"] + jnp.log2(p["y"]), budget, "x+log2(y)<=budget")])


def toy_problem(budget=10.0) -> Problem:
    return Problem(toy_model, toy_space(budget), objective="cost", feasible=None, name="toy")


# == LLM parallelism + hardware (from diffsys.llm) =============================================================
def llm_training_problem(size: str = "default") -> Problem:
    """GPT-3 175B training on 1,024 H100-class GPUs: parallelism (tp, pp, microbatch, interleave, recompute, ZeRO,
    sequence parallelism) × NVLink/NIC bandwidth × HBM capacity/bandwidth — :func:`diffsys.llm.default_training_space`
    (2,540,160 designs) — minimizing the step time; violation = memory excess + divisibility remainders."""
    from .. import llm

    return Problem(llm.training_model, llm.default_training_space(size=size), objective="time_s",
                   name="llm_training")


def _edge_orchestration_problem() -> Problem:
    from ._edge import edge_orchestration_problem  # _edge builds on this module's quality proxy

    return edge_orchestration_problem()


PROBLEMS = {"edge_soc": edge_soc_problem, "default": edge_soc_problem, "systolic": systolic_problem,
            "toy": toy_problem, "llm": llm_training_problem, "edge_orchestration": _edge_orchestration_problem}


_INSTANCES: dict = {}


def problem(name: str) -> Problem:
    """An embedded problem by name: ``"edge_soc"`` (default), ``"systolic"``, ``"llm"``, ``"toy"`` or
    ``"edge_orchestration"`` (LLM stage placement on an edge SoC, :func:`edge_orchestration_problem`).

    Problems are immutable; the same instance is returned for a name, so compiled searches are reused."""
    if name not in PROBLEMS:
        raise ValueError(f"unknown problem {name!r}; known: {sorted(PROBLEMS)}")
    if name not in _INSTANCES:
        _INSTANCES[name] = PROBLEMS[name]()
    return _INSTANCES[name]
