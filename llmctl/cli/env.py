"""``llmctl env``: torch, each backend (usable or not, and why), memory and optional extras."""

from __future__ import annotations

import os
import platform
import re
import sys

import typer
from rich.markup import escape
from rich.table import Table

from llmctl.cli.output import console, print_json

DISTRIBUTION = "llmctl"
REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def extra_requirements(distribution: str = DISTRIBUTION) -> dict[str, list[str]]:
    """Each optional extra of ``distribution`` and the packages it installs, read from the installed metadata."""
    from importlib import metadata

    try:
        meta = metadata.metadata(distribution)
    except metadata.PackageNotFoundError:
        return {}
    extras: dict[str, list[str]] = {name: [] for name in meta.get_all("Provides-Extra") or []}
    for requirement in meta.get_all("Requires-Dist") or []:
        marker = EXTRA_MARKER.search(requirement)
        name = REQUIREMENT_NAME.match(requirement)
        if marker and name and marker.group(1) in extras:
            extras[marker.group(1)].append(name.group(0))
    return extras


def _installed(package: str) -> bool:
    """Whether the distribution ``package`` is installed (read from metadata; nothing is imported)."""
    from importlib import metadata

    try:
        metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return False
    return True


def env(json_output: bool = typer.Option(False, "--json", help="Print JSON instead of tables.")) -> None:
    """Describe this machine: torch, backends, devices, memory and installed extras."""
    import torch

    from llmctl.backends import probe_all
    from llmctl.models.memory import human_bytes
    from llmctl.plugins import get_registry

    backends = probe_all(get_registry())
    usable = [b.name for b, s in backends if s.usable]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    extras = {name: all(_installed(p) for p in packages) for name, packages in extra_requirements().items()}
    if json_output:
        print_json({
            "python": sys.version.split()[0], "platform": platform.platform(), "torch": torch.__version__,
            "memory_bytes": memory, "auto_backend": usable[0] if usable else None,
            "backends": [{"name": b.name, "usable": s.usable, "reason": s.reason, "device": s.device,
                          "dtype": s.dtype, "devices": list(s.devices)} for b, s in backends],
            "extras": extras,
        })
        return
    console.print(f"python {sys.version.split()[0]} · {platform.platform()} · torch {torch.__version__} · "
                  f"memory {human_bytes(memory)} · auto backend: [bold]{usable[0] if usable else 'none'}[/bold]")
    table = Table(title="Backends")
    for column in ("backend", "usable", "device", "dtype", "why"):
        table.add_column(column)
    for backend, status in backends:
        mark = "[green]yes[/green]" if status.usable else "[red]no[/red]"
        table.add_row(backend.name, mark, status.device, status.dtype or "-", status.reason)
    console.print(table)
    extra_table = Table(title="Optional extras")
    extra_table.add_column("extra")
    extra_table.add_column("installed")
    for name, present in extras.items():
        extra_table.add_row(name, "yes" if present else escape(f"no (pip install 'llmctl[{name}]')"))
    console.print(extra_table)


def register(app: typer.Typer) -> None:
    """Add the ``env`` verb."""
    app.command("env")(env)
