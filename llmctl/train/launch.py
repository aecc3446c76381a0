"""``--nproc N``: relaunch the run under torchrun, one worker process per device (or CPU share)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from llmctl.train.finetune import FinetuneRequest


def torchrun_command(request_file: Path, nproc: int, resume: str | None = None, nnodes: int = 1,
                     node_rank: int = 0, master_addr: str = "127.0.0.1", master_port: int = 29511) -> list[str]:
    """The ``torch.distributed.run`` command line for this request."""
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--nnodes={nnodes}",
               f"--node_rank={node_rank}", f"--master_addr={master_addr}", f"--master_port={master_port}",
               "-m", "llmctl.train.worker", str(request_file)]
    return command + ([resume] if resume else [])


def launch(request: FinetuneRequest, nproc: int, resume: str | None = None, **torchrun: object) -> int:
    """Run ``request`` in ``nproc`` processes and return torchrun's exit code."""
    with tempfile.TemporaryDirectory(prefix="llmctl-launch-") as folder:
        request_file = Path(folder) / "request.json"
        request_file.write_text(json.dumps(asdict(request)))
        return subprocess.call(torchrun_command(request_file, nproc, resume, **torchrun))  # type: ignore[arg-type]
