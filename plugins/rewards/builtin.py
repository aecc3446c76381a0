"""Builtin rewards: ``exact-match`` (against a reference column), ``format-match`` (a regex), ``length-penalty``.

Each is a plain function of ``(prompts, completions, **columns)`` returning one float per completion; an argument
after the name (``reward=format-match:REGEX``, ``length-penalty:120``, ``exact-match:solution``) configures it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from llmctl.api import Reward, hookimpl

DEFAULT_FORMAT = r"^\s*<think>.*</think>\s*<answer>.*</answer>\s*$"
DEFAULT_LENGTH = 200
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
TAGGED = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
ANSWER_LINE = re.compile(r"\b(?:final\s+answer|answer)\s*(?:is\s*:?|:)\s*([^\n]+)", re.IGNORECASE)


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or the last message's content of a conversational one."""
    if isinstance(completion, list) and completion:
        completion = completion[-1]
    if isinstance(completion, dict):
        completion = completion.get("content", "")
    return "" if completion is None else str(completion)


def final_answer(text: str) -> str:
    """The final answer of a worked solution: ``\\boxed{…}``, ``<answer>…</answer>``, after ``####`` or ``answer:``;
    else the whole text (stripped)."""
    for pattern in (BOXED, TAGGED):
        found = pattern.findall(text)
        if found:
            return found[-1].strip()
    if "####" in text:
        return text.rsplit("####", 1)[1].strip()
    found = ANSWER_LINE.findall(text)
    return found[-1].strip() if found else text.strip()


def _normal(text: str) -> str:
    """Case, surrounding spaces, ``$`` and a final full stop do not count; thousands separators in numbers neither."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text.strip().strip("$").strip())
    return " ".join(text.rstrip(".").lower().split())


def _as_number(text: str) -> float | None:
    """``text`` as a number when it is exactly one, else None."""
    match = NUMBER.fullmatch(text)
    return float(match.group(0)) if match else None


def answers_match(completion: str, reference: Any) -> bool:
    """Whether the completion's final answer equals the reference (numbers by value: the last number given)."""
    wanted = _normal(final_answer(str(reference)) if "####" in str(reference) else str(reference))
    given = _normal(final_answer(completion))
    number = _as_number(wanted)
    if number is None:
        return given == wanted
    numbers = NUMBER.findall(given)
    return bool(numbers) and abs(float(numbers[-1]) - number) <= 1e-9 * max(1.0, abs(number))


def exact_match_reward(column: str = "answer") -> Reward:
    """``exact-match``: 1.0 when the completion's final answer equals the record's ``column``, else 0.0."""
    if not column.isidentifier():
        raise ValueError(f"{column!r} is not a column name (exact-match:COLUMN)")

    def exact_match(prompts: list[Any], completions: list[Any], **columns: Any) -> list[float]:
        references = columns[column]
        return [float(answers_match(completion_text(c), r)) for c, r in zip(completions, references, strict=True)]

    return Reward("exact-match", f"1 when the completion's final answer (\\boxed{{}}, <answer>, after ####, "
                                 f"'answer:', else the last number or the whole text) equals the {column!r} column, "
                                 "else 0", exact_match, columns=(column,), configure=exact_match_reward,
                  argument_help="the reference column (default: answer)")


def format_match_reward(pattern: str = DEFAULT_FORMAT) -> Reward:
    """``format-match``: 1.0 when the completion matches ``pattern`` (``re.search``, ``.`` matching newlines)."""
    try:
        regex = re.compile(pattern, re.DOTALL)
    except re.error as error:
        raise ValueError(f"not a regular expression ({error})") from None

    def format_match(prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
        return [float(regex.search(completion_text(c)) is not None) for c in completions]

    return Reward("format-match", "1 when the completion matches a regex (default: <think>…</think> then "
                                  "<answer>…</answer>), else 0", format_match, configure=format_match_reward,
                  argument_help="the regex, searched with . matching newlines (anchor it with ^ and $)")


def length_penalty_reward(target: int | str = DEFAULT_LENGTH) -> Reward:
    """``length-penalty``: 0 up to ``target`` characters, then minus the excess as a fraction of ``target``."""
    try:
        limit = int(target)
    except ValueError:
        raise ValueError(f"{target!r} is not a whole number of characters") from None
    if limit < 1:
        raise ValueError(f"the target length must be at least 1 character, not {limit}")

    def length_penalty(prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
        return [-max(0, len(completion_text(c)) - limit) / limit for c in completions]

    return Reward("length-penalty", f"0 up to a target length ({DEFAULT_LENGTH} characters), then -(excess / "
                                    "target): -1 at twice the target", length_penalty,
                  configure=length_penalty_reward, argument_help="the target length in characters")


BUILTINS: tuple[Callable[[], Reward], ...] = (exact_match_reward, format_match_reward, length_penalty_reward)


@hookimpl
def register_rewards(register: Callable[[Reward], None]) -> None:
    """Register exact-match, format-match and length-penalty."""
    for make in BUILTINS:
        register(make())
