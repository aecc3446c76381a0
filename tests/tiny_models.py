"""Tiny random Hugging Face model directories for tests: built from a family's ``tiny_config`` in well under a second.

``make_tiny_model_dir("llama", tmp_path / "m")`` writes ``config.json``, ``model.safetensors`` and a tokenizer (a
small byte-level BPE trained here on a fixed text, with ChatML special tokens and a chat template), deterministic for
a given seed. ``vocab_from_tokenizer`` reuses another tokenizer directory instead (for example the converted SmolLM2).
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>")
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = (
    "The capital of France is Paris. The capital of Italy is Rome. The capital of Spain is Madrid. "
    "Question: what is two plus two? Answer: four. Translate to French: cat, dog, house, water, bread. "
    "Write a short poem about the sea and the sky. List three colours: red, green, blue. "
    "user assistant system instruction input output response the a of and to in is that it was for on with"
)
TINY_VOCAB = 512
# model types whose tiny configuration is another family's with model_type replaced
MODEL_TYPE_FAMILY = {"gemma3_text": "gemma", "gemma3": "gemma", "smollm": "smollm"}


@functools.lru_cache(maxsize=4)
def _trained_tokenizer_dir(vocab_size: int) -> Path:
    """A byte-level BPE tokenizer trained on :data:`CORPUS`, saved once per process in a temporary directory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator([CORPUS] * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                        unk_token="<unk>")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHATML
    directory = Path(tempfile.mkdtemp(prefix="llmctl-tiny-tokenizer-"))
    tokenizer.save_pretrained(directory)
    return directory


def tiny_tokenizer_dir() -> Path:
    """The directory of the shared tiny test tokenizer (ids: pad 0, bos 1, eos 2, unk 3, im_start 4, im_end 5)."""
    return _trained_tokenizer_dir(TINY_VOCAB)


def tiny_config_for(family_name: str, **overrides: Any) -> dict[str, Any]:
    """A family's tiny config (``family_name`` may also be a model type such as ``gemma3_text``) with overrides."""
    from llmctl.plugins import get_registry

    registry = get_registry()
    family = MODEL_TYPE_FAMILY.get(family_name, family_name)
    config = dict(registry.family(family).tiny_config)
    if family_name in ("gemma3_text", "gemma3"):
        config.update(model_type="gemma3_text", sliding_window=16, query_pre_attn_scalar=16)
    config.update(overrides)
    return config


def make_tiny_model_dir(family_name: str, path: str | Path, vocab_from_tokenizer: str | Path | None = None,
                        seed: int = 0, **overrides: Any) -> Path:
    """Write a random tiny model of ``family_name`` with a tokenizer to ``path`` and return it."""
    import torch
    from transformers import AutoModelForCausalLM

    from llmctl.models.params import build_config

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    source = Path(vocab_from_tokenizer) if vocab_from_tokenizer else tiny_tokenizer_dir()
    for item in source.iterdir():
        if item.name.startswith("tokenizer") or item.name in ("special_tokens_map.json", "chat_template.jinja",
                                                              "vocab.json", "merges.txt"):
            shutil.copy(item, path / item.name)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    ids = {"pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
           "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    config = build_config({**tiny_config_for(family_name), "vocab_size": len(tokenizer), **ids, **overrides})
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(path)
    return path
