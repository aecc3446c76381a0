"""The local store under ``LLMCTL_HOME``: one directory per artefact, each described by ``llmctl.json``.

Writes happen in a hidden temporary directory that is renamed into place only when complete, so an interrupted
download, conversion or quantization never leaves an artefact that looks finished.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmctl import __version__
from llmctl.errors import LlmctlError

META_FILE = "llmctl.json"
TEMP_PREFIX = ".tmp-"


def home() -> Path:
    """The store root: ``$LLMCTL_HOME`` or the user's cache directory."""
    configured = os.environ.get("LLMCTL_HOME")
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("llmctl"))


def models_dir() -> Path:
    """Where model artefacts (downloads, conversions, merges, quantizations) live."""
    return home() / "models"


def runs_dir() -> Path:
    """Where fine-tuning runs are written: ``$LLMCTL_RUNS_DIR`` or ``./runs``."""
    return Path(os.environ.get("LLMCTL_RUNS_DIR", "runs"))


def safe_name(name: str) -> str:
    """A directory name for an artefact name (``org/model`` becomes ``org--model``)."""
    return re.sub(r"[^A-Za-z0-9._+-]", "-", name.replace("/", "--")).strip(".-") or "artefact"


@dataclass
class Artifact:
    """A finished artefact: its directory and its ``llmctl.json`` record."""

    name: str
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``model``, ``adapter``, ``reward-model`` …"""
        return self.meta.get("kind", "model")

    @property
    def format(self) -> str:
        """``safetensors``, ``gguf``, ``peft`` …"""
        return self.meta.get("format", "safetensors")

    @property
    def parents(self) -> list[str]:
        """Names of the artefacts this one was made from."""
        return list(self.meta.get("parents", []))

    def file(self) -> Path:
        """The main file of a single-file artefact (a GGUF), else the directory."""
        main = self.meta.get("file")
        return self.path / main if main else self.path

    @property
    def origin(self) -> str:
        """Where the artefact came from (``hub:org/name@rev``, ``bundled:package``, ``local:/path`` …)."""
        return str(self.meta.get("origin", ""))

    @property
    def size_bytes(self) -> int:
        """Bytes on disk as recorded when the artefact was written (measured when not recorded)."""
        recorded = self.meta.get("size_bytes")
        return int(recorded) if recorded is not None else directory_size(self.path)

    def gguf_path(self) -> Path | None:
        """The GGUF file of this artefact: the artefact itself, or the original kept beside a converted model."""
        if self.format == "gguf":
            return self.file()
        kept = self.meta.get("gguf_file")
        return self.path / kept if kept else None


def read_meta(path: Path) -> dict[str, Any] | None:
    """The ``llmctl.json`` of an artefact directory, or None when it is missing or unreadable."""
    try:
        return json.loads((path / META_FILE).read_text())
    except (OSError, ValueError):
        return None


def directory_size(path: Path) -> int:
    """Total bytes of the files below ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def ensure_free_space(needed: int, where: Path | None = None) -> int:
    """Free bytes on the disk holding ``where`` (default: the store); raises ResourceError below ``needed``."""
    from llmctl.errors import ResourceError

    probe = where or models_dir()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed > free:
        raise ResourceError(f"not enough disk space at {probe}: need {needed / 2**30:.2f} GiB, "
                            f"{free / 2**30:.2f} GiB free")
    return free


def list_artifacts(root: Path | None = None) -> list[Artifact]:
    """Every complete artefact in the store (temporary and unreadable directories are skipped)."""
    root = root or models_dir()
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if child.name.startswith(".") or not child.is_dir():
            continue
        meta = read_meta(child)
        if meta is not None and meta.get("complete", True):
            found.append(Artifact(meta.get("name", child.name), child, meta))
    return found


def find_artifact(name: str, root: Path | None = None) -> Artifact | None:
    """The complete artefact called ``name`` (or stored under its safe directory name), if any."""
    root = root or models_dir()
    for artifact in list_artifacts(root):
        if name in (artifact.name, artifact.path.name):
            return artifact
    return None


def _sweep_stale_temporaries(root: Path) -> None:
    """Remove temporary directories left by processes that no longer exist (killed mid-write)."""
    for child in root.glob(f"{TEMP_PREFIX}*"):
        pid = child.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(child, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def create_artifact(
    name: str,
    *,
    kind: str,
    format: str,
    origin: str,
    parents: list[str] | tuple[str, ...] = (),
    dtype: str | None = None,
    extra: dict[str, Any] | None = None,
    root: Path | None = None,
    overwrite: bool = False,
) -> Iterator[Path]:
    """Yield a temporary directory to fill; on success write ``llmctl.json`` and rename it to its final place.

    On any exception (including KeyboardInterrupt) the temporary directory is removed and nothing is published.
    """
    root = root or models_dir()
    root.mkdir(parents=True, exist_ok=True)
    _sweep_stale_temporaries(root)
    final = root / safe_name(name)
    if final.exists() and not overwrite:
        raise LlmctlError(f"artefact {name!r} already exists at {final} (remove it with `llmctl rm {name}`)")
    temporary = root / f"{TEMP_PREFIX}{safe_name(name)}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    try:
        yield temporary
        meta: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "format": format,
            "dtype": dtype,
            "origin": origin,
            "parents": list(parents),
            "llmctl_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        meta.update(extra or {})
        meta["size_bytes"] = directory_size(temporary)
        (temporary / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def remove_artifact(name: str, root: Path | None = None) -> Path:
    """Delete the artefact called ``name``; returns the directory that was removed."""
    from llmctl.registry import suggest

    artifact = find_artifact(name, root)
    if artifact is None:
        names = [a.name for a in list_artifacts(root)]
        hint = suggest(name, names)
        more = f"; did you mean {', '.join(repr(h) for h in hint)}?" if hint else ""
        raise LlmctlError(f"no artefact {name!r} in the store{more}")
    shutil.rmtree(artifact.path)
    return artifact.path
