"""GRPO rollouts: G sampled answers per prompt, scored and turned into advantages; completion log-probabilities.

A rollout is the batch the loss trains on: prompt and answer token ids, the answer mask, one advantage per answer
and the reward metrics. Log-probabilities are taken only at the answer positions (``logits_to_keep``), at the
sampling temperature, so the ratio and the KL compare the distributions the answers were drawn from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmctl.models.tokens import pad_token_id
from llmctl.train.method import accepts_logits_to_keep
from llmctl.train.prompts import PromptRecord
from llmctl.train.sampling import SamplingSettings, sample_responses
from llmctl_plugins.methods.grpo import GrpoSettings
from llmctl_plugins.methods.grpo._loss import group_advantages


def positions(attention_mask: Any) -> Any:
    """Position ids that skip left padding, as ``generate`` used them while sampling."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def completion_logprobs(model: Any, input_ids: Any, attention_mask: Any, width: int,
                        temperature: float = 1.0) -> Any:
    """Log-probabilities ``[rows, width]`` of the last ``width`` tokens of every row (the answers).

    Only the ``width + 1`` last positions are projected onto the vocabulary where the model supports it, so no
    logits of the prompt are ever held; the logits are divided by ``temperature`` first.
    """
    import torch

    inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": positions(attention_mask),
              "use_cache": False}
    if accepts_logits_to_keep(model):
        logits = model(**inputs, logits_to_keep=width + 1).logits[:, :-1]
    else:
        logits = model(**inputs).logits[:, -(width + 1):-1]
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    targets = input_ids[:, -width:].unsqueeze(-1)
    # gather − logsumexp keeps no vocabulary-sized log-softmax alive for the backward pass
    return torch.gather(logits, 2, targets).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def make_rollout(model: Any, tokenizer: Any, records: Sequence[PromptRecord], rewards: Any, settings: GrpoSettings,
                 step: int) -> dict[str, Any]:
    """Sample ``num_generations`` answers to each prompt, score them with ``rewards``, and compute advantages.

    Returns the batch the loss takes (``input_ids``, ``attention_mask``, ``completion_mask``, ``advantages``) and
    ``_metrics``: mean and std of the weighted reward and of each reward, mean answer length, and the share of
    groups whose rewards are all equal (they teach nothing: every advantage is 0).
    """
    import torch

    group = settings.num_generations
    prompts = [r.prompt for r in records for _ in range(group)]
    prompt_ids = [r.ids for r in records for _ in range(group)]
    columns = [r.columns for r in records for _ in range(group)]
    sampling = SamplingSettings(settings.max_new_tokens, settings.temperature, settings.top_k)
    sampled = sample_responses(model, prompt_ids, pad_token_id(tokenizer), tokenizer.eos_token_id, sampling)
    width = sampled["prompt_width"]
    answers, mask = sampled["input_ids"][:, width:], sampled["response_mask"]
    texts = [tokenizer.decode(row[keep.bool()], skip_special_tokens=True) for row, keep in zip(answers, mask,
                                                                                               strict=True)]
    totals, per_reward = rewards.score(prompts, texts, columns, step=step)
    scores = torch.tensor(totals, dtype=torch.float32)
    advantages, group_std = group_advantages(scores, group, settings.advantage)
    metrics = {"reward": float(scores.mean()), "reward_std": float(scores.std()) if len(scores) > 1 else 0.0,
               "completion_length": float(mask.float().sum(-1).mean()),
               "zero_std_groups": float(torch.isclose(group_std, torch.zeros_like(group_std)).float().mean())}
    for name, values in per_reward.items():
        raw = torch.tensor(values, dtype=torch.float32)
        metrics[f"reward/{name}"] = float(raw.mean())
        metrics[f"reward/{name}/std"] = float(raw.std()) if len(raw) > 1 else 0.0
    device = sampled["input_ids"].device
    return {"input_ids": sampled["input_ids"], "attention_mask": sampled["attention_mask"],
            "completion_mask": mask.float(), "advantages": advantages.to(device), "_metrics": metrics}
