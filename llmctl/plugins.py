"""Loads plugins from the ``llmctl`` entry-point group, isolating any that fail.

Builtins live in this project's own distribution and load through the same group as third-party packages.
``LLMCTL_LOAD_PLUGINS`` (comma-separated names; empty for none) restricts third-party plugins, and
``LLMCTL_DISABLE_PLUGINS`` skips the named ones, builtins included.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from llmctl import hookspecs
from llmctl.registry import Registry

ENTRY_POINT_GROUP = "llmctl"
BUILTIN_DISTRIBUTION = "llmctl"
KIND_HOOKS = {
    "family": "register_families",
    "method": "register_methods",
    "quantizer": "register_quantizers",
    "backend": "register_backends",
    "source": "register_sources",
    "engine": "register_engines",
}


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin: where it came from and what it registered."""

    name: str
    module: str
    distribution: str
    version: str
    builtin: bool
    error: str | None = None
    registers: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "error": self.error,
            "registers": self.registers,
        }


def _env_names(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def warn(message: str) -> None:
    """Print one warning line on stderr."""
    print(f"warning: {message}", file=sys.stderr)


class PluginHost:
    """The pluggy manager plus what each plugin contributed."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("llmctl")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._registry: Registry | None = None
        self.warnings: list[str] = []

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        warn(message)

    def load_entry_points(self) -> None:
        """Import every plugin module of the entry-point group, skipping (with a warning) any that fail."""
        allowed = _env_names("LLMCTL_LOAD_PLUGINS")
        disabled = _env_names("LLMCTL_DISABLE_PLUGINS") or set()
        seen: set[str] = set()
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry_point.name in seen:
                continue
            seen.add(entry_point.name)
            dist = entry_point.dist
            dist_name = dist.metadata["Name"] if dist is not None else "?"
            version = dist.version if dist is not None else "?"
            builtin = dist_name == BUILTIN_DISTRIBUTION
            names = {entry_point.name, dist_name}
            if names & disabled:
                continue
            if not builtin and allowed is not None and not names & allowed:
                continue
            info = PluginInfo(entry_point.name, entry_point.value, dist_name, version, builtin)
            self.infos[entry_point.name] = info
            try:
                module = entry_point.load()
                self.pm.register(module, name=entry_point.name)
            except Exception as exc:  # a broken plugin must never take the CLI down
                info.error = f"{type(exc).__name__}: {exc}"
                self._warn(f"plugin {entry_point.name!r} ({dist_name} {version}) failed to load and was "
                           f"skipped: {info.error}")

    def register_object(self, plugin: object, name: str, distribution: str = "test", builtin: bool = False) -> None:
        """Register a plugin object directly (tests and embedding applications)."""
        self.pm.register(plugin, name=name)
        self.infos[name] = PluginInfo(name, repr(plugin), distribution, "0", builtin)
        self._registry = None

    def unregister(self, name: str) -> None:
        """Remove a plugin registered with :meth:`register_object`."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self.infos.pop(name, None)
        self._registry = None

    def _call_each(self, hook_name: str, call: Callable[[Callable[..., Any], PluginInfo], None]) -> None:
        hook = getattr(self.pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):  # first-registered plugin first
            info = self.infos.get(impl.plugin_name) or PluginInfo(impl.plugin_name, "?", "?", "?", False)
            if info.error:
                continue
            try:
                call(impl.function, info)
            except Exception as exc:
                info.error = f"{type(exc).__name__}: {exc}"
                self._warn(f"plugin {info.name!r} ({info.distribution}) failed in {hook_name} and was "
                           f"skipped: {info.error}")

    @property
    def registry(self) -> Registry:
        """The registry built from every loaded plugin's register hooks (built once)."""
        if self._registry is None:
            registry = Registry()
            for kind, hook_name in KIND_HOOKS.items():

                def call(function: Callable[..., Any], info: PluginInfo, kind: str = kind) -> None:
                    added: list[tuple[Any, PluginInfo]] = []
                    function(register=lambda item: added.append((item, info)))
                    for item, owner in added:  # only a hook that completed contributes
                        registry.add(kind, item, owner.name, builtin=owner.builtin)
                        owner.registers.setdefault(kind, []).append(item.name)

                self._call_each(hook_name, call)
            for notice in registry.notices:
                self._warn(notice)
            self._registry = registry
        return self._registry

    def add_commands(self, app: Any) -> None:
        """Let every plugin add its commands to the typer ``app``."""

        def call(function: Callable[..., Any], info: PluginInfo) -> None:
            before = {id(c) for c in app.registered_commands} | {id(g) for g in app.registered_groups}
            function(app=app)
            added = [c for c in app.registered_commands if id(c) not in before]
            added_groups = [g for g in app.registered_groups if id(g) not in before]
            names = [c.name or (c.callback.__name__ if c.callback else "?") for c in added]
            names += [g.name or "?" for g in added_groups]
            if names:
                info.registers.setdefault("command", []).extend(n.replace("_", "-") for n in names)

        self._call_each("register_commands", call)


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, loading entry points on first use."""
    global _host
    if _host is None:
        _host = PluginHost()
        _host.load_entry_points()
    return _host


def get_registry() -> Registry:
    """The process-wide registry."""
    return get_host().registry


def reset_host() -> None:
    """Forget the loaded plugins (tests)."""
    global _host
    _host = None
