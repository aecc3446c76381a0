"""``finetune --dry-run``: resolved settings, trainable parameters, steps and a memory estimate, without training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmctl.train.finetune import FinetuneRequest, count_parameters, method_context, plan_request


@dataclass
class DryRunReport:
    """What a run would do."""

    settings: Any
    method: str
    family: str | None
    trainable: int
    total: int
    examples: int | None
    global_batch: int
    epochs: float | None
    memory_bytes: int
    memory_note: str


def dry_run(request: FinetuneRequest, nproc: int = 1) -> DryRunReport:
    """Check the settings and ``nproc``, build the model on the meta device (no weights), let the method prepare it,
    and count."""
    import torch
    from transformers import AutoModelForCausalLM

    from llmctl.data.dataset import load_examples
    from llmctl.data.records import read_records
    from llmctl.models.memory import BYTES_PER_PARAMETER, activation_bytes
    from llmctl.models.params import build_config
    from llmctl.train.launch import check_nproc

    plan = plan_request(request, need_weights=False)
    settings = plan.settings
    check_nproc(nproc, settings["backend"])
    config = build_config(plan.model_config)
    context = method_context(plan, "meta", None)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=request.trust_remote_code)
        model = plan.method.prepare(model, settings, context)
    trainable, total = count_parameters(model)
    examples = None
    if request.data:  # the method's own check, else SFT data as examples and other kinds counted as records
        examples = plan.method.check_data(settings, context)
        if examples is None:
            examples = (len(load_examples(request.data, request.data_format)[0])
                        if plan.method_descriptor.kind == "sft" else len(read_records(request.data)))
    global_batch = settings["batch_size"] * settings["grad_accum"] * nproc
    epochs = settings["max_steps"] * global_batch / examples if examples else None
    weight_bytes = (total - trainable) * BYTES_PER_PARAMETER[settings["dtype"]]
    optimizer_bytes = trainable * 16  # fp32 weight, gradient and two Adam moments
    batch_tokens = settings["batch_size"] * settings["max_length"]
    activations = activation_bytes(plan.model_config, batch_tokens, settings["gradient_checkpointing"])
    memory = int((weight_bytes + optimizer_bytes + activations) * 1.1)
    note = (f"{settings['dtype']} frozen weights + 16 B per trainable parameter + activations for "
            f"{batch_tokens} tokens per micro-batch, per process")
    return DryRunReport(settings, plan.method_descriptor.name, getattr(plan.family, "name", None), trainable, total,
                        examples, global_batch, epochs, memory, note)
