"""PPO: the mathematics against hand-computed values, and a rule-based reward that rises while KL stays bounded."""

from __future__ import annotations

import copy
import random

import pytest

from tests.align_fixtures import tiny_causal_lm, word_tokenizer
from tests.ppo_rewards import target_word_count


def test_gae_matches_a_hand_computed_recursion():
    import torch

    from llmctl_plugins.methods.ppo._math import generalized_advantages

    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.2, 0.1, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])  # the last position is padding: its value must not leak in
    gamma, lam = 0.9, 0.8
    d2 = 1.0 - 0.1
    d1 = 0.0 + gamma * 0.1 - 0.2
    d0 = 0.0 + gamma * 0.2 - 0.5
    a2, a1 = d2, d1 + gamma * lam * d2
    a0 = d0 + gamma * lam * a1
    advantages, returns = generalized_advantages(rewards, values, mask, gamma, lam)
    torch.testing.assert_close(advantages, torch.tensor([[a0, a1, a2, 0.0]]))
    torch.testing.assert_close(returns, torch.tensor([[a0 + 0.5, a1 + 0.2, a2 + 0.1, 0.0]]))


def test_clipped_losses_stop_the_gradient_outside_the_trust_region():
    import torch

    from llmctl_plugins.methods.ppo._math import ppo_loss

    old = torch.zeros(1, 2)
    new = torch.tensor([[0.5, -0.05]], requires_grad=True)  # ratio e^0.5 ≈ 1.65 is clipped; e^-0.05 is not
    advantages = torch.ones(1, 2)
    values = torch.zeros(1, 2, requires_grad=True)
    result = ppo_loss(new, old, advantages, values, torch.zeros(1, 2), torch.ones(1, 2), torch.ones(1, 2),
                      clip_range=0.2)
    result.loss.backward()
    assert new.grad[0, 0] == 0 and new.grad[0, 1] < 0
    assert result.clip_fraction.item() == pytest.approx(0.5)


def test_ema_tracks_the_parameters():
    import torch

    from llmctl_plugins.methods.ppo._math import ParameterEMA

    layer = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.zeros_(layer.weight)
    ema = ParameterEMA(layer, decay=0.5)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    ema.update(layer)
    ema.update(layer)
    ema.copy_to(layer)
    torch.testing.assert_close(layer.weight, torch.full((1, 2), 0.75))


def run_ppo(iterations: int, ema_decay: float = 0.0, seed: int = 0):
    """PPO on a tiny full-weight policy with a frozen reference; reward = target words per answer."""
    import torch

    from llmctl_plugins.methods.ppo import PpoSettings
    from llmctl_plugins.methods.ppo._math import ParameterEMA
    from llmctl_plugins.methods.ppo._rollout import make_rollout, minibatches, ppo_batch_loss, value_head

    tokenizer = word_tokenizer()
    model = tiny_causal_lm(seed=seed)
    reference = copy.deepcopy(model).eval()
    head = value_head(model.config.hidden_size)
    settings = PpoSettings(max_new_tokens=8, minibatch_size=24, ppo_epochs=4, kl_coef=0.5, lam=1.0,
                           ema_decay=ema_decay)
    optimizer = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=5e-3)
    ema = ParameterEMA(model, ema_decay) if ema_decay else None
    rng = random.Random(seed)
    history = []

    def prompts_batch():
        prompts = [" ".join(f"w{rng.randrange(100, 400)}" for _ in range(3)) for _ in range(24)]
        return prompts, [tokenizer(p)["input_ids"] for p in prompts]

    for iteration in range(iterations):
        rollout = make_rollout(model, head, tokenizer, *prompts_batch(), target_word_count, settings, reference)
        history.append(rollout["metrics"])
        for batch in minibatches(rollout, settings, seed=iteration):
            loss, _ = ppo_batch_loss(model, head, batch, settings)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if ema is not None:
                ema.update(model)
    if ema is not None:
        ema.copy_to(model)
    final = make_rollout(model, head, tokenizer, *prompts_batch(), target_word_count, settings, reference)
    return history, final["metrics"]


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_ppo_raises_reward_with_bounded_kl(ema_decay):
    history, final = run_ppo(iterations=8, ema_decay=ema_decay)
    start = history[0]["reward"]
    assert history[0]["kl"] == pytest.approx(0.0, abs=1e-4)
    assert final["reward"] > start + 0.7, (start, final)
    assert max(h["kl"] for h in history + [final]) < 8.0  # β = 0.5 keeps the policy near the reference
    assert all(h["entropy"] > 0 for h in history)


def test_ppo_method_on_the_loop_logs_reward_kl_entropy_and_clip_fraction(tmp_path):
    import json

    from tests.align_fixtures import finetune, metrics_of, word_model_dir

    model_dir = word_model_dir(tmp_path / "base")
    prompts = tmp_path / "prompts.jsonl"
    rng = random.Random(0)
    prompts.write_text("".join(json.dumps({"prompt": " ".join(f"w{rng.randrange(100, 400)}" for _ in range(3))})
                               + "\n" for _ in range(16)))
    outcome = finetune(model_dir, "ppo", prompts, tmp_path / "runs", "reward=tests.ppo_rewards:target_word_count",
                       "max_steps=2", "batch_size=8", "minibatch_size=8", "ppo_epochs=2", "max_new_tokens=4",
                       "ema_decay=0.5", "adapter=lora")
    records = metrics_of(outcome.run)
    assert len(records) == 2
    for key in ("reward", "kl", "entropy", "clip_fraction", "approx_kl", "value_loss"):
        assert key in records[-1], key
    assert (outcome.run / "adapter_config.json").is_file() and (outcome.run / "value_head.safetensors").is_file()


def test_ppo_without_a_reward_is_one_clear_line(tmp_path):
    from llmctl.errors import DataError
    from tests.align_fixtures import finetune, word_model_dir

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "w1 w2"}\n')
    with pytest.raises(DataError, match="reward=MODULE:FUNCTION"):
        finetune(word_model_dir(tmp_path / "base"), "ppo", prompts, tmp_path / "runs", "max_steps=1")
