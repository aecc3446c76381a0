"""GRPO rollouts: G sampled answers per prompt, scored and turned into advantages; completion log-probabilities.

A rollout is the batch the loss trains on: the prompts (once each), the answers (G consecutive rows per prompt), the
answer mask, one advantage per answer and the reward metrics. With ``shared_prompt`` each prompt runs through the
model once, for sampling and for every log-probability pass, its key/value cache serving its G answers.
Log-probabilities are taken only at the answer positions (``logits_to_keep``), at the sampling temperature, so the
ratio and the KL compare the distributions the answers were drawn from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmctl.models.tokens import pad_token_id
from llmctl.train.method import accepts_logits_to_keep
from llmctl.train.prompts import PromptRecord
from llmctl.train.sampling import SamplingSettings, left_padded, sample_groups, sample_responses
from llmctl_plugins.methods.grpo import GrpoSettings
from llmctl_plugins.methods.grpo._loss import group_advantages


def positions(attention_mask: Any) -> Any:
    """Position ids that skip left padding, as ``generate`` used them while sampling."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def _token_logprobs(logits: Any, targets: Any, temperature: float) -> Any:
    """log softmax(logits / temperature) at ``targets`` (gather − logsumexp: no vocabulary-sized log-softmax kept)."""
    import torch

    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    return torch.gather(logits, 2, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def completion_logprobs(model: Any, input_ids: Any, attention_mask: Any, width: int,
                        temperature: float = 1.0) -> Any:
    """Log-probabilities ``[rows, width]`` of the last ``width`` tokens of every full row (prompt and answer).

    Only the ``width + 1`` last positions are projected onto the vocabulary where the model supports it, so no
    logits of the prompt are ever held; the logits are divided by ``temperature`` first.
    """
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": positions(attention_mask),
              "use_cache": False}
    if accepts_logits_to_keep(model):
        logits = model(**inputs, logits_to_keep=width + 1).logits[:, :-1]
    else:
        logits = model(**inputs).logits[:, -(width + 1):-1]
    return _token_logprobs(logits, input_ids[:, -width:], temperature)


def grouped_completion_logprobs(model: Any, prompt_ids: Any, prompt_mask: Any, completion_ids: Any,
                                completion_mask: Any, group: int, temperature: float = 1.0) -> Any:
    """:func:`completion_logprobs` of ``group`` answers per prompt, each prompt run once.

    The prompts' forward pass keeps its key/value cache, repeated for the ``group`` answers of each (gradients flow
    back through the repeat into the prompt's pass); the answers then run on that cache. Its last logits predict the
    first answer token. Same values as the full rows, for a fraction of the work when prompts are long.
    """
    import torch

    out = model(input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=positions(prompt_mask),
                use_cache=True, logits_to_keep=1)
    first = out.logits[:, -1:].repeat_interleave(group, 0)
    width = completion_ids.shape[1]
    if width == 1:
        return _token_logprobs(first, completion_ids, temperature)
    cache = out.past_key_values
    cache.batch_repeat_interleave(group)
    mask = torch.cat([prompt_mask.repeat_interleave(group, 0), completion_mask[:, :-1].to(prompt_mask.dtype)], 1)
    start = prompt_mask.sum(-1, keepdim=True).repeat_interleave(group, 0)
    steps = torch.arange(width - 1, device=start.device)
    rest = model(input_ids=completion_ids[:, :-1], attention_mask=mask, position_ids=start + steps,
                 past_key_values=cache, use_cache=True).logits
    return _token_logprobs(torch.cat([first, rest], 1), completion_ids, temperature)


def answer_logprobs(model: Any, batch: dict[str, Any], group: int, temperature: float, shared: bool) -> Any:
    """Log-probabilities ``[answers, width]`` of a rollout's answers: each prompt run once when ``shared``."""
    import torch

    ids, mask = batch["completion_ids"], batch["completion_mask"]
    if shared:
        return grouped_completion_logprobs(model, batch["prompt_ids"], batch["prompt_mask"], ids, mask, group,
                                           temperature)
    full = torch.cat([batch["prompt_ids"].repeat_interleave(group, 0), ids], 1)
    attention = torch.cat([batch["prompt_mask"].repeat_interleave(group, 0), mask.to(batch["prompt_mask"].dtype)], 1)
    return completion_logprobs(model, full, attention, ids.shape[1], temperature)


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
    pad = pad_token_id(tokenizer)
    if settings.shared_prompt:
        sampled = sample_groups(model, [r.ids for r in records], group, pad, tokenizer.eos_token_id, sampling)
    else:
        sampled = sample_responses(model, prompt_ids, pad, tokenizer.eos_token_id, sampling)
        sampled["prompt_ids"], sampled["prompt_mask"] = left_padded([r.ids for r in records], pad)
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
    device = answers.device
    return {"prompt_ids": sampled["prompt_ids"].to(device), "prompt_mask": sampled["prompt_mask"].to(device),
            "completion_ids": answers, "completion_mask": mask.float(), "advantages": advantages.to(device),
            "_metrics": metrics}
