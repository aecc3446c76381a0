"""``llmctl recipe run grpo-verifiable``, shortened: GRPO's exact-match reward rises by the margin the docs state.

The recipe (LoRA SFT of the bundled SmolLM2-135M on sums, merge, GRPO with the builtin ``exact-match`` reward, one
answer) runs as a user runs it, with ``grpo_steps=10`` instead of 30, in a private store whose ``smollm2-135m`` is the
shared, already converted one. docs/methods/grpo.md gives the measured numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run_llmctl

pytestmark = pytest.mark.slow
MARGIN = 0.1  # docs/methods/grpo.md: the 10-step run's last-5 mean reward exceeds its first-5 mean by at least this


def test_grpo_verifiable_raises_the_exact_match_reward(tmp_path):
    from llmctl.models.resolve import resolve_model

    shared = resolve_model("smollm2-135m")
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / shared.path.name).symlink_to(shared.path, target_is_directory=True)
    env = {"LLMCTL_HOME": str(home), "LLMCTL_RUNS_DIR": str(tmp_path / "runs")}
    done = run_llmctl("recipe", "run", "grpo-verifiable", "grpo_steps=10", env=env,
                      cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [run] = (tmp_path / "runs").glob("grpo-verifiable-*-grpo")
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    rewards = [r["reward/exact-match"] for r in records]
    assert len(rewards) == 10
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert last - first >= MARGIN, rewards
    assert all(r["zero_std_groups"] < 1 for r in records[:5])  # the SFT'd model is right only sometimes: signal
    assert "13" in done.stdout.split("step 4/4")[-1]  # the answer to "What is 6 + 7?"
