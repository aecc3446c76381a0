"""Reward models: Bradley–Terry training ranks held-out pairs, and `llmctl score` reports the rewards."""

from __future__ import annotations

import json

from llmctl.data.preference import collate_pairs, encode_preference, parse_preference
from tests.align_fixtures import llmctl_in_process, word_tokenizer
from tests.test_dpo import synthetic_pairs


def preference_batch(records, tokenizer):
    """A ``[chosen…, rejected…]`` batch of ``records``."""
    pairs = [encode_preference(parse_preference(r, "test"), tokenizer) for r in records]
    return collate_pairs(pairs, tokenizer.pad_token_id)


def tiny_reward_model(seed: int = 0):
    """A random tiny Llama reward model (one-output classification head)."""
    import torch

    from llmctl.models.params import build_config
    from llmctl.plugins import get_registry
    from llmctl.reward.model import reward_model_from_config

    torch.manual_seed(seed)
    return reward_model_from_config(build_config(get_registry().family("llama").tiny_config))


def train_reward_model(model, records, tokenizer, steps: int = 12, order_seed: int = 0, lr: float = 2e-3):
    """Bradley–Terry training on ``records`` in a seeded order; returns the per-step losses."""
    import random

    import torch

    from llmctl_plugins.methods.reward._loss import reward_batch_loss

    order = list(records)
    random.Random(order_seed).shuffle(order)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    losses = []
    for step in range(steps):
        start = (step * 8) % len(order)
        loss, _ = reward_batch_loss(model, preference_batch(order[start:start + 8], tokenizer))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_reward_model_ranks_held_out_pairs():
    from llmctl.reward.model import pairwise_accuracy

    tokenizer = word_tokenizer()
    model = tiny_reward_model()
    held_out = preference_batch(synthetic_pairs(40, 11), tokenizer)
    losses = train_reward_model(model, synthetic_pairs(48, 10), tokenizer)
    model.eval()
    assert pairwise_accuracy(model, held_out) > 0.9
    assert sum(losses[-5:]) < sum(losses[:5])


def save_reward_model(model, tokenizer, name: str, home, base: str = "tiny-llama"):
    """Publish ``model`` as a reward-model artefact in the store under ``home``."""
    from llmctl.store import create_artifact

    with create_artifact(name, kind="reward-model", format="safetensors", origin="test", parents=[base],
                         extra={"base": base}, root=home / "models") as directory:
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
    return home / "models" / name


def test_score_verb_prints_and_writes_rewards(tmp_path, capsys, monkeypatch):
    from tests.cli_helpers import run_llmctl

    tokenizer = word_tokenizer()
    model = tiny_reward_model()
    train_reward_model(model, synthetic_pairs(48, 10), tokenizer)
    save_reward_model(model, tokenizer, "rm-test", tmp_path)
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in synthetic_pairs(10, 12)))
    output = tmp_path / "scores.jsonl"
    result = run_llmctl("score", "rm-test", "--data", str(data), "--output", str(output),
                        env={"LLMCTL_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == 10 and all("chosen_reward" in r and "rejected_reward" in r for r in rows)
    assert sum(r["chosen_reward"] > r["rejected_reward"] for r in rows) >= 8
    completions = tmp_path / "answers.jsonl"
    completions.write_text(json.dumps({"prompt": "w1 w2", "completion": "w3 w7 w8 w9"}) + "\n")
    monkeypatch.setenv("LLMCTL_HOME", str(tmp_path))
    code, out, err = llmctl_in_process(capsys, "score", "rm-test", "--data", str(completions))
    assert code == 0, err
    assert "reward" in out and "1 answers" in out


def test_reward_method_on_the_loop_trains_an_adapter_that_score_reads(tmp_path, capsys, monkeypatch):
    from tests.align_fixtures import finetune, metrics_of, word_model_dir

    model_dir = word_model_dir(tmp_path / "base")
    data = tmp_path / "prefs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in synthetic_pairs(48, 10)))
    outcome = finetune(model_dir, "reward", data, tmp_path / "runs", "max_steps=12", "batch_size=8",
                       "learning_rate=3e-3", "val_split=0")
    records = metrics_of(outcome.run)
    assert "rewards/accuracy" in records[-1] and records[-1]["loss"] < records[0]["loss"]
    held_out = tmp_path / "held_out.jsonl"
    held_out.write_text("".join(json.dumps(r) + "\n" for r in synthetic_pairs(20, 11)))
    code, out, err = llmctl_in_process(capsys, "score", str(outcome.run), "--data", str(held_out))
    assert code == 0, err
    accuracy = float(out.rsplit("accuracy", 1)[1].split()[0])
    assert accuracy > 0.9
