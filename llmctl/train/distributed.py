"""Process-group helpers: who we are in a torchrun job, reductions, and wrapping the model for DDP or FSDP2."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class DistInfo:
    """This process's place in the job (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """True inside a multi-process job."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True for the process that writes files and prints."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every process."""
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def sum(self, value: float) -> float:
        """The sum of ``value`` over every process."""
        if not self.active:
            return float(value)
        import torch
        import torch.distributed as dist

        tensor = torch.tensor([float(value)], dtype=torch.float64)
        dist.all_reduce(tensor)
        return float(tensor.item())


def init_from_environment(device: str = "cpu") -> DistInfo:
    """Join the torchrun job described by the environment (gloo on CPU, nccl on CUDA), or a one-process DistInfo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        import torch

        torch.cuda.set_device(local)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local)


def shutdown() -> None:
    """Leave the process group, if any."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: Any, info: DistInfo, strategy: str, device: str) -> Any:
    """The model wrapped for the job: DDP, or FSDP2 (``fully_shard`` on every decoder layer, then the root)."""
    if not info.active:
        return model
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for module in model.modules():
            if type(module).__name__.endswith("DecoderLayer"):
                fully_shard(module)
        fully_shard(model)
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [info.local_rank] if device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=ids)


@contextlib.contextmanager
def unsharded(model: Any) -> Iterator[Any]:
    """``model`` with its FSDP2 root parameters gathered, for calls that bypass its forward (``generate``).

    ``generate`` on a peft model runs the base model's forward, not the sharded root's, so the root's own
    parameters (embeddings, final norm, heads) would stay sharded. Anything not sharded passes through.
    FSDP2 makes the first module whose forward runs the root of the job; a generate that came first would make a
    decoder layer the root, so the real root is initialised here before anything runs.
    """
    if not hasattr(model, "unshard"):
        yield model
        return
    state = model._get_fsdp_state() if hasattr(model, "_get_fsdp_state") else None
    if state is not None and hasattr(state, "_lazy_init"):
        state._lazy_init()
    model.unshard()
    try:
        yield model
    finally:
        model.reshard()


def unwrap(model: Any) -> Any:
    """The model inside a DDP wrapper (FSDP2 keeps the module itself)."""
    return getattr(model, "module", model) if type(model).__name__ == "DistributedDataParallel" else model
