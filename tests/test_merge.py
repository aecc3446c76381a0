"""Adapter merge: shard-by-shard LoRA / DoRA merges equal peft's own ``merge_and_unload`` and stay within memory."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


def _tiny_model(family: str = "llama", **overrides):
    from transformers import AutoModelForCausalLM

    from llmctl.models.params import build_config
    from llmctl.plugins import get_registry

    torch.manual_seed(0)
    config = build_config({**get_registry().family(family).tiny_config, **overrides})
    return AutoModelForCausalLM.from_config(config)


def _train_adapter(model, **lora):
    """Wrap ``model`` with peft and give the adapter non-zero weights (B starts at zero in peft)."""
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(model, LoraConfig(**lora))
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_" in name:
                parameter.copy_(torch.randn_like(parameter) * 0.1 + (1.0 if "magnitude" in name else 0.0))
    return peft_model


@pytest.mark.parametrize("lora", [
    {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj"]},
    {"r": 4, "lora_alpha": 16, "use_rslora": True, "target_modules": ["q_proj", "down_proj"],
     "rank_pattern": {"down_proj": 2}, "alpha_pattern": {"down_proj": 3}},
    {"r": 4, "lora_alpha": 8, "use_dora": True, "target_modules": ["q_proj", "v_proj", "up_proj"]},
    {"r": 2, "lora_alpha": 4, "target_modules": ["embed_tokens", "q_proj"], "modules_to_save": ["lm_head"]},
], ids=["lora", "rslora-patterns", "dora", "embedding+modules_to_save"])
def test_merge_matches_peft_merge_and_unload(tmp_path: Path, lora: dict) -> None:
    from transformers import AutoModelForCausalLM

    from llmctl.convert.adapter_merge import merge_adapter

    base = _tiny_model()
    base.save_pretrained(tmp_path / "base")
    peft_model = _train_adapter(_tiny_model(), **lora)
    peft_model.save_pretrained(tmp_path / "adapter")
    reference = peft_model.merge_and_unload().state_dict()

    (tmp_path / "merged").mkdir()
    summary = merge_adapter(tmp_path / "base", tmp_path / "adapter", tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").state_dict()

    assert summary["method"] == ("dora" if lora.get("use_dora") else "lora")
    changed = 0
    for name, expected in reference.items():
        torch.testing.assert_close(merged[name], expected, rtol=1e-5, atol=1e-6, msg=name)
        changed += not torch.equal(expected, base.state_dict()[name])
    assert changed >= 2  # the adapter really moved weights, so equality above means something


def test_merge_refuses_an_adapter_for_another_model(tmp_path: Path) -> None:
    from llmctl.convert.adapter_merge import merge_adapter
    from llmctl.errors import DataError

    _tiny_model().save_pretrained(tmp_path / "base")
    adapter = _train_adapter(_tiny_model(num_hidden_layers=3), r=2, target_modules=["q_proj"])
    adapter.save_pretrained(tmp_path / "adapter")
    (tmp_path / "merged").mkdir()
    with pytest.raises(DataError, match="wrong base model"):
        merge_adapter(tmp_path / "base", tmp_path / "adapter", tmp_path / "merged")
