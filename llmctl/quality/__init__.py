"""Quality measurement: sliding-window perplexity and bits per byte, for transformers models and GGUF files run by
llama.cpp. ``quantize --eval`` and ``llmctl benchmark --quality`` both measure through this module.

Perplexity only compares models that share a tokenizer; bits per UTF-8 byte compares any two models fairly.
Both come from the same sum of token negative log-likelihoods (in nats):
``bits_per_byte = mean_nll × scored_tokens / bytes / ln 2``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BUNDLED_TEXT = Path(__file__).with_name("eval_text.txt")


@dataclass(frozen=True)
class QualityResult:
    """Summed negative log-likelihood of a text and what it was measured over."""

    nll_sum: float
    scored_tokens: int
    text_bytes: int
    window: int
    stride: int

    @property
    def mean_nll(self) -> float:
        """Mean negative log-likelihood per scored token, in nats."""
        return self.nll_sum / self.scored_tokens

    @property
    def perplexity(self) -> float:
        """exp(mean NLL): the number of equally likely choices the model was torn between, on average."""
        return math.exp(self.mean_nll)

    @property
    def bits_per_byte(self) -> float:
        """Bits needed per UTF-8 byte of the text: comparable across tokenizers."""
        return self.nll_sum / self.text_bytes / math.log(2)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record including the derived metrics."""
        return {**asdict(self), "mean_nll": self.mean_nll, "perplexity": self.perplexity,
                "bits_per_byte": self.bits_per_byte}


def bundled_text() -> str:
    """The evaluation text shipped with llmctl (original prose, about 1,500 words)."""
    return BUNDLED_TEXT.read_text(encoding="utf-8")


def windows(count: int, window: int, stride: int) -> Iterator[tuple[int, int, int]]:
    """``(begin, end, first_scored)`` for each window; every token after the first is scored exactly once.

    A window's first token has no context inside it, so consecutive windows overlap by at least one token.
    """
    stride = max(1, min(stride, window - 1))
    previous_end = 0
    for begin in range(0, count, stride):
        end = min(begin + window, count)
        yield begin, end, max(previous_end, begin + 1)
        previous_end = end
        if end == count:
            break


def sliding_nll(ids: list[int], window: int, stride: int,
                log_probs: Callable[[list[int]], Any]) -> tuple[float, int]:
    """Sum of NLL over ``ids`` using ``log_probs(chunk) -> [len(chunk), vocab] array of log-probabilities``."""
    total, scored = 0.0, 0
    for begin, end, first in windows(len(ids), window, stride):
        chunk = ids[begin:end]
        logp = log_probs(chunk)
        for position in range(first, end):
            total -= float(logp[position - begin - 1][ids[position]])
            scored += 1
    return total, scored


def perplexity_transformers(model: Any, tokenizer: Any, text: str, window: int = 1024,
                            stride: int = 512) -> QualityResult:
    """Sliding-window NLL of ``text`` under a transformers causal LM."""
    import torch

    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    device = next(model.parameters()).device

    def log_probs(chunk: list[int]) -> Any:
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([chunk], device=device)).logits[0].float()
        return torch.log_softmax(logits, dim=-1).cpu().numpy()

    total, scored = sliding_nll(ids, min(window, len(ids)), stride, log_probs)
    return QualityResult(total, scored, len(text.encode("utf-8")), window, stride)


def perplexity_llamacpp(gguf_path: str | Path, text: str, window: int = 1024, stride: int = 512,
                        threads: int | None = None) -> QualityResult:
    """Sliding-window NLL of ``text`` under a GGUF model run by llama.cpp (needs the ``llamacpp`` extra)."""
    import numpy as np

    from llmctl.errors import MissingExtraError

    try:
        from llama_cpp import Llama
    except ImportError as error:
        raise MissingExtraError("llama-cpp-python", "llamacpp", "scoring a GGUF model") from error
    llm = Llama(model_path=str(gguf_path), n_ctx=window, logits_all=True, verbose=False, n_threads=threads)
    ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def log_probs(chunk: list[int]) -> Any:
        llm.reset()
        llm.eval(chunk)
        logits = np.asarray(llm.scores[: len(chunk)], dtype=np.float64)
        logits -= logits.max(axis=-1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))

    total, scored = sliding_nll(ids, min(window, len(ids)), stride, log_probs)
    return QualityResult(total, scored, len(text.encode("utf-8")), window, stride)
