"""``llmctl download MODEL``: fetch a model into the store once (or, with ``--dry-run``, say what that would take)."""

from __future__ import annotations

import typer
from rich.table import Table

from llmctl.cli.output import complete_model, console, err_console


def download(
    model: str = typer.Argument(..., help="Model name, alias, hub id (org/name), local directory or .gguf file.",
                                autocompletion=complete_model),
    revision: str = typer.Option(None, "--revision", help="Hub branch, tag or commit (default: main)."),
    include: list[str] = typer.Option(None, "--include", help="Also fetch hub files matching this glob "
                                      "(repeatable), e.g. '*Q4_K_M.gguf'."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Allow pickle weights (.bin/.pt): they can "
                                      "run code when loaded."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Also fetch the repo's Python "
                                           "modelling code (needed by custom architectures)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the files and total size, check free disk space, "
                                 "download nothing."),
) -> None:
    """Download a model into the local store (bundled models need no network)."""
    from llmctl.models.resolve import fetch_options, find_model_source, resolve_model

    if dry_run:
        match = find_model_source(model, revision=revision)
        if match.artifact is not None:
            console.print(f"{model}: already in the store at {match.artifact.path}")
            return
        source = match.source
        assert source is not None
        if source.plan is None:
            console.print(f"{model}: source {source.name!r} cannot list files in advance")
            return
        options = fetch_options(revision=revision, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code,
                                include=include)
        with err_console.status(f"Asking {source.name} about {match.source_ref}…"):
            files = source.plan(match.source_ref, **options)
        _print_plan(model, source.name, match.source_ref, files)
        return
    artifact = resolve_model(model, download=True, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code,
                             revision=revision, include=include)
    from llmctl.models.memory import human_bytes

    console.print(f"{artifact.name}: {artifact.format}, {human_bytes(artifact.size_bytes)}, "
                  f"from {artifact.origin or 'local'} → {artifact.path}")


def _print_plan(model: str, source: str, ref: str, files: list[tuple[str, int]]) -> None:
    """The dry run's report: one row per file, the total, and whether the store's disk has room for it."""
    from llmctl.models.memory import human_bytes
    from llmctl.store import ensure_free_space, models_dir

    table = Table(title=f"{model} from {source} ({ref})")
    table.add_column("file")
    table.add_column("size", justify="right")
    for name, size in files:
        table.add_row(name, human_bytes(size))
    total = sum(size for _, size in files)
    table.add_row("[bold]total[/bold]", f"[bold]{human_bytes(total)}[/bold]", end_section=True)
    console.print(table)
    free = ensure_free_space(total, models_dir())
    console.print(f"{human_bytes(free)} free at {models_dir()}: enough. Nothing was downloaded (dry run).")


def register(app: typer.Typer) -> None:
    """Add the ``download`` verb."""
    app.command("download")(download)
