"""PPO on a causal LM: value head, rollouts (sample, score, reference log-probs, GAE), minibatches and the loss.

The reference is the policy with its adapter switched off (peft) or a frozen copy. One rollout yields
``ppo_epochs`` × (batch / minibatch) minibatches, each a dict the training loop can step on like any other batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmctl.align.dpo import reference_of
from llmctl.align.logprobs import entropy_from_logits, token_logprobs
from llmctl.align.ppo_math import generalized_advantages, masked_mean, masked_whiten, ppo_loss, token_rewards

ScoreFunction = Callable[[list[Any], list[str]], list[float]]


@dataclass
class PPOSettings:
    """PPO hyper-parameters (defaults follow common RLHF practice for small models)."""

    max_new_tokens: int = 32
    temperature: float = 1.0
    top_k: int = 0
    kl_coef: float = 0.05
    kl_estimator: str = "k1"
    gamma: float = 1.0
    lam: float = 0.95
    clip_range: float = 0.2
    value_clip_range: float = 0.2
    value_coef: float = 0.1
    ppo_epochs: int = 2
    minibatch_size: int = 8
    whiten_advantages: bool = True
    ema_decay: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


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


def sample_responses(model: Any, prompt_ids: Sequence[Sequence[int]], pad_token_id: int, eos_token_id: int | None,
                     settings: PPOSettings) -> dict[str, Any]:
    """Left-padded prompts plus sampled responses, with masks (the response mask ends at the first EOS)."""
    import torch

    width = max(len(p) for p in prompt_ids)
    prompts = torch.full((len(prompt_ids), width), pad_token_id, dtype=torch.long)
    prompt_mask = torch.zeros_like(prompts)
    for row, ids in enumerate(prompt_ids):
        prompts[row, width - len(ids):] = torch.tensor(list(ids), dtype=torch.long)
        prompt_mask[row, width - len(ids):] = 1
    was_training = model.training
    model.eval()
    with torch.no_grad():
        sequences = model.generate(input_ids=prompts, attention_mask=prompt_mask, do_sample=True,
                                   max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
                                   top_k=settings.top_k or None, top_p=1.0, pad_token_id=pad_token_id,
                                   eos_token_id=eos_token_id)
    model.train(was_training)
    responses = sequences[:, width:]
    response_mask = torch.ones_like(responses)
    if eos_token_id is not None:
        after_eos = (responses == eos_token_id).long().cumsum(-1) - (responses == eos_token_id).long()
        response_mask = (after_eos == 0).long()
    responses = responses.masked_fill(response_mask == 0, pad_token_id)
    return {"input_ids": torch.cat([prompts, responses], 1),
            "attention_mask": torch.cat([prompt_mask, response_mask], 1),
            "response_mask": response_mask, "prompt_width": width}


def make_rollout(model: Any, head: Any, tokenizer: Any, prompts: Sequence[Any], prompt_ids: Sequence[Sequence[int]],
                 score: ScoreFunction, settings: PPOSettings, reference_model: Any = None) -> dict[str, Any]:
    """Sample, score and evaluate one batch of prompts: everything the PPO update needs, plus metrics."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
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


def minibatches(rollout: dict[str, Any], settings: PPOSettings, seed: int = 0) -> Iterator[dict[str, Any]]:
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


def ppo_batch_loss(model: Any, head: Any, batch: dict[str, Any], settings: PPOSettings) -> tuple[Any, dict]:
    """The PPO loss of one minibatch, and its metrics (policy/value loss, clip fraction, approximate KL)."""
    width = batch["prompt_width"]
    logits, values = policy_forward(model, head, batch["input_ids"], batch["attention_mask"])
    logprobs = token_logprobs(logits, batch["input_ids"])[:, width - 1:]
    result = ppo_loss(logprobs, batch["old_logprobs"], batch["advantages"], _response_slice(values, width).float(),
                      batch["old_values"], batch["returns"], batch["response_mask"], settings.clip_range,
                      settings.value_clip_range, settings.value_coef)
    return result.loss, result.metrics()
