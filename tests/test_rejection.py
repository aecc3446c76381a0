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
