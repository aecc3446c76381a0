"""Where GRPO, PPO and rejection sampling get their rewards: the ``reward`` setting resolved into a :class:`RewardSet`.

A spec is one reward or several separated by commas (``reward=exact-match,format-match``; a comma inside brackets,
braces or parentheses belongs to its reward, so a regex argument may hold one). Each reward is one of:

- ``NAME`` or ``NAME:ARGUMENT``: a :class:`~llmctl.descriptors.Reward` a plugin registered (``llmctl plugins``);
- ``path/to/file.py:function``: a function in a Python file;
- ``package.module:function``: a function in an importable module (the current folder is searched last);
- a reward-model artefact name or folder (from ``--method reward`` or WARM).

``reward_weights`` (``"1.0,0.5"`` or a list; default all 1.0) weighs them into one total. A reward that raises, returns
the wrong number of values or a value that is not a finite number stops the run with one line naming the reward and
the step (:class:`~llmctl.errors.DataError`).

Public: any method that scores sampled answers resolves its ``reward`` setting here (the set's scoring lives in
:mod:`llmctl.reward.scoring`; :class:`RewardSet` is importable from here too).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llmctl.errors import DataError, UnknownNameError
from llmctl.reward.scoring import ResolvedReward, RewardSet

REWARD_HELP = ("NAME[:ARGUMENT] (a registered reward: `llmctl plugins`), FILE.py:FUNCTION or MODULE:FUNCTION "
               "(prompts, completions, **columns) -> floats, or a reward-model artefact / folder; several: a,b")
WEIGHTS_HELP = "one weight per reward of reward=a,b, comma-separated (empty: all 1.0)"
ScoreFunction = Callable[[list[Any], list[str]], list[float]]
BRACKETS = {"(": ")", "[": "]", "{": "}"}


def split_specs(spec: str) -> list[str]:
    """``a,b`` → ``["a", "b"]``; commas inside brackets, braces or parentheses stay with their reward."""
    parts, depth, current = [], [], ""
    for char in spec:
        if char in BRACKETS:
            depth.append(BRACKETS[char])
        elif depth and char == depth[-1]:
            depth.pop()
        elif char == "," and not depth:
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_weights(weights: str | Sequence[Any] | None, names: Sequence[str]) -> list[float]:
    """``"1.0,0.5"`` or ``[1.0, 0.5]`` → floats, one per reward (None or empty: all 1.0)."""
    if weights is None or (isinstance(weights, str) and not weights.strip()) or (
            not isinstance(weights, str) and len(weights) == 0):
        return [1.0] * len(names)
    items = [w.strip() for w in weights.split(",")] if isinstance(weights, str) else list(weights)
    values = []
    for item in items:
        try:
            value = float(item)
        except (TypeError, ValueError):
            raise DataError(f"reward_weights: {item!r} is not a number") from None
        if not math.isfinite(value):
            raise DataError(f"reward_weights: {item!r} is not a finite number")
        values.append(value)
    if len(values) != len(names):
        raise DataError(f"reward_weights gives {len(values)} weight{'s' * (len(values) != 1)} for {len(names)} "
                        f"reward{'s' * (len(names) != 1)} ({', '.join(names)}); give one per reward, in order")
    return values


def resolve_rewards(spec: str, weights: str | Sequence[Any] | None = None,
                    trust_remote_code: bool = False) -> RewardSet:
    """A :class:`RewardSet` from a ``reward`` setting (one or several comma-separated rewards) and its weights."""
    parts = split_specs(str(spec or ""))
    if not parts:
        raise DataError("no reward given: reward=NAME (see `llmctl plugins`), FILE.py:FUNCTION, MODULE:FUNCTION "
                        "or a reward-model artefact / folder")
    rewards = [resolve_one(part, trust_remote_code) for part in parts]
    seen: dict[str, int] = {}
    for reward in rewards:  # display names are metric keys: keep them distinct
        count = seen[reward.name] = seen.get(reward.name, 0) + 1
        if count > 1:
            reward.name = f"{reward.name}#{count}"
    for reward, weight in zip(rewards, parse_weights(weights, [r.name for r in rewards]), strict=True):
        reward.weight = weight
    return RewardSet(rewards)


def resolve_one(spec: str, trust_remote_code: bool = False) -> ResolvedReward:
    """One reward: a registered name (``NAME`` / ``NAME:ARGUMENT``), ``file.py:function``, ``module:function``, or a
    reward-model artefact or folder."""
    from llmctl.plugins import get_registry

    registry = get_registry()
    name, _, argument = spec.partition(":")
    known = {n.lower() for n in [*registry.names("reward"), *registry.clashes("reward")]}
    if name.lower() in known:  # a clash raises its own one line here
        return _registered(registry.get("reward", name), argument if ":" in spec else None, spec)
    file, _, function_name = spec.rpartition(":")
    if file.endswith(".py") and function_name:
        return _with_signature(Path(file).name + ":" + function_name, load_file_function(file, function_name))
    if is_function_spec(spec):
        return _with_signature(spec, _load_module_function(spec))
    if _is_reward_model(spec):
        from llmctl.reward.artifacts import load_reward_model_dir, resolve_model_dir

        model, tokenizer = load_reward_model_dir(resolve_model_dir(spec), trust_remote_code)
        scorer = reward_model_scorer(model, tokenizer)
        return ResolvedReward(Path(spec).name or spec, lambda prompts, completions, **_: scorer(prompts, completions))
    from llmctl.registry import suggest
    from llmctl.store import list_artifacts

    raise UnknownNameError("reward", spec, suggest(name, [*registry.names("reward"),
                                                          *(a.name for a in list_artifacts())]))


def _registered(reward: Any, argument: str | None, spec: str) -> ResolvedReward:
    """A registered :class:`~llmctl.descriptors.Reward`, configured by ``argument`` when given."""
    if argument is not None:
        if reward.configure is None:
            raise DataError(f"reward {reward.name!r} takes no argument (reward={reward.name}, not {spec!r})")
        try:
            reward = reward.configure(argument)
        except ValueError as error:
            raise DataError(f"reward {spec!r}: {' '.join(str(error).split())}") from None
        name = spec
    else:
        name = reward.name
    resolved = _with_signature(name, reward.function)
    resolved.columns = tuple(reward.columns)
    return resolved


def _with_signature(name: str, function: Callable[..., Any]) -> ResolvedReward:
    """A reward whose accepted keyword arguments are read from the function's signature."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return ResolvedReward(name, function)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return ResolvedReward(name, function)
    return ResolvedReward(name, function, accepts=frozenset(p.name for p in parameters))


def load_file_function(file: str | Path, function_name: str) -> Callable[..., Any]:
    """The function ``function_name`` of the Python file ``file`` (imported once per process)."""
    path = Path(file).expanduser().resolve()
    label = f"{file}:{function_name}"
    if not path.is_file():
        raise DataError(f"reward function {label!r}: no file {str(file)!r}")
    module_name = f"llmctl_reward_file_{abs(hash(str(path)))}"
    module = sys.modules.get(module_name)
    if module is None:
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise DataError(f"reward function {label!r}: cannot import {str(file)!r}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as error:
            del sys.modules[module_name]
            text = " ".join(str(error).split())
            raise DataError(f"reward function {label!r}: importing {str(file)!r} raised {type(error).__name__}"
                            + (f": {text}" if text else "")) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise DataError(f"reward function {label!r}: {str(file)!r} has no function {function_name!r}")
    return function


def _load_module_function(spec: str) -> Callable[..., Any]:
    """The function of ``package.module:function``."""
    module_name, _, function_name = spec.partition(":")
    try:
        module = _import_module(module_name)
    except ImportError as error:
        raise DataError(f"reward function {spec!r}: cannot import {module_name!r} ({error})") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise DataError(f"reward function {spec!r}: {module_name} has no function {function_name!r}")
    return function


def load_reward_function(spec: str) -> ScoreFunction:
    """``package.module:function`` taking ``(prompts, completions)`` and returning one float per completion."""
    return RewardSet([_with_signature(spec, _load_module_function(spec))])


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


def _is_reward_model(spec: str) -> bool:
    """True when ``spec`` names a store artefact or an existing folder (checked without loading anything heavy)."""
    from llmctl.store import find_artifact

    return Path(spec).expanduser().is_dir() or find_artifact(spec) is not None


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


def resolve_reward(spec: str, trust_remote_code: bool = False, weights: str | Sequence[Any] | None = None) -> RewardSet:
    """The score function of PPO and rejection sampling: a :class:`RewardSet` called as ``(prompts, completions)``.

    These methods pass no record columns, so a reward that needs one (``exact-match``) is refused here, in one line.
    """
    rewards = resolve_rewards(spec, weights, trust_remote_code)
    for reward in rewards.rewards:
        if reward.columns:
            raise DataError(f"reward {reward.name!r} needs the record column {reward.columns[0]!r}, which this method "
                            "does not pass to rewards (use it with --method grpo)")
    return rewards


def require_reward(settings: Any) -> str:
    """The ``reward`` setting of a method that cannot run without one (one clear line when it is empty)."""
    spec = str(settings["reward"] or "").strip()
    if not spec:
        raise DataError("this method needs reward=NAME (see `llmctl plugins`), reward=FILE.py:FUNCTION, "
                        "reward=MODULE:FUNCTION or reward=REWARD_MODEL (an artefact or folder)")
    return spec
