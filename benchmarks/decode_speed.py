"""Decode speed (tokens/s after the first token) of a chat engine, plain ``model.generate`` and raw llama-cpp-python.

Every measurement decodes greedily from the same chat prompt after one warm-up run; ``compare_decode_speed`` puts
them side by side as ratios so ``make bench`` can report them in one run (the decode section of the suite).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llmctl.errors import LlmctlError
from llmctl.generate.params import SamplingParams

PROMPT = "Write a long story about a dragon who learns to bake bread."


@dataclass
class DecodeSpeed:
    """One measurement: who decoded, how many tokens, at what rate."""

    label: str
    tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        """Decode rate."""
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {**asdict(self), "tokens_per_second": round(self.tokens_per_second, 2)}


def engine_speed(engine: Any, tokens: int = 64, prompt: str = PROMPT, label: str | None = None) -> DecodeSpeed:
    """Decode rate of a loaded chat engine (its own loop, cache and sampling path)."""
    ids = engine.encode_chat([{"role": "user", "content": prompt}])
    params = SamplingParams(temperature=0, max_new_tokens=tokens)
    "".join(engine.stream(ids, SamplingParams(temperature=0, max_new_tokens=4)))  # warm-up
    "".join(engine.stream(ids, params))
    stats = engine.stats
    return DecodeSpeed(label or f"llmctl {engine.name}", max(stats.new_tokens - 1, 0), stats.decode_seconds)


def generate_speed(model_dir: str | Path, tokens: int = 64, dtype: str = "float32",
                   prompt: str = PROMPT) -> DecodeSpeed:
    """Decode rate of plain ``model.generate`` (greedy, default settings) as a user would call it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    from llmctl.models.loading import torch_dtype

    logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch_dtype(dtype)).eval()
    ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)["input_ids"]

    def timed(n: int) -> float:
        start = time.perf_counter()
        with torch.no_grad():
            model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        return time.perf_counter() - start

    timed(2)  # warm-up
    first = timed(1)
    total = timed(tokens)
    return DecodeSpeed(f"transformers generate ({dtype})", tokens - 1, max(total - first, 1e-9))


def llamacpp_speed(gguf: str | Path, tokens: int = 64, prompt: str = PROMPT, context: int = 4096) -> DecodeSpeed:
    """Decode rate of raw llama-cpp-python (``Llama.generate``, greedy, its default threads)."""
    from llama_cpp import Llama

    llm = Llama(str(gguf), n_ctx=context, verbose=False)
    ids = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)

    def run(n: int) -> tuple[int, float]:
        llm.reset()
        produced, start, first = 0, 0.0, 0.0
        start = time.perf_counter()
        for _ in llm.generate(ids, temp=0.0):
            produced += 1
            if produced == 1:
                first = time.perf_counter()
            if produced >= n:
                break
        return produced - 1, time.perf_counter() - (first or start)

    run(4)
    count, seconds = run(tokens)
    llm.close()
    return DecodeSpeed("raw llama-cpp-python", count, seconds)


def compare_decode_speed(model: str = "smollm2-135m", tokens: int = 64) -> dict[str, Any]:
    """All four measurements on one model, with the ratios the targets are stated in."""
    from llmctl.generate.loader import EngineRequest, load_chat_engine

    transformers_engine, artefact = load_chat_engine(EngineRequest(model, engine="transformers"))
    ours_hf = engine_speed(transformers_engine, tokens)
    del transformers_engine
    plain = generate_speed(artefact.path, tokens)
    results = [ours_hf, plain]
    ratios = {"transformers engine / generate fp32": ours_hf.tokens_per_second / plain.tokens_per_second}
    gguf = artefact.gguf_path()
    try:
        llama_engine, _ = load_chat_engine(EngineRequest(model, engine="llama.cpp"))
    except LlmctlError:  # llama.cpp not installed or no GGUF: report the transformers side only
        llama_engine = None
    if llama_engine is not None and gguf is not None:
        ours_cpp = engine_speed(llama_engine, tokens)
        getattr(llama_engine, "close", lambda: None)()
        raw = llamacpp_speed(gguf, tokens)
        results += [ours_cpp, raw]
        ratios["llama.cpp engine / raw llama-cpp-python"] = ours_cpp.tokens_per_second / raw.tokens_per_second
        ratios["transformers engine / raw llama-cpp-python"] = ours_hf.tokens_per_second / raw.tokens_per_second
    return {"model": model, "tokens": tokens, "results": [r.as_dict() for r in results],
            "ratios": {k: round(v, 3) for k, v in ratios.items()}}
