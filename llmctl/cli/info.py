"""``llmctl info MODEL``: architecture, parameter count and memory needs, from the config alone."""

from __future__ import annotations

import typer
from rich.table import Table

from llmctl.cli.output import complete_model, console, err_console, print_json

SUMMARY_FIELDS = (
    ("model_type", "model type"),
    ("num_hidden_layers", "layers"),
    ("hidden_size", "hidden size"),
    ("intermediate_size", "MLP size"),
    ("num_attention_heads", "attention heads"),
    ("num_key_value_heads", "KV heads"),
    ("head_dim", "head dim"),
    ("vocab_size", "vocabulary"),
    ("max_position_embeddings", "context length"),
    ("sliding_window", "sliding window"),
    ("num_local_experts", "experts per layer"),
    ("num_experts_per_tok", "experts per token"),
    ("tie_word_embeddings", "tied embeddings"),
)


def info(
    model: str = typer.Argument(..., help="Model name, alias or hub id.", autocompletion=complete_model),
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Show a model's architecture, parameter count and memory table without downloading weights."""
    from llmctl.models.memory import human_bytes, human_count, memory_table
    from llmctl.models.params import count_parameters
    from llmctl.plugins import get_registry

    family, spec = get_registry().resolve_model(model)
    config = dict(spec.config)
    with err_console.status("Computing parameters from the config (no weights)…"):
        params = count_parameters(config, family)
    rows = memory_table(params, config)
    if json_output:
        print_json({
            "model": spec.name, "family": family.name, "hub_id": spec.hub_id, "config": config,
            "parameters": {"total": params.total, "active": params.active, "embedding": params.embedding},
            "memory": [{"label": r.label, "bytes": r.bytes, "note": r.note} for r in rows],
        })
        return
    summary = Table(title=f"{spec.name}  ({spec.hub_id}, family {family.name})", show_header=False)
    summary.add_column("field", style="bold")
    summary.add_column("value")
    for key, label in SUMMARY_FIELDS:
        if config.get(key) is not None:
            summary.add_row(label, str(config[key]))
    summary.add_row("parameters", f"{human_count(params.total)} ({params.total:,})")
    if params.active != params.total:
        summary.add_row("active per token", f"{human_count(params.active)} ({params.active:,})")
    if family.trust_remote_code:
        summary.add_row("note", "custom modelling code: loading needs --trust-remote-code")
    console.print(summary)
    memory = Table(title="Estimated memory")
    for column in ("use", "memory", "assumes"):
        memory.add_column(column)
    for row in rows:
        memory.add_row(row.label, human_bytes(row.bytes), row.note)
    console.print(memory)


def register(app: typer.Typer) -> None:
    """Add the ``info`` verb."""
    app.command("info")(info)
