"""``llmctl benchmark A [B ...]``: speed, memory and quality side by side, as a table, JSON and a PNG."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import typer

from llmctl.cli.output import complete_model, console, err_console
from llmctl.errors import LlmctlError


def benchmark(
    models: list[str] = typer.Argument(..., help="Models, artefacts or GGUF files to compare.",
                                       autocompletion=complete_model),
    speed: bool = typer.Option(False, "--speed", help="Measure prompt/decode tokens/s, first-token time, memory."),
    quality: bool = typer.Option(False, "--quality", help="Measure perplexity and bits per byte on a text."),
    tasks: str = typer.Option(None, "--tasks", help="Comma-separated lm-eval tasks (local data only)."),
    tasks_dir: Path = typer.Option(None, "--tasks-dir", help="Folder of extra lm-eval task YAML files."),
    chat_template: bool = typer.Option(False, "--chat-template", help="Apply the chat template in tasks."),
    task_limit: int = typer.Option(None, "--task-limit", help="At most this many examples per task."),
    engine: str = typer.Option("auto", "--engine", "-e", help="Engine: auto, transformers or llama.cpp."),
    adapter: str = typer.Option(None, "--adapter", help="A finetune run whose adapter to apply to every model."),
    text: Path = typer.Option(None, "--text", help="Text file for --quality (default: llmctl's bundled text)."),
    window: int = typer.Option(1024, "--window", help="Perplexity window in tokens."),
    stride: int = typer.Option(512, "--stride", help="Perplexity stride in tokens."),
    prompt_tokens: int = typer.Option(128, "--prompt-tokens", help="Prompt length for --speed."),
    new_tokens: int = typer.Option(64, "--new-tokens", help="Tokens to generate per --speed run."),
    repeats: int = typer.Option(3, "--repeats", help="Measured runs per artefact (after one warm-up)."),
    json_file: Path = typer.Option(None, "--json", help="Write the records to this JSON file."),
    plot_file: Path = typer.Option(None, "--plot", help="Write a PNG chart to this file."),
) -> None:
    """Compare models side by side; each artefact is measured in its own process so peak memory is its own."""
    from llmctl.bench.compare import comparison_table, write_plot
    from llmctl.bench.measure import BenchRequest

    if text is not None and not text.is_file():
        raise LlmctlError(f"--text {text}: no such file")
    if not (speed or quality or tasks):
        speed = quality = True
    records = []
    with tempfile.TemporaryDirectory(prefix="llmctl-bench-") as folder:
        for index, model in enumerate(models):
            request = BenchRequest(model=model, engine=engine, adapter=adapter, speed=speed, quality=quality,
                                   tasks=[t for t in (tasks or "").split(",") if t], tasks_dir=str(tasks_dir or "")
                                   or None, chat_template=chat_template, task_limit=task_limit,
                                   text_file=str(text) if text else None, window=window, stride=stride,
                                   prompt_tokens=prompt_tokens, new_tokens=new_tokens, repeats=repeats)
            request_file, output_file = Path(folder) / f"{index}.json", Path(folder) / f"{index}.out.json"
            request_file.write_text(json.dumps(asdict(request)))
            with err_console.status(f"Benchmarking {model} ({index + 1}/{len(models)})…"):
                completed = subprocess.run([sys.executable, "-m", "llmctl.bench.worker", str(request_file),
                                            str(output_file)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                           text=True)
            if output_file.is_file():
                records.append(json.loads(output_file.read_text()))
            else:
                last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
                records.append({"model": model, "error": f"measurement failed: {last}"})
    console.print(comparison_table(records))
    if json_file:
        temporary = json_file.with_name(json_file.name + ".tmp")
        temporary.write_text(json.dumps(records, indent=2))
        temporary.replace(json_file)
        console.print(f"wrote {json_file}")
    if plot_file:
        write_plot(records, plot_file)
        console.print(f"wrote {plot_file}")
    if all("error" in r for r in records):
        raise LlmctlError("no model could be measured: " + records[0]["error"])


def register(app: typer.Typer) -> None:
    """Add the ``benchmark`` verb."""
    app.command("benchmark")(benchmark)
