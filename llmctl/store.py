"""The local store under ``LLMCTL_HOME``: one directory per artefact, each described by ``llmctl.json``.

Writes happen in a hidden temporary directory that is renamed into place only when complete, so an interrupted
download, conversion or quantization never leaves an artefact that looks finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmctl import __version__
from llmctl.errors import DataError, LlmctlError, ResourceError

META_FILE = "llmctl.json"
TEMP_PREFIX = ".tmp-"
MAX_NAME_LENGTH = 100
NAME_RULE = "use letters, digits and . _ + - (starting with a letter or digit, at most 100 characters)"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_LOCKS: dict[str, Any] = {}


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


def _name_problem(name: str, derived: bool) -> str | None:
    """Why ``name`` cannot name an artefact or run, or None when it can."""
    if not name.strip():
        return "it is empty"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it contains control characters"
    if "\\" in name or name.startswith(("/", "~")):
        return "it contains a path separator"
    if derived:  # made from a model reference (``org/model@rev``, a folder's name): refuse only path escapes
        if any(part in ("", ".", "..") for part in name.split("/")):
            return "it is a path, not a name"
        return None
    if "/" in name:
        return "it contains a path separator"
    if ".." in name:
        return "it contains '..'"
    if name.startswith("."):
        return "it starts with a dot"
    if len(name) > MAX_NAME_LENGTH:
        return f"it is longer than {MAX_NAME_LENGTH} characters"
    if not _NAME.fullmatch(name):
        return "it contains characters other than letters, digits and . _ + -" if name[0].isalnum() else \
            "it does not start with a letter or digit"
    return None


def validate_name(name: str, kind: str = "artefact", *, derived: bool = False) -> str:
    """``name`` unchanged when it may name an artefact or run in the store; otherwise a one-line DataError.

    A name the user chose (``--name``) is strict: letters, digits and ``. _ + -``, no path separator, no ``..``, no
    leading dot. ``derived=True`` is for names llmctl makes from a model reference (a hub id ``org/model@rev`` is
    stored as ``org--model@rev``): those only may not be paths (absolute, ``..``, empty parts, backslashes).
    """
    problem = _name_problem(name, derived)
    if problem is not None:
        raise DataError(f"invalid {kind} name {name!r}: {problem}; {NAME_RULE}")
    return name


def run_path(run_id: str) -> Path:
    """The folder of run ``run_id`` under the runs folder, after checking the id cannot point outside it."""
    if "/" in run_id:
        validate_name(run_id, "run")  # raises: a run id is one folder
    return runs_dir() / validate_name(run_id, "run", derived=True)


def _lock_path(root: Path, name: str) -> Path:
    """The lock file guarding ``name`` under ``root``: kept beside the store, never inside ``models/`` or ``runs/``."""
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    return home() / "locks" / f"{safe_name(name)}.{digest}.lock"


@contextmanager
def name_lock(root: Path, name: str, kind: str = "artefact") -> Iterator[None]:
    """Hold the store's lock on ``name`` under ``root``: one writer per name at a time, across processes.

    A second writer waits (saying so once on stderr) until the first is done; it then sees what the first wrote,
    exactly as if the two had run one after the other. The lock is released when the process dies (SIGKILL too).
    Re-entrant within a process: a source may hold it around "already there? else create it" while
    :func:`create_artifact` takes it again.
    """
    from filelock import FileLock, Timeout

    path = _lock_path(root, name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = _LOCKS.setdefault(str(path), FileLock(str(path)))  # one object per file: re-entrant in a process
        try:
            lock.acquire(timeout=0)
        except Timeout:
            print(f"waiting for another llmctl process writing the {kind} {name!r}…", file=sys.stderr, flush=True)
            lock.acquire()
    except OSError as error:
        raise ResourceError(f"cannot lock {name!r} in the store ({path.parent}): {error.strerror or error}") from None
    try:
        yield
    finally:
        lock.release()


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
        """The GGUF file of this artefact (what llama.cpp runs), or None when it has none.

        A ``gguf`` artefact's main file; for another format, the GGUF its ``llmctl.json`` records as ``gguf_file``
        (the original kept beside a converted model): relative to the artefact folder, or an absolute path as
        recorded. Whether the file is still there is for the caller to check.
        """
        if self.format == "gguf":
            return self.file()
        recorded = self.meta.get("gguf_file")
        if not recorded:
            return None
        path = Path(str(recorded))
        return path if path.is_absolute() else self.path / path


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
    ``name`` must not be a path (see :func:`validate_name`). Two writers of one name are serialised: the store's
    lock on the name is held from the existence check to the rename, so the second writer waits, then fails as it
    would have after the first (or, with ``overwrite``, replaces the first's artefact).
    """
    validate_name(name, "artefact", derived=True)
    root = root or models_dir()
    root.mkdir(parents=True, exist_ok=True)
    with name_lock(root, name):
        yield from _write_artifact(name, root, overwrite, kind=kind, format=format, origin=origin, parents=parents,
                                   dtype=dtype, extra=extra)


def _write_artifact(name: str, root: Path, overwrite: bool, *, kind: str, format: str, origin: str,
                    parents: list[str] | tuple[str, ...], dtype: str | None,
                    extra: dict[str, Any] | None) -> Iterator[Path]:
    """The body of :func:`create_artifact`, run under the name's lock."""
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
