"""Reward, PPO and rejection sampling under ``--nproc 2 strategy=fsdp`` train and save (torchrun, gloo on CPU).

Under FSDP every process gathers the full weights and the first saves them through the method's
``save(model, tokenizer, folder, state_dict)``: a method that dropped ``state_dict`` failed there with a TypeError.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest

from tests.align_fixtures import word_model_dir


def _prompts(path, count=8):
    rng = random.Random(0)
    path.write_text("".join(json.dumps({"prompt": " ".join(f"w{rng.randrange(100, 400)}" for _ in range(3))}) + "\n"
                            for _ in range(count)))
    return path


def _pairs(path, count=16):
    rng = random.Random(1)

    def words(n):
        return " ".join(f"w{rng.randrange(20, 200)}" for _ in range(n))

    path.write_text("".join(json.dumps({"prompt": words(4), "chosen": f"{words(2)} w7 w8 w9", "rejected": words(5)})
                            + "\n" for _ in range(count)))
    return path


CASES = {
    "reward": (_pairs, ["batch_size=2"], ["adapter_config.json", "tokenizer.json"]),
    "ppo": (_prompts, ["reward=tests.ppo_rewards:target_word_count", "batch_size=4", "minibatch_size=4",
                       "ppo_epochs=1", "max_new_tokens=4"], ["adapter_config.json", "value_head.safetensors"]),
    "rejection-sampling": (_prompts, ["reward=tests.ppo_rewards:target_word_count", "num_samples=2",
                                      "max_new_tokens=4", "finetune=true", "batch_size=2"],
                           ["adapter_config.json", "best.jsonl", "candidates.jsonl"]),
}


@pytest.mark.parametrize("method", sorted(CASES))
def test_method_trains_and_saves_under_two_fsdp_processes(method, tmp_path):
    write_data, settings, expected = CASES[method]
    model = word_model_dir(tmp_path / "base")
    data = write_data(tmp_path / "data.jsonl")
    env = {**os.environ, "LLMCTL_RUNS_DIR": str(tmp_path / "runs"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "llmctl", "finetune", str(model), "--method", method, "--data", str(data),
               "max_steps=2", "val_split=0", "save_every=0", "precision=fp32", "strategy=fsdp", *settings,
               "--nproc", "2", "--name", "run", "--master-port", "29541"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    run = tmp_path / "runs" / "run"
    for name in expected:
        assert (run / name).is_file(), (name, sorted(p.name for p in run.iterdir()))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    assert len(records) == 2
    if method != "rejection-sampling":
        from peft import PeftConfig

        assert PeftConfig.from_pretrained(str(run)).peft_type.value == "LORA"
