"""Adapter merge: shard-by-shard LoRA / DoRA merges equal peft's own ``merge_and_unload`` and stay within memory."""

from __future__ import annotations

import json
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


def test_merge_memory_stays_near_one_shard(tmp_path: Path) -> None:
    from safetensors import safe_open

    from tests.convert_fixtures import largest_shard, lora_adapter_dir, peak_memory_of, sharded_model_dir

    model_dir = sharded_model_dir(tmp_path / "big")
    adapter_dir = lora_adapter_dir(tmp_path / "adapter")
    total = sum(p.stat().st_size for p in model_dir.glob("*.safetensors"))
    used = peak_memory_of("merge", model_dir, tmp_path / "merged", str(adapter_dir))
    assert used < 3 * largest_shard(model_dir), (used, largest_shard(model_dir))
    assert used < total / 2, (used, total)
    shard = "model-00003-of-00008.safetensors"
    with safe_open(str(model_dir / shard), "pt") as before, safe_open(str(tmp_path / "merged" / shard), "pt") as after:
        name = "model.layers.2.self_attn.q_proj.weight"
        assert not torch.equal(before.get_tensor(name), after.get_tensor(name))
        name = "model.layers.2.mlp.up_proj.weight"
        assert torch.equal(before.get_tensor(name), after.get_tensor(name))


def test_convert_run_merge_cli_publishes_a_model_that_loads(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from tests.cli_helpers import run_llmctl

    base = _tiny_model()
    base.save_pretrained(tmp_path / "base")
    run_dir = tmp_path / "runs" / "run-1"
    peft_model = _train_adapter(_tiny_model(), r=4, lora_alpha=8, use_dora=True, target_modules=["q_proj", "v_proj"])
    peft_model.save_pretrained(run_dir / "adapter")
    (run_dir / "llmctl.json").write_text(json.dumps({"name": "run-1", "kind": "run",
                                                     "base_model": str(tmp_path / "base")}))
    env = {"LLMCTL_HOME": str(tmp_path / "home"), "LLMCTL_RUNS_DIR": str(tmp_path / "runs")}

    done = run_llmctl("convert", "run-1", "--merge", env=env)
    assert done.returncode == 0, done.stderr
    assert "Merged DoRA adapter" in done.stdout
    merged_dir = tmp_path / "home" / "models" / "run-1-merged"
    meta = json.loads((merged_dir / "llmctl.json").read_text())
    assert meta["parents"] == ["base", "run-1"] and meta["method"] == "dora" and meta["format"] == "safetensors"
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    ids = torch.tensor([[1, 5, 9, 30]])
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, peft_model(input_ids=ids).logits, rtol=1e-4, atol=1e-5)

    missing = run_llmctl("convert", "no-such-run", "--merge", env=env)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr and "no run" in missing.stderr
