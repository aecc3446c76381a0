"""``llmctl finetune`` as a function: resolve model, method, settings and data; train; write the run folder.

A run folder ``runs/<id>/`` holds ``request.json`` (what was asked, for ``--resume``), ``llmctl.json`` (what came
out), ``metrics.jsonl``, ``loss.png``, ``checkpoints/`` and the result: a peft adapter (loadable with
``PeftModel.from_pretrained(runs/<id>)``) or, for full fine-tuning, a whole model.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmctl.config import Settings, parse_overrides, read_recipe, resolve_settings
from llmctl.errors import LlmctlError, ResourceError
from llmctl.store import META_FILE, name_lock, run_path, runs_dir, validate_name
from llmctl.train.distributed import DistInfo, unwrap, wrap_model
from llmctl.train.loop import LoopResult, StepCallback, train_loop
from llmctl.train.method import MethodContext, TrainingMethod
from llmctl.train.runs import REQUEST_FILE, find_run_dir, new_run_id, read_json, write_json_atomic


@dataclass
class FinetuneRequest:
    """Everything ``llmctl finetune`` was asked (JSON-serialisable, so torchrun workers and ``--resume`` reuse it)."""

    model: str
    method: str = "lora"
    data: str | None = None
    data_format: str = "auto"
    recipe: str | None = None
    overrides: list[str] = field(default_factory=list)
    name: str | None = None
    trust_remote_code: bool = False
    allow_pickle: bool = False

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FinetuneRequest:
        """The request saved in a run's ``request.json``."""
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


@dataclass
class Plan:
    """A request resolved against the registry: method, family, settings, model folder."""

    request: FinetuneRequest
    method_descriptor: Any
    method: TrainingMethod
    family: Any
    settings: Settings
    model_dir: Path | None
    model_name: str
    model_config: dict[str, Any]


def _family_for(ref: str, config: dict[str, Any]) -> Any:
    from llmctl.plugins import get_registry

    registry = get_registry()
    found = registry.find_model(ref)
    if found is not None:
        return found[0]
    return registry.family_for_model_type(str(config.get("model_type", "")))


def _method(name: str) -> tuple[Any, TrainingMethod]:
    from llmctl.plugins import get_registry

    descriptor = get_registry().get("method", name)
    if descriptor.available is not None:
        usable, reason = descriptor.available()
        if not usable:
            raise ResourceError(f"method {descriptor.name!r} cannot run here: {reason}")
    if descriptor.build is None:
        raise LlmctlError(f"method {descriptor.name!r} ({descriptor.plugin}) cannot train (no build function)")
    return descriptor, descriptor.build()


def plan_request(request: FinetuneRequest, *, need_weights: bool = True) -> Plan:
    """Resolve model, method and settings (the model is fetched only when ``need_weights``)."""
    from llmctl.models.resolve import resolve_model

    if request.name is not None:
        validate_name(request.name, "run")  # a run id is one folder under the runs folder; --dry-run says so too
    descriptor, method = _method(request.method)
    model_dir: Path | None = None
    model_name = request.model
    config: dict[str, Any] = {}
    try:
        artefact = resolve_model(request.model, download=need_weights, allow_pickle=request.allow_pickle,
                                 trust_remote_code=request.trust_remote_code)
        if artefact.format != "safetensors" or not (artefact.path / "config.json").is_file():
            raise LlmctlError(f"{request.model}: fine-tuning needs a Hugging Face model folder, got a "
                              f"{artefact.format} artefact; convert it first with `llmctl convert`")
        model_dir, model_name = artefact.path, artefact.name
        from llmctl.models.loading import read_model_config

        config = read_model_config(model_dir, request.trust_remote_code)
    except LlmctlError:
        if need_weights:
            raise
        from llmctl.plugins import get_registry

        found = get_registry().find_model(request.model)
        if found is None:
            raise
        config = dict(found[1].config)
    family = _family_for(request.model, config)
    recipe = read_recipe(request.recipe) if request.recipe else []
    settings = resolve_settings(descriptor.name, descriptor.defaults, getattr(family, "name", None),
                                getattr(family, "finetune_defaults", None), recipe, parse_overrides(request.overrides))
    return Plan(request, descriptor, method, family, settings, model_dir, model_name, config)


def precision_for(settings: Settings, status: Any) -> str:
    """The autocast precision: ``auto`` means what the backend measured best for training (its
    ``train_precision``; fp32 on CPUs), else bf16 where the backend runs bfloat16, else fp32."""
    if settings["precision"] != "auto":
        return settings["precision"]
    if getattr(status, "train_precision", ""):
        return status.train_precision
    return "bf16" if status.dtype == "bfloat16" else "fp32"


def method_context(plan: Plan, device: str, tokenizer: Any, run: Path | None = None) -> MethodContext:
    """The one :class:`MethodContext` of a run: every hook of the method gets this object."""
    request = plan.request
    return MethodContext(family=plan.family, tokenizer=tokenizer, model_dir=plan.model_dir, device=device,
                         data_path=Path(request.data) if request.data else None, data_format=request.data_format,
                         trust_remote_code=request.trust_remote_code, run_dir=run)


def load_and_prepare(plan: Plan, context: MethodContext) -> Any:
    """The base model made ready by the method (seeded, so resumes rebuild it identically)."""
    import torch

    from llmctl.models.loading import load_causal_lm

    settings = plan.settings
    torch.manual_seed(settings["seed"])
    model = plan.method.load_model(settings, context)
    if model is None:
        model = load_causal_lm(plan.model_dir, dtype=settings["dtype"], device=context.device,
                               trust_remote_code=context.trust_remote_code)
    if settings["gradient_checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return plan.method.prepare(model, settings, context)


@dataclass
class FinetuneOutcome:
    """A finished run: its folder, the loop's report and the settings it used."""

    run: Path
    result: LoopResult
    settings: Settings
    trainable: int = 0
    model: Any = None


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def _publish_result(plan: Plan, model: Any, tokenizer: Any, run: Path, dist: DistInfo) -> None:
    """Save the method's result into a temporary folder, then move each file into the run folder."""
    from llmctl.train.method import full_tensor

    inner = unwrap(model)
    sharded = dist.active and plan.settings["strategy"] == "fsdp"
    state = {k: full_tensor(v) for k, v in inner.state_dict().items()} if sharded else None  # every rank gathers
    if not dist.is_main:
        return
    temporary = run / ".tmp-result"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    plan.method.save(inner, tokenizer, temporary, state_dict=state)
    files = sorted(temporary.iterdir(), key=lambda p: p.name in ("adapter_config.json", "config.json"))
    for item in files:  # the config last: a half-moved result never looks loadable
        os.replace(item, run / item.name)
    temporary.rmdir()


def _record(plan: Plan, run: Path, status: str, result: LoopResult | None, trainable: int, total: int,
            started: str) -> dict[str, Any]:
    request = plan.request
    base = str(Path(request.model).resolve()) if Path(request.model).exists() else request.model
    output = plan.method.output_kind(plan.settings)
    return {
        "name": run.name, "kind": output, "format": {"adapter": "peft", "model": "safetensors"}.get(output, "data"),
        "status": status,
        "base_model": base, "base_artifact": plan.model_name, "parents": [plan.model_name],
        "family": getattr(plan.family, "name", None), "method": plan.method_descriptor.name,
        "data": str(Path(request.data).resolve()) if request.data else None, "data_format": request.data_format,
        "settings": plan.settings.values, "max_steps": plan.settings["max_steps"],
        "steps": result.steps if result else 0, "final_loss": result.final_loss if result else None,
        "first_val_loss": result.first_val_loss if result else None,
        "final_val_loss": result.final_val_loss if result else None,
        "trainable_parameters": trainable, "total_parameters": total,
        "tokens_per_s": round(result.tokens_per_s, 1) if result and result.seconds else None,
        "created": started, "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def run_finetune(request: FinetuneRequest, *, resume: str | None = None, dist: DistInfo | None = None,
                 callbacks: Sequence[StepCallback] = ()) -> FinetuneOutcome:
    """Train as ``request`` asks (or continue the run ``resume``) and write the run folder."""
    from llmctl.backends import select_backend
    from llmctl.plugins import get_registry
    from llmctl.train.metrics import MetricsLog, plot_losses

    dist = dist or DistInfo()
    if resume:
        run = find_run_dir(resume)
        saved = read_json(run / REQUEST_FILE)
        if saved is None:
            raise LlmctlError(f"{run}: no {REQUEST_FILE}; is this a finetune run?")
        request = FinetuneRequest.from_dict(saved)
    plan = plan_request(request)
    if not request.data:
        raise LlmctlError("finetune needs --data FILE (JSONL, JSON or CSV)")
    backend, status = select_backend(get_registry(), plan.settings["backend"])
    device = status.device if not (dist.active and status.device == "cuda") else f"cuda:{dist.local_rank}"
    from llmctl.models.loading import load_tokenizer

    tokenizer = load_tokenizer(plan.model_dir, trust_remote_code=request.trust_remote_code)
    context = method_context(plan, device, tokenizer)
    if plan.method.needs_model_for_data:  # e.g. rejection sampling generates its data with the model
        model = load_and_prepare(plan, context)
        data = plan.method.load_data(plan.settings, context)
    else:
        data = plan.method.load_data(plan.settings, context)  # data errors surface before the model loads
        model = load_and_prepare(plan, context)
    if not resume:
        run_id = request.name or new_run_id(request.model, plan.method_descriptor.name)
        request.name = run_id
        run = run_path(run_id)
        if dist.is_main:
            with name_lock(runs_dir(), run_id, "run"):  # a second finetune of this name waits, then is refused
                if run.exists() and (run / REQUEST_FILE).exists():
                    raise LlmctlError(f"run {run_id!r} already exists at {run}; resume it with --resume {run_id}")
                run.mkdir(parents=True, exist_ok=True)
                write_json_atomic(run / REQUEST_FILE, asdict(request))
        dist.barrier()
    context.run_dir = run
    trainable, total = count_parameters(model)
    meta = read_json(run / META_FILE) or {}
    started = meta.get("created") or time.strftime("%Y-%m-%dT%H:%M:%S")
    if dist.is_main:
        write_json_atomic(run / META_FILE, _record(plan, run, "running", None, trainable, total, started))
    wrapped = wrap_model(model, dist, plan.settings["strategy"], device)
    precision = context.precision = precision_for(plan.settings, status)
    hint = f"llmctl finetune --resume {run}"
    status_word = "interrupted"
    result: LoopResult | None = None
    try:
        result = train_loop(wrapped, plan.method, data, plan.settings, context, run, dist=dist, precision=precision,
                            resume=bool(resume), callbacks=callbacks, resume_hint=hint,
                            description=f"{plan.method_descriptor.name} {Path(request.model).name}")
        _publish_result(plan, wrapped, tokenizer, run, dist)
        status_word = "finished"
    finally:
        if dist.is_main:
            records = MetricsLog(run / "metrics.jsonl").read()
            if records:
                plot_losses(records, run / "loss.png", f"{plan.method_descriptor.name} · {run.name}")
            if result is None:
                result = _result_from(records)
            write_json_atomic(run / META_FILE, _record(plan, run, status_word, result, trainable, total, started))
        dist.barrier()
    return FinetuneOutcome(run, result, plan.settings, trainable, unwrap(wrapped))


def _result_from(records: list[dict[str, Any]]) -> LoopResult:
    """A loop report rebuilt from ``metrics.jsonl`` (after an interrupt)."""
    steps = [r for r in records if "loss" in r]
    vals = [r["val_loss"] for r in records if r.get("val_loss") is not None]
    return LoopResult(steps=steps[-1]["step"] if steps else 0, final_loss=steps[-1]["loss"] if steps else None,
                      first_val_loss=vals[0] if vals else None, final_val_loss=vals[-1] if vals else None)
