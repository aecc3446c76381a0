"""The CPU backend: always usable. It prefers bf16 only where the CPU computes it natively (AVX512-BF16/AMX): elsewhere
bf16 autocast is emulated and a LoRA step on SmolLM2-135M measured 37 s against 1.1 s in fp32 (AMD EPYC, AVX2)."""

from __future__ import annotations

import os

from llmctl.descriptors import Backend, BackendStatus
from llmctl.hookspecs import hookimpl


def probe_cpu() -> BackendStatus:
    """Report the CPU: core count and memory."""
    import torch

    cores = os.cpu_count() or 1
    native_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
    return BackendStatus(
        usable=True,
        reason=f"{cores} cores, {torch.get_num_threads()} torch threads, {torch.backends.cpu.get_cpu_capability()}"
               + ("" if native_bf16 else " (no native bf16: float32)"),
        device="cpu",
        dtype="bfloat16" if native_bf16 else "float32",
        devices=("cpu",),
        memory_bytes=memory,
    )


@hookimpl
def register_backends(register):
    """Register the CPU backend."""
    register(Backend(name="cpu", description="CPU (any machine)", priority=0, probe=probe_cpu))
