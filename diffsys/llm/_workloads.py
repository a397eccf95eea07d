"""Transformer workload specs (dense and mixture-of-experts) and cited presets.

A :class:`Transformer` is an ``equinox.Module`` whose sizes are float leaves (so a sweep may vary them and a
gradient may flow through them); only the MLP kind, embedding tying and the name are static structure.

Parameter and FLOP counts follow Narayanan et al., "Efficient large-scale language model training on GPU clusters
using Megatron-LM", SC 2021 (Eq. 2-3), generalised to grouped-query attention (Ainslie et al., EMNLP 2023), gated
MLPs (SwiGLU, Shazeer 2020) and mixture-of-experts layers (Fedus et al., "Switch Transformers", JMLR 2022; capacity
factor as defined there).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice, check_integer, check_range
from .._pytree import as_float

MLP_KINDS = ("gelu", "swiglu")
ATTENTION_KINDS = ("gqa", "mla")


class Transformer(eqx.Module):
    """A decoder-only transformer.

    Attributes:
        name: display name (static).
        hidden: model width ``h``.
        ffn: MLP inner width ``f`` of a dense layer (for SwiGLU the width of each of the gate/up projections).
        n_layers: number of transformer blocks ``L``.
        n_heads: query heads ``a``.
        n_kv_heads: key/value heads (``= n_heads``: MHA; ``1``: MQA; in between: GQA).
        head_dim: per-head width (``h / a`` for most models).
        vocab: vocabulary size ``V``.
        seq_len: training / default sequence length ``s`` (tokens).
        max_seq_len: the longest sequence the model allows (positional embedding / RoPE limit).
        mlp: ``"gelu"`` (two matrices) or ``"swiglu"`` (three matrices) — static.
        tied_embeddings: input embedding shared with the output projection — static.
        n_experts: routed experts per MoE layer (``1`` = dense model).
        top_k: experts each token is routed to.
        capacity_factor: expert capacity ``= capacity_factor · tokens · top_k / n_experts`` (compute is padded to it).
        n_shared_experts: always-active experts (DeepSeekMoE).
        expert_ffn: inner width of one expert (``0`` = same as ``ffn``).
        moe_layer_fraction: fraction of layers that are MoE (the others are dense).
        attention: ``"gqa"`` (MHA/GQA/MQA) or ``"mla"``, multi-head latent attention (DeepSeek-AI, "DeepSeek-V2",
            arXiv 2405.04434, Sec. 2.1) — static.
        q_lora_rank, kv_lora_rank, qk_rope_head_dim, qk_nope_head_dim, v_head_dim: MLA sizes (0 for GQA): the query
            and key/value latents, the decoupled RoPE key, the per-head query/key and value widths.
    """

    name: str = eqx.field(static=True)
    hidden: jnp.ndarray = eqx.field(converter=as_float)
    ffn: jnp.ndarray = eqx.field(converter=as_float)
    n_layers: jnp.ndarray = eqx.field(converter=as_float)
    n_heads: jnp.ndarray = eqx.field(converter=as_float)
    n_kv_heads: jnp.ndarray = eqx.field(converter=as_float)
    head_dim: jnp.ndarray = eqx.field(converter=as_float)
    vocab: jnp.ndarray = eqx.field(converter=as_float)
    seq_len: jnp.ndarray = eqx.field(converter=as_float)
    max_seq_len: jnp.ndarray = eqx.field(converter=as_float)
    mlp: str = eqx.field(static=True, default="gelu")
    tied_embeddings: bool = eqx.field(static=True, default=True)
    n_experts: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    top_k: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    capacity_factor: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    n_shared_experts: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    expert_ffn: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    moe_layer_fraction: jnp.ndarray = eqx.field(converter=as_float, default=1.0)
    attention: str = eqx.field(static=True, default="gqa")
    q_lora_rank: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    kv_lora_rank: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    qk_rope_head_dim: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    qk_nope_head_dim: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    v_head_dim: jnp.ndarray = eqx.field(converter=as_float, default=0.0)

    def __check_init__(self):
        n = f"Transformer({self.name})"
        check_choice(f"{n}.mlp", self.mlp, MLP_KINDS)
        check_choice(f"{n}.attention", self.attention, ATTENTION_KINDS)
        for field in ("q_lora_rank", "kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim"):
            check_range(f"{n}.{field}", getattr(self, field), 0.0, None)
        if self.attention == "mla":
            for field in ("kv_lora_rank", "qk_nope_head_dim", "v_head_dim"):
                check_range(f"{n}.{field}", getattr(self, field), 1.0, None)
        for field in ("hidden", "ffn", "n_layers", "n_heads", "n_kv_heads", "head_dim", "vocab", "seq_len",
                      "max_seq_len", "n_experts", "top_k"):
            check_range(f"{n}.{field}", getattr(self, field), 1.0, None)
        check_range(f"{n}.capacity_factor", self.capacity_factor, 0.0, None, lo_open=True)
        check_range(f"{n}.n_shared_experts", self.n_shared_experts, 0.0, None)
        check_range(f"{n}.expert_ffn", self.expert_ffn, 0.0, None)
        check_range(f"{n}.moe_layer_fraction", self.moe_layer_fraction, 0.0, 1.0)
        _concrete_le(f"{n}.n_kv_heads", self.n_kv_heads, self.n_heads, "n_heads")
        _concrete_le(f"{n}.top_k", self.top_k, self.n_experts, "n_experts")
        _concrete_le(f"{n}.seq_len", self.seq_len, self.max_seq_len, "max_seq_len")

    # -- derived sizes ---------------------------------------------------------------------------------------------
    @property
    def mlp_matrices(self) -> int:
        """Weight matrices per MLP: 2 (GeLU) or 3 (SwiGLU gate/up/down)."""
        return 3 if self.mlp == "swiglu" else 2

    @property
    def is_moe(self) -> bool:
        """``True`` when the spec *may* have routed experts (a concrete ``n_experts > 1``; traced -> ``True``)."""
        if isinstance(self.n_experts, jax.core.Tracer):  # checked first: a tracer's conversion error is costly
            return True
        return bool(np.max(np.asarray(self.n_experts)) > 1)

    @property
    def q_width(self):
        """``a · d_head`` (query/output projection width)."""
        return self.n_heads * self.head_dim

    @property
    def kv_width(self):
        """``a_kv · d_head`` (width of K and of V)."""
        return self.n_kv_heads * self.head_dim

    @property
    def expert_width(self):
        """Inner width of one expert."""
        return jnp.where(self.expert_ffn > 0, self.expert_ffn, self.ffn)

    @property
    def moe_fraction(self):
        """Fraction of layers with routed experts (0 for a dense model)."""
        return jnp.where(self.n_experts > 1, self.moe_layer_fraction, 0.0)

    @property
    def is_mla(self) -> bool:
        return self.attention == "mla"

    @property
    def attention_widths(self):
        """Widths of Q, K, V and of the attention output (the projection input), all heads.

        GQA: ``(a·d, a_kv·d, a_kv·d, a·d)``; MLA after its up-projections: ``(a·d_qk, a·d_qk, a·d_v, a·d_v)`` with
        ``d_qk = qk_nope_head_dim + qk_rope_head_dim`` (DeepSeek-V2 Eq. 12-19).
        """
        if self.is_mla:
            qk = self.n_heads * (self.qk_nope_head_dim + self.qk_rope_head_dim)
            v = self.n_heads * self.v_head_dim
            return qk, qk, v, v
        return self.q_width, self.kv_width, self.kv_width, self.q_width

    def attention_replicated_params(self):
        """Attention weights every tensor-parallel rank holds whole: MLA's down-projections ``h·(r_q + r_kv + d_R)``
        (replicated in Megatron-Core's MLA), none for GQA."""
        if not self.is_mla:
            return jnp.zeros_like(self.hidden)
        return self.hidden * (self.q_lora_rank + self.kv_lora_rank + self.qk_rope_head_dim)

    def attention_params(self):
        """Attention weights of one layer: QKV and output projection (+ biases); MLA: the down/up projections of
        DeepSeek-V2 Eq. 1-11 and the output projection."""
        h = self.hidden
        if self.is_mla:
            a = self.n_heads
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            q = jnp.where(self.q_lora_rank > 0, h * self.q_lora_rank + self.q_lora_rank * a * qk, h * a * qk)
            kv = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank * a * (
                self.qk_nope_head_dim + self.v_head_dim)
            return q + kv + a * self.v_head_dim * h
        return h * (self.q_width + 2 * self.kv_width) + self.q_width * h + self.q_width + 2 * self.kv_width + h

    def dense_mlp_params(self):
        return self.mlp_matrices * self.hidden * self.ffn + self.ffn + self.hidden

    def expert_params(self):
        """Weights of one expert."""
        return self.mlp_matrices * self.hidden * self.expert_width

    def moe_mlp_params(self):
        """Routed + shared experts and the router of one MoE layer."""
        return (self.n_experts + self.n_shared_experts) * self.expert_params() + self.hidden * self.n_experts

    def layer_params(self):
        """Average parameters per layer (MoE layers weighted by their fraction); includes 2 LayerNorms."""
        f = self.moe_fraction
        return self.attention_params() + (1 - f) * self.dense_mlp_params() + f * self.moe_mlp_params() \
            + 4 * self.hidden

    def embedding_params(self):
        """Input embedding (+ output projection unless tied)."""
        return self.vocab * self.hidden * (1.0 if self.tied_embeddings else 2.0)

    def num_params(self):
        """Total parameters ``L · layer + embeddings + final norm``."""
        return self.n_layers * self.layer_params() + self.embedding_params() + 2 * self.hidden

    def active_params_per_token(self):
        """Parameters touched per token (MoE: shared + top-k experts; the unused experts excluded)."""
        f = self.moe_fraction
        moe = (self.top_k + self.n_shared_experts) * self.expert_params() + self.hidden * self.n_experts
        layer = self.attention_params() + (1 - f) * self.dense_mlp_params() + f * moe + 4 * self.hidden
        return self.n_layers * layer + self.vocab * self.hidden

    def forward_flops_per_token(self, seq_len=None):
        """Model FLOPs of one forward pass per token (matmuls only, attention over the full sequence).

        Narayanan et al. 2021 Eq. 3 for GPT (``24 h² + 4 s h`` per layer plus ``2 h V``) generalised to GQA/SwiGLU/MoE
        and MLA (the score and value matmuls ``2 s (w_q + w_o)`` with :attr:`attention_widths`);
        training model FLOPs are 3× this (MFU), hardware FLOPs add the recomputation (HFU).
        """
        s = self.seq_len if seq_len is None else seq_len
        q, _, _, o = self.attention_widths
        return 2 * self.active_params_per_token() + 2 * self.n_layers * s * (q + o)


def _concrete_le(name, value, bound, bound_name):
    try:
        v, b = float(value), float(bound)
    except Exception:
        return
    if v > b:
        raise ValueError(f"{name} must be <= {bound_name} ({b:g}), got {v:g}")


# ---------------------------------------------------------------------------------------------------------------
# Presets. Sources are in each entry's ``source``; Megatron's vocabulary of 51,200 is GPT-2's 50,257 padded.
# ---------------------------------------------------------------------------------------------------------------
def _dense(name, h, f, L, a, *, kv=None, hd=None, V=51200, s=2048, max_s=None, mlp="gelu", tied=True):
    return dict(name=name, hidden=h, ffn=f, n_layers=L, n_heads=a, n_kv_heads=kv or a, head_dim=hd or h // a,
                vocab=V, seq_len=s, max_seq_len=max_s or s, mlp=mlp, tied_embeddings=tied)


_PRESETS = {
    # Brown et al., "Language models are few-shot learners", NeurIPS 2020, Table 2.1.
    "gpt3_175b": (_dense("GPT-3 175B", 12288, 49152, 96, 96), "Brown et al. 2020, Table 2.1"),
    "gpt3_13b": (_dense("GPT-3 13B", 5120, 20480, 40, 40), "Brown et al. 2020, Table 2.1"),
    # Narayanan et al. SC 2021 Table 1 (weak-scaling series) and Smith et al. 2022 (MT-NLG 530B).
    "megatron_22b": (_dense("Megatron 22B", 6144, 24576, 48, 64), "Narayanan et al. 2021, Table 1 (Korthikanti "
                     "et al. 2022, Table 3)"),
    "megatron_530b": (_dense("Megatron-Turing NLG 530B", 20480, 81920, 105, 128),
                      "Smith et al., 'Using DeepSpeed and Megatron to train MT-NLG 530B', 2022, Table 1"),
    "megatron_1t": (_dense("Megatron 1T", 25600, 102400, 128, 160), "Narayanan et al. 2021, Table 1"),
    # Touvron et al., "Llama 2: open foundation and fine-tuned chat models", 2023, Table 1 + released configs.
    "llama2_7b": (_dense("Llama-2 7B", 4096, 11008, 32, 32, V=32000, s=4096, mlp="swiglu", tied=False),
                  "Touvron et al. 2023 (Llama 2), Table 1 and config.json"),
    "llama2_13b": (_dense("Llama-2 13B", 5120, 13824, 40, 40, V=32000, s=4096, mlp="swiglu", tied=False),
                   "Touvron et al. 2023 (Llama 2), Table 1 and config.json"),
    "llama2_70b": (_dense("Llama-2 70B", 8192, 28672, 80, 64, kv=8, V=32000, s=4096, mlp="swiglu", tied=False),
                   "Touvron et al. 2023 (Llama 2), Table 1 and config.json (GQA, 8 KV heads)"),
    # Grattafiori et al., "The Llama 3 herd of models", 2024, Table 3.
    "llama3_8b": (_dense("Llama-3 8B", 4096, 14336, 32, 32, kv=8, V=128256, s=8192, max_s=131072,
                         mlp="swiglu", tied=False), "Llama 3 herd of models, 2024, Table 3"),
    "llama3_70b": (_dense("Llama-3 70B", 8192, 28672, 80, 64, kv=8, V=128256, s=8192, max_s=131072,
                          mlp="swiglu", tied=False), "Llama 3 herd of models, 2024, Table 3"),
    "llama3_405b": (_dense("Llama-3 405B", 16384, 53248, 126, 128, kv=8, V=128256, s=8192, max_s=131072,
                           mlp="swiglu", tied=False), "Llama 3 herd of models, 2024, Table 3"),
    # Jiang et al., "Mixtral of experts", 2024, Table 1: 8 experts, top-2, expert FFN 14336.
    "mixtral_8x7b": ({**_dense("Mixtral 8x7B", 4096, 14336, 32, 32, kv=8, V=32000, s=4096, max_s=32768,
                               mlp="swiglu", tied=False), "n_experts": 8, "top_k": 2, "capacity_factor": 1.0},
                     "Jiang et al. 2024 (Mixtral of experts), Table 1"),
    # DeepSeek-AI, "DeepSeekMoE" (Dai et al. 2024) 16B: 64 fine-grained routed experts (width 1408), top-6, 2
    # shared experts, 28 layers with the first dense (fraction 27/28), dense FFN 10944, vocab 102400.
    "deepseek_moe_16b": ({**_dense("DeepSeekMoE 16B", 2048, 10944, 28, 16, V=102400, s=4096, mlp="swiglu",
                                   tied=False), "n_experts": 64, "top_k": 6, "n_shared_experts": 2,
                          "expert_ffn": 1408, "moe_layer_fraction": 27 / 28, "capacity_factor": 1.0},
                         "Dai et al. 2024 (DeepSeekMoE), Table 1 / released config"),
}

#: Source of each preset (paper and table).
PRESET_SOURCES = {k: v[1] for k, v in _PRESETS.items()}


def transformer_preset(name: str, **overrides) -> Transformer:
    """A transformer preset by name (``gpt3_175b``, ``llama3_70b``, ``mixtral_8x7b``, ...; see
    :data:`PRESET_SOURCES`), with optional field overrides (``seq_len=4096``)."""
    key = name.lower().replace("-", "_").replace(".", "_")
    if key not in _PRESETS:
        raise ValueError(f"unknown transformer preset {name!r}; known: {sorted(_PRESETS)}")
    fields = dict(_PRESETS[key][0])
    bad = set(overrides) - set(Transformer.__dataclass_fields__)
    if bad:
        raise ValueError(f"transformer_preset: unknown field(s) {sorted(bad)}")
    fields.update(overrides)
    return Transformer(**fields)  # a seq_len beyond the preset's max_seq_len raises, naming both fields


def check_sequence(model: Transformer, seq_len) -> None:
    """Raise ``ValueError`` when a concrete ``seq_len`` exceeds the model's ``max_seq_len``."""
    check_integer("seq_len", seq_len, 1)
    _concrete_le("seq_len", seq_len, model.max_seq_len, f"{model.name}.max_seq_len")
