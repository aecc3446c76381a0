"""Rejection sampling: N scored candidates per prompt with the best marked, and a data set finetune accepts."""

from __future__ import annotations

import json
import random

from tests.align_fixtures import finetune, metrics_of, word_model_dir
from tests.ppo_rewards import target_word_count


def test_best_of_n_writes_scored_candidates_and_a_data_set_finetune_accepts(tmp_path):
    model_dir = word_model_dir(tmp_path / "base")
    rng = random.Random(0)
    prompts = [" ".join(f"w{rng.randrange(100, 400)}" for _ in range(3)) for _ in range(5)]
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    outcome = finetune(model_dir, "rejection-sampling", data, tmp_path / "runs",
                       "reward=tests.ppo_rewards:target_word_count", "num_samples=3", "max_new_tokens=6")
    candidates = [json.loads(line) for line in (outcome.run / "candidates.jsonl").read_text().splitlines()]
    assert len(candidates) == 3 * len(prompts)
    for prompt in prompts:
        group = [c for c in candidates if c["prompt"] == prompt]
        assert len(group) == 3 and sorted(c["rank"] for c in group) == [1, 2, 3]
        best = [c for c in group if c["best"]]
        assert len(best) == 1 and best[0]["reward"] == max(c["reward"] for c in group)
        assert best[0]["reward"] == target_word_count([prompt], [best[0]["completion"]])[0]
    best_set = outcome.run / "best.jsonl"
    rows = [json.loads(line) for line in best_set.read_text().splitlines()]
    assert [r["messages"][0]["content"] for r in rows] == prompts
    sft = finetune(model_dir, "lora", best_set, tmp_path / "runs", "max_steps=2", "batch_size=2", "val_split=0")
    assert len(metrics_of(sft.run)) == 2 and (sft.run / "adapter_config.json").is_file()


CUSTOM_CODE = '''
from transformers import AutoModel, LlamaConfig, LlamaForSequenceClassification, LlamaModel


class ScorerConfig(LlamaConfig):
    model_type = "llmctl-test-scorer"


class ScorerModel(LlamaModel):
    config_class = ScorerConfig


AutoModel.register(ScorerConfig, ScorerModel, exist_ok=True)


class Scorer(LlamaForSequenceClassification):
    config_class = ScorerConfig
'''


def _custom_code_reward_model(path, tokenizer_source):
    """A reward model whose config names its own Python code (auto_map): it loads only with trust_remote_code."""
    import shutil

    from llmctl.reward.model import reward_model_from_config
    from tests.align_fixtures import tiny_causal_lm, word_tokenizer

    tokenizer = word_tokenizer()
    model = reward_model_from_config(tiny_causal_lm(seed=3, vocab_size=len(tokenizer)).config)
    model.save_pretrained(path)
    for item in tokenizer_source.iterdir():
        if item.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(item, path / item.name)
    config = json.loads((path / "config.json").read_text())
    config["model_type"] = "llmctl-test-scorer"
    config["auto_map"] = {"AutoConfig": "scorer.ScorerConfig",
                          "AutoModelForSequenceClassification": "scorer.Scorer"}
    (path / "config.json").write_text(json.dumps(config))
    (path / "scorer.py").write_text(CUSTOM_CODE)
    return path


def test_rejection_sampling_passes_trust_remote_code_to_its_reward_model(tmp_path):
    import os
    import subprocess
    import sys

    model_dir = word_model_dir(tmp_path / "base")
    scorer = _custom_code_reward_model(tmp_path / "scorer", model_dir)
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"w{100 + i} w{200 + i}"}) + "\n" for i in range(3)))
    env = {**os.environ, "LLMCTL_RUNS_DIR": str(tmp_path / "runs"), "HF_MODULES_CACHE": str(tmp_path / "modules")}
    command = [sys.executable, "-m", "llmctl", "finetune", str(model_dir), "--method", "rejection-sampling",
               "--data", str(data), f"reward={scorer}", "num_samples=2", "max_new_tokens=4"]
    refused = subprocess.run([*command, "--name", "refused"], env=env, capture_output=True, text=True)
    assert refused.returncode != 0
    assert "--trust-remote-code" in refused.stderr and "Traceback" not in refused.stderr
    trusted = subprocess.run([*command, "--name", "trusted", "--trust-remote-code"], env=env, capture_output=True,
                             text=True)
    assert trusted.returncode == 0, trusted.stderr[-2000:]
    candidates = [json.loads(line) for line in
                  (tmp_path / "runs" / "trusted" / "candidates.jsonl").read_text().splitlines()]
    assert len(candidates) == 6 and len({c["reward"] for c in candidates}) > 1  # scored by the custom model
