"""``llmctl env``: torch, each backend (usable or not, and why), memory and optional extras."""

from __future__ import annotations

import importlib.util
import os
import platform
import sys

import typer
from rich.markup import escape
from rich.table import Table

from llmctl.cli.output import console, print_json

# extra name -> import names whose presence means it is installed
EXTRAS = {
    "llamacpp": ("llama_cpp",),
    "eval": ("lm_eval",),
    "torchao": ("torchao",),
    "quanto": ("optimum.quanto",),
    "cuda": ("bitsandbytes",),
    "dev": ("pytest", "trl"),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def env(json_output: bool = typer.Option(False, "--json", help="Print JSON instead of tables.")) -> None:
    """Describe this machine: torch, backends, devices, memory and installed extras."""
    import torch

    from llmctl.backends import probe_all
    from llmctl.models.memory import human_bytes
    from llmctl.plugins import get_registry

    backends = probe_all(get_registry())
    usable = [b.name for b, s in backends if s.usable]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    extras = {name: all(_installed(m) for m in modules) for name, modules in EXTRAS.items()}
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
