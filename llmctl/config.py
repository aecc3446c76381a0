"""Layered fine-tuning settings: loop defaults < method defaults < family defaults < recipe YAML < ``key=value``.

One exception to the order: where a method gives its own default for a loop setting (``learning_rate``,
``precision`` …), a family's default for that key does not replace it (a family tunes its adapter shape, the method
knows its learning rate). ``finetune --dry-run`` shows which layer set every value.

Every key must be known (a training-loop setting or one the method declares); an unknown key is refused with one
line that names it, where it came from (``file:line`` for a recipe) and close matches. Values are coerced to the type
of their default, so ``learning_rate=1e-4`` on the command line is a float, then checked: floats must be finite,
integers must fit in 64 bits, and a setting with a :class:`Range` or a list of choices (the loop's own here, a method's
on its :class:`llmctl.descriptors.Method`) must respect it — so ``finetune --dry-run`` refuses ``max_steps=0`` or
``loss_type=bogus`` before any model loads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmctl.errors import DataError

if TYPE_CHECKING:
    from llmctl.descriptors import Method

INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Range:
    """The interval a numeric setting must lie in; ``None`` leaves that side unbounded.

    ``Range(1)`` is "at least 1", ``Range(0, low_open=True)`` "greater than 0", ``Range(0, 1, high_open=True)``
    "in [0, 1)".
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        def number(x: float) -> str:
            return f"{x:g}"

        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.low_open else '['}{number(self.low)}, {number(self.high)}"
                    f"{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{'greater than' if self.low_open else 'at least'} {number(self.low)}"
        if self.high is not None:
            return f"{'less than' if self.high_open else 'at most'} {number(self.high)}"
        return "any number"


TRAIN_DEFAULTS: dict[str, Any] = {
    "max_steps": 100,
    "batch_size": 4,
    "grad_accum": 1,
    "learning_rate": 1e-4,
    "weight_decay": 0.0,
    "warmup_ratio": 0.1,
    "schedule": "cosine",
    "min_lr_ratio": 0.0,
    "max_grad_norm": 1.0,
    "max_length": 512,
    "packing": False,
    "train_on_prompt": False,
    "val_split": 0.1,
    "val_data": "",
    "eval_every": 10,
    "save_every": 50,
    "keep_checkpoints": 2,
    "seed": 0,
    "precision": "auto",
    "dtype": "float32",
    "gradient_checkpointing": False,
    "backend": "auto",
    "strategy": "ddp",
}
SETTING_HELP: dict[str, str] = {
    "max_steps": "optimizer steps to run",
    "batch_size": "examples (or packed rows) per micro-batch and process",
    "grad_accum": "micro-batches accumulated per optimizer step",
    "learning_rate": "peak learning rate after warm-up",
    "weight_decay": "AdamW weight decay",
    "warmup_ratio": "fraction of max_steps spent warming up linearly",
    "schedule": "decay after warm-up: cosine, linear or constant",
    "min_lr_ratio": "final learning rate as a fraction of the peak",
    "max_grad_norm": "clip gradients to this global norm (0: off)",
    "max_length": "tokens per example (and per packed row)",
    "packing": "pack several examples per row; they never attend to each other",
    "train_on_prompt": "also take loss on prompt tokens of instruction data",
    "val_split": "fraction of the data held out for validation loss",
    "val_data": "a separate validation file (overrides val_split)",
    "eval_every": "steps between validation losses (0: only at the end)",
    "save_every": "steps between checkpoints (0: only on interrupt)",
    "keep_checkpoints": "how many recent checkpoints to keep (0: all)",
    "seed": "seed for initialisation, data order and dropout",
    "precision": "auto (what the backend trains fastest with: fp32 on CPUs, bf16 autocast on bf16 GPUs), bf16, "
                 "fp16 or fp32",
    "dtype": "dtype the base weights are loaded in",
    "gradient_checkpointing": "recompute activations in the backward pass to save memory",
    "backend": "hardware backend (auto picks the best usable one)",
    "strategy": "multi-process strategy with --nproc: ddp or fsdp",
}
RANGES: dict[str, Range] = {  # what torch's AdamW and HF TrainingArguments refuse, and what makes no run at all
    "max_steps": Range(1),
    "batch_size": Range(1),
    "grad_accum": Range(1),
    "learning_rate": Range(0, low_open=True),
    "weight_decay": Range(0),
    "warmup_ratio": Range(0, 1),
    "min_lr_ratio": Range(0, 1),
    "max_grad_norm": Range(0),
    "max_length": Range(1),
    "val_split": Range(0, 1, high_open=True),
    "eval_every": Range(0),
    "save_every": Range(0),
    "keep_checkpoints": Range(0),
    "seed": Range(0),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "schedule": ("cosine", "linear", "constant"),
    "precision": ("auto", "bf16", "fp16", "fp32"),
    "dtype": ("float32", "bfloat16", "float16"),
    "strategy": ("ddp", "fsdp"),
}


@dataclass
class Settings:
    """Resolved settings and, for each key, the layer that set it."""

    values: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` or ``default``."""
        return self.values.get(key, default)


def parse_value(text: str) -> Any:
    """A command-line value: int, float, bool, null (`null` or `~`), a YAML list, else the string itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("null", "~"):  # as YAML reads them; "none" stays a word (adapter=none)
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.startswith("["):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return text
    return text


def coerce(key: str, value: Any, default: Any, where: str, choices: tuple[Any, ...] | None = None,
           allowed: Range | None = None) -> Any:
    """``value`` converted to the type of ``default``, then checked; a bad value raises a one-line DataError.

    ``choices`` and ``allowed`` default to the loop's own (:data:`CHOICES`, :data:`RANGES`) for ``key``.
    """
    expected = type(default)
    try:
        if value is None and isinstance(default, bool | int | float):
            raise TypeError
        if default is None or value is None or isinstance(value, expected) and not (
                isinstance(value, bool) and expected is not bool):
            result = value
        elif expected is bool:
            raise TypeError
        elif expected is float and isinstance(value, int | str) and not isinstance(value, bool):
            result = float(value)
        elif expected is int and (isinstance(value, str) and value.lstrip("-").isdigit()
                                  or isinstance(value, float) and value.is_integer()):
            result = int(value)
        elif expected is str and isinstance(value, int | float) and not isinstance(value, bool):
            result = str(value)
        elif expected in (list, tuple) and isinstance(value, str):
            result = [part.strip() for part in value.split(",") if part.strip()]
        else:
            raise TypeError
    except (TypeError, ValueError):
        raise DataError(f"{where}: setting {key!r} expects {expected.__name__}, got {value!r}") from None
    check_value(key, result, where, CHOICES.get(key) if choices is None else choices,
                RANGES.get(key) if allowed is None else allowed)
    return result


def check_value(key: str, value: Any, where: str, choices: tuple[Any, ...] | None = None,
                allowed: Range | None = None) -> None:
    """Refuse a non-finite float, an integer past 64 bits, a value outside ``allowed`` or not among ``choices``."""
    if isinstance(value, float) and not math.isfinite(value):
        raise DataError(f"{where}: setting {key!r} must be a finite number, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64_MAX:
        raise DataError(f"{where}: setting {key!r} = {value} does not fit in 64 bits (at most {INT64_MAX})")
    if choices and value not in choices:
        raise DataError(f"{where}: setting {key!r} must be one of {', '.join(map(str, choices))}, got {value!r}")
    if allowed is not None and isinstance(value, int | float) and not isinstance(value, bool) \
            and value not in allowed:
        raise DataError(f"{where}: setting {key!r} must be {allowed}, got {value!r}")


def _unknown(key: str, known: Mapping[str, Any], where: str, method: str) -> DataError:
    from llmctl.registry import suggest

    hint = suggest(key, known)
    more = f"; did you mean {', '.join(repr(h) for h in hint)}?" if hint else " (see `llmctl finetune --dry-run`)"
    return DataError(f"{where}: unknown setting {key!r} for method {method!r}{more}")


def read_recipe(path: str | Path) -> list[tuple[str, Any, str]]:
    """``(key, value, file:line)`` for every entry of a flat YAML settings file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such recipe file")
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise DataError(f"{path}{line}: invalid YAML ({getattr(error, 'problem', None) or error})") from None
    if root is None:
        return []
    if not isinstance(root, yaml.MappingNode):
        raise DataError(f"{path}:{root.start_mark.line + 1}: expected a mapping of setting: value")
    entries = []
    for key_node, value_node in root.value:
        where = f"{path}:{key_node.start_mark.line + 1}"
        value = yaml.safe_load(yaml.serialize(value_node))
        entries.append((str(key_node.value), value, where))
    return entries


def parse_overrides(items: list[str]) -> list[tuple[str, Any, str]]:
    """``(key, value, where)`` for command-line ``key=value`` items."""
    entries = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DataError(f"expected key=value on the command line, got {item!r}")
        entries.append((key.strip().replace("-", "_"), parse_value(value), "command line"))
    return entries


def resolve_settings(method_name: str, method_defaults: Mapping[str, Any], family_name: str | None = None,
                     family_defaults: Mapping[str, Any] | None = None,
                     recipe: list[tuple[str, Any, str]] | None = None,
                     overrides: list[tuple[str, Any, str]] | None = None, *,
                     method: Method | None = None) -> Settings:
    """Merge the layers and check every value; family defaults for keys this method does not use are skipped.

    ``method`` (default: the registered method called ``method_name``, if any) supplies the choices, ranges and
    ``validate`` of the method's own settings.
    """
    method = method if method is not None else _registered_method(method_name)
    choices = {**CHOICES, **(getattr(method, "choices", None) or {})}
    ranges = {**RANGES, **(getattr(method, "ranges", None) or {})}
    known = {**TRAIN_DEFAULTS, **method_defaults}
    values = dict(known)
    sources = {key: "default" for key in TRAIN_DEFAULTS}
    sources.update({key: f"method {method_name}" for key in method_defaults})

    def take(key: str, value: Any, where: str) -> None:
        values[key] = coerce(key, value, known[key], where, choices.get(key, ()), ranges.get(key))
        sources[key] = where

    for key, value in (family_defaults or {}).items():
        if key in known and not (key in TRAIN_DEFAULTS and key in method_defaults):  # the method's loop default wins
            take(key, value, f"family {family_name}")
    for key, value, where in [*(recipe or []), *(overrides or [])]:
        if key not in known:
            raise _unknown(key, known, where, method_name)
        take(key, value, where)
    _check_files(values, sources)
    validate: Callable[[Mapping[str, Any]], str | None] | None = getattr(method, "validate", None)
    problem = validate(values) if validate is not None else None
    if problem:
        raise DataError(f"method {method_name}: {problem}")
    return Settings(values, sources)


def _registered_method(name: str) -> Method | None:
    from llmctl.errors import LlmctlError
    from llmctl.plugins import get_registry

    try:
        return get_registry().get("method", name)
    except LlmctlError:
        return None


def _check_files(values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """A ``val_data`` file that is not there fails now, not after the model has loaded."""
    path = values.get("val_data")
    if path and not Path(str(path)).expanduser().is_file():
        what = "is a folder, not a file" if Path(str(path)).expanduser().is_dir() else "no such file"
        raise DataError(f"{sources.get('val_data', 'settings')}: setting 'val_data': {path}: {what}")
