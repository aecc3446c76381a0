"""The loop's arithmetic: schedule shape, data order, accumulation equals a large batch, settings layering."""

from __future__ import annotations

import json

import pytest

from llmctl.config import parse_overrides, read_recipe, resolve_settings
from llmctl.errors import DataError
from llmctl.train.order import micro_batch_items, step_items
from llmctl.train.schedule import lr_factor


def test_warmup_then_cosine_or_linear_decay():
    assert [round(lr_factor(s, 10, 2, "cosine"), 3) for s in (0, 1, 2, 6, 10)] == [0.5, 1.0, 1.0, 0.5, 0.0]
    assert round(lr_factor(6, 10, 2, "linear"), 3) == 0.5
    assert lr_factor(9, 10, 0, "constant") == 1.0


def test_processes_split_each_step_exactly_like_one_process():
    one = micro_batch_items(3, 10, batch_size=4, grad_accum=1, world_size=1, rank=0, seed=1)
    two = [micro_batch_items(3, 10, batch_size=2, grad_accum=1, world_size=2, rank=r, seed=1)[0] for r in (0, 1)]
    assert one[0] == two[0] + two[1]
    epoch = step_items(0, 10, 10, seed=1)
    assert sorted(epoch) == list(range(10)) and epoch != list(range(10))


def test_settings_layer_method_family_recipe_command_line(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("lora_r: 32\nlearning_rate: 5e-4\n")
    settings = resolve_settings("lora", {"lora_r": 8, "lora_alpha": 16, "learning_rate": 2e-4}, "llama",
                                {"lora_r": 16, "lora_alpha": 32}, read_recipe(recipe),
                                parse_overrides(["learning_rate=1e-3"]))
    assert settings["lora_r"] == 32 and settings["lora_alpha"] == 32 and settings["learning_rate"] == 1e-3
    assert settings.sources["lora_r"] == f"{recipe}:1" and settings.sources["lora_alpha"] == "family llama"


def test_unknown_keys_are_refused_with_file_and_line(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("lora_r: 32\n\nlearnig_rate: 5e-4\n")
    with pytest.raises(DataError, match=rf"^{recipe}:3: unknown setting 'learnig_rate' .*did you mean 'learning_rate'"):
        resolve_settings("lora", {"lora_r": 8}, recipe=read_recipe(recipe))
    with pytest.raises(DataError, match="command line: setting 'max_steps' expects int, got 'many'"):
        resolve_settings("lora", {}, overrides=parse_overrides(["max_steps=many"]))


def test_gradient_accumulation_matches_one_large_batch(tmp_path, monkeypatch):
    from llmctl.train.finetune import FinetuneRequest, run_finetune
    from tests.tiny_models import make_tiny_model_dir

    monkeypatch.setenv("LLMCTL_RUNS_DIR", str(tmp_path / "runs"))
    model = make_tiny_model_dir("llama", tmp_path / "m")
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": f"sample number {i} " * (1 + i % 3)}) + "\n" for i in range(8)))
    common = ["max_steps=3", "val_split=0", "precision=fp32", "lora_dropout=0", "save_every=0"]
    big = run_finetune(FinetuneRequest(str(model), "lora", str(data), overrides=[*common, "batch_size=4"]))
    small = run_finetune(FinetuneRequest(str(model), "lora", str(data),
                                         overrides=[*common, "batch_size=2", "grad_accum=2"]))
    for a, b in zip(big.result.history, small.result.history, strict=True):
        assert abs(a["loss"] - b["loss"]) < 1e-5


@pytest.mark.parametrize("family", ["llama", "gemma3", "mixtral", "phi3", "olmo", "qwen2"])
def test_loss_on_labelled_positions_only_equals_the_full_logits_loss(tmp_path, family):
    """The SFT loss projects only answer positions onto the vocabulary; loss and gradients must not change."""
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    from llmctl.data.batching import collate_padded
    from llmctl.data.encode import IGNORE, EncodedExample
    from llmctl.train.method import TrainingMethod
    from tests.tiny_models import make_tiny_model_dir

    model = AutoModelForCausalLM.from_pretrained(make_tiny_model_dir(family, tmp_path / "m"), dtype=torch.float32)
    generator = torch.Generator().manual_seed(0)
    examples = []
    for length, answer in ((12, 4), (7, 3), (10, 1)):  # ragged rows, answers of different lengths
        ids = torch.randint(5, 100, (length,), generator=generator).tolist()
        examples.append(EncodedExample(tuple(ids), tuple([IGNORE] * (length - answer) + ids[-answer:])))
    batch = collate_padded(examples, pad_id=0)

    ours = TrainingMethod().loss(model, batch, {})
    (ours.total / ours.count).backward()
    ours_grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    logits = model(**inputs, use_cache=False).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    reference = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE,
                                reduction="sum")
    (reference / ours.count).backward()

    assert ours.count == 4 + 3 + 1
    assert torch.allclose(ours.total, reference, atol=1e-5, rtol=1e-5)
    for ours_grad, reference_param in zip(ours_grads, model.parameters(), strict=True):
        if ours_grad is None:
            assert reference_param.grad is None
        else:
            assert torch.allclose(ours_grad, reference_param.grad, atol=1e-6, rtol=1e-4)
