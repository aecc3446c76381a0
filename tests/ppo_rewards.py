"""Rule-based reward functions for the PPO and rejection-sampling tests (importable as ``tests.ppo_rewards:…``)."""

from __future__ import annotations

TARGET_WORDS = {f"w{i}" for i in range(10, 60)}


def target_word_count(prompts, completions, **_):
    """Reward = how many words of the answer are in the target set ``w10 … w59``."""
    return [float(sum(word in TARGET_WORDS for word in text.split())) for text in completions]
