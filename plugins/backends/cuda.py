"""The CUDA backend: NVIDIA GPUs through a CUDA build of torch."""

from __future__ import annotations

from llmctl.descriptors import Backend, BackendStatus
from llmctl.hookspecs import hookimpl


def probe_cuda() -> BackendStatus:
    """Report whether a CUDA device is usable and, if not, why."""
    import torch

    if getattr(torch.version, "hip", None):
        return BackendStatus(False, "this torch build targets ROCm, not CUDA (see the rocm backend)", "cuda", "")
    if torch.version.cuda is None:
        return BackendStatus(False, f"torch {torch.__version__} was built without CUDA (CPU-only wheel)", "cuda",
                             "")
    if not torch.cuda.is_available():
        return BackendStatus(False, f"torch has CUDA {torch.version.cuda} but no NVIDIA GPU or driver was found",
                             "cuda", "")
    count = torch.cuda.device_count()
    names = tuple(f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(count))
    memory = torch.cuda.get_device_properties(0).total_memory
    dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return BackendStatus(True, f"{count} GPU(s), CUDA {torch.version.cuda}", "cuda", dtype, names, memory)


@hookimpl
def register_backends(register):
    """Register the CUDA backend."""
    register(Backend(name="cuda", description="NVIDIA GPUs (CUDA)", priority=30, probe=probe_cuda))
