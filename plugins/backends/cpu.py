"""The CPU backend: always usable; bf16 autocast works on any x86-64 or ARM CPU torch supports."""

from __future__ import annotations

import os

from llmctl.descriptors import Backend, BackendStatus
from llmctl.hookspecs import hookimpl


def probe_cpu() -> BackendStatus:
    """Report the CPU: core count and memory."""
    import torch

    cores = os.cpu_count() or 1
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
    return BackendStatus(
        usable=True,
        reason=f"{cores} cores, {torch.get_num_threads()} torch threads",
        device="cpu",
        dtype="bfloat16",
        devices=("cpu",),
        memory_bytes=memory,
    )


@hookimpl
def register_backends(register):
    """Register the CPU backend."""
    register(Backend(name="cpu", description="CPU (any machine)", priority=0, probe=probe_cpu))
