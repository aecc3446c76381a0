"""``llmctl models``: families, their known model names, aliases and hub ids."""

from __future__ import annotations

import typer
from rich.table import Table

from llmctl.cli.output import console, print_json


def models(
    family: str = typer.Option(None, "--family", "-f", help="Only this family."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    local: bool = typer.Option(False, "--local", help="List the artefacts in the local store instead."),
) -> None:
    """List model families and the model names (and aliases) llmctl resolves."""
    if local:
        return local_models(json_output)
    from llmctl.plugins import get_registry

    registry = get_registry()
    families = [registry.family(family)] if family else registry.all("family")
    if json_output:
        print_json([
            {
                "family": f.name, "plugin": f.plugin, "description": f.description,
                "models": [{"name": m.name, "aliases": list(m.aliases), "hub_id": m.hub_id,
                            "instruct": m.instruct, "gated": m.gated} for m in f.models],
            }
            for f in families
        ])
        return
    table = Table(title="Model families")
    for column in ("family", "model", "aliases", "hub id", "type"):
        table.add_column(column)
    for fam in families:
        for index, spec in enumerate(fam.models):
            kind = "instruct" if spec.instruct else "base"
            table.add_row(fam.name if index == 0 else "", spec.name, ", ".join(spec.aliases), spec.hub_id, kind,
                          end_section=index == len(fam.models) - 1)
    console.print(table)


def local_models(json_output: bool) -> None:
    """List the complete artefacts in the local store: name, kind, format, size, origin."""
    from llmctl.models.memory import human_bytes
    from llmctl.store import list_artifacts, models_dir

    artifacts = list_artifacts()
    if json_output:
        print_json([{"name": a.name, "kind": a.kind, "format": a.format, "size_bytes": a.size_bytes,
                     "origin": a.origin, "dtype": a.meta.get("dtype"), "parents": a.parents,
                     "created": a.meta.get("created"), "path": str(a.path)} for a in artifacts])
        return
    table = Table(title=f"Local store ({models_dir()})")
    for column in ("name", "kind", "format", "size", "origin"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for a in artifacts:
        table.add_row(a.name, a.kind, a.format, human_bytes(a.size_bytes), a.origin)
    console.print(table if artifacts else "The local store is empty: try `llmctl download smollm2-135m`.")


def register(app: typer.Typer) -> None:
    """Add the ``models`` verb."""
    app.command("models")(models)
