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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmctl.errors import DataError, LlmctlError

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
        if verb not in _known_verbs():
            from llmctl.registry import suggest

            hint = suggest(verb, _known_verbs())
            more = f"; did you mean {hint[0]!r}?" if hint else ""
            raise _fail(path, fields["run"][1], f"step {step_id!r} runs unknown verb {verb!r}{more}")
        description = str(fields["description"][1].value) if "description" in fields else ""
        steps.append(Step(step_id, str(fields["run"][1].value), description, fields["run"][1].start_mark.line + 1))
    return Recipe(str(data.get("name") or path.stem), path, str(data.get("description") or ""),
                  dict(data.get("settings") or {}), steps)


def _known_verbs() -> list[str]:
    from llmctl.cli.app import build_app

    app = build_app()
    names = [c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands]
    names += [g.name or "" for g in app.registered_groups]
    return [n.replace("_", "-") for n in names if n]


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
    """Each step's exact command line, with placeholders filled and output names assigned."""
    name = run_name(recipe, settings)
    from llmctl.store import runs_dir

    variables = {"run": name, "recipe_dir": str(recipe.path.resolve().parent), "runs_dir": str(runs_dir().resolve())}
    for key, value in settings.items():  # a setting may use ${recipe_dir} and ${run}
        variables[key] = PLACEHOLDER.sub(lambda m: variables.get(m.group(1), m.group(0)), str(value))
    planned: list[PlannedStep] = []
    for step in recipe.steps:
        verb = step.run.split()[0]
        output = f"{name}-{step.id}" if verb in ARTEFACT_VERBS else None
        if output:
            variables[f"steps.{step.id}.output"] = output

        def fill(match: re.Match[str], step: Step = step) -> str:
            key = match.group(1)
            if key not in variables:
                raise RecipeError(f"{recipe.path}:{step.line}: step {step.id!r} uses unknown placeholder "
                                  f"${{{key}}} (known: {', '.join(sorted(variables))})")
            return variables[key]

        argv = shlex.split(PLACEHOLDER.sub(fill, step.run))
        if output and "--name" not in argv:
            argv += ["--name", output]
        planned.append(PlannedStep(step, argv, output))
    return planned


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
