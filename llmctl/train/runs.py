"""Run folders under ``runs/``: ids, the ``llmctl.json`` record, the saved request, and listing."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.errors import UnknownNameError
from llmctl.store import META_FILE, runs_dir, safe_name

REQUEST_FILE = "request.json"


def new_run_id(model: str, method: str, now: float | None = None) -> str:
    """``20261123-101500-smollm2-135m-dora``: time, model and method; unique under the runs folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    model_part = safe_name(Path(model).name if os.sep in model or model.startswith(".") else model)
    base = f"{stamp}-{model_part}-{safe_name(method)}"
    candidate, number = base, 1
    while (runs_dir() / candidate).exists():
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def find_run_dir(ref: str) -> Path:
    """A run folder from a path or an id under the runs folder (``did you mean`` on a miss)."""
    from llmctl.registry import suggest

    path = Path(ref).expanduser()
    if path.is_dir() and (path / REQUEST_FILE).is_file():
        return path
    candidate = runs_dir() / ref
    if candidate.is_dir():
        return candidate
    known = [r.path.name for r in list_runs()]
    raise UnknownNameError("run", ref, suggest(ref, known))


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to a temporary file, then rename it into place."""
    temporary = path.with_name(f".tmp-{path.name}")
    temporary.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(temporary, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's object, or None when missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass
class RunInfo:
    """One run as listed by ``llmctl runs``."""

    path: Path
    meta: dict[str, Any]

    @property
    def id(self) -> str:
        """The run's id (its folder name)."""
        return self.path.name


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """Every run folder with a readable ``llmctl.json``, oldest first."""
    root = root or runs_dir()
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        meta = read_json(child / META_FILE) if child.is_dir() and not child.name.startswith(".") else None
        if meta is not None and meta.get("kind") in ("run", "adapter", "model"):
            found.append(RunInfo(child, meta))
    return found
