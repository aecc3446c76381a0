"""The llama.cpp chat engine: a GGUF model, its own chat template from the GGUF metadata, prefix-cached turns."""

from __future__ import annotations

import atexit
import codecs
import os
import random
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from llmctl.errors import DataError, MissingExtraError
from llmctl.generate.decode import common_prefix_length
from llmctl.generate.engine import GenerationStats, Message
from llmctl.generate.params import SamplingParams
from llmctl.generate.sampling import LoopDetector
from llmctl.store import Artifact

DEFAULT_CONTEXT = 4096


def require_gguf(artefact: Artifact) -> Path:
    """The GGUF file of ``artefact`` (:meth:`Artifact.gguf_path`); one line when it has none or it is gone."""
    path = artefact.gguf_path()
    if path is None:
        raise DataError(f"{artefact.name!r} has no GGUF file; convert it first or use --engine transformers")
    if not path.is_file():
        raise DataError(f"GGUF file {path} is missing")
    return path


class LlamaCppChatEngine:
    """A ``llama_cpp.Llama`` behind the common engine interface."""

    name = "llama.cpp"

    def __init__(self, llm: Any, chat_template: str | None) -> None:
        import llama_cpp

        self._llama_cpp = llama_cpp
        self.llm = llm
        self.chat_template = chat_template
        self.context_size = llm.n_ctx()
        self.stats = GenerationStats()
        self.bos_text = self._piece(llm.token_bos())
        self.eos_text = self._piece(llm.token_eos())
        atexit.register(llm.close)  # free it before interpreter shutdown tears llama_cpp down (noisy __del__)

    def close(self) -> None:
        """Free the model and its context now."""
        self.llm.close()

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def encode_chat(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of the conversation rendered with the GGUF's own chat template (Jinja, as llama-cpp does)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        formatter = Jinja2ChatFormatter(self.chat_template or "", eos_token=self.eos_text, bos_token=self.bos_text)
        prompt = formatter(messages=list(messages)).prompt
        add_bos = not (self.bos_text and prompt.startswith(self.bos_text))
        return self.llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)

    def encode_text(self, text: str) -> list[int]:
        """Token ids of plain text (BOS added when the model's vocabulary asks for it)."""
        return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)

    def stream(self, prompt_ids: Sequence[int], params: SamplingParams) -> Iterator[str]:
        """Stream the reply; the prompt's cached prefix is reused by llama-cpp-python.

        Sampling is llama.cpp's own chain (repetition penalty over the last ``repeat_last_n`` generated tokens,
        top-k, top-p, min-p, temperature); ``params.stop_loops`` ends a reply whose tail repeats itself.
        """
        llm = self.llm
        stats = self.stats = GenerationStats(prompt_tokens=len(prompt_ids), stop_reason="interrupted")
        stats.reused_tokens = common_prefix_length(list(llm._input_ids[:llm.n_tokens]), prompt_ids)
        llm.set_seed(params.seed if params.seed is not None else random.randrange(2**31))
        # llama-cpp-python builds its penalty sampler over `last_n_tokens_size` tokens (-1: the whole context)
        llm.last_n_tokens_size = self.context_size if params.repeat_last_n < 0 else params.repeat_last_n
        guard = LoopDetector() if params.stop_loops else None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        vocab = llm._model.vocab
        start = time.perf_counter()
        first = None
        tokens = llm.generate(list(prompt_ids), top_k=params.top_k, top_p=params.top_p, min_p=params.min_p,
                              temp=0.0 if params.greedy else params.temperature,
                              repeat_penalty=params.repetition_penalty)
        try:
            for token in tokens:
                if self._llama_cpp.llama_vocab_is_eog(vocab, token):
                    stats.stop_reason = "stop"
                    return
                now = time.perf_counter()
                if first is None:
                    first = now
                    stats.prefill_seconds = now - start
                stats.new_tokens += 1
                stats.decode_seconds = now - first
                piece = decoder.decode(llm.detokenize([token]))
                if piece:
                    yield piece
                if guard is not None and guard.push(token):
                    stats.stop_reason = "loop"
                    return
                if stats.new_tokens >= params.max_new_tokens:
                    stats.stop_reason = "length"
                    return
        finally:
            tokens.close()


def load_llamacpp_engine(artefact: Artifact, *, context: int | None = None, threads: int | None = None,
                         fallback_template: str | None = None, **_: Any) -> LlamaCppChatEngine:
    """Open the artefact's GGUF with llama.cpp (context capped at the model's training length)."""
    try:
        from llama_cpp import Llama
    except ImportError:
        raise MissingExtraError("llama-cpp-python", "llamacpp", "the llama.cpp engine") from None
    path = require_gguf(artefact)
    n_ctx = context or DEFAULT_CONTEXT
    llm = Llama(str(path), n_ctx=n_ctx, n_threads=threads or _default_threads(), verbose=False)
    trained = llm._model.n_ctx_train()
    if 0 < trained < n_ctx:  # never run past the length the model was trained for
        del llm
        llm = Llama(str(path), n_ctx=trained, n_threads=threads or _default_threads(), verbose=False)
    template = llm.metadata.get("tokenizer.chat_template") or fallback_template
    return LlamaCppChatEngine(llm, template)


def _default_threads() -> int:
    """llama-cpp-python's own default (half the cores), so speed matches a plain ``Llama(...)``."""
    return max((os.cpu_count() or 2) // 2, 1)
