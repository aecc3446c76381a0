"""Sampling answers from the model being trained, with their own settings (PPO rollouts, rejection sampling, GRPO).

Public: a method that generates with its policy samples here, so every such method pads, stops at EOS and masks the
same way.
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


def sample_responses(model: Any, prompt_ids: Sequence[Sequence[int]], pad_token_id: int, eos_token_id: int | None,
                     settings: SamplingSettings) -> dict[str, Any]:
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
    from llmctl.train.distributed import unsharded

    with torch.no_grad(), unsharded(model):
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
