"""Where PPO and rejection sampling get their rewards: a Python function ``module:function`` or a reward model.

Public: any method that scores sampled answers resolves its ``reward`` setting here.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmctl.errors import DataError

ScoreFunction = Callable[[list[Any], list[str]], list[float]]


def load_reward_function(spec: str) -> ScoreFunction:
    """``package.module:function`` taking ``(prompts, completions)`` and returning one float per completion."""
    module_name, _, function_name = spec.partition(":")
    try:
        module = _import_module(module_name)
    except ImportError as error:
        raise DataError(f"reward function {spec!r}: cannot import {module_name!r} ({error})") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise DataError(f"reward function {spec!r}: {module_name} has no function {function_name!r}")

    def score(prompts: list[Any], completions: list[str]) -> list[float]:
        values = [float(v) for v in function(prompts=prompts, completions=completions)]
        if len(values) != len(completions):
            raise DataError(f"reward function {spec!r} returned {len(values)} rewards for {len(completions)} answers")
        return values

    return score


def _import_module(name: str) -> Any:
    """Import ``name``; a module in the current folder is found too, as under ``python -m llmctl`` (recipe steps).

    The ``llmctl`` script's ``sys.path`` starts with its own bin folder, not the current one, so without this
    ``reward=rewards:f`` would work inside a recipe but not on the command line. The folder goes last, so it never
    shadows an installed module.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        here = os.getcwd()
        if error.name != name.split(".")[0] or here in sys.path or "" in sys.path:
            raise
        sys.path.append(here)
        return importlib.import_module(name)


def reward_model_scorer(model: Any, tokenizer: Any, batch_size: int = 8) -> ScoreFunction:
    """A score function backed by a loaded reward model and its tokenizer."""
    from llmctl.reward.model import score_texts

    def score(prompts: list[Any], completions: list[str]) -> list[float]:
        return score_texts(model, tokenizer, prompts, completions, batch_size=batch_size)

    return score


def is_function_spec(spec: str) -> bool:
    """True for ``module:function`` (and not a folder that happens to contain a colon)."""
    module, sep, function = spec.partition(":")
    return bool(sep and module and function.isidentifier() and not Path(spec).exists())


def resolve_reward(spec: str, trust_remote_code: bool = False) -> ScoreFunction:
    """A score function from ``module:function`` or from a reward-model artefact name or folder."""
    if is_function_spec(spec):
        return load_reward_function(spec)
    from llmctl.reward.artifacts import load_reward_model_dir, resolve_model_dir

    model, tokenizer = load_reward_model_dir(resolve_model_dir(spec), trust_remote_code)
    return reward_model_scorer(model, tokenizer)


def require_reward(settings: Any) -> str:
    """The ``reward`` setting of a method that cannot run without one (one clear line when it is empty)."""
    spec = str(settings["reward"] or "").strip()
    if not spec:
        raise DataError("this method needs reward=MODULE:FUNCTION or reward=REWARD_MODEL (an artefact or folder)")
    return spec
