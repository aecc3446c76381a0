"""``llmctl merge A B C --method average [--weights ...]``: weight-average models fine-tuned from one base (WARM)."""

from __future__ import annotations

import typer

from llmctl.cli.output import console, err_console
from llmctl.errors import DataError, UnknownNameError

MERGE_METHODS = ("average",)


def _parse_weights(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.replace(" ", ",").split(",") if part]
    except ValueError:
        raise DataError(f"--weights must be numbers separated by commas, got {text!r}") from None


def merge(
    models: list[str] = typer.Argument(..., help="Two or more model or reward-model artefacts (names or folders)."),
    method: str = typer.Option("average", "--method", help="How to combine them: average (WARM)."),
    weights: str | None = typer.Option(None, "--weights", help="One weight per model, e.g. 0.5,0.25,0.25 "
                                                                "(normalised; default uniform)."),
    name: str | None = typer.Option(None, "--name", "-n", help="Name of the new artefact."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an artefact of the same name."),
) -> None:
    """Average the weights of models fine-tuned from one base into a new artefact whose parents are all inputs."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from llmctl.reward.artifacts import resolve_model_dir
    from llmctl.reward.warm import average_weights, base_of, check_compatible, normalised_weights
    from llmctl.store import create_artifact, models_dir, read_meta, safe_name, validate_name

    if name is not None:
        validate_name(name)  # before any work: a name is one folder in the store, never a path
    if method not in MERGE_METHODS:
        from llmctl.registry import suggest

        raise UnknownNameError("merge method", method, suggest(method, MERGE_METHODS))
    directories = [resolve_model_dir(m) for m in models]
    check_compatible(directories)
    metas = [read_meta(d) or {} for d in directories]
    parents = [meta.get("name", d.name) for meta, d in zip(metas, directories, strict=True)]
    kinds = {meta.get("kind", "model") for meta in metas}
    kind = kinds.pop() if len(kinds) == 1 else "model"
    output_name = name or f"{parents[0]}-warm{len(parents)}"
    base = next((b for b in (base_of(d) for d in directories) if b), None)
    used = normalised_weights(len(directories), _parse_weights(weights))
    progress = Progress(TextColumn("averaging tensors"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=err_console, transient=True)
    with progress, create_artifact(output_name, kind=kind, format="safetensors",
                                   origin=f"llmctl merge --method {method}", parents=parents, overwrite=overwrite,
                                   extra={"method": method, "base": base, "weights": used}) as temporary:
        task = progress.add_task("average", total=None)
        average_weights(directories, temporary, used,
                        progress=lambda done, total: progress.update(task, completed=done, total=total))
    console.print(f"Averaged {len(parents)} models ({', '.join(parents)}) with weights "
                  f"{', '.join(f'{w:.3g}' for w in used)} → {output_name} ({models_dir() / safe_name(output_name)})")


def register(app: typer.Typer) -> None:
    """Add the ``merge`` verb."""
    app.command("merge")(merge)
