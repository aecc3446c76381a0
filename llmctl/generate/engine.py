"""The interface every inference engine offers the chat session, and picking an engine for an artefact."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from llmctl.errors import LlmctlError, MissingExtraError
from llmctl.generate.params import SamplingParams

Message = dict[str, str]


@dataclass
class GenerationStats:
    """What the last ``stream`` call did: token counts and timings (decode excludes the prompt)."""

    prompt_tokens: int = 0
    reused_tokens: int = 0
    new_tokens: int = 0
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    stop_reason: str = ""

    @property
    def tokens_per_second(self) -> float:
        """Decode speed: tokens after the first one over the time spent producing them."""
        if self.new_tokens < 2 or self.decode_seconds <= 0:
            return 0.0
        return (self.new_tokens - 1) / self.decode_seconds

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {"prompt_tokens": self.prompt_tokens, "reused_tokens": self.reused_tokens,
                "new_tokens": self.new_tokens, "prefill_seconds": round(self.prefill_seconds, 4),
                "decode_seconds": round(self.decode_seconds, 4),
                "tokens_per_second": round(self.tokens_per_second, 2), "stop_reason": self.stop_reason}


class ChatEngine(Protocol):
    """A loaded model ready to stream text. ``chat_template`` is None for a base model (plain completion)."""

    name: str
    context_size: int
    chat_template: str | None
    stats: GenerationStats

    def encode_chat(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of ``messages`` rendered with the chat template, ending with the assistant's turn opening."""

    def encode_text(self, text: str) -> list[int]:
        """Token ids of plain text (with the model's beginning-of-text token when it expects one)."""

    def stream(self, prompt_ids: Sequence[int], params: SamplingParams) -> Iterator[str]:
        """Yield text pieces as they are generated after ``prompt_ids``; fills ``stats``."""


def artefact_formats(artefact: Any) -> set[str]:
    """Formats an artefact can be run from: its own, plus ``gguf`` when it keeps the original GGUF file."""
    formats = {artefact.format}
    if artefact.gguf_path() is not None:
        formats.add("gguf")
    return formats


def runs_gguf_file(engine_name: str, registry: Any = None) -> bool:
    """Whether the engine ``engine_name`` runs a GGUF file as it is (its descriptor's ``gguf_native``).

    ``auto`` counts, since it may pick such an engine; so does an unknown name (the loader refuses it later).
    """
    if engine_name == "auto":
        return True
    if registry is None:
        from llmctl.plugins import get_registry

        registry = get_registry()
    try:
        return bool(registry.get("engine", engine_name).gguf_native)
    except LlmctlError:
        return True


def select_engine(artefact: Any, requested: str = "auto", features: Sequence[str] = (),
                  registry: Any = None) -> Any:
    """The ``Engine`` descriptor to run ``artefact``: the one asked for, or the best available that can."""
    if registry is None:
        from llmctl.plugins import get_registry

        registry = get_registry()
    formats = artefact_formats(artefact)
    if requested != "auto":
        engine = registry.get("engine", requested)
        _check_usable(engine, formats, features)
        return engine
    candidates = [e for e in registry.all("engine")
                  if set(e.formats) & formats and set(features) <= set(e.features)]
    usable = [e for e in candidates if e.available()[0]]
    if not usable:
        if candidates:
            _check_usable(candidates[0], formats, features)
        raise LlmctlError(f"no engine can run {artefact.name!r} (formats {', '.join(sorted(formats))})"
                          + (f" with {', '.join(features)}" if features else ""))
    return max(usable, key=lambda e: e.priority)


def _check_usable(engine: Any, formats: set[str], features: Sequence[str]) -> None:
    ok, reason = engine.available()
    if not ok:
        if engine.extra:
            raise MissingExtraError(engine.package or engine.extra, engine.extra, f"the {engine.name} engine")
        raise LlmctlError(f"the {engine.name} engine is not usable here: {reason}")
    if not set(engine.formats) & formats:
        raise LlmctlError(f"the {engine.name} engine runs {', '.join(engine.formats)}, "
                          f"not {', '.join(sorted(formats))}")
    missing = [f for f in features if f not in engine.features]
    if missing:
        raise LlmctlError(f"the {engine.name} engine does not support {', '.join(missing)}; "
                          f"use --engine transformers")
