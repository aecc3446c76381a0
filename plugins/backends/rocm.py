"""The ROCm backend: AMD GPUs through a ROCm (HIP) build of torch, which exposes them as ``cuda`` devices."""

from __future__ import annotations

from llmctl.descriptors import Backend, BackendStatus
from llmctl.hookspecs import hookimpl


def probe_rocm() -> BackendStatus:
    """Report whether a ROCm device is usable and, if not, why."""
    import torch

    hip = getattr(torch.version, "hip", None)
    if not hip:
        return BackendStatus(False, f"torch {torch.__version__} was built without ROCm/HIP support", "cuda", "")
    if not torch.cuda.is_available():
        return BackendStatus(False, f"torch has ROCm {hip} but no AMD GPU was found", "cuda", "")
    count = torch.cuda.device_count()
    names = tuple(f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(count))
    memory = torch.cuda.get_device_properties(0).total_memory
    return BackendStatus(True, f"{count} GPU(s), ROCm {hip}", "cuda", "bfloat16", names, memory)


@hookimpl
def register_backends(register):
    """Register the ROCm backend."""
    register(Backend(name="rocm", description="AMD GPUs (ROCm)", priority=30, probe=probe_rocm))
