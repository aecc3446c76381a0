"""Measuring one artefact: speed (prompt processing, decode, time to first token, peak memory), quality
(perplexity, bits per byte) and lm-eval tasks. Runs in its own process per artefact (see ``worker``) so peak
memory belongs to that artefact alone."""

from __future__ import annotations

import resource
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class BenchRequest:
    """What to measure on one artefact."""

    model: str
    engine: str = "auto"
    adapter: str | None = None
    speed: bool = True
    quality: bool = True
    tasks: list[str] = field(default_factory=list)
    tasks_dir: str | None = None
    chat_template: bool = False
    task_limit: int | None = None
    text_file: str | None = None
    window: int = 1024
    stride: int = 512
    prompt_tokens: int = 128
    new_tokens: int = 64
    repeats: int = 3


def spread(values: list[float]) -> dict[str, float]:
    """Median with min and max, for a row that says how stable a number is."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def measure_speed(engine: Any, prompt_tokens: int, new_tokens: int, repeats: int) -> dict[str, Any]:
    """Prompt-processing and decode tokens/s and time to first token over ``repeats`` runs after a warm-up.

    Every run uses a different slice of the bundled text, so no run reuses another's cached prompt.
    """
    from llmctl.generate.params import SamplingParams
    from llmctl.quality import bundled_text

    ids = engine.encode_text(bundled_text())
    params = SamplingParams(temperature=0.0, max_new_tokens=new_tokens)
    prefill, decode, first = [], [], []
    for run in range(repeats + 1):
        start = (run * prompt_tokens) % max(1, len(ids) - prompt_tokens)
        prompt = ids[start:start + prompt_tokens]
        for _ in engine.stream(prompt, params):
            pass
        stats = engine.stats
        if run == 0:
            continue  # warm-up
        processed = max(1, stats.prompt_tokens - stats.reused_tokens)
        prefill.append(processed / stats.prefill_seconds if stats.prefill_seconds else 0.0)
        decode.append(stats.tokens_per_second)
        first.append(stats.prefill_seconds * 1000)
    return {"prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "prompt_tokens_per_second": spread(prefill),
            "decode_tokens_per_second": spread(decode), "time_to_first_token_ms": spread(first)}


def measure_quality(engine: Any, artefact: Any, text: str, window: int, stride: int) -> dict[str, Any]:
    """Sliding-window perplexity and bits per byte of ``text`` with the engine's own stack."""
    from llmctl.generate.engine import runs_gguf_file
    from llmctl.quality import perplexity_llamacpp, perplexity_transformers

    if runs_gguf_file(engine.name):
        result = perplexity_llamacpp(artefact.gguf_path(), text, window=window, stride=stride)
    else:
        result = perplexity_transformers(engine.model, engine.tokenizer, text, window=window, stride=stride)
    return result.as_dict()


def _transformers_model(engine: Any, artefact: Any, request: BenchRequest) -> tuple[Any, Any]:
    """The transformers model and tokenizer lm-eval scores: the engine's own, or a torch engine's on a GGUF."""
    from llmctl.errors import LlmctlError
    from llmctl.generate.engine import artefact_formats, runs_gguf_file

    if not runs_gguf_file(engine.name) and hasattr(engine, "model"):
        return engine.model, engine.tokenizer
    from llmctl.generate.loader import EngineRequest, load_chat_engine
    from llmctl.plugins import get_registry

    formats = artefact_formats(artefact)
    torch_engines = [e for e in get_registry().all("engine")
                     if not e.gguf_native and set(e.formats) & formats and e.available()[0]]
    if not torch_engines:
        raise LlmctlError(f"task evaluation needs an engine that loads {artefact.name} as torch weights; none can")
    model, adapter = model_and_adapter(request)
    chosen = max(torch_engines, key=lambda e: e.priority).name
    torch_engine, _ = load_chat_engine(EngineRequest(model=model, engine=chosen, adapter=adapter))
    if not hasattr(torch_engine, "model"):
        raise LlmctlError(f"task evaluation needs a transformers model; the {chosen} engine does not expose one")
    return torch_engine.model, torch_engine.tokenizer


def model_and_adapter(request: BenchRequest) -> tuple[str, str | None]:
    """The model to load and the adapter to apply: a finetune run given as the model means its base + adapter."""
    from llmctl.errors import UnknownNameError
    from llmctl.generate.loader import find_run, run_base_model

    if request.adapter:
        return request.model, request.adapter
    try:
        run = find_run(request.model)
    except UnknownNameError:
        return request.model, None
    if (run / "config.json").is_file():  # a full fine-tune: the run holds a whole model
        return str(run), None
    base = run_base_model(run)
    return (base, str(run)) if base else (request.model, None)


def peak_memory_bytes() -> int:
    """Peak resident memory of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(request: BenchRequest) -> dict[str, Any]:
    """Every asked-for measurement of one artefact, as a JSON-ready record."""
    from llmctl.generate.engine import runs_gguf_file
    from llmctl.generate.loader import EngineRequest, load_chat_engine
    from llmctl.quality import bundled_text

    model, adapter = model_and_adapter(request)
    engine, artefact = load_chat_engine(EngineRequest(model=model, engine=request.engine, adapter=adapter))
    gguf = artefact.gguf_path() if runs_gguf_file(engine.name) else None
    record: dict[str, Any] = {"model": request.model, "artefact": artefact.name, "engine": engine.name,
                              "format": "gguf" if gguf else artefact.format,
                              "size_bytes": gguf.stat().st_size if gguf else artefact.meta.get("size_bytes"),
                              "adapter": adapter}
    if request.speed:
        record["speed"] = measure_speed(engine, request.prompt_tokens, request.new_tokens, request.repeats)
    if request.quality:
        text = Path(request.text_file).read_text(encoding="utf-8") if request.text_file else bundled_text()
        record["quality"] = measure_quality(engine, artefact, text, request.window, request.stride)
        record["quality"]["text"] = request.text_file or "bundled"
    if request.tasks:
        from llmctl.bench.harness import evaluate_tasks

        model, tokenizer = _transformers_model(engine, artefact, request)
        record["tasks"] = evaluate_tasks(model, tokenizer, request.tasks, request.tasks_dir, request.chat_template,
                                         request.task_limit)
    record["peak_memory_bytes"] = peak_memory_bytes()
    return record
