"""A model directory on disk (``config.json`` plus weights), used in place: nothing is copied into the store."""

from __future__ import annotations

from pathlib import Path

from llmctl.descriptors import Source
from llmctl.errors import LlmctlError
from llmctl.hookspecs import hookimpl
from llmctl.store import Artifact, read_meta

PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt")


def matches_local_dir(ref: str) -> bool:
    """True for an existing directory holding a ``config.json``."""
    path = Path(ref).expanduser()
    return path.is_dir() and (path / "config.json").is_file()


def fetch_local_dir(ref: str, allow_pickle: bool = False, **options: object) -> Artifact:
    """The directory as an artefact; pickle-only weights are refused unless ``allow_pickle``."""
    path = Path(ref).expanduser().resolve()
    has_safetensors = any(path.glob("*.safetensors"))
    has_pickle = any(p for pattern in PICKLE_PATTERNS for p in path.glob(pattern))
    if not has_safetensors and has_pickle and not allow_pickle:
        raise LlmctlError(f"{path} holds only pickle weights (.bin/.pt), which can run code when loaded; "
                          "pass --allow-pickle if you trust it")
    meta = read_meta(path) or {}
    meta.setdefault("kind", "model")
    meta.setdefault("format", "safetensors" if has_safetensors or not has_pickle else "pytorch")
    meta.setdefault("origin", f"local:{path}")
    return Artifact(meta.get("name", path.name), path, meta)


@hookimpl
def register_sources(register):
    """Register the local-directory source."""
    register(Source(
        name="local",
        description="a Hugging Face model directory on disk (config.json + weights), used in place",
        priority=0,
        matches=matches_local_dir,
        fetch=fetch_local_dir,
        plan=lambda ref, **options: [(p.name, p.stat().st_size) for p in sorted(Path(ref).expanduser().iterdir())
                                     if p.is_file()],
    ))
