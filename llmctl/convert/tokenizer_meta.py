"""Tokenizer metadata for a GGUF file: vocabulary, token types, merges or scores, special ids and chat template.

Three tokenizer kinds are recognised, the way llama.cpp's own converter does: a SentencePiece ``tokenizer.model``
and a byte-fallback BPE ``tokenizer.json`` (Llama 2, Mistral, Gemma) are written as llama.cpp's ``llama`` model with
the gguf library's own vocabulary readers; a byte-level BPE ``tokenizer.json`` (SmolLM, Llama 3, Qwen 2) is written
as ``gpt2`` with its merges and the family's pre-tokenizer name. Special tokens are marked as control tokens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmctl.errors import DataError

if TYPE_CHECKING:
    from gguf import GGUFWriter


def tokenizer_kind(model_dir: Path) -> str:
    """``spm`` (tokenizer.model), ``llama-hf`` (byte-fallback BPE tokenizer.json) or ``bpe`` (byte-level BPE)."""
    if (model_dir / "tokenizer.model").is_file():
        return "spm"
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise DataError(f"{model_dir}: no tokenizer.json or tokenizer.model to write into the GGUF")
    model = json.loads(path.read_text(encoding="utf-8")).get("model", {})
    if model.get("type") != "BPE":
        raise DataError(f"{path}: {model.get('type')} tokenizers cannot be written to GGUF yet (BPE or SentencePiece)")
    return "llama-hf" if model.get("byte_fallback") else "bpe"


def add_tokenizer_metadata(writer: GGUFWriter, model_dir: Path, vocab_size: int, pre_tokenizer: str) -> str:
    """Write the tokenizer of ``model_dir`` into ``writer``; returns the tokenizer kind written."""
    from gguf import SpecialVocab

    model_dir = Path(model_dir)
    kind = tokenizer_kind(model_dir)
    if kind == "bpe":
        tokens, types = _byte_level_vocab(model_dir, vocab_size)
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(pre_tokenizer)
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        special = SpecialVocab(model_dir, load_merges=True, n_vocab=len(tokens))
    else:
        tokens, scores, types = _sentencepiece_vocab(model_dir, kind, vocab_size)
        writer.add_tokenizer_model("llama")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        if kind == "llama-hf":
            writer.add_add_space_prefix(_adds_space_prefix(model_dir))
        special = SpecialVocab(model_dir, load_merges=False, n_vocab=len(tokens))
    special.add_to_gguf(writer, quiet=True)
    return kind


def _padded(count: int, vocab_size: int) -> range:
    """Ids between the tokenizer's size and the model's embedding size, which llama.cpp wants as unused tokens."""
    return range(count, max(count, vocab_size))


def _byte_level_vocab(model_dir: Path, vocab_size: int) -> tuple[list[str], list[int]]:
    """Tokens by id and their types from a byte-level BPE ``tokenizer.json`` (added specials become control)."""
    from gguf import TokenType
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    by_id = {i: token for token, i in tokenizer.get_vocab(with_added_tokens=True).items()}
    data: dict[str, Any] = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    added = {entry["id"]: entry for entry in data.get("added_tokens", [])}
    size = max(vocab_size, max(by_id) + 1)
    tokens, types = [], []
    for i in range(size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(int(TokenType.UNUSED))
        elif i in added:
            tokens.append(by_id[i])
            types.append(int(TokenType.CONTROL if added[i].get("special") else TokenType.USER_DEFINED))
        else:
            tokens.append(by_id[i])
            types.append(int(TokenType.NORMAL))
    return tokens, types


def _sentencepiece_vocab(model_dir: Path, kind: str, vocab_size: int) -> tuple[list[bytes], list[float], list[int]]:
    """Tokens, scores and types through the gguf library's SentencePiece / Llama-HF vocabulary readers."""
    from gguf import TokenType
    from gguf.vocab import LlamaHfVocab, SentencePieceVocab

    vocab = SentencePieceVocab(model_dir) if kind == "spm" else LlamaHfVocab(model_dir)
    tokens, scores, types = [], [], []
    for text, score, token_type in vocab.all_tokens():
        tokens.append(text)
        scores.append(score)
        types.append(int(token_type))
    for i in _padded(len(tokens), vocab_size):
        tokens.append(f"[PAD{i}]".encode())
        scores.append(-1000.0)
        types.append(int(TokenType.UNUSED))
    return tokens, scores, types


def _adds_space_prefix(model_dir: Path) -> bool:
    """Whether a byte-fallback BPE ``tokenizer.json`` prepends "▁" to the text (Llama 2 does, Gemma does not)."""
    data = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    steps: list[dict[str, Any]] = []
    for part in (data.get("normalizer"), data.get("pre_tokenizer")):
        if isinstance(part, dict):
            steps += part.get("normalizers") or part.get("pretokenizers") or [part]
    for step in steps:
        if step.get("type") == "Prepend":
            return True
        if step.get("type") == "Metaspace":
            return step.get("prepend_scheme", "always") != "never" and step.get("add_prefix_space", True)
    return False
