"""Recipes: YAML files that chain llmctl verbs into one command, resumable step by step.

A recipe has ``name``, ``description``, ``settings`` (defaults a user overrides with ``key=value``) and ``steps``;
each step has an ``id`` and a ``run`` line — the llmctl command it runs, with ``${setting}`` and
``${steps.ID.output}`` placeholders (``${recipe_dir}``: the recipe's folder; ``${runs_dir}``: where runs are
written). Steps whose verb creates an artefact get ``--name RUN-ID`` so later steps can name it. Finished steps
are recorded in the store and skipped when the recipe runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmctl.errors import DataError, LlmctlError
from llmctl.verbs import is_verb, known_verbs

TOP_KEYS = ("name", "description", "settings", "steps")
STEP_KEYS = ("id", "run", "description")
# verbs that write a named artefact (store model or run) and accept --name
ARTEFACT_VERBS = ("finetune", "convert", "quantize", "merge")
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.-]+)\}")


class RecipeError(DataError):
    """A recipe file that cannot be used; the message names file, line and key."""


@dataclass
class Step:
    """One step: a verb line to run."""

    id: str
    run: str
    description: str = ""
    line: int = 0


@dataclass
class Recipe:
    """A parsed, validated recipe."""

    name: str
    path: Path
    description: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    setting_lines: dict[str, int] = field(default_factory=dict)


@dataclass
class PlannedStep:
    """A step with its placeholders filled in: the exact command line that will run."""

    step: Step
    argv: list[str]
    output: str | None


def recipe_dirs() -> list[Path]:
    """Where named recipes are looked up: $LLMCTL_RECIPES_PATH, ./recipes, then the project's own recipes/."""
    dirs = [Path(p) for p in os.environ.get("LLMCTL_RECIPES_PATH", "").split(os.pathsep) if p]
    dirs += [Path("recipes"), Path(__file__).resolve().parents[1] / "recipes"]
    unique: list[Path] = []
    for directory in dirs:
        if directory.is_dir() and directory.resolve() not in [u.resolve() for u in unique]:
            unique.append(directory)
    return unique


def available_recipes() -> dict[str, Path]:
    """Recipe name → file, first found wins."""
    found: dict[str, Path] = {}
    for directory in recipe_dirs():
        for path in sorted(directory.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def find_recipe(name_or_path: str) -> Path:
    """The recipe file for a path or a name, with suggestions when it is unknown."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    recipes = available_recipes()
    if name_or_path in recipes:
        return recipes[name_or_path]
    from llmctl.errors import UnknownNameError
    from llmctl.registry import suggest

    raise UnknownNameError("recipe", name_or_path, suggest(name_or_path, recipes))


def _fail(path: Path, node: Any, message: str) -> RecipeError:
    return RecipeError(f"{path}:{node.start_mark.line + 1}: {message}")


def _mapping(path: Path, node: Any, what: str) -> dict[str, Any]:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise _fail(path, node, f"{what} must be a mapping of keys to values")
    return {key.value: (key, value) for key, value in node.value}


def load_recipe(path: str | Path) -> Recipe:
    """Parse and validate a recipe file; every problem is one line naming file, line and key."""
    import yaml

    path = Path(path)
    try:
        root = yaml.compose(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise RecipeError(f"{path}{line}: not valid YAML: {getattr(error, 'problem', error)}") from error
    if root is None:
        raise RecipeError(f"{path}:1: the recipe is empty")
    top = _mapping(path, root, "a recipe")
    for key, (key_node, _) in top.items():
        if key not in TOP_KEYS:
            raise _fail(path, key_node, f"unknown key {key!r} (allowed: {', '.join(TOP_KEYS)})")
    data = yaml.safe_load(path.read_text())
    setting_lines: dict[str, int] = {}
    if "settings" in top and not (isinstance(top["settings"][1], yaml.ScalarNode) and not top["settings"][1].value):
        setting_lines = {key: key_node.start_mark.line + 1
                         for key, (key_node, _) in _mapping(path, top["settings"][1], "'settings'").items()}
    if "steps" not in top:
        raise RecipeError(f"{path}:1: the recipe has no 'steps'")
    steps_key, steps_node = top["steps"]
    if not isinstance(steps_node, yaml.SequenceNode) or not steps_node.value:
        raise _fail(path, steps_key, "'steps' must be a non-empty list")
    steps: list[Step] = []
    for step_node in steps_node.value:
        fields = _mapping(path, step_node, "a step")
        for key, (key_node, _) in fields.items():
            if key not in STEP_KEYS:
                raise _fail(path, key_node, f"unknown key {key!r} in a step (allowed: {', '.join(STEP_KEYS)})")
        for required in ("id", "run"):
            if required not in fields:
                raise _fail(path, step_node, f"a step needs {required!r}")
        step_id = str(fields["id"][1].value)
        if any(s.id == step_id for s in steps):
            raise _fail(path, fields["id"][1], f"step id {step_id!r} is used twice")
        verb = str(fields["run"][1].value).split()[0] if str(fields["run"][1].value).split() else ""
        if not is_verb(verb):
            from llmctl.registry import suggest

            hint = suggest(verb, known_verbs())
            more = f"; did you mean {hint[0]!r}?" if hint else ""
            raise _fail(path, fields["run"][1], f"step {step_id!r} runs unknown verb {verb!r}{more}")
        description = str(fields["description"][1].value) if "description" in fields else ""
        steps.append(Step(step_id, str(fields["run"][1].value), description, fields["run"][1].start_mark.line + 1))
    return Recipe(str(data.get("name") or path.stem), path, str(data.get("description") or ""),
                  dict(data.get("settings") or {}), steps, setting_lines)


def apply_overrides(recipe: Recipe, overrides: list[str]) -> dict[str, Any]:
    """The recipe's settings with ``key=value`` overrides applied; unknown keys are refused."""
    settings = dict(recipe.settings)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise LlmctlError(f"expected key=value, got {item!r}")
        if key not in settings:
            known = ", ".join(settings) or "none"
            raise LlmctlError(f"unknown setting {key!r} for recipe {recipe.name!r} (settings: {known})")
        settings[key] = value
    return settings


def run_name(recipe: Recipe, settings: dict[str, Any]) -> str:
    """The name a run of this recipe with these settings goes by (defaults: the recipe's name)."""
    if settings == recipe.settings:
        return recipe.name
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:6]
    return f"{recipe.name}-{digest}"


def plan(recipe: Recipe, settings: dict[str, Any]) -> list[PlannedStep]:
    """Each step's exact command line, with placeholders filled and output names assigned.

    A setting may name other settings, ``${recipe_dir}``, ``${run}`` or an earlier step's output; settings that name
    each other in a cycle are refused with the cycle spelled out.
    """
    name = run_name(recipe, settings)
    from llmctl.store import runs_dir

    variables = {"run": name, "recipe_dir": str(recipe.path.resolve().parent), "runs_dir": str(runs_dir().resolve())}
    variables.update({key: str(value) for key, value in settings.items()})
    for key in settings:  # a cycle is an error even in a setting no step uses
        _expand(f"${{{key}}}", variables, (), lambda missing: f"${{{missing}}}", recipe)
    planned: list[PlannedStep] = []
    for step in recipe.steps:
        verb = step.run.split()[0]
        output = f"{name}-{step.id}" if verb in ARTEFACT_VERBS else None
        if output:
            variables[f"steps.{step.id}.output"] = output

        def unknown(key: str, step: Step = step) -> str:
            known = ", ".join(sorted(variables))
            raise RecipeError(f"{recipe.path}:{step.line}: step {step.id!r} uses unknown placeholder ${{{key}}} "
                              f"(known: {known})")

        argv = shlex.split(_expand(step.run, variables, (), unknown, recipe))
        if output and "--name" not in argv:
            argv += ["--name", output]
        planned.append(PlannedStep(step, argv, output))
    return planned


def _expand(text: str, variables: dict[str, str], chain: tuple[str, ...], missing: Callable[[str], str],
            recipe: Recipe) -> str:
    """``text`` with every placeholder replaced, recursively; ``missing(key)`` answers for an unknown one."""

    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in chain:
            cycle = [*chain[chain.index(key):], key]
            line = recipe.setting_lines.get(cycle[0])
            where = f"{recipe.path}:{line}" if line else str(recipe.path)
            raise RecipeError(f"{where}: settings refer to each other in a cycle: "
                              + " → ".join(f"{k}: ${{{after}}}" for k, after in zip(cycle, cycle[1:], strict=False)))
        if key not in variables:
            return missing(key)
        return _expand(variables[key], variables, (*chain, key), missing, recipe)

    return PLACEHOLDER.sub(one, text)


def check_options(recipe: Recipe, steps: list[PlannedStep]) -> None:
    """Parse each planned step's command line against its verb's options, without running it.

    An unknown flag, a flag missing its value, a surplus argument or a missing required one is refused with one line
    naming the recipe file, the step's line and the verb, so ``recipe run --dry-run`` catches it.
    """
    import typer

    from llmctl.cli.app import build_app

    root = typer.main.get_command(build_app())
    for planned in steps:
        command, args, names = root, list(planned.argv), ["llmctl"]
        while args and args[0] in (getattr(command, "commands", None) or {}):  # a group: descend to the verb
            names.append(args[0])
            command = command.commands[args.pop(0)]

        def refuse(message: str, step: Step = planned.step, names: list[str] = names) -> RecipeError:
            return RecipeError(f"{recipe.path}:{step.line}: step {step.id!r} ({' '.join(names)}): "
                               + " ".join(message.split()))

        context = command.context_class(command, info_name=" ".join(names), **command.context_settings)
        try:
            values, extra, _ = command.make_parser(context).parse_args(args=args)
        except _usage_errors() as error:
            raise refuse(error.format_message()) from None
        if extra and not context.allow_extra_args and not hasattr(command, "commands"):
            raise refuse(f"unexpected extra argument(s): {' '.join(extra)}")
        for param in command.params:
            if param.required and values.get(param.name) is None:
                label = (param.name or "").upper() if param.param_type_name == "argument" else "/".join(param.opts)
                raise refuse(f"missing {param.param_type_name} {label}")


def _usage_errors() -> tuple[type[Exception], ...]:
    """The exceptions a command-line parser raises: typer's own (typer >= 0.25 vendors click) and click's."""
    import contextlib
    import importlib

    errors: list[type[Exception]] = []
    for module, name in (("typer.exceptions", "TyperException"), ("click.exceptions", "ClickException")):
        with contextlib.suppress(ImportError, AttributeError):
            errors.append(getattr(importlib.import_module(module), name))
    return tuple(errors)


def state_path(name: str) -> Path:
    """Where a recipe run records its finished steps."""
    from llmctl.store import home

    return home() / "recipes" / name / "state.json"


def read_state(name: str) -> dict[str, Any]:
    """The finished steps of a recipe run (empty when it never ran)."""
    try:
        return json.loads(state_path(name).read_text())
    except (OSError, ValueError):
        return {"finished": {}}


def write_state(name: str, state: dict[str, Any]) -> None:
    """Record finished steps atomically."""
    path = state_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2))
    temporary.replace(path)


def pick_up(argv: list[str], output: str | None) -> tuple[list[str] | None, str]:
    """How to run a step an earlier, interrupted run of the recipe may have started.

    Returns (argv, note): argv None when the step's artefact is already complete (a crash after it was written but
    before the recipe recorded it), ``finetune --resume`` for a training run that was cut off, else the step as is.
    """
    if not output:
        return argv, ""
    from llmctl.store import find_artifact, read_meta, runs_dir

    if argv[0] == "finetune":
        run = runs_dir() / output
        meta = read_meta(run) or {}
        if meta.get("status") == "finished":
            return None, f"run {output} finished earlier"
        if (run / "request.json").is_file():
            return ["finetune", "--resume", output], f"resuming the interrupted run {output}"
        return argv, ""
    if find_artifact(output) is not None:
        return None, f"{output} is already in the store"
    return argv, ""


def run_step(argv: list[str]) -> int:
    """Run one verb in its own process (so each step frees its memory) and return its exit code."""
    return subprocess.call([sys.executable, "-m", "llmctl", *argv])
