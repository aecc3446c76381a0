"""Run folders under ``runs/``: ids, the ``llmctl.json`` record, the saved request, and listing.

A record that says ``running`` names the process writing it (pid, host and the process's start time), so a run
whose process was killed (SIGKILL, a power cut) is listed as ``interrupted`` rather than ``running`` forever.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.errors import DataError, UnknownNameError
from llmctl.store import META_FILE, runs_dir, safe_name

REQUEST_FILE = "request.json"


def runs_root() -> Path:
    """The runs folder (``$LLMCTL_RUNS_DIR`` or ``./runs``); something there that is not a folder is refused."""
    root = runs_dir()
    if root.exists() and not root.is_dir():
        setting = "LLMCTL_RUNS_DIR" if os.environ.get("LLMCTL_RUNS_DIR") else "the runs folder"
        raise DataError(f"{root}: {setting} must be a directory, but this is a file")
    return root


def new_run_id(model: str, method: str, now: float | None = None) -> str:
    """``20261123-101500-smollm2-135m-dora``: time, model and method; unique under the runs folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    model_part = safe_name(Path(model).name if os.sep in model or model.startswith(".") else model)
    base = f"{stamp}-{model_part}-{safe_name(method)}"
    candidate, number = base, 1
    while (runs_root() / candidate).exists():
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def find_run_dir(ref: str) -> Path:
    """A run folder from a path or an id under the runs folder (``did you mean`` on a miss)."""
    from llmctl.registry import suggest

    path = Path(ref).expanduser()
    if path.is_dir() and (path / REQUEST_FILE).is_file():
        return path
    candidate = runs_root() / ref
    if candidate.is_dir():
        return candidate
    known = [r.path.name for r in list_runs()]
    raise UnknownNameError("run", ref, suggest(ref, known))


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to a temporary file, then rename it into place.

    A run record (``llmctl.json``) whose status is ``running`` is stamped with this process as its ``writer``.
    """
    if path.name == META_FILE and data.get("status") == "running":
        data = {**data, "writer": writer_stamp()}
    temporary = path.with_name(f".tmp-{path.name}")
    temporary.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(temporary, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's object, or None when missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``), "zombie" for a dead child, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # after "pid (command) ": state is field 3, start time field 22
    return "zombie" if fields[0] in ("Z", "X") else fields[19]


def writer_stamp() -> dict[str, Any]:
    """This process as the writer of a running record: pid, host and start time (to see through pid reuse)."""
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "started": _process_start(pid)}


def writer_alive(writer: dict[str, Any]) -> bool | None:
    """Whether the process that stamped ``writer`` still runs; None when that cannot be told (another host)."""
    pid = writer.get("pid")
    if not isinstance(pid, int) or writer.get("host") != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    started = _process_start(pid)
    return started != "zombie" and (writer.get("started") is None or started in (None, writer["started"]))


@dataclass
class RunInfo:
    """One run as listed by ``llmctl runs``."""

    path: Path
    meta: dict[str, Any]

    @property
    def id(self) -> str:
        """The run's id (its folder name)."""
        return self.path.name

    @property
    def status(self) -> str:
        """The recorded status, except that a ``running`` run whose process is gone is ``interrupted``."""
        status = str(self.meta.get("status", "-"))
        if status == "running" and writer_alive(self.meta.get("writer") or {}) is False:
            return "interrupted"
        return status

    @property
    def resume_command(self) -> str | None:
        """The command that continues an interrupted run (None for any other status)."""
        if self.status != "interrupted" or not (self.path / REQUEST_FILE).is_file():
            return None
        ref = self.id if self.path.resolve() == (runs_dir() / self.id).resolve() else str(self.path)
        return f"llmctl finetune --resume {ref}"


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """Every run folder with a readable ``llmctl.json``, oldest first (a runs path that is a file is refused)."""
    root = root or runs_root()
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        meta = read_json(child / META_FILE) if child.is_dir() and not child.name.startswith(".") else None
        if meta is not None and meta.get("kind") in ("run", "adapter", "model", "data"):
            found.append(RunInfo(child, meta))
    return found
