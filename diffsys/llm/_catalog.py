"""Model catalogue by Hugging Face id, and a reader of Hugging Face ``config.json`` files.

A :class:`ModelArch` composes the library's :class:`~diffsys.llm.Transformer` (sizes shared with the training and
inference models, multi-head latent attention included: DeepSeek-AI, "DeepSeek-V2", arXiv 2405.04434, Sec. 2.1)
with what that spec does not describe: sliding-window attention on a fraction of the layers (Beltagy et al.,
"Longformer", 2020; gpt-oss alternates sliding and full layers) and the weight/KV precision a checkpoint ships in.

Every preset's numbers are those of the model's published ``config.json`` on the Hugging Face Hub
(``https://huggingface.co/<id>/blob/main/config.json``); the keys read are listed in :func:`arch_from_config`.
"""

from __future__ import annotations

import json
import os

import equinox as eqx
import jax.numpy as jnp

from .._checks import did_you_mean
from .._pytree import as_float
from ._workloads import Transformer

class ModelArch(eqx.Module):
    """A served/trained model: a :class:`Transformer` (its sizes, MLA included) plus what serving needs besides
    (sliding window, provenance).

    Attributes:
        hf_id: Hugging Face id (static).
        transformer: the sizes (hidden, layers, heads, experts, MLA latents, ...).
        sliding_window: window of the sliding-window layers in tokens (0 = none).
        sliding_fraction: fraction of the layers using the window.
        source: where the numbers come from (static).

    The attention kind and the MLA sizes are the transformer's (``attention``, ``q_lora_rank``, ``kv_lora_rank``,
    ``qk_rope_head_dim``, ``qk_nope_head_dim``, ``v_head_dim``), readable here under the same names.
    """

    hf_id: str = eqx.field(static=True)
    transformer: Transformer
    sliding_window: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    sliding_fraction: jnp.ndarray = eqx.field(converter=as_float, default=0.0)
    source: str = eqx.field(static=True, default="")

    attention = property(lambda self: self.transformer.attention)
    is_mla = property(lambda self: self.transformer.is_mla)
    q_lora_rank = property(lambda self: self.transformer.q_lora_rank)
    kv_lora_rank = property(lambda self: self.transformer.kv_lora_rank)
    qk_rope_head_dim = property(lambda self: self.transformer.qk_rope_head_dim)
    qk_nope_head_dim = property(lambda self: self.transformer.qk_nope_head_dim)
    v_head_dim = property(lambda self: self.transformer.v_head_dim)

    def kv_elements_per_token_layer(self, tp=1.0):
        """KV-cache elements one token stores in one layer on one TP rank.

        GQA: ``2·⌈a_kv/tp⌉·d`` (K and V heads split over TP, replicated when ``tp > a_kv``; Ainslie et al. 2023);
        MLA: the compressed latent plus the decoupled RoPE key, ``kv_lora_rank + qk_rope_head_dim``, replicated on
        every TP rank (DeepSeek-V2 Sec. 2.1.2, Eq. 9-10; the cache TensorRT-LLM and SGLang keep).
        """
        t = self.transformer
        gqa = 2.0 * jnp.maximum(t.n_kv_heads / tp, 1.0) * t.head_dim
        mla = self.kv_lora_rank + self.qk_rope_head_dim
        return mla if self.is_mla else gqa

    def attention_params(self):
        """Attention weights of one layer (:meth:`Transformer.attention_params`; MLA: DeepSeek-V2 Eq. 1-11)."""
        return self.transformer.attention_params()

    def num_params(self):
        return self.transformer.num_params()

    def active_params_per_token(self):
        return self.transformer.active_params_per_token()


# ---------------------------------------------------------------------------------------------------------------
# config.json reader
# ---------------------------------------------------------------------------------------------------------------
def _get(cfg, *keys, default=None):
    for k in keys:
        if k in cfg and cfg[k] is not None:
            return cfg[k]
    return default


def arch_from_config(cfg: dict, hf_id: str = "custom", source: str = "") -> ModelArch:
    """A :class:`ModelArch` from a Hugging Face ``config.json`` dict.

    Keys read (Transformers' names; the first present wins): ``hidden_size``, ``num_hidden_layers``,
    ``num_attention_heads``, ``num_key_value_heads``, ``head_dim``, ``intermediate_size``, ``vocab_size``,
    ``max_position_embeddings``, ``tie_word_embeddings``; MoE: ``num_local_experts`` / ``num_experts`` /
    ``n_routed_experts``, ``num_experts_per_tok`` / ``experts_per_token``, ``moe_intermediate_size`` (else
    ``intermediate_size``), ``n_shared_experts`` / ``shared_expert_intermediate_size``, ``first_k_dense_replace``;
    MLA: ``kv_lora_rank``, ``q_lora_rank``, ``qk_rope_head_dim``, ``qk_nope_head_dim``, ``v_head_dim``; sliding
    window: ``sliding_window`` with ``layer_types`` (fraction of ``"sliding_attention"``) or ``use_sliding_window``.
    A ``text_config`` sub-dict (multimodal checkpoints) is read in place of the top level.
    """
    if not isinstance(cfg, dict):
        raise ValueError(f"config of {hf_id}: expected a JSON object")
    if isinstance(cfg.get("text_config"), dict):
        cfg = {**cfg, **cfg["text_config"]}
    missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size") if k not in cfg]
    if missing:
        raise ValueError(f"config of {hf_id}: missing key(s) {missing}")
    h = int(cfg["hidden_size"])
    L = int(cfg["num_hidden_layers"])
    a = int(cfg["num_attention_heads"])
    kv = int(_get(cfg, "num_key_value_heads", default=a))
    hd = int(_get(cfg, "head_dim", default=h // a))
    ffn = int(_get(cfg, "intermediate_size", "ffn_dim", default=4 * h))
    n_exp = int(_get(cfg, "num_local_experts", "num_experts", "n_routed_experts", default=1) or 1)
    top_k = int(_get(cfg, "num_experts_per_tok", "experts_per_token", "moe_top_k", default=1) or 1)
    expert_ffn = int(_get(cfg, "moe_intermediate_size", default=ffn if n_exp > 1 else 0) or 0)
    shared = float(_get(cfg, "n_shared_experts", default=0) or 0)
    shared_width = _get(cfg, "shared_expert_intermediate_size", default=0) or 0
    if shared == 0 and shared_width and expert_ffn:
        shared = float(shared_width) / expert_ffn  # Qwen2-MoE style: one wide shared expert
    first_dense = int(_get(cfg, "first_k_dense_replace", default=0) or 0)
    max_pos = int(_get(cfg, "max_position_embeddings", "max_seq_len", default=4096))
    # a gated MLP (three matrices) for SiLU/Swish activations (Llama, Qwen, Mistral: SwiGLU), two matrices for the
    # ungated ones (GeLU of GPT-2/3, squared ReLU "relu2" of Nemotron); MoE experts are gated
    act = str(_get(cfg, "hidden_act", "activation_function", default="silu")).lower()
    mlp = "swiglu" if n_exp > 1 or act in ("silu", "swish", "swiglu") else "gelu"
    mla = "kv_lora_rank" in cfg and cfg["kv_lora_rank"]
    extra = {}
    if mla:
        extra = dict(attention="mla", q_lora_rank=float(cfg.get("q_lora_rank") or 0),
                     kv_lora_rank=float(cfg["kv_lora_rank"]), qk_rope_head_dim=float(cfg.get("qk_rope_head_dim", 64)),
                     qk_nope_head_dim=float(cfg.get("qk_nope_head_dim", 128)),
                     v_head_dim=float(cfg.get("v_head_dim", 128)))
    t = Transformer(name=hf_id, hidden=h, ffn=ffn, n_layers=L, n_heads=a, n_kv_heads=kv, head_dim=hd,
                    vocab=int(cfg["vocab_size"]), seq_len=min(max_pos, 4096), max_seq_len=max_pos, mlp=mlp,
                    tied_embeddings=bool(_get(cfg, "tie_word_embeddings", default=False)), n_experts=n_exp,
                    top_k=min(top_k, n_exp), n_shared_experts=shared, expert_ffn=expert_ffn if n_exp > 1 else 0,
                    moe_layer_fraction=(L - first_dense) / L if n_exp > 1 else 1.0, **extra)
    window = float(_get(cfg, "sliding_window", default=0) or 0)
    frac = 0.0
    if window > 0:
        types = cfg.get("layer_types")
        if isinstance(types, list) and types:
            frac = sum(1 for x in types if "sliding" in str(x)) / len(types)
        elif cfg.get("use_sliding_window", True):
            frac = 1.0
        if window >= max_pos:
            frac = 0.0
    return ModelArch(hf_id=hf_id, transformer=t, sliding_window=window if frac > 0 else 0.0,
                     sliding_fraction=frac, source=source or f"config.json of {hf_id}")


def load_hf_config(path: str, hf_id: str | None = None) -> ModelArch:
    """Read a Hugging Face ``config.json`` (a file, or a directory holding one) into a :class:`ModelArch`."""
    p = os.path.join(path, "config.json") if os.path.isdir(path) else path
    try:
        with open(p, encoding="utf-8") as f:
            cfg = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from None
    return arch_from_config(cfg, hf_id or cfg.get("_name_or_path") or os.path.basename(os.path.dirname(
        os.path.abspath(p))) or "custom", source=p)


# ---------------------------------------------------------------------------------------------------------------
# Presets: the fields of each model's config.json on the Hugging Face Hub (https://huggingface.co/<id>).
# ---------------------------------------------------------------------------------------------------------------
def _llama(h, f, L, a, kv, ctx=131072):
    return {"hidden_size": h, "intermediate_size": f, "num_hidden_layers": L, "num_attention_heads": a,
            "num_key_value_heads": kv, "head_dim": h // a, "vocab_size": 128256, "max_position_embeddings": ctx,
            "tie_word_embeddings": False, "hidden_act": "silu"}


def _qwen3(h, L, a, kv, f, experts=0, top_k=0, moe_f=0):
    c = {"hidden_size": h, "intermediate_size": f, "num_hidden_layers": L, "num_attention_heads": a,
         "num_key_value_heads": kv, "head_dim": 128, "vocab_size": 151936, "max_position_embeddings": 40960,
         "tie_word_embeddings": False, "hidden_act": "silu"}
    if experts:
        c.update(num_experts=experts, num_experts_per_tok=top_k, moe_intermediate_size=moe_f)
    return c


_DEEPSEEK_V3 = {"hidden_size": 7168, "intermediate_size": 18432, "moe_intermediate_size": 2048,
                "num_hidden_layers": 61, "first_k_dense_replace": 3, "num_attention_heads": 128,
                "num_key_value_heads": 128, "n_routed_experts": 256, "n_shared_experts": 1,
                "num_experts_per_tok": 8, "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_rope_head_dim": 64,
                "qk_nope_head_dim": 128, "v_head_dim": 128, "vocab_size": 129280,
                "max_position_embeddings": 163840, "tie_word_embeddings": False, "hidden_act": "silu"}

_CONFIGS = {
    "meta-llama/Llama-3.1-8B": _llama(4096, 14336, 32, 32, 8),
    "meta-llama/Llama-3.1-70B": _llama(8192, 28672, 80, 64, 8),
    "meta-llama/Llama-3.1-405B": _llama(16384, 53248, 126, 128, 8),
    "Qwen/Qwen3-32B": _qwen3(5120, 64, 64, 8, 25600),
    "Qwen/Qwen3-30B-A3B": _qwen3(2048, 48, 32, 4, 6144, 128, 8, 768),
    "Qwen/Qwen3-235B-A22B": _qwen3(4096, 94, 64, 4, 12288, 128, 8, 1536),
    "deepseek-ai/DeepSeek-V3": _DEEPSEEK_V3,
    "openai/gpt-oss-120b": {"hidden_size": 2880, "intermediate_size": 2880, "num_hidden_layers": 36,
                            "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64,
                            "num_local_experts": 128, "experts_per_token": 4, "vocab_size": 201088,
                            "max_position_embeddings": 131072, "sliding_window": 128,
                            "layer_types": ["sliding_attention", "full_attention"] * 18,
                            "tie_word_embeddings": False, "hidden_act": "silu"},
    "openai/gpt-oss-20b": {"hidden_size": 2880, "intermediate_size": 2880, "num_hidden_layers": 24,
                           "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64,
                           "num_local_experts": 32, "experts_per_token": 4, "vocab_size": 201088,
                           "max_position_embeddings": 131072, "sliding_window": 128,
                           "layer_types": ["sliding_attention", "full_attention"] * 12,
                           "tie_word_embeddings": False, "hidden_act": "silu"},
    "mistralai/Mixtral-8x7B-v0.1": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                                    "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
                                    "num_local_experts": 8, "num_experts_per_tok": 2, "vocab_size": 32000,
                                    "max_position_embeddings": 32768, "tie_word_embeddings": False,
                                    "hidden_act": "silu"},
    "MiniMaxAI/MiniMax-M2": {"hidden_size": 3072, "intermediate_size": 1536, "num_hidden_layers": 62,
                             "num_attention_heads": 48, "num_key_value_heads": 8, "head_dim": 128,
                             "num_local_experts": 256, "num_experts_per_tok": 8, "vocab_size": 200064,
                             "max_position_embeddings": 196608, "tie_word_embeddings": False,
                             "hidden_act": "silu"},
}
#: same architecture as another entry (fine-tunes, quantized checkpoints, point releases)
_ALIASES = {
    "meta-llama/Llama-3.1-8B-Instruct": "meta-llama/Llama-3.1-8B",
    "meta-llama/Llama-3.1-70B-Instruct": "meta-llama/Llama-3.1-70B",
    "meta-llama/Llama-3.1-405B-Instruct": "meta-llama/Llama-3.1-405B",
    "Qwen/Qwen3-235B-A22B-FP8": "Qwen/Qwen3-235B-A22B",
    "Qwen/Qwen3-32B-FP8": "Qwen/Qwen3-32B",
    "deepseek-ai/DeepSeek-R1": "deepseek-ai/DeepSeek-V3",
    "deepseek-ai/DeepSeek-V3-0324": "deepseek-ai/DeepSeek-V3",
    "deepseek-ai/DeepSeek-R1-0528": "deepseek-ai/DeepSeek-V3",
    "mistralai/Mixtral-8x7B": "mistralai/Mixtral-8x7B-v0.1",
    "mistralai/Mixtral-8x7B-Instruct-v0.1": "mistralai/Mixtral-8x7B-v0.1",
    "MiniMaxAI/MiniMax-M2.5": "MiniMaxAI/MiniMax-M2",
}

#: every id the catalogue knows (canonical ids and aliases)
CATALOG_IDS = tuple(sorted(set(_CONFIGS) | set(_ALIASES)))


def _canonical(hf_id: str) -> str:
    lower = {k.lower(): k for k in CATALOG_IDS}
    key = lower.get(str(hf_id).strip().lower())
    if key is None:
        raise ValueError(f"model: unknown model id {hf_id!r}{did_you_mean(hf_id, CATALOG_IDS)} "
                         f"(or pass a config.json path)")
    return _ALIASES.get(key, key)


def model_config(hf_id: str) -> dict:
    """The ``config.json`` fields of a catalogued model (a copy)."""
    return json.loads(json.dumps(_CONFIGS[_canonical(hf_id)]))


def model_arch(hf_id_or_path: str) -> ModelArch:
    """A catalogued model by Hugging Face id (case-insensitive; aliases such as ``-Instruct``/``-FP8``/R1 map to
    their architecture), or a ``config.json`` path. An unknown id raises a one-line ``ValueError`` with a
    did-you-mean."""
    s = str(hf_id_or_path)
    if s.endswith(".json") or os.path.isdir(s) or os.path.sep in s and os.path.exists(s):
        return load_hf_config(s)
    key = _canonical(s)
    name = next((k for k in CATALOG_IDS if k.lower() == s.strip().lower()), key)
    return arch_from_config(_CONFIGS[key], name, source=f"https://huggingface.co/{key}/blob/main/config.json")
