"""A single ``.gguf`` file on disk, used in place (the llama.cpp engine runs it; ``convert --to hf`` unpacks it)."""

from __future__ import annotations

from pathlib import Path

from llmctl.descriptors import Source
from llmctl.hookspecs import hookimpl
from llmctl.store import Artifact


def matches_gguf_file(ref: str) -> bool:
    """True for an existing file whose name ends in ``.gguf``."""
    path = Path(ref).expanduser()
    return path.suffix.lower() == ".gguf" and path.is_file()


def fetch_gguf_file(ref: str, **options: object) -> Artifact:
    """The file as a ``gguf`` artefact: ``artifact.file()`` is the file itself."""
    path = Path(ref).expanduser().resolve()
    meta = {"kind": "model", "format": "gguf", "file": path.name, "origin": f"local:{path}",
            "size_bytes": path.stat().st_size}
    return Artifact(path.stem, path.parent, meta)


@hookimpl
def register_sources(register):
    """Register the GGUF-file source."""
    register(Source(
        name="gguf-file",
        description="a single .gguf file on disk, used in place",
        priority=1,
        matches=matches_gguf_file,
        fetch=fetch_gguf_file,
        plan=lambda ref, **options: [(Path(ref).name, Path(ref).expanduser().stat().st_size)],
    ))
