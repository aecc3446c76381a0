"""Tiny random Hugging Face model directories for tests: built from a family's ``tiny_config`` in well under a second.

A thin layer over :mod:`llmctl.testing` (the helpers plugin authors use too): ``make_tiny_model_dir("llama",
tmp_path / "m")`` writes ``config.json``, ``model.safetensors`` and a tokenizer (a small byte-level BPE trained here
on a fixed text, with ChatML special tokens and a chat template), deterministic for a given seed.
``vocab_from_tokenizer`` reuses another tokenizer directory instead (for example the converted SmolLM2); a model type
such as ``gemma3_text`` gets its family's tiny config adapted to that type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmctl import testing
from llmctl.chat_templates import CHATML
from llmctl.testing import SPECIAL_TOKENS, TINY_CORPUS, TINY_VOCAB, tiny_tokenizer_dir

__all__ = ["CHATML", "CORPUS", "SPECIAL_TOKENS", "TINY_VOCAB", "make_tiny_model_dir", "tiny_config_for",
           "tiny_tokenizer_dir"]

CORPUS = TINY_CORPUS
# model types whose tiny configuration is another family's with model_type replaced
MODEL_TYPE_FAMILY = {"gemma3_text": "gemma", "gemma3": "gemma", "smollm": "smollm"}
GEMMA3 = {"model_type": "gemma3_text", "sliding_window": 16, "query_pre_attn_scalar": 16}


def tiny_config_for(family_name: str, **overrides: Any) -> dict[str, Any]:
    """A family's tiny config (``family_name`` may also be a model type such as ``gemma3_text``) with overrides."""
    extra = GEMMA3 if family_name in ("gemma3_text", "gemma3") else {}
    return testing.tiny_config(MODEL_TYPE_FAMILY.get(family_name, family_name), **{**extra, **overrides})


def make_tiny_model_dir(family_name: str, path: str | Path, vocab_from_tokenizer: str | Path | None = None,
                        seed: int = 0, **overrides: Any) -> Path:
    """Write a random tiny model of ``family_name`` with a tokenizer to ``path`` and return it."""
    extra = GEMMA3 if family_name in ("gemma3_text", "gemma3") else {}
    return testing.make_tiny_model_dir(MODEL_TYPE_FAMILY.get(family_name, family_name), path,
                                       tokenizer=vocab_from_tokenizer or "bpe", seed=seed, **{**extra, **overrides})
