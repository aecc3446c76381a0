"""Sampling settings shared by every engine."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from llmctl.errors import DataError


@dataclass(frozen=True)
class SamplingParams:
    """How the next token is chosen; ``temperature == 0`` means greedy decoding."""

    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 40
    repetition_penalty: float = 1.0
    max_new_tokens: int = 512
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        """True when sampling reduces to picking the most likely token."""
        return self.temperature <= 0 or self.top_k == 1

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return asdict(self)

    def updated(self, key: str, value: str) -> SamplingParams:
        """A copy with one setting changed from text (``/params temperature=0.2``); bad input raises DataError."""
        names = {f.name.replace("_", "-"): f for f in fields(self)} | {f.name: f for f in fields(self)}
        if key not in names:
            raise DataError(f"unknown setting {key!r}; known: {', '.join(f.name for f in fields(self))}")
        field = names[key]
        try:
            if value.lower() in ("none", "") and field.name == "seed":
                parsed: Any = None
            elif field.name in ("top_k", "max_new_tokens", "seed"):
                parsed = int(value)
            else:
                parsed = float(value)
        except ValueError:
            raise DataError(f"{field.name} needs a number, got {value!r}") from None
        return replace(self, **{field.name: parsed}).validated()

    def validated(self) -> SamplingParams:
        """This object, after checking every value is in range (DataError otherwise)."""
        if self.temperature < 0:
            raise DataError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise DataError("top-p must be in (0, 1]")
        if self.top_k < 0:
            raise DataError("top-k must be >= 0 (0 disables it)")
        if self.repetition_penalty <= 0:
            raise DataError("repetition penalty must be > 0")
        if self.max_new_tokens < 1:
            raise DataError("max new tokens must be >= 1")
        return self
