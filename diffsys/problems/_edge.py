"""Heterogeneous edge orchestration: which engine of an SoC (GPU, NPU/DLA, CPU) runs each stage of a small LLM's
inference, at which weight precision — latency, energy and an accuracy proxy (the setting of Kumar & Jha, "QEIL v2:
Heterogeneous computing for edge intelligence via roofline-derived Pareto-optimal energy modeling and
multi-objective orchestration", arXiv:2602.06057, 2026).

Model (every engine is an :class:`~diffsys.hardware.Accelerator` preset; ``jetson_orin*`` or ``snapdragon_8g3_*``):

- Stages: the prefill of ``prompt_len`` tokens (all layers, LM head for the last token), and each decode step
  split in two layer blocks — the lower half of the layers, and the upper half plus the LM head. Their FLOPs and
  bytes are the decoder's (Pope et al., "Efficiently scaling transformer inference", MLSys 2023, Sec. 2-3:
  ``2·params`` FLOPs per token plus ``4·L·ctx·d_q`` for attention; weights read once per step, the fp16 KV cache
  of ``2·L·ctx·d_kv`` elements read each decode step, written once by the prefill), at the mid-generation
  context ``prompt_len + decode_len/2``.
- Time of a stage on an engine: the library's op model, :func:`diffsys.roofline.op_time` (roofline, Williams et
  al., CACM 2009, with its size-dependent efficiencies) at fp16 compute: quantization is weight-only (W4A16 /
  W8A16, as GPTQ/AWQ kernels run), so it cuts the weight bytes, not the FLOP rate.
- Power and energy of a stage: :func:`diffsys.power.device_power` of the same FLOPs and bytes over that time (the
  one device-power model of the library: roofline utilisations, idle + leakage + dynamic). Engines that run no
  stage are power-gated (an assumption; their idle draw is not charged).
- Hand-offs between different engines go through the shared LPDDR memory: the bytes are written and read once at
  the SoC's DRAM bandwidth, at ``energy_J_per_B`` of the DRAM per byte each way, plus a synchronisation latency
  :data:`HANDOFF_S` per hand-off (an *estimate*: cross-engine fence and interrupt latencies on mobile SoCs are tens
  of microseconds). Prefill → decode hands over the KV cache; each decode step hands the hidden state from the
  lower to the upper block and the sampled token back.
- Accuracy proxy: the relative perplexity increase of weight quantization, :data:`QUALITY_LOSS` (4-bit GPTQ
  ≈ +3 % on 1-3B models, Frantar et al., ICLR 2023, Table 3; 8-bit ≈ +0.3 %, Dettmers et al., NeurIPS 2022;
  fp16 = 0), the same figures as :func:`diffsys.problems.edge_soc_model`; interpolated in ``log2(bits)``.

QEIL's metrics: the paper reports energy per token, total energy, latency and *intelligence per watt* (IPW, task
accuracy over average power; its normalisation — IPW ≈ 1 at ≈ 55-64 W — is not given in the abstract, so the
figure here is ``(1 − quality_loss) / power_W``, a relative proxy, not comparable to the paper's numbers).
Its DASI (roofline compute utilisation) corresponds to ``compute_utilization`` here (FLOP-time over wall time,
time-weighted over the stages); its CPQ (memory pressure) to ``memory_B / capacity``; its thermal yield Φ is not
modelled (see :func:`diffsys.power.throttle` for the library's throttling model).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from .._checks import check_choice, check_range
from .._pytree import as_float
from ..hardware import preset
from ..optimize import Problem
from ..power import device_power
from ..primitives import Metrics, relu
from ..roofline import OpCost, op_time
from ..space import Categorical, Continuous, DesignSpace
from ._problems import QUALITY_LOSS

#: engines of each platform, by preset name; index = the value of a stage's device choice
PLATFORMS = {
    "jetson_orin": ("jetson_orin", "jetson_orin_dla", "jetson_orin_cpu"),
    "snapdragon_8g3": ("snapdragon_8g3_gpu", "snapdragon_8g3_npu", "snapdragon_8g3_cpu"),
}
#: cross-engine synchronisation per hand-off (s); an *estimate* (module docstring)
HANDOFF_S = 50e-6
#: stage names, in the order of the stage axis
STAGES = ("prefill", "decode_low", "decode_high")


class SmallLLM(NamedTuple):
    """A small decoder LLM: Llama 3.2 1B (Meta, Llama 3.2 model card and released ``config.json``, 2024): 16 layers,
    hidden 2048, SwiGLU FFN 8192, 32 query / 8 KV heads of 64, vocabulary 128,256, tied embeddings."""

    n_layers: int = 16
    hidden: int = 2048
    ffn: int = 8192
    q_width: int = 2048
    kv_width: int = 512
    vocab: int = 128256


class EdgeOrchestration(eqx.Module):
    """One orchestration: the engine index (into the platform's :data:`PLATFORMS` entry) of each stage, the weight
    precision (bits: 4, 8, 16), a scale on every engine's DRAM bandwidth (LPDDR speed grade; 1 = datasheet), and
    the request (prompt and output tokens)."""

    prefill_device: jax.Array = eqx.field(converter=as_float, default=0.0)
    decode_low_device: jax.Array = eqx.field(converter=as_float, default=0.0)
    decode_high_device: jax.Array = eqx.field(converter=as_float, default=0.0)
    weight_bits: jax.Array = eqx.field(converter=as_float, default=16.0)
    dram_bandwidth_scale: jax.Array = eqx.field(converter=as_float, default=1.0)
    prompt_len: jax.Array = eqx.field(converter=as_float, default=512.0)
    decode_len: jax.Array = eqx.field(converter=as_float, default=128.0)

    def __check_init__(self):
        for name in ("prefill_device", "decode_low_device", "decode_high_device"):
            check_range(f"EdgeOrchestration.{name}", getattr(self, name), 0.0, 2.0)
        check_range("EdgeOrchestration.weight_bits", self.weight_bits, 4.0, 16.0)
        check_range("EdgeOrchestration.dram_bandwidth_scale", self.dram_bandwidth_scale, 0.0, None, lo_open=True)
        check_range("EdgeOrchestration.prompt_len", self.prompt_len, 1.0, None)
        check_range("EdgeOrchestration.decode_len", self.decode_len, 1.0, None)


class EdgeMetrics(Metrics):
    """Metrics of one request under :func:`edge_orchestration_model` (SI units; ``feasible``: weights + KV cache
    fit the SoC DRAM and the time per output token meets the budget)."""

    latency_s: jax.Array  # whole request: prefill + hand-offs + decode_len steps
    ttft_s: jax.Array
    tpot_s: jax.Array
    energy_J: jax.Array
    energy_per_token_J: jax.Array  # per output token
    power_W: jax.Array  # average over the request
    quality_loss: jax.Array  # accuracy proxy: relative perplexity increase (0 = fp16)
    intelligence_per_watt: jax.Array  # (1 - quality_loss) / power_W, a relative proxy (module docstring)
    compute_utilization: jax.Array  # time-weighted FLOP time / wall time (QEIL's DASI analogue)
    memory_B: jax.Array


def _scaled(acc, scale):
    """``acc`` with its main-memory bandwidth multiplied by ``scale``."""
    i = acc.main_memory_index
    return eqx.tree_at(lambda a: a.memory[i].bandwidth_Bps, acc, acc.memory[i].bandwidth_Bps * scale)


def _select(index, n, temperature):
    """Weights over ``n`` engines: the one-hot of the rounded ``index`` (exact), a Gaussian softmax around it when
    ``temperature > 0`` (relaxed searches)."""
    exact = jax.nn.one_hot(jnp.round(index).astype(jnp.int32), n)
    if isinstance(temperature, (int, float)) and temperature == 0:
        return exact
    t = jnp.asarray(temperature)
    soft = jax.nn.softmax(-((index[..., None] - jnp.arange(n)) ** 2) / jnp.where(t > 0, t, 1.0), axis=-1)
    return jnp.where(t > 0, soft, exact)


def _stage_costs(llm: SmallLLM, spec: EdgeOrchestration):
    """FLOPs and DRAM bytes of the stages :data:`STAGES` (arrays of shape (3,)) and the hand-off bytes
    (prefill → decode KV cache, one decode step's hidden state)."""
    L, h, V = llm.n_layers, llm.hidden, llm.vocab
    P, D, wb = spec.prompt_len, spec.decode_len, spec.weight_bits / 8.0
    layer = h * (llm.q_width + 2 * llm.kv_width) + llm.q_width * h + 3 * h * llm.ffn
    head = V * h
    kv_per_token = 2.0 * L * llm.kv_width * 2.0  # fp16 K and V, all layers
    ctx = P + 0.5 * D
    pre_flops = 2.0 * P * L * layer + 4.0 * L * P * (0.5 * P) * llm.q_width + 2.0 * head
    pre_bytes = (L * layer + head) * wb + P * kv_per_token
    half = 0.5 * L
    blk_flops = 2.0 * half * layer + 4.0 * half * ctx * llm.q_width
    blk_bytes = half * layer * wb + 0.5 * ctx * kv_per_token
    flops = jnp.stack([pre_flops, blk_flops, blk_flops + 2.0 * head])
    nbytes = jnp.stack([pre_bytes, blk_bytes, blk_bytes + head * wb])
    weights_B = (L * layer + head) * wb
    return flops, nbytes, P * kv_per_token, 2.0 * h, weights_B, (P + D) * kv_per_token


def edge_orchestration_model(spec: EdgeOrchestration, *, temperature=0.0, platform: str = "jetson_orin",
                             llm: SmallLLM = SmallLLM(), tpot_budget_s=0.25) -> EdgeMetrics:
    """Latency, energy and accuracy proxy of one request when ``spec`` places the stages on ``platform``'s engines
    (module docstring for the model and its sources)."""
    check_choice("platform", platform, PLATFORMS)
    check_range("tpot_budget_s", tpot_budget_s, 0.0, None, lo_open=True)
    engines = [_scaled(preset(n), spec.dram_bandwidth_scale) for n in PLATFORMS[platform]]
    n = len(engines)
    flops, nbytes, kv_B, hidden_B, weights_B, kv_total_B = _stage_costs(llm, spec)
    op = OpCost(flops, nbytes, 0.0 * flops, 1.0)
    times, energies, busy = [], [], []
    for acc in engines:  # every engine's time and energy for every stage: shape (3,) each
        t = op_time(op, acc, "fp16", temperature=temperature).time_s
        p = device_power(acc, flops, nbytes, dtype="fp16", time_s=t, temperature=temperature)
        times.append(t)
        energies.append(p.energy_J)
        busy.append(p.compute_util * t)
    times, energies, busy = jnp.stack(times, -1), jnp.stack(energies, -1), jnp.stack(busy, -1)  # (stage, engine)
    w = jnp.stack([_select(spec.prefill_device, n, temperature), _select(spec.decode_low_device, n, temperature),
                   _select(spec.decode_high_device, n, temperature)])
    t_stage, e_stage, busy_stage = (jnp.sum(w * x, -1) for x in (times, energies, busy))
    # hand-offs through the shared DRAM: write + read at the platform's (first engine's) DRAM bandwidth
    dram = engines[0].main_memory
    differs = 1.0 - jnp.sum(w[:-1] * w[1:], -1)  # (prefill→low, low→high)
    back = 1.0 - jnp.sum(w[2] * w[1])  # sampled token back to the lower block
    kv_handoff = differs[0] * (2 * kv_B / dram.bandwidth_Bps + HANDOFF_S)
    step_handoff = differs[1] * (2 * hidden_B / dram.bandwidth_Bps + HANDOFF_S) + back * HANDOFF_S
    e_handoff = 2 * dram.energy_J_per_B * (differs[0] * kv_B + spec.decode_len * differs[1] * hidden_B)
    D = spec.decode_len
    ttft = t_stage[0] + kv_handoff
    tpot = t_stage[1] + t_stage[2] + step_handoff
    latency = ttft + D * tpot
    energy = e_stage[0] + D * (e_stage[1] + e_stage[2]) + e_handoff
    power = energy / latency
    quality = jnp.interp(jnp.log2(spec.weight_bits), jnp.array([2.0, 3.0, 4.0]),
                         jnp.array([QUALITY_LOSS[0.5], QUALITY_LOSS[1.0], QUALITY_LOSS[2.0]]))
    util = (busy_stage[0] + D * (busy_stage[1] + busy_stage[2])) / latency
    memory = weights_B + kv_total_B + 0.5 * 2**30  # + runtime reserve
    capacity = dram.capacity_B
    ratios = jnp.stack([memory / capacity, tpot / tpot_budget_s])
    return EdgeMetrics(latency, ttft, tpot, energy, energy / D, power, quality, (1.0 - quality) / power, util,
                       memory, feasible=jnp.all(ratios <= 1.0), violation=jnp.sum(relu(ratios - 1.0, temperature)))


def edge_orchestration_space(bandwidth_grid: int = 1) -> DesignSpace:
    """Engine per stage (3 × 3 × 3) × weight bits (4, 8, 16) = 81 points; ``bandwidth_grid > 1`` adds that many
    DRAM-bandwidth scales in [0.5, 1.5]."""
    doms = {name: Categorical((0.0, 1.0, 2.0)) for name in ("prefill_device", "decode_low_device",
                                                            "decode_high_device")}
    doms["weight_bits"] = Categorical((4.0, 8.0, 16.0))
    if bandwidth_grid > 1:
        doms["dram_bandwidth_scale"] = Continuous(0.5, 1.5, grid=bandwidth_grid)
    return DesignSpace(doms, base=EdgeOrchestration())


def edge_orchestration_problem(objective: str = "energy_per_token_J", **model_kwargs) -> Problem:
    """Minimize ``objective`` (default: energy per output token) over :func:`edge_orchestration_space`; keywords
    go to :func:`edge_orchestration_model` (``platform=``, ``tpot_budget_s=``)."""
    model = functools.partial(edge_orchestration_model, **model_kwargs) if model_kwargs else edge_orchestration_model
    return Problem(model, edge_orchestration_space(), objective=objective, name="edge_orchestration")


def engine_names(platform: str = "jetson_orin") -> tuple:
    """The preset names of ``platform``'s engines, in device-index order."""
    check_choice("platform", platform, PLATFORMS)
    return PLATFORMS[platform]

