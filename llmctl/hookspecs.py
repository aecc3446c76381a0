"""The plugin contract: one hook per kind of capability, each handed a ``register`` callable.

Hook argument names are public API: never rename them, only add new hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("llmctl")
hookimpl = pluggy.HookimplMarker("llmctl")

Register = Callable[[Any], None]


@hookspec
def register_families(register: Register) -> None:
    """Register model families: ``register(Family(...))``."""


@hookspec
def register_methods(register: Register) -> None:
    """Register fine-tuning and alignment methods: ``register(Method(...))``."""


@hookspec
def register_quantizers(register: Register) -> None:
    """Register quantizers: ``register(Quantizer(...))``."""


@hookspec
def register_backends(register: Register) -> None:
    """Register hardware backends: ``register(Backend(...))``."""


@hookspec
def register_sources(register: Register) -> None:
    """Register model sources (hub, local folder, bundled packages): ``register(Source(...))``."""


@hookspec
def register_engines(register: Register) -> None:
    """Register inference engines: ``register(Engine(...))``."""


@hookspec
def register_rewards(register: Register) -> None:
    """Register reward functions for GRPO, PPO and rejection sampling: ``register(Reward(...))``."""


@hookspec
def register_commands(app: Any) -> None:
    """Add commands to the CLI: ``app`` is the root ``typer.Typer``."""
