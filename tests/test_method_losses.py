"""Per-step losses of LoRA, DoRA, DPO, reward and PPO runs on tiny models, against values recorded before a refactor.

Moving a method's code between modules must not change what it computes: each run here is seeded, trains in fp32
(``precision=fp32``, the same on AVX2 and AVX-512 machines) and logs every step; the losses must match the ones in
``tests/data/method_losses.json`` to a relative 1e-3 (float reduction order differs a little between SIMD paths,
a changed computation moves them by far more). Re-record on purpose only, with ``LLMCTL_RECORD_LOSSES=1``.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from tests.align_fixtures import finetune, metrics_of, word_model_dir

RECORDED = Path(__file__).parent / "data" / "method_losses.json"
COMMON = ("max_steps=3", "precision=fp32", "seed=0", "val_split=0")


def _pairs(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)

    def words(n: int) -> str:
        return " ".join(f"w{rng.randrange(20, 200)}" for _ in range(n))

    return [{"prompt": words(4), "chosen": f"{words(2)} w7 w8 w9", "rejected": words(5)} for _ in range(count)]


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _data(method: str, folder: Path) -> Path:
    rng = random.Random(1)
    if method in ("dpo", "reward"):
        return _write(folder / "prefs.jsonl", _pairs(16, 2))
    if method == "ppo":
        return _write(folder / "prompts.jsonl", [{"prompt": " ".join(f"w{rng.randrange(100, 400)}" for _ in range(3))}
                                                 for _ in range(8)])
    return _write(folder / "sft.jsonl", [{"instruction": " ".join(f"w{rng.randrange(20, 200)}" for _ in range(4)),
                                          "output": " ".join(f"w{rng.randrange(20, 200)}" for _ in range(6))}
                                         for _ in range(16)])


RUNS = {
    "lora": ("batch_size=4", "learning_rate=1e-2", "lora_dropout=0.1"),
    "dora": ("batch_size=4", "learning_rate=1e-2"),
    "dpo": ("batch_size=4", "learning_rate=3e-3"),
    "reward": ("batch_size=4", "learning_rate=3e-3"),
    "ppo": ("reward=tests.ppo_rewards:target_word_count", "batch_size=4", "minibatch_size=4", "ppo_epochs=1",
            "max_new_tokens=4", "learning_rate=1e-3"),
}


def _losses(method: str, tmp_path: Path) -> list[float]:
    model_dir = word_model_dir(tmp_path / "base")
    outcome = finetune(model_dir, method, _data(method, tmp_path), tmp_path / "runs", *COMMON, *RUNS[method])
    return [record["loss"] for record in metrics_of(outcome.run)]


@pytest.mark.parametrize("method", sorted(RUNS))
def test_per_step_losses_match_the_recorded_ones(method, tmp_path):
    losses = _losses(method, tmp_path)
    assert len(losses) == 3
    recorded = json.loads(RECORDED.read_text()) if RECORDED.is_file() else {}
    if os.environ.get("LLMCTL_RECORD_LOSSES") == "1":
        recorded[method] = losses
        RECORDED.parent.mkdir(exist_ok=True)
        RECORDED.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    assert method in recorded, "no recorded losses: run once with LLMCTL_RECORD_LOSSES=1"
    assert losses == pytest.approx(recorded[method], rel=1e-3), (method, losses, recorded[method])
