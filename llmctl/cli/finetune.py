"""``llmctl finetune MODEL --method lora|lora+|dora|full --data FILE [key=value ...]``: train on the shared loop."""

from __future__ import annotations

from pathlib import Path

import typer

from llmctl.cli.output import complete_model, console, err_console
from llmctl.errors import LlmctlError


def _complete_method(incomplete: str) -> list[str]:
    from llmctl.plugins import get_registry

    return [n for n in get_registry().names("method") if n.startswith(incomplete)]


def finetune(
    model: str | None = typer.Argument(None, help="Model name, store artefact or HF folder.",
                                       autocompletion=complete_model),
    settings: list[str] | None = typer.Argument(None, help="Setting overrides: key=value (see --dry-run)."),
    method: str = typer.Option("lora", "--method", "-m", help="Training method (`llmctl plugins` lists them).",
                               autocompletion=_complete_method),
    data: Path | None = typer.Option(None, "--data", "-d", help="Training data: JSONL, JSON or CSV."),
    data_format: str = typer.Option("auto", "--format", help="Data format: auto, text, alpaca or messages."),
    recipe: Path | None = typer.Option(None, "--recipe", help="YAML file of settings (under the command line)."),
    name: str | None = typer.Option(None, "--name", help="Run id (default: time-model-method)."),
    resume: str | None = typer.Option(None, "--resume", help="Continue the run with this id or folder."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print settings, parameters, steps and memory; stop."),
    nproc: int = typer.Option(1, "--nproc", help="Processes to train with (torchrun; DDP, or FSDP2 with "
                                                 "strategy=fsdp)."),
    nnodes: int = typer.Option(1, "--nnodes", help="Machines in a multi-node run (passed to torchrun)."),
    node_rank: int = typer.Option(0, "--node-rank", help="This machine's rank (passed to torchrun)."),
    master_addr: str = typer.Option("127.0.0.1", "--master-addr", help="Rendezvous host (passed to torchrun)."),
    master_port: int = typer.Option(29511, "--master-port", help="Rendezvous port (passed to torchrun)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Run the model's own Python code."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Accept pickle weights (unsafe)."),
) -> None:
    """Fine-tune a model with LoRA, LoRA+, DoRA, QLoRA or full weights; writes runs/<id>/."""
    from llmctl.train.finetune import FinetuneRequest
    from llmctl.train.launch import check_topology
    from llmctl.train.runs import runs_root

    if model and "=" in model:
        settings, model = [model, *(settings or [])], None
    if not resume and not model:
        raise LlmctlError("finetune needs a MODEL (or --resume RUN)")
    check_topology(nproc, nnodes, node_rank, master_port)
    runs_root()  # a runs path that is a file is refused before anything loads
    request = FinetuneRequest(model or "", method, str(data) if data else None, data_format,
                              str(recipe) if recipe else None, list(settings or []), name, trust_remote_code,
                              allow_pickle)
    if dry_run:
        _print_dry_run(request, nproc)
        return
    if nproc > 1 or nnodes > 1:
        _launch(request, resume, nproc, nnodes, node_rank, master_addr, master_port)
        return
    from llmctl.train.finetune import run_finetune

    outcome = run_finetune(request, resume=resume)
    result = outcome.result
    val = (f", validation loss {result.first_val_loss:.4f} → {result.final_val_loss:.4f}"
           if result.first_val_loss is not None and result.final_val_loss is not None else "")
    if result.final_loss is None:  # a data-only method (rejection sampling without finetune=true)
        console.print(f"[green]done[/]: wrote {outcome.run}")
    else:
        console.print(f"[green]done[/]: {result.steps} steps, loss {result.final_loss:.4f}{val}, "
                      f"{result.tokens_per_s:,.0f} tok/s")
    console.print(f"run: {outcome.run}  ({_next_command(outcome.run)})")


def _next_command(run: Path) -> str:
    """What to do with a finished run: score with a reward model; chat with base + adapter, or with full weights."""
    import json

    try:
        meta = json.loads((run / "llmctl.json").read_text())
    except (OSError, ValueError):
        meta = {}
    if (run / "best.jsonl").is_file() and not (run / "adapter_config.json").is_file():
        return f"train on the winners: llmctl finetune {meta.get('base_model', 'MODEL')} --data {run}/best.jsonl"
    if meta.get("method") == "reward":
        return f"score with it: llmctl score {run.name} --data PAIRS.jsonl"
    if meta.get("kind") == "adapter" and meta.get("base_model"):
        return f"chat with it: llmctl chat {meta['base_model']} --adapter {run.name}"
    return f"chat with it: llmctl chat {run.name}"


def _launch(request, resume, nproc, nnodes, node_rank, master_addr, master_port) -> None:
    from llmctl.train.finetune import plan_request
    from llmctl.train.launch import check_nproc, launch
    from llmctl.train.runs import new_run_id

    if not resume:
        plan = plan_request(request)  # fail fast, once, before any worker starts
        check_nproc(nproc, plan.settings["backend"])
        request.name = request.name or new_run_id(request.model, plan.method_descriptor.name)
    else:  # the backend the run was planned with
        from llmctl.store import META_FILE
        from llmctl.train.runs import find_run_dir, read_json

        saved = (read_json(find_run_dir(resume) / META_FILE) or {}).get("settings") or {}
        check_nproc(nproc, saved.get("backend", "auto"))
    code = launch(request, nproc, resume, nnodes=nnodes, node_rank=node_rank, master_addr=master_addr,
                  master_port=master_port)
    if code:
        raise LlmctlError(f"torchrun exited with code {code}")
    console.print(f"run: {request.name or resume}")


def _print_dry_run(request, nproc: int) -> None:
    from rich.markup import escape

    from llmctl.models.memory import human_bytes, human_count
    from llmctl.train.dryrun import dry_run

    with err_console.status("Resolving model, method and settings…"):
        report = dry_run(request, nproc)
    from llmctl.config import SETTING_HELP
    from llmctl.plugins import get_registry

    console.print(f"[bold]finetune {escape(request.model)} --method {report.method}[/] (family {report.family})")
    helps = {**SETTING_HELP, **get_registry().get("method", report.method).settings_help}
    width = max(len(key) for key in report.settings.values)
    for key, value in report.settings.values.items():
        source = report.settings.sources.get(key, "")
        what = f" — {escape(helps[key])}" if helps.get(key) else ""
        console.print(f"  {key:<{width}} = {escape(repr(value)):<12} [dim]({escape(source)}){what}[/]",
                      soft_wrap=True)
    share = 100 * report.trainable / report.total if report.total else 0
    console.print(f"trainable parameters: {human_count(report.trainable)} of {human_count(report.total)} "
                  f"({share:.2f} %)")
    epochs = f" ≈ {report.epochs:.1f} epochs of {report.examples} examples" if report.epochs is not None else ""
    console.print(f"steps: {report.settings['max_steps']} × global batch {report.global_batch}{epochs}")
    console.print(f"memory estimate: {human_bytes(report.memory_bytes)} ({report.memory_note})")


def register(app: typer.Typer) -> None:
    """Add ``finetune`` to the app."""
    app.command(context_settings={"allow_extra_args": False})(finetune)
