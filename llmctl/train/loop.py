"""The training loop every method runs: accumulation, autocast, clipping, schedule, validation, checkpoints, resume.

The loss of a step is the sum of the method's per-unit losses over every micro-batch and process divided by the
number of units in the whole step, so accumulation and ``--nproc`` give the gradients of one large batch.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmctl.errors import LlmctlError
from llmctl.train.checkpoint import list_checkpoints, load_checkpoint, restore_rng, rng_state, save_checkpoint
from llmctl.train.distributed import DistInfo, unwrap
from llmctl.train.method import MethodContext, TrainingMethod
from llmctl.train.metrics import MetricsLog
from llmctl.train.order import micro_batch_items
from llmctl.train.progress import TrainingProgress
from llmctl.train.schedule import make_scheduler

StepCallback = Callable[[int, dict[str, Any]], None]


class TrainingInterrupted(LlmctlError):
    """Ctrl-C during training: a checkpoint was saved; the message says how to resume."""

    exit_code = 130


@dataclass
class LoopResult:
    """What a finished (or interrupted) loop reports."""

    steps: int
    final_loss: float | None = None
    final_val_loss: float | None = None
    first_val_loss: float | None = None
    tokens: int = 0
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        """Average training throughput of this process's run (all processes' tokens)."""
        return self.tokens / self.seconds if self.seconds else 0.0


def autocast_context(precision: str, device: str) -> Any:
    """``torch.autocast`` for bf16/fp16, or a no-op for fp32."""
    import torch

    if precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=device.split(":")[0], dtype=dtype)
    return contextlib.nullcontext()


def evaluate(model: Any, method: TrainingMethod, items: Sequence[Any], settings: Any, context: MethodContext,
             dist: DistInfo, precision: str) -> float | None:
    """Mean validation loss over ``items`` (each process scores its share)."""
    import torch

    if not items:
        return None
    model.eval()
    total = count = 0.0
    mine = list(items)[dist.rank::dist.world_size]
    size = settings["batch_size"]
    with torch.no_grad(), autocast_context(precision, context.device):
        for start in range(0, len(mine), size):
            batch = _to_device(method.collate(mine[start:start + size], context), context.device)
            out = method.loss(model, batch, settings)
            total += float(out.total)
            count += out.count
    model.train()
    total, count = dist.sum(total), dist.sum(count)
    return total / count if count else None


def _mean_metrics(per_batch: list[dict[str, float]]) -> dict[str, float]:
    """Each method metric averaged over a step's micro-batches."""
    keys = dict.fromkeys(k for metrics in per_batch for k in metrics)
    return {k: sum(m[k] for m in per_batch if k in m) / sum(1 for m in per_batch if k in m) for k in keys}


def _to_device(batch: dict[str, Any], device: str) -> dict[str, Any]:
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}


@dataclass
class LoopState:
    """The loop's moving parts, for checkpointing."""

    model: Any
    method: TrainingMethod
    optimizer: Any
    scheduler: Any
    run: Path
    dist: DistInfo
    keep: int

    def save(self, step: int, rng: dict[str, Any] | None = None) -> Path:
        """Checkpoint ``step`` (completed steps), with ``rng``: the RNG state at the start of the next step."""
        tensors = self.method.trainable_state(unwrap(self.model))
        barrier = self.dist.barrier if self.dist.active else None
        return save_checkpoint(self.run, step, tensors, self.optimizer, self.scheduler, self.dist.rank,
                               self.dist.world_size, barrier, self.keep, rng=rng, method_state=self.method.state())


def train_loop(model: Any, method: TrainingMethod, data: Any, settings: Any, context: MethodContext, run: Path,
               *, dist: DistInfo | None = None, precision: str = "fp32", resume: bool = False,
               callbacks: Sequence[StepCallback] = (), description: str = "training",
               resume_hint: str = "") -> LoopResult:
    """Train ``model`` (already prepared and wrapped) for ``settings['max_steps']`` optimizer steps."""
    import torch

    dist = dist or DistInfo()
    inner = unwrap(model)
    optimizer = method.make_optimizer(inner, settings)
    scheduler = make_scheduler(optimizer, settings)
    state = LoopState(model, method, optimizer, scheduler, run, dist, settings["keep_checkpoints"])
    metrics = MetricsLog(run / "metrics.jsonl")
    start = 0
    found = list_checkpoints(run) if resume else []
    if resume and not found:  # killed before its first checkpoint: the same seeds replay the same run from step 0
        if dist.is_main:
            print(f"{run.name}: no checkpoint yet; starting again from step 0", file=sys.stderr)
            metrics.truncate_after(-1)
    elif resume:
        saved = load_checkpoint(found[-1], dist.rank)
        method.load_trainable_state(inner, saved["tensors"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        start = int(saved["step"])
        if saved["method"] is not None:
            method.load_state(saved["method"])
        if saved["rng"] is not None:
            restore_rng(saved["rng"])
        if dist.is_main:
            metrics.truncate_after(start)
    dist.barrier()
    max_steps, accum = (settings["max_steps"] if method.trains(settings) else 0), settings["grad_accum"]
    trainable = [p for _, p in method.trainable_parameters(inner)]
    result = LoopResult(steps=start, history=metrics.read() if dist.is_main else [])
    vals = [r["val_loss"] for r in result.history if "val_loss" in r]
    result.first_val_loss = vals[0] if vals else None
    if start == 0 and data.validation and settings["eval_every"]:
        result.first_val_loss = evaluate(model, method, data.validation, settings, context, dist, precision)
        if dist.is_main:
            record = {"step": 0, "val_loss": result.first_val_loss}
            metrics.write(record)
            result.history.append(record)
    model.train()
    began = time.perf_counter()
    step = start
    step_rng = rng_state()
    with TrainingProgress(max_steps, start, description, enabled=dist.is_main) as progress:
        try:
            while step < max_steps:
                step_rng = rng_state()
                tick = time.perf_counter()
                indices = micro_batch_items(step, len(data.train), settings["batch_size"], accum, dist.world_size,
                                            dist.rank, settings["seed"])
                batches = [_to_device(method.collate([data.train[i] for i in idx], context), context.device)
                           for idx in indices]
                units = dist.sum(sum(method.count(b) for b in batches))
                scale = dist.world_size / max(units, 1.0)
                step_total, step_tokens = 0.0, 0
                step_metrics: list[dict[str, float]] = []
                for number, batch in enumerate(batches):
                    sync = (model.no_sync() if dist.active and hasattr(model, "no_sync") and number < len(batches) - 1
                            else contextlib.nullcontext())
                    with sync:
                        with autocast_context(precision, context.device):
                            out = method.loss(model, batch, settings)
                        (out.total * scale).backward()
                    step_total += float(out.total.detach())
                    step_tokens += out.tokens if out.tokens is not None else int(batch["input_ids"].numel())
                    step_metrics.append(out.metrics)
                grad_norm = (float(torch.nn.utils.clip_grad_norm_(trainable, settings["max_grad_norm"]))
                             if settings["max_grad_norm"] > 0 else None)
                lr = optimizer.param_groups[0]["lr"]
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                method.after_step(inner, step)
                loss = dist.sum(step_total) / max(units, 1.0)
                tokens = int(dist.sum(step_tokens))
                elapsed = time.perf_counter() - tick
                result.tokens += tokens
                record = {"step": step, "loss": loss, "lr": lr, "grad_norm": grad_norm, "tokens": tokens,
                          "tokens_per_s": tokens / elapsed if elapsed else 0.0, "seconds": elapsed}
                for key, value in _mean_metrics(step_metrics).items():  # the method's own (rewards, KL …)
                    record.setdefault(key, value)
                every = settings["eval_every"]
                if data.validation and (step == max_steps or every and step % every == 0):
                    record["val_loss"] = evaluate(model, method, data.validation, settings, context, dist, precision)
                if dist.is_main:
                    metrics.write(record)
                result.history.append(record)
                result.steps, result.final_loss = step, loss
                if record.get("val_loss") is not None:
                    result.final_val_loss = record["val_loss"]
                progress.update(step, loss, record.get("val_loss"), record["tokens_per_s"])
                for callback in callbacks:
                    callback(step, record)
                if settings["save_every"] and step % settings["save_every"] == 0 and step < max_steps:
                    state.save(step, rng_state())
        except KeyboardInterrupt:
            if dist.active:
                raise
            path = state.save(step, step_rng)
            raise TrainingInterrupted(f"interrupted: checkpoint of step {step} saved in {path}; resume with "
                                      f"`{resume_hint or 'llmctl finetune --resume ' + str(run)}`") from None
    result.seconds = time.perf_counter() - began
    return result
