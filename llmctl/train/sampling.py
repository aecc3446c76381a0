"""Sampling answers from the model being trained, with their own settings (PPO rollouts, rejection sampling, GRPO).

Public: a method that generates with its policy samples here, so every such method pads, stops at EOS and masks the
same way. :func:`sample_responses` runs transformers' ``generate``; :func:`sample_groups` samples several answers
per prompt from one pass over each prompt (a key/value cache shared by its answers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmctl.config import Range
from llmctl.settings_schema import setting

SAMPLING_RANGES = {"max_new_tokens": Range(1), "temperature": Range(0, low_open=True), "top_k": Range(0)}


@dataclass
class SamplingSettings:
    """How answers are sampled (a method's settings dataclass inherits these fields)."""

    max_new_tokens: int = setting(32, "longest sampled answer", range=SAMPLING_RANGES["max_new_tokens"])
    temperature: float = setting(1.0, "sampling temperature", range=SAMPLING_RANGES["temperature"])
    top_k: int = setting(0, "sample among the k likeliest tokens (0: all)", range=SAMPLING_RANGES["top_k"])

    @classmethod
    def of(cls, settings: Any) -> SamplingSettings:
        """The sampling fields of resolved method settings."""
        return cls(settings["max_new_tokens"], settings["temperature"], settings["top_k"])


def left_padded(prompt_ids: Sequence[Sequence[int]], pad_token_id: int) -> tuple[Any, Any]:
    """Prompts as one left-padded ``[rows, longest]`` tensor, and its attention mask."""
    import torch

    width = max(len(p) for p in prompt_ids)
    prompts = torch.full((len(prompt_ids), width), pad_token_id, dtype=torch.long)
    prompt_mask = torch.zeros_like(prompts)
    for row, ids in enumerate(prompt_ids):
        prompts[row, width - len(ids):] = torch.tensor(list(ids), dtype=torch.long)
        prompt_mask[row, width - len(ids):] = 1
    return prompts, prompt_mask


def _masked_responses(prompts: Any, prompt_mask: Any, responses: Any, pad_token_id: int,
                      eos_token_id: int | None) -> dict[str, Any]:
    """Prompts and responses joined, the response mask ending at (and keeping) the first EOS, pad after it."""
    import torch

    response_mask = torch.ones_like(responses)
    if eos_token_id is not None:
        after_eos = (responses == eos_token_id).long().cumsum(-1) - (responses == eos_token_id).long()
        response_mask = (after_eos == 0).long()
    responses = responses.masked_fill(response_mask == 0, pad_token_id)
    return {"input_ids": torch.cat([prompts, responses], 1),
            "attention_mask": torch.cat([prompt_mask, response_mask], 1),
            "response_mask": response_mask, "prompt_width": prompts.shape[1]}


def sample_responses(model: Any, prompt_ids: Sequence[Sequence[int]], pad_token_id: int, eos_token_id: int | None,
                     settings: SamplingSettings) -> dict[str, Any]:
    """Left-padded prompts plus sampled responses, with masks (the response mask ends at the first EOS)."""
    import torch

    prompts, prompt_mask = left_padded(prompt_ids, pad_token_id)
    device = next(model.parameters()).device
    prompts, prompt_mask = prompts.to(device), prompt_mask.to(device)
    width = prompts.shape[1]
    was_training = model.training
    model.eval()
    from llmctl.train.distributed import unsharded

    with torch.no_grad(), unsharded(model):
        sequences = model.generate(input_ids=prompts, attention_mask=prompt_mask, do_sample=True,
                                   max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
                                   top_k=settings.top_k or None, top_p=1.0, pad_token_id=pad_token_id,
                                   eos_token_id=eos_token_id)
    model.train(was_training)
    return _masked_responses(prompts, prompt_mask, sequences[:, width:], pad_token_id, eos_token_id)


def next_token(logits: Any, settings: SamplingSettings) -> Any:
    """One token per row drawn from ``softmax(logits / temperature)``, among the ``top_k`` likeliest when set.

    Drawn by inverting the cumulative distribution (one uniform number per row): the same distribution as
    ``torch.multinomial``, about 15 times faster on a CPU over a 49k-token vocabulary.
    """
    import torch

    logits = logits.float() / settings.temperature
    if settings.top_k and settings.top_k < logits.shape[-1]:
        kth = torch.topk(logits, settings.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    cumulative = torch.softmax(logits, dim=-1).cumsum(-1)
    draw = torch.rand(cumulative.shape[0], 1, device=cumulative.device) * cumulative[:, -1:]
    # the first token whose cumulative probability exceeds the draw: never one of probability 0
    return torch.searchsorted(cumulative, draw, right=True).squeeze(-1).clamp(max=logits.shape[-1] - 1)


def sample_groups(model: Any, prompt_ids: Sequence[Sequence[int]], group: int, pad_token_id: int,
                  eos_token_id: int | None, settings: SamplingSettings) -> dict[str, Any]:
    """``group`` sampled responses to each prompt, each prompt run through the model once.

    The prompt's key/value cache is repeated for its ``group`` answers, which then decode together, one token per
    forward pass (GRPO's G answers, best-of-N): the prompts cost one forward pass instead of ``group``. Rows are the
    answers prompt by prompt (``group`` consecutive rows per prompt); the dict is :func:`sample_responses`'s, plus
    ``prompt_ids`` and ``prompt_mask``, the left-padded prompts once each.
    """
    import torch

    from llmctl.train.distributed import unsharded
    from llmctl.train.method import accepts_logits_to_keep

    prompts, prompt_mask = left_padded(prompt_ids, pad_token_id)
    device = next(model.parameters()).device
    prompts, prompt_mask = prompts.to(device), prompt_mask.to(device)
    last_only = {"logits_to_keep": 1} if accepts_logits_to_keep(model) else {}
    was_training = model.training
    model.eval()
    tokens = []
    with torch.no_grad(), unsharded(model):
        out = model(input_ids=prompts, attention_mask=prompt_mask,
                    position_ids=(prompt_mask.cumsum(-1) - 1).clamp(min=0), use_cache=True, **last_only)
        cache = out.past_key_values
        cache.batch_repeat_interleave(group)
        logits = out.logits[:, -1].repeat_interleave(group, 0)
        mask = prompt_mask.repeat_interleave(group, 0)
        position = mask.sum(-1, keepdim=True)
        finished = torch.zeros(mask.shape[0], dtype=torch.bool, device=device)
        for step in range(settings.max_new_tokens):
            chosen = next_token(logits, settings).masked_fill(finished, pad_token_id)
            tokens.append(chosen)
            if eos_token_id is not None:
                finished |= chosen == eos_token_id
            if step == settings.max_new_tokens - 1 or bool(finished.all()):
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
            logits = model(input_ids=chosen[:, None], attention_mask=mask, position_ids=position + step,
                           past_key_values=cache, use_cache=True).logits[:, -1]
    model.train(was_training)
    result = _masked_responses(prompts.repeat_interleave(group, 0), prompt_mask.repeat_interleave(group, 0),
                               torch.stack(tokens, 1), pad_token_id, eos_token_id)
    return {**result, "prompt_ids": prompts, "prompt_mask": prompt_mask}
