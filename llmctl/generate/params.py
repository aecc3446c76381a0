"""Sampling settings shared by every engine, and the defaults ``llmctl chat`` layers under the model's own."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from llmctl.errors import DataError

# What ``llmctl chat`` uses where neither the model (generation_config.json, GGUF metadata) nor its family
# recommends a value. The loop guard follows llama.cpp and Ollama: min_p 0.05 (llama.cpp's default), a repetition
# penalty of 1.1 over the last 64 tokens (Ollama's repeat_penalty / repeat_last_n), and a stop when the reply's
# tail starts repeating itself (``stop_loops``). A bare ``SamplingParams()`` keeps all of them off, so a benchmark or
# a test gets exactly the decoding it asks for.
CHAT_DEFAULTS: dict[str, Any] = {
    "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1, "repeat_last_n": 64,
    "stop_loops": True, "max_new_tokens": 512,
}

_INTS = ("top_k", "repeat_last_n", "max_new_tokens", "seed")
_BOOLS = ("stop_loops",)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class SamplingParams:
    """How the next token is chosen; ``temperature == 0`` means greedy decoding.

    ``min_p`` drops tokens less likely than ``min_p`` times the most likely one; ``repetition_penalty`` divides the
    scores of tokens seen in the last ``repeat_last_n`` tokens (0 turns the penalty off, -1 looks at the whole
    context); ``stop_loops`` ends a reply whose last tokens are one sequence repeated (see
    :class:`llmctl.generate.sampling.LoopDetector`).
    """

    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 40
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    repeat_last_n: int = 64
    stop_loops: bool = False
    max_new_tokens: int = 512
    seed: int | None = None

    @classmethod
    def layered(cls, *layers: Mapping[str, Any] | None) -> SamplingParams:
        """Settings from ``layers``, later ones winning (e.g. CHAT_DEFAULTS, the model's recommendation, the
        user's flags); ``None`` values and unknown keys are skipped. The result is validated."""
        known = {f.name for f in fields(cls)}
        merged: dict[str, Any] = {}
        for layer in layers:
            merged.update({k: v for k, v in (layer or {}).items() if k in known and v is not None})
        return cls(**merged).validated()

    @property
    def greedy(self) -> bool:
        """True when sampling reduces to picking the most likely token."""
        return self.temperature <= 0 or self.top_k == 1

    def penalty_window(self, history: list[int]) -> list[int]:
        """The part of ``history`` the repetition penalty looks at (``repeat_last_n`` tokens; -1: all of it)."""
        if self.repeat_last_n < 0:
            return history
        return history[-self.repeat_last_n:] if self.repeat_last_n else []

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return asdict(self)

    def updated(self, key: str, value: str) -> SamplingParams:
        """A copy with one setting changed from text (``/params temperature=0.2``); bad input raises DataError."""
        names = {f.name.replace("_", "-"): f for f in fields(self)} | {f.name: f for f in fields(self)}
        if key not in names:
            raise DataError(f"unknown setting {key!r}; known: {', '.join(f.name for f in fields(self))}")
        field = names[key]
        text = value.strip().lower()
        parsed: Any
        if field.name == "seed" and text in ("none", ""):
            parsed = None
        elif field.name in _BOOLS:
            if text not in _TRUE + _FALSE:
                raise DataError(f"{field.name} needs on or off, got {value!r}")
            parsed = text in _TRUE
        elif field.name in _INTS:
            try:
                parsed = int(text)
            except ValueError:
                raise DataError(f"{field.name} needs a whole number, got {value!r}") from None
        else:
            try:
                parsed = float(text)
            except ValueError:
                raise DataError(f"{field.name} needs a number, got {value!r}") from None
        return replace(self, **{field.name: parsed}).validated()

    def validated(self) -> SamplingParams:
        """This object, after checking every value is finite and in range (DataError otherwise)."""
        for name in ("temperature", "top_p", "min_p", "repetition_penalty"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise DataError(f"{name.replace('_', '-')} must be a finite number, got {value!r}")
        for name in ("top_k", "repeat_last_n", "max_new_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise DataError(f"{name.replace('_', '-')} must be a whole number, got {value!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                                      or not 0 <= self.seed < 2**32):
            raise DataError(f"seed must be a whole number from 0 to {2**32 - 1}, got {self.seed!r}")
        if self.temperature < 0:
            raise DataError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise DataError("top-p must be in (0, 1]")
        if self.top_k < 0:
            raise DataError("top-k must be >= 0 (0 disables it)")
        if not 0 <= self.min_p < 1:
            raise DataError("min-p must be in [0, 1) (0 disables it)")
        if self.repetition_penalty <= 0:
            raise DataError("repetition penalty must be > 0 (1 disables it)")
        if self.repeat_last_n < -1:
            raise DataError("repeat-last-n must be >= -1 (0 disables the penalty, -1 covers the whole context)")
        if self.max_new_tokens < 1:
            raise DataError("max new tokens must be >= 1")
        return self

    def check_context(self, context_size: int, option: str = "--max-new-tokens") -> SamplingParams:
        """This object, after checking that ``max_new_tokens`` leaves the prompt at least one token of the
        ``context_size``-token context (a one-line DataError naming the allowed range otherwise)."""
        if not 1 <= self.max_new_tokens < context_size:
            raise DataError(f"{option} {self.max_new_tokens} is out of range: it must be a whole number from 1 to "
                            f"{context_size - 1} (below the {context_size}-token context)")
        return self


# Where a model states its own sampling recommendation: transformers' generation_config.json keys and llama.cpp's
# GGUF ``general.sampling.*`` metadata (gguf-py's Keys.General.SAMPLING_*), in SamplingParams' names.
GENERATION_CONFIG_KEYS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p",
                          "repetition_penalty": "repetition_penalty"}
GGUF_SAMPLING_KEYS = {"general.sampling.temp": "temperature", "general.sampling.top_p": "top_p",
                      "general.sampling.top_k": "top_k", "general.sampling.min_p": "min_p",
                      "general.sampling.penalty_repeat": "repetition_penalty",
                      "general.sampling.penalty_last_n": "repeat_last_n"}


def valid_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``settings`` that are SamplingParams fields with an acceptable value (others dropped: a
    model's odd recommendation must not stop it from loading)."""
    known = {f.name: f for f in fields(SamplingParams)}
    kept: dict[str, Any] = {}
    for key, value in settings.items():
        if key not in known or value is None or isinstance(value, bool):
            continue
        if key in _INTS and isinstance(value, float) and value.is_integer():
            value = int(value)
        try:
            SamplingParams(**{key: value}).validated()
        except (DataError, TypeError):
            continue
        kept[key] = value
    return kept


def sampling_from_generation_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling a ``generation_config.json`` recommends; nothing when it turns sampling off (``do_sample:
    false``), since transformers then ignores those values too."""
    if config.get("do_sample") is False:
        return {}
    return valid_settings({ours: config.get(theirs) for theirs, ours in GENERATION_CONFIG_KEYS.items()})


def sampling_from_gguf(path: str | Path) -> dict[str, Any]:
    """The sampling a GGUF file's ``general.sampling.*`` metadata recommends (read from its header)."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except Exception:  # best effort: the engine has already read the file; a header we cannot parse recommends nothing
        return {}
    found: dict[str, Any] = {}
    for key, ours in GGUF_SAMPLING_KEYS.items():
        field = reader.get_field(key)
        if field is not None:
            try:
                found[ours] = field.contents()
            except (IndexError, ValueError):
                continue
    return valid_settings(found)
