"""The transformers chat engine: loads the model (plus adapter or proxy pair) and streams with the cached loop."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from llmctl.generate.decode import CachedCausalLM, IncrementalDetokenizer, LogitSource, decode_tokens
from llmctl.generate.engine import GenerationStats, Message
from llmctl.generate.params import SamplingParams


def default_dtype(device: str = "cpu") -> str:
    """The dtype the backend of ``device`` prefers: bfloat16 halves the memory and decodes about 1.5x faster than
    float32 where the CPU computes it natively (AVX512-BF16/AMX); where it is emulated, the CPU backend says float32
    (a 1024-token SmolLM2-135M forward took 31.7 s in bfloat16 against 5.9 s in float32 on an AVX2 EPYC)."""
    from llmctl.backends import select_backend
    from llmctl.plugins import get_registry

    return select_backend(get_registry(), device.split(":")[0])[1].dtype or "float32"


def load_hf_model(artefact: Any, dtype: str, trust_remote_code: bool = False,
                  allow_pickle: bool = False) -> tuple[Any, Any]:
    """Model and tokenizer of an artefact: a safetensors directory, a GGUF file that transformers dequantizes, or
    (only with ``allow_pickle``) a directory whose weights are pickle files (``pytorch_model.bin``)."""
    from transformers.utils import logging

    from llmctl.models.loading import load_causal_lm, load_tokenizer, torch_dtype

    logging.disable_progress_bar()  # llmctl shows its own spinner

    if artefact.format == "gguf":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = artefact.file()
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                     dtype=torch_dtype(dtype)).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        return model, tokenizer
    from llmctl.quantize.loading import load_quantized_model

    quantized = load_quantized_model(artefact, dtype)  # torchao/quanto artefacts: their quantizer's own loader
    if quantized is not None:
        return quantized, load_tokenizer(artefact.path, trust_remote_code=trust_remote_code)
    if artefact.format == "pytorch":
        from llmctl.generate.loader import require_pickle_allowed

        require_pickle_allowed(artefact, allow_pickle)
        model = _load_pickle_lm(artefact.path, dtype, trust_remote_code)
    else:
        model = load_causal_lm(artefact.path, dtype=dtype, trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(artefact.path, trust_remote_code=trust_remote_code)
    return model, tokenizer


def _load_pickle_lm(path: Path, dtype: str, trust_remote_code: bool) -> Any:
    """A causal LM from pickle weights (the user passed --allow-pickle); safetensors stays the default elsewhere."""
    from transformers import AutoModelForCausalLM

    from llmctl.models.loading import torch_dtype

    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype(dtype), use_safetensors=False,
                                                trust_remote_code=trust_remote_code).eval()


def apply_adapter(model: Any, adapter: Path) -> Any:
    """``model`` with the peft adapter of the run or folder ``adapter`` merged into its weights (exact; decodes at
    full speed). The run's adapter folder is found by :func:`llmctl.models.adapters.find_adapter_dir`."""
    from peft import PeftModel

    from llmctl.models.adapters import find_adapter_dir

    directory = find_adapter_dir(Path(adapter))
    peft_model = PeftModel.from_pretrained(model, str(directory))
    return peft_model.merge_and_unload().eval()


def stop_ids_for(tokenizer: Any, model: Any) -> set[int]:
    """Token ids that end a reply: the tokenizer's and the generation config's end-of-sequence ids."""
    ids: set[int] = set()
    for value in (tokenizer.eos_token_id, getattr(getattr(model, "generation_config", None), "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids


class TransformersChatEngine:
    """A transformers model behind the common engine interface, with a KV cache reused across turns."""

    name = "transformers"

    def __init__(self, model: Any, tokenizer: Any, *, chat_template: str | None, context_size: int,
                 source: LogitSource | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.context_size = context_size
        self.source = source if source is not None else CachedCausalLM(model)
        self.stop_ids = stop_ids_for(tokenizer, model)
        self.stats = GenerationStats()

    def encode_chat(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of the conversation rendered with the chat template."""
        text = self.tokenizer.apply_chat_template(list(messages), chat_template=self.chat_template,
                                                  add_generation_prompt=True, tokenize=False)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_text(self, text: str) -> list[int]:
        """Token ids of plain text, with the tokenizer's own special tokens (BOS where the model wants one)."""
        return list(self.tokenizer(text)["input_ids"])

    def stream(self, prompt_ids: Sequence[int], params: SamplingParams) -> Iterator[str]:
        """Stream the reply to ``prompt_ids``; stops at an end-of-sequence token or the token limit."""
        stats = self.stats = GenerationStats(prompt_tokens=len(prompt_ids), stop_reason="interrupted")
        detokenizer = IncrementalDetokenizer(self.tokenizer)
        start = time.perf_counter()
        first = None
        for token in decode_tokens(self.source, prompt_ids, params, self.stop_ids):
            now = time.perf_counter()
            if first is None:
                first = now
                stats.prefill_seconds = now - start
                stats.reused_tokens = getattr(self.source, "reused_tokens", 0)
            stats.new_tokens += 1
            stats.decode_seconds = now - first
            piece = detokenizer.push(token)
            if piece:
                yield piece
        stats.stop_reason = "length" if stats.new_tokens >= params.max_new_tokens else "stop"


def load_transformers_engine(artefact: Any, *, adapter: str | Path | None = None, proxy: Any = None,
                             dtype: str = "auto", context: int | None = None, trust_remote_code: bool = False,
                             allow_pickle: bool = False, fallback_template: str | None = None,
                             **_: Any) -> TransformersChatEngine:
    """Load ``artefact`` (plus an adapter, or a proxy-tuning pair ``(tuned, base, alpha)``) as a chat engine."""
    dtype = default_dtype() if dtype == "auto" else dtype
    model, tokenizer = load_hf_model(artefact, dtype, trust_remote_code, allow_pickle)
    if adapter is not None:
        model = apply_adapter(model, Path(adapter))
    source: LogitSource | None = None
    if proxy is not None:
        from llmctl.generate.proxy import ProxyTunedSource, check_same_vocabulary

        tuned_ref, base_ref, alpha = proxy
        tuned, tuned_tokenizer = _load_proxy_part(tuned_ref, dtype, trust_remote_code, allow_pickle)
        base, base_tokenizer = _load_proxy_part(base_ref, dtype, trust_remote_code, allow_pickle)
        check_same_vocabulary({"model": tokenizer, "--proxy": tuned_tokenizer, "--proxy-base": base_tokenizer})
        source = ProxyTunedSource(CachedCausalLM(model), CachedCausalLM(tuned), CachedCausalLM(base), alpha)
    template = getattr(tokenizer, "chat_template", None) or fallback_template
    limit = getattr(model.config, "max_position_embeddings", None) or 2048
    return TransformersChatEngine(model, tokenizer, chat_template=template,
                                  context_size=min(limit, context) if context else limit, source=source)


def _load_proxy_part(part: Any, dtype: str, trust_remote_code: bool, allow_pickle: bool = False) -> tuple[Any, Any]:
    """A proxy model: an artefact, or ``(artefact, adapter_dir)`` for a finetune run."""
    artefact, adapter = part if isinstance(part, tuple) else (part, None)
    model, tokenizer = load_hf_model(artefact, dtype, trust_remote_code, allow_pickle)
    if adapter is not None:
        model = apply_adapter(model, Path(adapter))
    return model, tokenizer
