"""Choosing the next token from logits with transformers' own logits processors (the reference behaviour), and the
loop guard every engine shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmctl.generate.params import SamplingParams

# A reply is looping when its last LOOP_NGRAM (8) tokens have come round LOOP_REPEATS (3) times, each copy one
# period after the previous one and every token in between repeating too: for a period of 8+ tokens (a sentence)
# that is the moment the third copy has repeated the period's first 8 tokens; for a shorter one ("ha ha ha …") a
# run of 8 + 2 × period tokens. So no 8-token sequence of a loop ever appears more than three times.
LOOP_NGRAM = 8
LOOP_REPEATS = 3
LOOP_MAX_PERIOD = 512


class LoopDetector:
    """Watches generated token ids and says when their tail has become a loop (see the module's constants)."""

    def __init__(self, ngram: int = LOOP_NGRAM, repeats: int = LOOP_REPEATS,
                 max_period: int = LOOP_MAX_PERIOD) -> None:
        if ngram < 1 or repeats < 2:
            raise ValueError("a loop needs an n-gram of at least one token seen at least twice")
        self.ngram, self.repeats, self.max_period = ngram, repeats, max_period
        self.tokens: list[int] = []

    def push(self, token: int) -> bool:
        """Record ``token``; True when the tokens so far end in a loop."""
        self.tokens.append(token)
        return self.looping()

    def looping(self) -> bool:
        """True when the recorded tokens end in ``repeats`` copies of a period (at least ``ngram`` tokens long)."""
        return ends_in_loop(self.tokens, self.ngram, self.repeats, self.max_period)


def ends_in_loop(tokens: Sequence[int], ngram: int = LOOP_NGRAM, repeats: int = LOOP_REPEATS,
                 max_period: int = LOOP_MAX_PERIOD) -> bool:
    """True when some period ``p`` makes the last ``ngram + (repeats - 1) * p`` tokens ``p``-periodic (every token
    equal to the one ``p`` before it)."""
    n = len(tokens)
    if n < ngram + repeats - 1:
        return False
    last = tokens[-1]
    for period in range(1, min(max_period, (n - ngram) // (repeats - 1)) + 1):
        if tokens[n - 1 - period] != last:  # cheap filter: most periods fail on the last token
            continue
        span = ngram + (repeats - 1) * period
        if all(tokens[i] == tokens[i - period] for i in range(n - span + period, n)):
            return True
    return False


class TokenChooser:
    """Applies repetition penalty (over the last ``repeat_last_n`` tokens), temperature, top-k, top-p and min-p in
    transformers' order, then picks a token (greedy or seeded sampling)."""

    def __init__(self, params: SamplingParams) -> None:
        import torch
        from transformers.generation.logits_process import (
            LogitsProcessorList,
            MinPLogitsWarper,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        self.params = params
        self._torch = torch
        self.penalty = (RepetitionPenaltyLogitsProcessor(params.repetition_penalty)
                        if params.repetition_penalty != 1.0 and params.repeat_last_n != 0 else None)
        warpers: list[Any] = []
        if not params.greedy:
            if params.temperature != 1.0:
                warpers.append(TemperatureLogitsWarper(params.temperature))
            if params.top_k > 0:
                warpers.append(TopKLogitsWarper(params.top_k))
            if params.top_p < 1.0:
                warpers.append(TopPLogitsWarper(params.top_p))
            if params.min_p > 0.0:
                warpers.append(MinPLogitsWarper(params.min_p))
        self.warpers = LogitsProcessorList(warpers)
        self.generator = torch.Generator()
        if params.seed is not None:
            self.generator.manual_seed(params.seed)
        else:
            self.generator.seed()

    def choose(self, logits: Any, history: list[int]) -> int:
        """The next token id for last-position ``logits`` of shape (1, vocab); ``history`` holds the ids the
        repetition penalty may look at (the reply so far; its last ``repeat_last_n`` count)."""
        torch = self._torch
        if self.penalty is not None:
            window = self.params.penalty_window(history)
            if window:
                logits = self.penalty(torch.tensor([window]), logits)
        if self.params.greedy:
            return int(logits.argmax(dim=-1))
        scores = self.warpers(None, logits)
        probabilities = torch.softmax(scores.float(), dim=-1)
        return int(torch.multinomial(probabilities, 1, generator=self.generator))
