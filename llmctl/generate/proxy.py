"""Proxy-tuning (decoding-time tuning): steer a large model with the difference a small fine-tune made.

At every step: logits = large + alpha * (tuned_small - base_small). The three models must share a vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmctl.errors import DataError
from llmctl.generate.decode import LogitSource


def check_same_vocabulary(tokenizers: Mapping[str, Any]) -> None:
    """Raise a one-line DataError unless every tokenizer maps the same strings to the same ids."""
    items = list(tokenizers.items())
    first_name, first = items[0]
    reference = first.get_vocab()
    for name, tokenizer in items[1:]:
        vocab = tokenizer.get_vocab()
        if vocab != reference:
            differing = len(set(vocab.items()) ^ set(reference.items()))
            raise DataError(f"proxy-tuning needs one shared vocabulary, but {name} ({len(vocab)} tokens) and "
                            f"{first_name} ({len(reference)} tokens) differ in {differing} entries")


def combine_logits(large: Any, tuned: Any, base: Any, alpha: float) -> Any:
    """large + alpha * (tuned - base), over the vocabulary the tokenizer actually uses (padding rows dropped)."""
    size = min(large.shape[-1], tuned.shape[-1], base.shape[-1])
    return large[..., :size] + alpha * (tuned[..., :size] - base[..., :size])


class ProxyTunedSource:
    """A logit source made of three cached models whose logits are combined at every step."""

    def __init__(self, large: LogitSource, tuned: LogitSource, base: LogitSource, alpha: float = 1.0) -> None:
        self.large, self.tuned, self.base, self.alpha = large, tuned, base, alpha
        self.vocab_size = min(large.vocab_size, tuned.vocab_size, base.vocab_size)

    @property
    def reused_tokens(self) -> int:
        """Prompt tokens the large model found in its cache."""
        return getattr(self.large, "reused_tokens", 0)

    def prefill(self, ids: Sequence[int]) -> Any:
        """Combined logits after ``ids``."""
        return combine_logits(self.large.prefill(ids), self.tuned.prefill(ids), self.base.prefill(ids), self.alpha)

    def extend(self, ids: Sequence[int]) -> Any:
        """Combined logits after appending ``ids``."""
        return combine_logits(self.large.extend(ids), self.tuned.extend(ids), self.base.extend(ids), self.alpha)

    def reset(self) -> None:
        """Forget all three caches."""
        for source in (self.large, self.tuned, self.base):
            source.reset()
