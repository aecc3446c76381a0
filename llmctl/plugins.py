"""Loads plugins from the ``llmctl`` entry-point group; a plugin contributes everything it registers or nothing.

Builtins live in this project's own distribution and load through the same group as third-party packages.

Switches (names are entry-point names or distribution names; an unknown name is warned about):

- ``LLMCTL_LOAD_PLUGINS`` (comma-separated; empty for none) restricts third-party plugins; builtins always load.
- ``LLMCTL_DISABLE_PLUGINS`` skips the named plugins, builtins included.

All or nothing: each plugin's module is imported, then every hook it implements runs against a staging area (a list
for descriptors, a scratch typer app for ``register_commands``). Only when the import and every hook succeeded is
what it staged committed. A plugin that failed contributes nothing, not even what it registered before raising, and
is listed once by ``llmctl plugins``, as failed, with the reason; one warning line goes to stderr.

Order and clashes, applied when the staged registrations are committed:

1. Builtins first, in the order of our ``[project.entry-points.llmctl]`` table, then third-party plugins sorted by
   plugin name. Listings (``llmctl plugins``, ``--method`` choices) and the family chosen for a ``model_type`` that
   several families handle follow this order.
2. A third-party plugin that registers a builtin's name (of the same kind, commands included) never replaces it: the
   builtin is used, a warning says so, and the plugin's other registrations stay active.
3. Two (or more) third-party plugins that register the same name of the same kind clash. No order could make one
   of them the right choice, so every plugin in the clash is disabled (all or nothing again) and listed as failed
   with the reason; one warning line names both and the way to choose, ``LLMCTL_DISABLE_PLUGINS=<one of them>``.
   Other commands keep working; a command that uses the clashing name (``--method NAME``, or the clashing command
   itself) fails with that same line (:class:`~llmctl.errors.PluginClashError`).
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
from llmctl.descriptors import KIND_TYPES
from llmctl.errors import PluginClashError
from llmctl.registry import Registry, suggest

ENTRY_POINT_GROUP = "llmctl"
BUILTIN_DISTRIBUTION = "llmctl"
SWITCHES = ("LLMCTL_LOAD_PLUGINS", "LLMCTL_DISABLE_PLUGINS")
KIND_HOOKS = {
    "family": "register_families",
    "method": "register_methods",
    "quantizer": "register_quantizers",
    "backend": "register_backends",
    "source": "register_sources",
    "engine": "register_engines",
    "reward": "register_rewards",
}
COMMAND_KIND = "command"


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


@dataclass
class Staged:
    """What one plugin's hooks registered, held back until every hook of that plugin has succeeded."""

    items: list[tuple[str, Any]] = field(default_factory=list)  # (kind, descriptor)
    commands: list[tuple[str, Any]] = field(default_factory=list)  # (name, typer CommandInfo or TyperInfo)

    def names(self) -> set[tuple[str, str]]:
        """Every ``(kind, name)`` this plugin registers, commands included."""
        return {(kind, item.name) for kind, item in self.items} | {(COMMAND_KIND, n) for n, _ in self.commands}


def _env_names(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def warn(message: str) -> None:
    """Print one warning line on stderr."""
    print(f"warning: {message}", file=sys.stderr)


def command_name(entry: Any) -> str:
    """The name a typer ``CommandInfo`` or ``TyperInfo`` is typed as on the command line."""
    name = getattr(entry, "name", None)
    if not name and getattr(entry, "typer_instance", None) is not None:
        name = entry.typer_instance.info.name
    if not name and getattr(entry, "callback", None) is not None:
        name = entry.callback.__name__
    return (name or "?").replace("_", "-")


def _error_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class PluginHost:
    """The pluggy manager plus what each plugin contributed."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("llmctl")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.warnings: list[str] = []
        self._staged: dict[str, Staged] = {}
        self._registry: Registry | None = None
        self._commands: list[tuple[PluginInfo, str, Any]] = []
        self._command_clashes: dict[str, str] = {}
        self._clash_disabled: set[str] = set()

    def _warn(self, message: str) -> None:
        """Print ``message`` once per host, however often the registry is rebuilt."""
        if message not in self.warnings:
            self.warnings.append(message)
            warn(message)

    def load_entry_points(self) -> None:
        """Import every plugin module of the entry-point group, skipping (with a warning) any that fail."""
        allowed = _env_names("LLMCTL_LOAD_PLUGINS")
        disabled = _env_names("LLMCTL_DISABLE_PLUGINS") or set()
        by_name: dict[str, list[tuple[metadata.EntryPoint, str, str]]] = {}
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = entry_point.dist
            dist_name = dist.metadata["Name"] if dist is not None else "?"
            version = dist.version if dist is not None else "?"
            found = by_name.setdefault(entry_point.name, [])
            if all(existing[1] != dist_name for existing in found):  # one distribution seen twice on sys.path
                found.append((entry_point, dist_name, version))
        self._warn_unknown_switch_names(by_name, allowed, disabled)
        for name, found in by_name.items():
            found = [f for f in found if not {name, f[1]} & disabled]
            if not found:
                continue
            builtins = [f for f in found if f[1] == BUILTIN_DISTRIBUTION]
            entry_point, dist_name, version = (builtins or found)[0]
            builtin = bool(builtins)
            if not builtin and allowed is not None and not {name, dist_name} & allowed:
                continue
            info = PluginInfo(name, entry_point.value, dist_name, version, builtin)
            self.infos[name] = info
            if len(found) > 1:
                self._name_declared_twice(info, [f[1] for f in found])
                if not builtin:
                    continue
            try:
                module = entry_point.load()
                self.pm.register(module, name=name)
            except Exception as exc:  # a broken plugin must never take the CLI down
                info.error = _error_line(exc)
                self._warn(f"plugin {name!r} ({dist_name} {version}) failed to load and was skipped: {info.error}")

    def _warn_unknown_switch_names(self, by_name: dict[str, list[tuple[Any, str, str]]], allowed: set[str] | None,
                                   disabled: set[str]) -> None:
        """One warning line for each switch name that matches no installed plugin or distribution."""
        known = set(by_name) | {dist for found in by_name.values() for _, dist, _ in found}
        for variable, names in zip(SWITCHES, (allowed or set(), disabled), strict=True):
            for name in sorted(names - known):
                close = suggest(name, sorted(known), limit=1)
                hint = f"; did you mean {close[0]!r}?" if close else " (see `llmctl plugins`)"
                self._warn(f"{variable} names {name!r}, which matches no installed plugin{hint}")

    def _name_declared_twice(self, info: PluginInfo, distributions: list[str]) -> None:
        """Two distributions declare the same entry-point name: the builtin wins, else neither loads."""
        others = ", ".join(repr(d) for d in distributions if d != info.distribution)
        if info.builtin:
            self._warn(f"plugin name {info.name!r} is declared by both {info.distribution!r} and {others}; "
                       f"using {info.distribution!r} (builtins take precedence)")
            return
        choices = " or ".join(f"LLMCTL_DISABLE_PLUGINS={d}" for d in distributions)
        info.error = (f"plugin name {info.name!r} is declared by distributions "
                      f"{', '.join(repr(d) for d in distributions)}; neither loads until you choose one: {choices}")
        self._warn(info.error)

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
        self._staged.pop(name, None)
        self._registry = None

    def _stage(self, info: PluginInfo) -> None:
        """Run every hook ``info``'s plugin implements into a :class:`Staged`; on any failure keep nothing."""
        staged = Staged()

        def register_for(kind: str) -> Callable[[Any], None]:
            def register(item: Any) -> None:
                expected = KIND_TYPES[kind]
                if not isinstance(item, expected):
                    raise TypeError(f"register_{kind}s expects {expected.__name__}, got {type(item).__name__}")
                staged.items.append((kind, item))

            return register

        where = "registering"
        try:
            for kind, hook_name in [*KIND_HOOKS.items(), (COMMAND_KIND, "register_commands")]:
                for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                    if impl.plugin_name != info.name:
                        continue
                    where = f"in {hook_name}"
                    if kind == COMMAND_KIND:
                        staged.commands += _staged_commands(impl.function, impl.argnames)
                    else:
                        impl.function(**({"register": register_for(kind)} if "register" in impl.argnames else {}))
            where = "registering"
            seen = [(kind, item.name) for kind, item in staged.items] + [(COMMAND_KIND, n) for n, _ in staged.commands]
            twice = sorted({key for key in seen if seen.count(key) > 1})
            if twice:
                raise ValueError(f"it registers {twice[0][0]} {twice[0][1]!r} twice")
        except Exception as exc:  # the plugin contributes nothing; the CLI carries on
            info.error = _error_line(exc)
            self._warn(f"plugin {info.name!r} ({info.distribution}) failed {where} and was skipped "
                       f"(nothing it registered is used): {info.error}")
            return
        self._staged[info.name] = staged

    def _ordered(self) -> list[PluginInfo]:
        """Builtins in entry-point order, then third-party plugins by name (the documented commit order)."""
        infos = list(self.infos.values())
        return [i for i in infos if i.builtin] + sorted((i for i in infos if not i.builtin), key=lambda i: i.name)

    def _disable_clashing(self, working: list[PluginInfo]) -> dict[tuple[str, str], str]:
        """Find names two third-party plugins both register; disable every plugin involved. Returns the messages."""
        builtin_names = set().union(*(self._staged[i.name].names() for i in working if i.builtin))
        owners: dict[tuple[str, str], list[PluginInfo]] = {}
        for info in working:
            if not info.builtin:
                for key in self._staged[info.name].names() - builtin_names:
                    owners.setdefault(key, []).append(info)
        messages: dict[tuple[str, str], str] = {}
        for (kind, name), infos in sorted(owners.items()):
            if len(infos) < 2:
                continue
            plugins = " and ".join(f"{i.name!r} ({i.distribution})" for i in infos)
            choices = " or ".join(f"LLMCTL_DISABLE_PLUGINS={i.name}" for i in infos)
            message = (f"plugins {plugins} both register {kind} {name!r}; neither plugin is used until you choose "
                       f"one: {choices}")
            messages[(kind, name)] = message
            self._warn(message)
            for info in infos:
                info.error = info.error or message
                self._clash_disabled.add(info.name)
        return messages

    def _commit(self) -> Registry:
        """Build the registry (and the command list) from every plugin whose import and hooks all succeeded."""
        for info in self._ordered():
            if info.error is None and info.name not in self._staged:
                self._stage(info)
        for info in self.infos.values():
            info.registers = {}
            if info.name in self._clash_disabled:  # clashes are worked out afresh for the current set of plugins
                info.error = None
        self._clash_disabled = set()
        working = [i for i in self._ordered() if i.error is None and i.name in self._staged]
        clashes = self._disable_clashing(working)
        registry = Registry()
        self._commands = []
        self._command_clashes = {name: message for (kind, name), message in clashes.items() if kind == COMMAND_KIND}
        for (kind, name), message in clashes.items():
            if kind != COMMAND_KIND:
                registry.add_clash(kind, name, message)
        taken: set[str] = set()
        for info in working:
            if info.error is not None:  # disabled by a clash
                continue
            staged = self._staged[info.name]
            for kind, item in staged.items:
                registry.add(kind, item, info.name, builtin=info.builtin)
                if registry.get(kind, item.name) is item:
                    info.registers.setdefault(kind, []).append(item.name)
            for name, entry in staged.commands:
                if name in taken:
                    self._warn(f"command {name!r} is added by a builtin plugin and by {info.name!r}; using the "
                               f"builtin's (builtins take precedence), ignoring {info.name!r}'s")
                    continue
                taken.add(name)
                self._commands.append((info, name, entry))
                info.registers.setdefault(COMMAND_KIND, []).append(name)
        for notice in registry.notices:
            self._warn(notice)
        return registry

    @property
    def registry(self) -> Registry:
        """The registry built from every working plugin's register hooks (built once)."""
        if self._registry is None:
            self._registry = self._commit()
        return self._registry

    def add_commands(self, app: Any) -> None:
        """Add every working plugin's commands to the typer ``app``; a name the app already has is kept."""
        self.registry  # noqa: B018 - stages and commits every plugin once
        existing = {command_name(entry) for entry in [*app.registered_commands, *app.registered_groups]}
        for info, name, entry in self._commands:
            if name in existing:
                self._warn(f"command {name!r} of plugin {info.name!r} is ignored: llmctl's own {name!r} takes "
                           "precedence")
                continue
            if hasattr(entry, "typer_instance"):
                app.registered_groups.append(entry)
            else:
                app.registered_commands.append(entry)
        for name, message in self._command_clashes.items():
            if name not in existing:
                app.command(name, help=f"Unavailable: {message}", add_help_option=False,
                            context_settings={"ignore_unknown_options": True, "allow_extra_args": True})(
                    _clash_command(message))


def _staged_commands(function: Callable[..., Any], argnames: tuple[str, ...]) -> list[tuple[str, Any]]:
    """Call a ``register_commands`` implementation on a scratch typer app; what it added, by command name."""
    import typer

    scratch = typer.Typer()
    function(**({"app": scratch} if "app" in argnames else {}))
    return [(command_name(entry), entry) for entry in [*scratch.registered_commands, *scratch.registered_groups]]


def _clash_command(message: str) -> Callable[[], None]:
    """A command standing in for a clashing plugin command: running it says which plugins clash and how to choose."""

    def clashing_command() -> None:
        raise PluginClashError(message)

    return clashing_command


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
