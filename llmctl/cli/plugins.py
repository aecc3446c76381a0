"""``llmctl plugins``: what is installed, from which distribution, and what each registers."""

from __future__ import annotations

import typer
from rich.table import Table

from llmctl.cli.output import console, print_json

KIND_ORDER = ("family", "backend", "method", "quantizer", "source", "engine", "reward", "command")


def plugins(json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List plugins grouped by what they register, with the distribution that provides each.

    A plugin that failed (its import, any hook, or a clash with another plugin) contributes nothing and is listed
    once, as failed, with the reason.
    """
    from llmctl.plugins import get_host

    host = get_host()
    host.registry  # noqa: B018 - runs every register hook, filling in what each plugin contributed
    infos = sorted(host.infos.values(), key=lambda i: (not i.builtin, i.name))
    if json_output:
        print_json([info.as_dict() for info in infos])
        return
    table = Table(title="llmctl plugins", show_lines=False)
    for column in ("kind", "registers", "plugin", "distribution", "version"):
        table.add_column(column)
    for kind in KIND_ORDER:
        for info in infos:
            if kind in info.registers:
                names = ", ".join(info.registers[kind])
                table.add_row(kind, names, info.name, info.distribution, info.version)
    for info in infos:
        if info.error:
            table.add_row("[red]failed[/red]", info.error, info.name, info.distribution, info.version)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the ``plugins`` verb."""
    app.command("plugins")(plugins)
