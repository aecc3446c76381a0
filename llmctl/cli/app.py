"""Builds the typer app: the core verbs, then each plugin's ``register_commands``."""

from __future__ import annotations

import importlib

import typer

from llmctl import __version__
from llmctl.verbs import CORE_VERBS, verb_module


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llmctl {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    """The root app with every core verb and every plugin command."""
    from llmctl.plugins import get_host

    app = typer.Typer(
        name="llmctl",
        help="A workbench for open LLMs: download, convert, fine-tune, quantize, chat and benchmark.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def root(
        debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
        version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                     help="Print the version and exit."),
    ) -> None:
        """llmctl: one CLI for open LLMs, extended by plugins."""

    for verb in CORE_VERBS:  # one module each under llmctl/cli/, each exposing ``register(app)``
        importlib.import_module(verb_module(verb)).register(app)
    get_host().add_commands(app)
    return app
