"""``llmctl runs``: fine-tuning runs with their method, model, steps and final losses."""

from __future__ import annotations

import typer

from llmctl.cli.output import console, print_json


def _loss(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def runs(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List fine-tuning runs (folder: $LLMCTL_RUNS_DIR or ./runs)."""
    from rich.table import Table

    from llmctl.store import runs_dir
    from llmctl.train.runs import list_runs

    found = list_runs()
    if as_json:
        print_json([{"id": r.id, "path": str(r.path), **r.meta, "status": r.status, "resume": r.resume_command}
                    for r in found])
        return
    if not found:
        console.print(f"no runs in {runs_dir()}")
        return
    table = Table(title=f"runs in {runs_dir()}")
    for column in ("id", "method", "model", "steps", "loss", "val loss", "status"):
        table.add_column(column)
    for run in found:
        meta = run.meta
        table.add_row(run.id, str(meta.get("method", "-")), str(meta.get("base_artifact") or meta.get("base_model")),
                      f"{meta.get('steps', 0)}/{meta.get('max_steps', '?')}", _loss(meta.get("final_loss")),
                      _loss(meta.get("final_val_loss")), run.status)
    console.print(table)
    for run in found:
        if run.resume_command:
            console.print(f"{run.id} was interrupted; resume it with: {run.resume_command}", soft_wrap=True,
                          markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``runs`` to the app."""
    app.command()(runs)
