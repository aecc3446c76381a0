"""The MPS backend: Apple-silicon GPUs through Metal Performance Shaders."""

from __future__ import annotations

import platform
import sys

from llmctl.descriptors import Backend, BackendStatus
from llmctl.hookspecs import hookimpl


def probe_mps() -> BackendStatus:
    """Report whether MPS is usable and, if not, why."""
    import torch

    if sys.platform != "darwin":
        return BackendStatus(False, f"MPS needs macOS on Apple silicon; this is {platform.system()} "
                                    f"{platform.machine()}", "mps", "")
    if not torch.backends.mps.is_built():
        return BackendStatus(False, f"torch {torch.__version__} was built without MPS support", "mps", "")
    if not torch.backends.mps.is_available():
        return BackendStatus(False, "MPS is built but unavailable (needs macOS 12.3+ on Apple silicon)", "mps", "")
    return BackendStatus(True, "Apple-silicon GPU", "mps", "float16", ("mps",))


@hookimpl
def register_backends(register):
    """Register the MPS backend."""
    register(Backend(name="mps", description="Apple-silicon GPUs (Metal)", priority=20, probe=probe_mps))
