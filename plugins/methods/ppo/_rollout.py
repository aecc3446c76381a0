"""PPO on a causal LM: value head, rollouts (sample, score, reference log-probs, GAE), minibatches and the loss.

The reference is the policy with its adapter switched off (peft) or a frozen copy. One rollout yields
``ppo_epochs`` × (batch / minibatch) minibatches, each a dict the training loop can step on like any other batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from llmctl.models.tokens import pad_token_id
from llmctl.reward.functions import ScoreFunction
from llmctl.train.logprobs import entropy_from_logits, token_logprobs
from llmctl.train.reference import reference_of
from llmctl.train.sampling import sample_responses
from llmctl_plugins.methods.ppo import PpoSettings
from llmctl_plugins.methods.ppo._math import (
    generalized_advantages,
    masked_mean,
    masked_whiten,
    ppo_loss,
    token_rewards,
)


def value_head(hidden_size: int, dtype: Any = None) -> Any:
    """A linear value head (hidden → 1), zero-initialised so early values do not disturb the advantages."""
    import torch

    head = torch.nn.Linear(hidden_size, 1, dtype=dtype)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    return head


def policy_forward(model: Any, head: Any, input_ids: Any, attention_mask: Any) -> tuple[Any, Any]:
    """Next-token logits and per-position values (value head on the policy's last hidden states)."""
    output = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions(attention_mask),
                   output_hidden_states=True, use_cache=False)
    hidden = output.hidden_states[-1]
    values = head(hidden.to(head.weight.dtype)).squeeze(-1)
    return output.logits, values


def positions(attention_mask: Any) -> Any:
    """Position ids that skip left padding, as ``generate`` uses them."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def _response_slice(tensor: Any, prompt_width: int) -> Any:
    """The part of a per-position tensor that predicts response tokens (positions prompt_width-1 … end-1)."""
    return tensor[:, prompt_width - 1:-1]


def make_rollout(model: Any, head: Any, tokenizer: Any, prompts: Sequence[Any], prompt_ids: Sequence[Sequence[int]],
                 score: ScoreFunction, settings: PpoSettings, reference_model: Any = None) -> dict[str, Any]:
    """Sample, score and evaluate one batch of prompts: everything the PPO update needs, plus metrics."""
    import torch

    pad = pad_token_id(tokenizer)
    rollout = sample_responses(model, prompt_ids, pad, tokenizer.eos_token_id, settings)
    ids, attention, mask, width = (rollout["input_ids"], rollout["attention_mask"], rollout["response_mask"],
                                   rollout["prompt_width"])
    texts = [tokenizer.decode(row[m.bool()], skip_special_tokens=True) for row, m in zip(ids[:, width:], mask,
                                                                                         strict=True)]
    scores = torch.tensor(score(list(prompts), texts), dtype=torch.float32)
    with torch.no_grad():
        logits, values = policy_forward(model, head, ids, attention)
        logprobs = token_logprobs(logits, ids)[:, width - 1:]
        entropy = _response_slice(entropy_from_logits(logits), width)
        values = _response_slice(values, width).float()
        with reference_of(model, reference_model) as reference:
            reference_logits = reference(input_ids=ids, attention_mask=attention, position_ids=positions(attention),
                                         use_cache=False).logits
        reference_logprobs = token_logprobs(reference_logits, ids)[:, width - 1:]
    mask_f = mask.float()
    rewards, kl = token_rewards(scores, logprobs, reference_logprobs, mask_f, settings.kl_coef,
                                settings.kl_estimator)
    advantages, returns = generalized_advantages(rewards, values * mask_f, mask_f, settings.gamma, settings.lam)
    if settings.whiten_advantages:
        advantages = masked_whiten(advantages, mask_f)
    metrics = {"reward": float(scores.mean()), "kl": float(kl.sum(-1).mean()),
               "entropy": float(masked_mean(entropy, mask_f)), "response_length": float(mask_f.sum(-1).mean())}
    return {"input_ids": ids, "attention_mask": attention, "response_mask": mask_f, "prompt_width": width,
            "old_logprobs": logprobs, "old_values": values, "advantages": advantages, "returns": returns,
            "texts": texts, "scores": scores.tolist(), "metrics": metrics}


def minibatches(rollout: dict[str, Any], settings: PpoSettings, seed: int = 0) -> Iterator[dict[str, Any]]:
    """``ppo_epochs`` shuffled passes over the rollout in minibatches of ``minibatch_size`` rows."""
    import torch

    rows = rollout["input_ids"].shape[0]
    keys = ("input_ids", "attention_mask", "response_mask", "old_logprobs", "old_values", "advantages", "returns")
    generator = torch.Generator().manual_seed(seed)
    for _ in range(settings.ppo_epochs):
        order = torch.randperm(rows, generator=generator)
        for start in range(0, rows, settings.minibatch_size):
            index = order[start:start + settings.minibatch_size]
            batch = {k: rollout[k][index] for k in keys}
            batch["prompt_width"] = rollout["prompt_width"]
            yield batch


def ppo_batch_loss(model: Any, head: Any, batch: dict[str, Any], settings: PpoSettings) -> tuple[Any, dict]:
    """The PPO loss of one minibatch, and its metrics (policy/value loss, clip fraction, approximate KL)."""
    width = batch["prompt_width"]
    logits, values = policy_forward(model, head, batch["input_ids"], batch["attention_mask"])
    logprobs = token_logprobs(logits, batch["input_ids"])[:, width - 1:]
    result = ppo_loss(logprobs, batch["old_logprobs"], batch["advantages"], _response_slice(values, width).float(),
                      batch["old_values"], batch["returns"], batch["response_mask"], settings.clip_range,
                      settings.value_clip_range, settings.value_coef)
    return result.loss, result.metrics()
