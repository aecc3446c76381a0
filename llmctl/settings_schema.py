"""A method's own settings declared once, as a dataclass whose fields carry their help, choices and range.

::

    @dataclass
    class DpoSettings(AdapterSettings):
        beta: float = setting(0.1, "strength of the KL tie to the reference", range=Range(0, low_open=True))
        loss_type: str = setting("sigmoid", "sigmoid (DPO) or ipo", choices=("sigmoid", "ipo"))
        learning_rate: float = 5e-5          # a loop setting with the method's own default (help: the loop's)

    Method("dpo", "…", settings=DpoSettings, build=…)

The descriptor reads defaults, help, choices and ranges from the fields (:func:`schema_of`), so they cannot drift
apart. A field named like a loop setting (``learning_rate``, ``batch_size``, ``precision`` …) gives the method's
default for it, which wins over the model family's default for that key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from llmctl.config import Range


def setting(default: Any, help: str = "", *, choices: Iterable[Any] = (), range: Range | None = None) -> Any:
    """A settings-dataclass field: its default, one line of help, and the values (or interval) it allows."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": tuple(choices), "range": range})


@dataclass(frozen=True)
class SettingsSchema:
    """What a settings dataclass declares, as the four mappings :class:`llmctl.descriptors.Method` holds."""

    defaults: dict[str, Any]
    help: dict[str, str]
    choices: dict[str, tuple[Any, ...]]
    ranges: dict[str, Range]


def schema_of(settings_class: type) -> SettingsSchema:
    """Defaults, help, choices and ranges of every field of the dataclass ``settings_class``."""
    if not dataclasses.is_dataclass(settings_class):
        raise TypeError(f"{settings_class!r} is not a dataclass")
    defaults: dict[str, Any] = {}
    help_: dict[str, str] = {}
    choices: dict[str, tuple[Any, ...]] = {}
    ranges: dict[str, Range] = {}
    for item in dataclasses.fields(settings_class):
        if item.default is dataclasses.MISSING:
            raise TypeError(f"{settings_class.__name__}.{item.name} needs a default")
        defaults[item.name] = item.default
        if item.metadata.get("help"):
            help_[item.name] = item.metadata["help"]
        if item.metadata.get("choices"):
            choices[item.name] = item.metadata["choices"]
        if item.metadata.get("range") is not None:
            ranges[item.name] = item.metadata["range"]
    return SettingsSchema(defaults, help_, choices, ranges)


def settings_from(settings_class: type, values: Any) -> Any:
    """An instance of the settings dataclass filled from resolved settings (anything indexable by field name)."""
    return settings_class(**{item.name: values[item.name] for item in dataclasses.fields(settings_class)})
