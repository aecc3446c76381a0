"""The transformers decode loop: one KV cache kept across calls, so a chat only feeds the tokens it has not seen.

``CachedCausalLM`` remembers which token ids its cache holds. Given the next full prompt it keeps the longest
common prefix (the conversation so far), crops the rest and feeds only the new tokens; each generated token is then
fed alone. No ``generate()`` call, no re-tokenising of the history, everything under ``torch.inference_mode``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from llmctl.generate.params import SamplingParams
from llmctl.generate.sampling import LoopDetector, TokenChooser


class LogitSource(Protocol):
    """Something that turns a token sequence into next-token logits, caching what it has already seen."""

    vocab_size: int

    def prefill(self, ids: Sequence[int]) -> Any:
        """Last-position logits (1, vocab) for the full sequence ``ids``, reusing any cached prefix."""

    def extend(self, ids: Sequence[int]) -> Any:
        """Last-position logits after appending ``ids`` to what is cached."""

    def reset(self) -> None:
        """Forget the cache."""


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading ids ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class CachedCausalLM:
    """A transformers causal LM plus a KV cache that knows the token ids it holds."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.cache: Any = None
        self.ids: list[int] = []
        self.vocab_size = int(model.get_output_embeddings().weight.shape[0])
        self.reused_tokens = 0
        self.stop_reason = ""

    def reset(self) -> None:
        """Drop the cache."""
        self.cache = None
        self.ids = []

    def _crop(self, length: int) -> None:
        if length <= 0 or self.cache is None:
            self.reset()
            return
        if length < len(self.ids):
            try:
                self.cache.crop(length - len(self.ids))  # transformers 5 crops by a negative count
            except Exception:  # caches that cannot be cropped (some sliding-window layers) start again
                self.reset()
                return
            self.ids = self.ids[:length]

    def prefill(self, ids: Sequence[int]) -> Any:
        """Logits after ``ids``, feeding only the part not already in the cache."""
        keep = common_prefix_length(self.ids, ids)
        if keep == len(ids):  # everything cached: re-feed the last token to get its logits
            keep -= 1
        self._crop(keep)
        self.reused_tokens = len(self.ids)
        return self.extend(ids[len(self.ids):])

    def extend(self, ids: Sequence[int]) -> Any:
        """Logits after appending ``ids``; an interrupted forward pass leaves an empty, consistent cache."""
        import torch

        try:
            with torch.inference_mode():
                if self.cache is None:
                    from transformers import DynamicCache

                    self.cache = DynamicCache(config=self.model.config)
                output = self.model(input_ids=torch.tensor([list(ids)]), past_key_values=self.cache,
                                    use_cache=True, logits_to_keep=1)
        except BaseException:
            self.reset()
            raise
        self.cache = output.past_key_values
        self.ids.extend(ids)
        return output.logits[:, -1, :].float()


def decode_tokens(source: LogitSource, prompt_ids: Sequence[int], params: SamplingParams,
                  stop_ids: set[int]) -> Iterator[int]:
    """Yield generated token ids until a stop id, ``params.max_new_tokens``, or (with ``params.stop_loops``) a reply
    whose tail repeats itself; the stop id itself is not yielded.

    Why it ended is left on ``source.stop_reason`` ("stop", "length" or "loop") for the engine and the chat session.
    """
    chooser = TokenChooser(params)
    guard = LoopDetector() if params.stop_loops else None
    generated: list[int] = []  # the repetition penalty looks at the reply only, as llama-cpp-python's sampler does
    _set_stop_reason(source, "interrupted")
    logits = source.prefill(prompt_ids)
    for produced in range(1, params.max_new_tokens + 1):
        token = chooser.choose(logits, generated)
        if token in stop_ids:
            _set_stop_reason(source, "stop")
            return
        yield token
        if guard is not None and guard.push(token):
            _set_stop_reason(source, "loop")
            return
        if produced == params.max_new_tokens:
            _set_stop_reason(source, "length")
            return
        generated.append(token)
        logits = source.extend([token])


def _set_stop_reason(source: Any, reason: str) -> None:
    """Leave ``reason`` on ``source`` (a source with __slots__ or a read-only attribute just does not report it)."""
    with contextlib.suppress(AttributeError):
        source.stop_reason = reason


class IncrementalDetokenizer:
    """Turns a growing list of token ids into newly completed text, holding back half-decoded characters."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.text = ""

    def push(self, token: int) -> str:
        """The text that ``token`` completes (may be empty)."""
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""
        new, self.text = text[len(self.text):], text
        return new
