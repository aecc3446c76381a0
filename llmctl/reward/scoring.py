"""Scoring completions with several rewards: weights, record columns as keyword arguments, checked values.

Every failure of a reward function (it raises, returns the wrong number of values, or a value that is not a finite
number) becomes one :class:`~llmctl.errors.DataError` line naming the reward and the step. Public through
:mod:`llmctl.reward.functions`, which builds a :class:`RewardSet` from a ``reward`` setting.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.errors import DataError


@dataclass
class ResolvedReward:
    """One reward of a :class:`RewardSet`: its display name, the function, its weight and the columns it needs.

    ``function`` is called as ``function(prompts=..., completions=..., **columns)``; ``accepts`` names the keyword
    arguments it takes (None: any, it has ``**kwargs``), so a function without ``**kwargs`` gets only its own columns.
    """

    name: str
    function: Callable[..., Any]
    weight: float = 1.0
    columns: tuple[str, ...] = ()
    accepts: frozenset[str] | None = None


class RewardSet:
    """Several rewards weighed into one total per completion; also a plain score function ``(prompts, completions)``."""

    def __init__(self, rewards: Sequence[ResolvedReward]) -> None:
        self.rewards = list(rewards)

    @property
    def names(self) -> list[str]:
        """Each reward's display name, in order (the keys of :meth:`score`'s raw values)."""
        return [r.name for r in self.rewards]

    @property
    def weights(self) -> list[float]:
        """Each reward's weight, in order."""
        return [r.weight for r in self.rewards]

    def required_columns(self) -> list[str]:
        """The record columns the rewards need (``answer`` for ``exact-match``), in order of first mention."""
        return list(dict.fromkeys(c for r in self.rewards for c in r.columns))

    def check_records(self, records: Iterable[Any]) -> None:
        """Refuse, as ``file:line: …``, the first record lacking a column a reward needs (before any model loads).

        ``records`` are :class:`llmctl.data.records.Record` (or anything with ``values`` and ``where``).
        """
        needs = [(column, r.name) for r in self.rewards for column in r.columns]
        if not needs:
            return
        for record in records:
            for column, name in needs:
                if column not in record.values or record.values[column] is None:
                    raise DataError(f"{record.where}: missing column {column!r} (reward {name!r} compares against it)")

    def check_data(self, path: str | Path) -> None:
        """:meth:`check_records` on every record of a data file."""
        from llmctl.data.records import read_records

        if self.required_columns():
            self.check_records(read_records(path))

    def score(self, prompts: Sequence[Any], completions: Sequence[str],
              columns: Sequence[Mapping[str, Any]] | None = None,
              step: int | None = None) -> tuple[list[float], dict[str, list[float]]]:
        """The weighted total per completion and each reward's raw values (keyed by name).

        ``columns[i]`` holds the extra fields of the prompt record of completion ``i``; each reaches the reward
        functions as one keyword argument, a list aligned with ``completions``. ``step`` is named in errors.
        """
        prompts, completions = list(prompts), list(completions)
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts for {len(completions)} completions")
        lists = _column_lists(columns, len(completions))
        totals = [0.0] * len(completions)
        raw: dict[str, list[float]] = {}
        for reward in self.rewards:
            values = _call(reward, prompts, completions, lists, step)
            raw[reward.name] = values
            totals = [t + reward.weight * v for t, v in zip(totals, values, strict=True)]
        return totals, raw

    def __call__(self, prompts: Sequence[Any], completions: Sequence[str],
                 columns: Sequence[Mapping[str, Any]] | None = None, step: int | None = None) -> list[float]:
        """The weighted total per completion (what PPO and rejection sampling rank by)."""
        return self.score(prompts, completions, columns, step)[0]


def _column_lists(columns: Sequence[Mapping[str, Any]] | None, count: int) -> dict[str, list[Any]]:
    """Per-completion records turned into one list per column (None where a record lacks the column)."""
    if not columns:
        return {}
    if len(columns) != count:
        raise ValueError(f"{len(columns)} column records for {count} completions")
    keys = list(dict.fromkeys(k for record in columns for k in record))
    return {key: [record.get(key) for record in columns] for key in keys}


def _call(reward: ResolvedReward, prompts: list[Any], completions: list[str], columns: dict[str, list[Any]],
          step: int | None) -> list[float]:
    """One reward's values, checked: any failure becomes one line naming the reward and the step."""
    where = f"reward {reward.name!r}" + (f" at step {step}" if step is not None else "")
    missing = [c for c in reward.columns if c not in columns]
    if missing:
        raise DataError(f"{where}: the prompt records have no column {missing[0]!r}")
    passed = {k: v for k, v in columns.items()
              if k not in ("prompts", "completions") and (reward.accepts is None or k in reward.accepts)}
    try:
        result = reward.function(prompts=prompts, completions=completions, **passed)
        values = list(result)
    except Exception as error:  # a user's function: any failure is one line, never a traceback
        text = " ".join(str(error).split())
        raise DataError(f"{where}: raised {type(error).__name__}" + (f": {text}" if text else "")) from None
    if len(values) != len(completions):
        raise DataError(f"{where}: returned {len(values)} values for {len(completions)} completions")
    checked = []
    for index, value in enumerate(values):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise DataError(f"{where}: value {index} is {value!r}, not a finite number")
        checked.append(number)
    return checked
