"""Choosing a hardware backend: a named one, or ``auto`` for the best usable one."""

from __future__ import annotations

from llmctl.descriptors import Backend, BackendStatus
from llmctl.errors import ResourceError
from llmctl.registry import Registry


def probe_all(registry: Registry) -> list[tuple[Backend, BackendStatus]]:
    """Every registered backend with what its probe found, most preferred first."""
    found = []
    for backend in sorted(registry.all("backend"), key=lambda b: -b.priority):
        try:
            status = backend.probe()
        except Exception as exc:  # a probe must never take the CLI down
            status = BackendStatus(False, f"probe failed: {type(exc).__name__}: {exc}", "", "")
        found.append((backend, status))
    return found


def select_backend(registry: Registry, name: str = "auto") -> tuple[Backend, BackendStatus]:
    """The backend called ``name`` if usable, or for ``auto`` the usable one with the highest priority."""
    if name != "auto":
        backend = registry.get("backend", name)
        status = backend.probe()
        if not status.usable:
            raise ResourceError(f"backend {backend.name!r} is not usable here: {status.reason}")
        return backend, status
    for backend, status in probe_all(registry):
        if status.usable:
            return backend, status
    raise ResourceError("no usable backend found (see `llmctl env`)")
