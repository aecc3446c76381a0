"""Errors a user can act on: each becomes one line on stderr and an exit code, never a traceback."""

from __future__ import annotations


class LlmctlError(Exception):
    """Base class: ``str(error)`` is the one line shown to the user."""

    exit_code = 1


class UnknownNameError(LlmctlError):
    """A model, method, backend or other plugin name that nothing registered."""

    exit_code = 2

    def __init__(self, kind: str, name: str, suggestions: list[str] | None = None) -> None:
        self.kind = kind
        self.name = name
        self.suggestions = suggestions or []
        hint = f"; did you mean {', '.join(repr(s) for s in self.suggestions)}?" if self.suggestions else ""
        more = "" if self.suggestions else f" (see `llmctl {'models' if kind == 'model' else 'plugins'}`)"
        super().__init__(f"unknown {kind} {name!r}{hint}{more}")


class PluginClashError(LlmctlError):
    """Two third-party plugins register the same name; the message names both and how to choose one."""

    exit_code = 2


class DataError(LlmctlError):
    """Malformed user data; the message names file, line and field."""

    exit_code = 3


class ResourceError(LlmctlError):
    """Not enough memory or disk, or a backend that is not usable here."""

    exit_code = 4


class NetworkError(LlmctlError):
    """The model hub cannot be reached, or refused the request."""

    exit_code = 5


class MissingExtraError(LlmctlError):
    """An optional dependency (extra) is not installed."""

    exit_code = 6

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(f"{purpose} needs {package}: pip install 'llmctl[{extra}]'")


class ReportedError(LlmctlError):
    """An error another llmctl process already put in one line (a torchrun worker): shown as is, with its code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
