"""``llmctl rm NAME``: delete an artefact from the local store."""

from __future__ import annotations

import typer

from llmctl.cli.output import console


def complete_artifact(incomplete: str) -> list[str]:
    """Shell completion for artefact names in the store."""
    from llmctl.store import list_artifacts

    return [a.name for a in list_artifacts() if a.name.startswith(incomplete)]


def rm(name: str = typer.Argument(..., help="Artefact name (see `llmctl models --local`).",
                                  autocompletion=complete_artifact)) -> None:
    """Remove an artefact (a downloaded, converted or quantized model) from the local store."""
    from llmctl.store import remove_artifact

    removed = remove_artifact(name)
    console.print(f"removed {name} ({removed})")


def register(app: typer.Typer) -> None:
    """Add the ``rm`` verb."""
    app.command("rm")(rm)
