"""Choosing the next token from logits with transformers' own logits processors (the reference behaviour)."""

from __future__ import annotations

from typing import Any

from llmctl.generate.params import SamplingParams


class TokenChooser:
    """Applies repetition penalty, temperature, top-k and top-p, then picks a token (greedy or seeded sampling)."""

    def __init__(self, params: SamplingParams) -> None:
        import torch
        from transformers.generation.logits_process import (
            LogitsProcessorList,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        self.params = params
        self._torch = torch
        self.penalty = (RepetitionPenaltyLogitsProcessor(params.repetition_penalty)
                        if params.repetition_penalty != 1.0 else None)
        warpers: list[Any] = []
        if not params.greedy:
            if params.temperature != 1.0:
                warpers.append(TemperatureLogitsWarper(params.temperature))
            if params.top_k > 0:
                warpers.append(TopKLogitsWarper(params.top_k))
            if params.top_p < 1.0:
                warpers.append(TopPLogitsWarper(params.top_p))
        self.warpers = LogitsProcessorList(warpers)
        self.generator = torch.Generator()
        if params.seed is not None:
            self.generator.manual_seed(params.seed)
        else:
            self.generator.seed()

    def choose(self, logits: Any, history: list[int]) -> int:
        """The next token id for last-position ``logits`` of shape (1, vocab) after the ``history`` ids."""
        torch = self._torch
        if self.penalty is not None:
            logits = self.penalty(torch.tensor([history]), logits)
        if self.params.greedy:
            return int(logits.argmax(dim=-1))
        scores = self.warpers(None, logits)
        probabilities = torch.softmax(scores.float(), dim=-1)
        return int(torch.multinomial(probabilities, 1, generator=self.generator))
