"""Model catalogue: published parameter counts, config.json reading, errors."""

import json

import pytest

from diffsys.llm import CATALOG_IDS, load_hf_config, model_arch

# total / active parameters (billions) published on each model card
PUBLISHED = {
    "meta-llama/Llama-3.1-8B": (8.03, None), "meta-llama/Llama-3.1-70B": (70.6, None),
    "meta-llama/Llama-3.1-405B": (405.9, None), "Qwen/Qwen3-32B": (32.8, None),
    "Qwen/Qwen3-30B-A3B": (30.5, 3.3), "Qwen/Qwen3-235B-A22B": (235.0, 22.0),
    "deepseek-ai/DeepSeek-V3": (671.0, 37.0), "openai/gpt-oss-120b": (116.8, 5.1),
    "mistralai/Mixtral-8x7B": (46.7, 12.9),
}


@pytest.mark.parametrize("hf_id", sorted(PUBLISHED))
def test_parameter_counts_match_model_cards(hf_id):
    total, active = PUBLISHED[hf_id]
    m = model_arch(hf_id)
    assert float(m.num_params()) / 1e9 == pytest.approx(total, rel=0.02)
    if active is not None:
        assert float(m.active_params_per_token()) / 1e9 == pytest.approx(active, rel=0.1)


def test_aliases_and_architecture_details():
    r1, v3 = model_arch("deepseek-ai/DeepSeek-R1"), model_arch("deepseek-ai/DeepSeek-V3")
    assert r1.is_mla and float(r1.num_params()) == float(v3.num_params())
    assert float(r1.kv_elements_per_token_layer(8)) == 576.0  # kv_lora_rank + rope dim, replicated over TP
    assert float(r1.transformer.moe_layer_fraction) == pytest.approx(58 / 61)
    oss = model_arch("openai/gpt-oss-120b")
    assert float(oss.sliding_window) == 128 and float(oss.sliding_fraction) == 0.5
    llama = model_arch("meta-llama/llama-3.1-8b-instruct")  # case-insensitive alias
    assert float(llama.kv_elements_per_token_layer(2)) == 2 * 4 * 128
    assert float(llama.kv_elements_per_token_layer(16)) == 2 * 1 * 128  # KV heads replicated beyond 8
    assert "meta-llama/Llama-3.1-8B-Instruct" in CATALOG_IDS


def test_unknown_id_is_one_line_with_suggestion():
    with pytest.raises(ValueError, match=r"did you mean 'Qwen/Qwen3-32B'") as e:
        model_arch("Qwen/Qwen3-32")
    assert "\n" not in str(e.value)


def test_load_hf_config_roundtrip(tmp_path):
    from diffsys.llm import model_config

    cfg = model_config("Qwen/Qwen3-30B-A3B")
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    m = load_hf_config(str(tmp_path))
    assert float(m.num_params()) == float(model_arch("Qwen/Qwen3-30B-A3B").num_params())
    assert float(model_arch(str(tmp_path / "config.json")).num_params()) == float(m.num_params())
    (tmp_path / "bad.json").write_text("{\"hidden_size\": 4}")
    with pytest.raises(ValueError, match="missing key"):
        load_hf_config(str(tmp_path / "bad.json"))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_hf_config(str(tmp_path / "broken.json"))
