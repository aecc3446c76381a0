"""Layered fine-tuning settings: method defaults < family defaults < recipe YAML < command-line ``key=value``.

Every key must be known (a training-loop setting or one the method declares); an unknown key is refused with one
line that names it, where it came from (``file:line`` for a recipe) and close matches. Values are coerced to the type
of their default, so ``learning_rate=1e-4`` on the command line is a float.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmctl.errors import DataError

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
    "keep_checkpoints": "how many recent checkpoints to keep",
    "seed": "seed for initialisation, data order and dropout",
    "precision": "auto (bf16 autocast where the backend supports it), bf16, fp16 or fp32",
    "dtype": "dtype the base weights are loaded in",
    "gradient_checkpointing": "recompute activations in the backward pass to save memory",
    "backend": "hardware backend (auto picks the best usable one)",
    "strategy": "multi-process strategy with --nproc: ddp or fsdp",
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


def coerce(key: str, value: Any, default: Any, where: str) -> Any:
    """``value`` converted to the type of ``default``; a value that does not fit raises a one-line DataError."""
    expected = type(default)
    try:
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
    if key in CHOICES and result not in CHOICES[key]:
        raise DataError(f"{where}: setting {key!r} must be one of {', '.join(CHOICES[key])}, got {result!r}")
    return result


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
                     overrides: list[tuple[str, Any, str]] | None = None) -> Settings:
    """Merge the layers; family defaults for keys this method does not use are skipped silently."""
    known = {**TRAIN_DEFAULTS, **method_defaults}
    values = dict(known)
    sources = {key: "default" for key in TRAIN_DEFAULTS}
    sources.update({key: f"method {method_name}" for key in method_defaults})
    for key, value in (family_defaults or {}).items():
        if key in known:
            values[key] = coerce(key, value, known[key], f"family {family_name}")
            sources[key] = f"family {family_name}"
    for key, value, where in [*(recipe or []), *(overrides or [])]:
        if key not in known:
            raise _unknown(key, known, where, method_name)
        values[key] = coerce(key, value, known[key], where)
        sources[key] = where
    return Settings(values, sources)
