"""``llmctl recipe list | show | cp | run``: one-line pipelines from YAML."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import typer
from rich.table import Table

from llmctl.cli.output import console, err_console
from llmctl.errors import LlmctlError

recipe_app = typer.Typer(help="Run YAML pipelines that chain llmctl verbs.", no_args_is_help=True)


def _complete_recipe(incomplete: str) -> list[str]:
    from llmctl.recipes import available_recipes

    return [name for name in available_recipes() if name.startswith(incomplete)]


@recipe_app.command("list")
def list_recipes() -> None:
    """List the recipes found in ./recipes, $LLMCTL_RECIPES_PATH and llmctl's own recipes/."""
    from llmctl.recipes import available_recipes, load_recipe

    table = Table(title="Recipes")
    for column in ("recipe", "steps", "description", "file"):
        table.add_column(column)
    for name, path in available_recipes().items():
        recipe = load_recipe(path)
        table.add_row(name, " → ".join(s.id for s in recipe.steps), recipe.description, str(path))
    console.print(table)


@recipe_app.command("show")
def show(recipe: str = typer.Argument(..., help="Recipe name or file.", autocompletion=_complete_recipe)) -> None:
    """Print a recipe file."""
    from llmctl.recipes import find_recipe

    path = find_recipe(recipe)
    console.print(f"[dim]# {path}[/dim]")
    console.print(path.read_text(), markup=False, highlight=False)


@recipe_app.command("cp")
def copy(
    recipe: str = typer.Argument(..., help="Recipe name.", autocompletion=_complete_recipe),
    destination: Path = typer.Argument(Path("."), help="File or folder to copy it to."),
) -> None:
    """Copy a recipe to edit it."""
    from llmctl.recipes import find_recipe

    source = find_recipe(recipe)
    target = destination / source.name if destination.is_dir() else destination
    if target.exists():
        raise LlmctlError(f"{target} already exists")
    shutil.copyfile(source, target)
    console.print(f"copied {source} → {target}")


@recipe_app.command("run")
def run(
    recipe: str = typer.Argument(..., help="Recipe name or file.", autocompletion=_complete_recipe),
    overrides: list[str] = typer.Argument(None, help="Settings to override, as key=value."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and stop."),
    restart: bool = typer.Option(False, "--restart", help="Forget finished steps and run everything again."),
) -> None:
    """Run a recipe's steps in order; steps finished in an earlier run are skipped."""
    import time

    from llmctl.recipes import (
        apply_overrides,
        check_options,
        find_recipe,
        load_recipe,
        pick_up,
        plan,
        read_state,
        run_name,
        run_step,
        write_state,
    )

    loaded = load_recipe(find_recipe(recipe))
    settings = apply_overrides(loaded, overrides or [])
    steps = plan(loaded, settings)
    check_options(loaded, steps)
    name = run_name(loaded, settings)
    state = {"finished": {}} if restart else read_state(name)
    table = Table(title=f"Recipe {loaded.name} (run {name!r})")
    for column in ("#", "step", "command", "output", "status"):
        table.add_column(column)
    for index, planned in enumerate(steps, 1):
        status = "done (skipped)" if planned.step.id in state["finished"] else "to run"
        table.add_row(str(index), planned.step.id, "llmctl " + shlex.join(planned.argv), planned.output or "-", status)
    console.print(table)
    if dry_run:
        return
    for index, planned in enumerate(steps, 1):
        if planned.step.id in state["finished"]:
            continue
        console.rule(f"[bold]step {index}/{len(steps)}: {planned.step.id}[/bold]")
        console.print(f"$ llmctl {shlex.join(planned.argv)}", markup=False, highlight=False)
        started = time.time()
        argv, note = pick_up(planned.argv, planned.output)
        if note:
            console.print(f"[dim]{note}[/dim]")
        try:
            code = run_step(argv) if argv is not None else 0
        except KeyboardInterrupt:
            err_console.print(f"interrupted during step {planned.step.id!r}; run the same command again to resume "
                              "from this step")
            raise typer.Exit(130) from None
        if code != 0:
            raise LlmctlError(f"step {planned.step.id!r} failed (exit {code}); fix it and run the recipe again to "
                              "resume from this step")
        state["finished"][planned.step.id] = {"output": planned.output, "seconds": round(time.time() - started, 1)}
        write_state(name, state)
    console.print(f"[green]recipe {loaded.name} finished[/green]")


def register(app: typer.Typer) -> None:
    """Add the ``recipe`` command group."""
    app.add_typer(recipe_app, name="recipe")
