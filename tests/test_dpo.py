"""DPO: preference data checks, the loss and gradients against trl's, and training that learns a preference."""

from __future__ import annotations

import copy
import json
import random

import pytest

from llmctl.data.preference import collate_pairs, encode_preference, read_preferences
from llmctl.errors import DataError
from tests.align_fixtures import lora, tiny_causal_lm, word_tokenizer

PATTERN = "w7 w8 w9"


def synthetic_pairs(count: int, seed: int) -> list[dict]:
    """Pairs whose chosen answer contains the fixed pattern ``w7 w8 w9`` and whose rejected answer does not."""
    rng = random.Random(seed)

    def words(n: int) -> str:
        return " ".join(f"w{rng.randrange(20, 200)}" for _ in range(n))

    return [{"prompt": words(4), "chosen": f"{words(2)} {PATTERN}", "rejected": words(5)} for _ in range(count)]


def write_jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def batch_of(records: list[dict], tokenizer) -> dict:
    from llmctl.data.preference import parse_preference

    pairs = [encode_preference(parse_preference(r, "test"), tokenizer) for r in records]
    return collate_pairs(pairs, tokenizer.pad_token_id)


def test_broken_line_names_file_and_line(tmp_path):
    path = tmp_path / "prefs.jsonl"
    lines = [json.dumps(r) for r in synthetic_pairs(8, 0)]
    lines[6] = '{"prompt": "w1", "chosen": '
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"prefs\.jsonl:7: invalid JSON"):
        read_preferences(path)


def test_missing_field_is_named(tmp_path):
    path = tmp_path / "prefs.jsonl"
    records = synthetic_pairs(3, 0)
    del records[1]["rejected"]
    write_jsonl(path, records)
    with pytest.raises(DataError, match=r"prefs\.jsonl:2: missing field 'rejected'"):
        read_preferences(path)


def test_messages_pairs_mask_only_the_answer(tmp_path):
    path = tmp_path / "prefs.jsonl"
    write_jsonl(path, [
        {"prompt": [{"role": "user", "content": "w1 w2"}], "chosen": "w3 w4", "rejected": [
            {"role": "assistant", "content": "w5"}]},
        {"chosen": [{"role": "user", "content": "w9"}, {"role": "assistant", "content": "w10"}],
         "rejected": [{"role": "user", "content": "w9"}, {"role": "assistant", "content": "w11 w12"}]},
    ])
    tokenizer = word_tokenizer()
    examples = read_preferences(path)
    assert examples[1].prompt == [{"role": "user", "content": "w9"}]
    batch = collate_pairs([encode_preference(e, tokenizer) for e in examples], tokenizer.pad_token_id)
    answer = tokenizer.decode(batch["input_ids"][0][batch["completion_mask"][0].bool()])
    assert answer.split() == ["w3", "w4", "<|im_end|>"]
    prompt = tokenizer.decode(batch["input_ids"][2][(batch["attention_mask"][2] - batch["completion_mask"][2]).bool()])
    assert prompt.split() == ["<|im_start|>", "user", "w1", "w2", "<|im_end|>", "<|im_start|>", "assistant"]


def _trl_loss_and_grads(policy, oracle_model, reference, tokenizer, inputs, tmp_path, **config):
    """trl's DPO loss and gradients on ``inputs`` for ``oracle_model`` (a peft ``policy``'s adapter is copied in)."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from llmctl.train.reference import is_peft_model

    dataset = Dataset.from_list(synthetic_pairs(2, 5))
    args = DPOConfig(output_dir=str(tmp_path / "trl"), bf16=False, use_cpu=True, report_to=[],
                     per_device_train_batch_size=2, **config)
    # trl takes an adapter it is handed as already trained (its copy becomes the reference); a new adapter from
    # ``peft_config`` means "the base is the reference", which is our semantics, so rebuild it there
    adapter = policy.peft_config["default"] if is_peft_model(policy) else None
    trainer = DPOTrainer(model=oracle_model, ref_model=reference, args=args, train_dataset=dataset,
                         processing_class=tokenizer, peft_config=adapter)
    if adapter:
        assert not trainer.model.load_state_dict(policy.state_dict(), strict=False).missing_keys
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, inputs)
    loss.backward()
    return loss, {n: p.grad for n, p in trainer.model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize(("loss_type", "label_smoothing", "trl_loss", "pairs", "adapter"), [
    ("sigmoid", 0.0, "sigmoid", 3, False),
    ("ipo", 0.0, "ipo", 3, False),
    # trl 1.16's sigmoid ignores label smoothing; its "aot" loss is the smoothed sigmoid once a batch has one pair
    ("sigmoid", 0.2, "aot", 1, False),
    ("sigmoid", 0.0, "sigmoid", 3, True),
])
def test_dpo_loss_and_gradients_match_trl(tmp_path, loss_type, label_smoothing, trl_loss, pairs, adapter):
    import torch

    from llmctl_plugins.methods.dpo._loss import preference_batch_loss

    tokenizer = word_tokenizer()
    inputs = batch_of(synthetic_pairs(pairs, 1), tokenizer)
    policy = tiny_causal_lm(seed=0)
    oracle_model = copy.deepcopy(policy)
    if adapter:  # reference = the same weights with the adapter switched off, in both implementations
        policy, reference = lora(policy, init_b=True), None
    else:
        reference = tiny_causal_lm(seed=1).eval()
    policy.train()
    ours = preference_batch_loss(policy, inputs, beta=0.1, label_smoothing=label_smoothing, loss_type=loss_type,
                                 reference_model=reference)
    ours.loss.backward()
    theirs, their_grads = _trl_loss_and_grads(policy, oracle_model, copy.deepcopy(reference), tokenizer, inputs,
                                              tmp_path, beta=0.1, loss_type=[trl_loss],
                                              label_smoothing=label_smoothing)
    assert abs(ours.loss.item() - theirs.item()) < 1e-5
    assert abs(ours.loss.item() - 0.6931) > 1e-3 or loss_type == "ipo"  # reference differs from policy
    our_grads = {n: p.grad for n, p in policy.named_parameters() if p.requires_grad}
    assert our_grads.keys() == their_grads.keys()
    assert sum(g.abs().sum() for g in our_grads.values()) > 0
    for name, grad in our_grads.items():
        torch.testing.assert_close(grad, their_grads[name], atol=1e-5, rtol=0, msg=name)


def test_dpo_method_on_the_training_loop_logs_rewards_and_saves_an_adapter(tmp_path):
    import torch
    from peft import PeftModel

    from llmctl_plugins.methods.dpo._loss import preference_accuracy
    from tests.align_fixtures import finetune, metrics_of, word_model_dir

    model_dir = word_model_dir(tmp_path / "base")
    data = tmp_path / "prefs.jsonl"
    write_jsonl(data, synthetic_pairs(32, 2))
    outcome = finetune(model_dir, "dpo", data, tmp_path / "runs", "max_steps=12", "batch_size=8",
                       "learning_rate=3e-3", "val_split=0")
    records = metrics_of(outcome.run)
    assert len(records) == 12
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margin", "rewards/accuracy"):
        assert key in records[-1]
    assert records[-1]["rewards/margin"] > records[0]["rewards/margin"]
    assert (outcome.run / "adapter_config.json").is_file()
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir)
    tuned = PeftModel.from_pretrained(base, outcome.run).eval()
    with torch.no_grad():
        accuracy = preference_accuracy(tuned, batch_of(synthetic_pairs(32, 3), word_tokenizer()))
    assert accuracy > 0.9


@pytest.mark.slow
def test_dpo_lora_on_smollm2_with_the_bundled_preferences_and_chat_uses_it(tmp_path):
    """Acceptance 7: DPO with a LoRA adapter on SmolLM2-135M completes on a CPU; `llmctl chat --adapter` uses it."""
    import os
    from pathlib import Path

    import torch

    from llmctl.data.preference import collate_pairs, encode_preference, read_preferences
    from llmctl.models.loading import load_tokenizer
    from llmctl_plugins.methods.dpo._loss import preference_batch_loss
    from tests.align_fixtures import finetune, metrics_of
    from tests.cli_helpers import run_llmctl

    data = Path(__file__).parents[1] / "recipes" / "data" / "preferences.jsonl"
    outcome = finetune("smollm2-135m", "dpo", data, tmp_path / "runs", "max_steps=6", "batch_size=4",
                       "learning_rate=5e-4", "max_length=96", "val_split=0", "precision=fp32")
    records = metrics_of(outcome.run)
    assert len(records) == 6 and all("rewards/margin" in r for r in records)
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base_dir = Path(json.loads((outcome.run / "llmctl.json").read_text())["base_model"])
    if not base_dir.is_dir():
        from llmctl.models.resolve import resolve_model

        base_dir = resolve_model("smollm2-135m").path
    tokenizer = load_tokenizer(base_dir)
    policy = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), outcome.run).eval()
    pairs = [encode_preference(e, tokenizer, 96) for e in read_preferences(data)]
    with torch.no_grad():
        result = preference_batch_loss(policy, collate_pairs(pairs, tokenizer.pad_token_id or 0))
    metrics = result.metrics()
    assert metrics["rewards/accuracy"] > 0.5 and metrics["rewards/margin"] > 0, metrics
    # a training prompt whose greedy answer the adapter changed, so the chat reply shows whether it is applied
    question, expected_text = "What is the capital of France?", None
    for example in read_preferences(data)[:12]:
        prompt = tokenizer.apply_chat_template(example.prompt, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)
        width = prompt["input_ids"].shape[1]
        with torch.no_grad():
            tuned = policy.generate(**prompt, max_new_tokens=8, do_sample=False)[0, width:]
            with policy.disable_adapter():
                untuned = policy.generate(**prompt, max_new_tokens=8, do_sample=False)[0, width:]
        if not torch.equal(tuned, untuned):
            question = example.prompt[-1]["content"]
            expected_text = tokenizer.decode(tuned, skip_special_tokens=True).strip()
            break
    if expected_text is None:
        pytest.skip("the short DPO run changed none of the greedy answers checked; nothing to tell chat apart by")
    chat = run_llmctl("chat", "smollm2-135m", "--adapter", str(outcome.run), "--prompt", question,
                      "--max-new-tokens", "8", "--temperature", "0", "--dtype", "float32", "--json",
                      "--repetition-penalty", "1", "--min-p", "0",  # plain greedy, as generate() above
                      env={"LLMCTL_RUNS_DIR": os.environ["LLMCTL_RUNS_DIR"]})
    assert chat.returncode == 0, chat.stderr
    answer = json.loads(chat.stdout[chat.stdout.index("{"):] if chat.stdout.lstrip()[:1] != "[" else chat.stdout)
    reply = (answer[-1] if isinstance(answer, list) else answer)["reply"]
    assert reply.strip() == expected_text
