"""``--nproc N``: relaunch the run under torchrun, one worker process per device (or CPU share)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from llmctl.errors import DataError
from llmctl.train.finetune import FinetuneRequest


def check_topology(nproc: int, nnodes: int = 1, node_rank: int = 0, master_port: int = 29511) -> None:
    """Refuse process counts, node ranks and ports that cannot work, before anything loads."""
    if nproc < 1:
        raise DataError(f"--nproc must be at least 1 (processes on this machine), got {nproc}")
    if nnodes < 1:
        raise DataError(f"--nnodes must be at least 1, got {nnodes}")
    if not 0 <= node_rank < nnodes:
        raise DataError(f"--node-rank must be in 0..{nnodes - 1} for --nnodes {nnodes}, got {node_rank}")
    if not 1 <= master_port <= 65535:
        raise DataError(f"--master-port must be a TCP port in 1..65535, got {master_port}")


def check_nproc(nproc: int, backend: str = "auto") -> None:
    """Refuse more processes than this machine can give one device each: a GPU each, or a CPU core each."""
    check_topology(nproc)
    if nproc == 1:
        return
    from llmctl.backends import select_backend
    from llmctl.plugins import get_registry

    _, status = select_backend(get_registry(), backend)
    if status.device == "cpu":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        if nproc > cores:
            raise DataError(f"--nproc {nproc} is more than the {cores} CPU core(s) this process may use; on CPU "
                            f"each worker needs a core of its own (use --nproc {cores} or fewer)")
    elif nproc > len(status.devices):
        raise DataError(f"--nproc {nproc} is more than the {len(status.devices)} {status.device} device(s) here; "
                        f"each worker drives one device (use --nproc {len(status.devices)} or fewer)")


def torchrun_command(request_file: Path, nproc: int, resume: str | None = None, nnodes: int = 1,
                     node_rank: int = 0, master_addr: str = "127.0.0.1", master_port: int = 29511) -> list[str]:
    """The torchrun command line for this request, started through the worker so that a failing rank's one-line
    error reaches the user instead of torchrun's multi-line report."""
    command = [sys.executable, "-m", "llmctl.train.worker", "--torchrun", f"--nproc_per_node={nproc}",
               f"--nnodes={nnodes}", f"--node_rank={node_rank}", f"--master_addr={master_addr}",
               f"--master_port={master_port}", "-m", "llmctl.train.worker", str(request_file)]
    return command + ([resume] if resume else [])


def launch(request: FinetuneRequest, nproc: int, resume: str | None = None, **torchrun: object) -> int:
    """Run ``request`` in ``nproc`` processes and return torchrun's exit code."""
    with tempfile.TemporaryDirectory(prefix="llmctl-launch-") as folder:
        request_file = Path(folder) / "request.json"
        request_file.write_text(json.dumps(asdict(request)))
        code = subprocess.call(torchrun_command(request_file, nproc, resume, **torchrun))  # type: ignore[arg-type]
        if code:
            from llmctl.train.worker import raise_worker_error

            raise_worker_error(folder)
        return code
