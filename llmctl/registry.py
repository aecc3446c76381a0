"""The registry of everything plugins registered, with "did you mean" look-up."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from llmctl.descriptors import KIND_TYPES, Family, ModelSpec
from llmctl.errors import PluginClashError, UnknownNameError


def suggest(name: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """Close matches for a mistyped name, best first."""
    pool = list(dict.fromkeys(candidates))
    lowered = {c.lower(): c for c in pool}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=limit, cutoff=0.6)
    return [lowered[h] for h in hits]


class Registry:
    """Descriptors by kind and name; a later registration never silently replaces an earlier one.

    The plugin host (:mod:`llmctl.plugins`) decides what reaches :meth:`add`: a clash between two third-party plugins
    never does; the name is recorded with :meth:`add_clash` instead, and looking it up raises that clash.
    """

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Any]] = {kind: {} for kind in KIND_TYPES}
        self._clashes: dict[str, dict[str, str]] = {kind: {} for kind in KIND_TYPES}
        self.notices: list[str] = []

    def add_clash(self, kind: str, name: str, message: str) -> None:
        """Record that ``name`` is claimed by several third-party plugins: looking it up raises ``message``."""
        self._clashes[kind][name] = message

    def clashes(self, kind: str) -> dict[str, str]:
        """The clashing names of ``kind`` and the one-line message for each."""
        return dict(self._clashes[kind])

    def add(self, kind: str, item: Any, plugin: str, builtin: bool = False) -> None:
        """Record ``item`` under ``kind``; on a name clash the builtin (or first) registration wins, with a notice."""
        expected = KIND_TYPES[kind]
        if not isinstance(item, expected):
            raise TypeError(f"register_{kind}s expects {expected.__name__}, got {type(item).__name__}")
        item.plugin = plugin
        item._builtin = builtin  # type: ignore[attr-defined]
        existing = self._items[kind].get(item.name)
        if existing is not None:
            keep_new = builtin and not getattr(existing, "_builtin", False)
            winner, loser = (plugin, existing.plugin) if keep_new else (existing.plugin, plugin)
            why = "builtins take precedence" if keep_new or getattr(existing, "_builtin", False) else "first wins"
            self.notices.append(
                f"{kind} {item.name!r} is registered by both {existing.plugin!r} and {plugin!r}; "
                f"using {winner!r} ({why}), ignoring {loser!r}"
            )
            if not keep_new:
                return
        self._items[kind][item.name] = item

    def all(self, kind: str) -> list[Any]:
        """Every descriptor of ``kind`` in registration order."""
        return list(self._items[kind].values())

    def names(self, kind: str) -> list[str]:
        """Registered names of ``kind``."""
        return list(self._items[kind])

    def get(self, kind: str, name: str) -> Any:
        """The descriptor called ``name``, or an :class:`UnknownNameError` suggesting close names."""
        items = self._items[kind]
        if name in items:
            return items[name]
        for key, value in items.items():
            if key.lower() == name.lower():
                return value
        for key, message in self._clashes[kind].items():
            if key.lower() == name.lower():
                raise PluginClashError(message)
        raise UnknownNameError(kind, name, suggest(name, items))

    def family(self, name: str) -> Family:
        """The family called ``name``."""
        return self.get("family", name)

    def family_for_model_type(self, model_type: str) -> Family | None:
        """The family that handles a transformers ``model_type``, if any."""
        for family in self.all("family"):
            if model_type in family.model_types:
                return family
        return None

    def model_names(self) -> list[str]:
        """Every known model name and alias (not hub ids), for listings and completion."""
        names: list[str] = []
        for family in self.all("family"):
            for spec in family.models:
                names.extend((spec.name, *spec.aliases))
        return names

    def find_model(self, name: str) -> tuple[Family, ModelSpec] | None:
        """The family and model that answer to ``name`` (name, alias or hub id), or None."""
        wanted = name.lower()
        for family in self.all("family"):
            for spec in family.models:
                if wanted in (n.lower() for n in spec.names()):
                    return family, spec
        return None

    def resolve_model(self, name: str) -> tuple[Family, ModelSpec]:
        """Like :meth:`find_model` but raises with "did you mean" suggestions."""
        found = self.find_model(name)
        if found is None:
            pool = self.model_names() + [s.hub_id for f in self.all("family") for s in f.models]
            raise UnknownNameError("model", name, suggest(name, pool))
        return found
