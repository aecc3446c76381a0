"""The names of llmctl's verbs: the one list the CLI builds its app from and recipes check their steps against.

A core verb ``NAME`` lives in ``llmctl/cli/NAME.py`` (``-`` spelt ``_``), whose ``register(app)`` adds the command
``NAME``. Reading this list imports nothing but this module; :func:`plugin_verbs` asks the plugins for theirs.
"""

from __future__ import annotations

CORE_VERBS = ("plugins", "models", "info", "env", "score", "merge", "recipe", "chat", "download", "rm", "convert",
              "finetune", "runs", "benchmark", "quantize")


def verb_module(verb: str) -> str:
    """The module under ``llmctl.cli`` that registers the core verb ``verb``."""
    return f"llmctl.cli.{verb.replace('-', '_')}"


def command_names(app: object) -> list[str]:
    """The command and group names registered on a typer ``app``, spelt as typed on the command line."""
    commands = getattr(app, "registered_commands", [])
    groups = getattr(app, "registered_groups", [])
    names = [c.name or (c.callback.__name__ if c.callback else "") for c in commands]
    names += [g.name or "" for g in groups]
    return [name.replace("_", "-") for name in names if name]


def plugin_verbs() -> list[str]:
    """The commands plugins add, put on an empty typer app (no core verb is built); a core verb's name stays core."""
    import typer

    from llmctl.plugins import get_host

    scratch = typer.Typer()
    get_host().add_commands(scratch)
    return [name for name in command_names(scratch) if name not in CORE_VERBS]


def is_verb(name: str) -> bool:
    """Whether ``name`` is a core verb or a command a plugin adds (plugins are asked only for a non-core name)."""
    return name in CORE_VERBS or name in plugin_verbs()


def known_verbs() -> list[str]:
    """Every verb: the core ones, then the plugins' commands."""
    return [*CORE_VERBS, *plugin_verbs()]
