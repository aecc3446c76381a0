"""Turn a user's model reference into a local artefact: the one function every verb calls.

A reference is tried, in order, as: a store artefact name → each source plugin in ascending priority: a local model
folder (``config.json`` plus weights, used in place) and a ``.gguf`` file first, then bundled packages, the hub
last. A registry model name or alias is tried by its canonical name and hub id as well. So a folder names a model for
every verb (``info``, ``chat``, ``finetune``, ``quantize``, ``convert``) whatever its architecture, and a folder on
disk wins over a registry model of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.descriptors import Source
from llmctl.errors import LlmctlError, UnknownNameError
from llmctl.store import Artifact, find_artifact, list_artifacts


@dataclass
class SourceMatch:
    """Where a reference will come from: an artefact already in the store, or a source and the name it is given."""

    ref: str
    artifact: Artifact | None = None
    source: Source | None = None
    source_ref: str = ""


def stored_name(ref: str, revision: str | None = None) -> str:
    """The store name an artefact fetched for ``ref`` at ``revision`` gets (``org/name@rev`` for a pinned one)."""
    return f"{ref}@{revision}" if revision else ref


def _candidates(ref: str) -> list[str]:
    """The names to try, the user's own first; a registry name or alias adds its canonical name and hub id."""
    from llmctl.plugins import get_registry

    names = [ref]
    found = get_registry().find_model(ref)
    if found is not None:
        _, spec = found
        if ref.lower() != spec.hub_id.lower():  # an explicit hub id means the hub, not a bundled stand-in
            names += [spec.name, spec.hub_id]
    return list(dict.fromkeys(names))


def _looks_like_path(ref: str) -> bool:
    return ref.startswith((".", "/", "~")) or ref.endswith(".gguf") or Path(ref).exists()


def names_local_path(ref: str) -> bool:
    """Whether ``ref`` is a file or folder on disk (which then names the model, before any registry name)."""
    try:
        return Path(ref).expanduser().exists()
    except (OSError, RuntimeError):  # an unusable path (too long, unknown user in ~name) is not a local path
        return False


def _path_problem(ref: str) -> str:
    """Why the path ``ref`` names no model: missing, a folder without ``config.json``, or an unreadable file."""
    path = Path(ref).expanduser()
    if not path.exists():
        return f"{ref}: no such file or folder (not a model directory nor a .gguf file)"
    if path.is_dir():
        if (path / "config.json").is_file():
            return (f"{ref}: a model directory, but no source plugin reads directories here (is 'source-local' in "
                    "LLMCTL_DISABLE_PLUGINS?)")
        return f"{ref}: not a model directory (no config.json) nor a .gguf file"
    return f"{ref}: not a model directory nor a .gguf file"


def find_model_source(ref: str, *, revision: str | None = None) -> SourceMatch:
    """Decide where ``ref`` comes from without fetching anything (no network, no conversion)."""
    from llmctl.plugins import get_registry

    candidates = _candidates(ref)
    for name in candidates:
        artifact = find_artifact(stored_name(name, revision))
        if artifact is not None:
            return SourceMatch(ref, artifact=artifact)
    sources = sorted(get_registry().all("source"), key=lambda s: s.priority)
    for name in candidates:
        for source in sources:
            if source.matches(name):
                return SourceMatch(ref, source=source, source_ref=name)
    if _looks_like_path(ref):
        raise LlmctlError(_path_problem(ref))
    registry = get_registry()
    pool = registry.model_names() + [a.name for a in list_artifacts()]
    for source in sources:
        pool += list(source.models)
    from llmctl.registry import suggest

    raise UnknownNameError("model", ref, suggest(ref, pool))


def fetch_options(*, revision: str | None = None, allow_pickle: bool = False, trust_remote_code: bool = False,
                  include: list[str] | None = None) -> dict[str, Any]:
    """The keyword options every ``Source.fetch`` / ``Source.plan`` receives."""
    return {"revision": revision, "allow_pickle": allow_pickle, "trust_remote_code": trust_remote_code,
            "include": list(include or [])}


def resolve_model(ref: str, *, download: bool = True, allow_pickle: bool = False, trust_remote_code: bool = False,
                  revision: str | None = None, include: list[str] | None = None) -> Artifact:
    """The local artefact for ``ref``, fetching (or converting) it once when needed.

    ``download=False`` never touches the network: a model that only a network source could provide raises an
    error telling the user to run ``llmctl download``. The returned artefact has format ``safetensors`` (``path``
    is a Hugging Face model directory) or ``gguf`` (``artifact.file()`` is the ``.gguf``).
    """
    match = find_model_source(ref, revision=revision)
    if match.artifact is not None:
        return match.artifact
    source = match.source
    assert source is not None
    if source.network and not download:
        raise LlmctlError(f"model {ref!r} is not in the store; fetch it first with `llmctl download {ref}`")
    if source.fetch is None:
        raise LlmctlError(f"source {source.name!r} ({source.plugin}) cannot fetch {match.source_ref!r}")
    options = fetch_options(revision=revision, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code,
                            include=include)
    return source.fetch(match.source_ref, **options)
