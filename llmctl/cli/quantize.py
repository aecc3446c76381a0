"""``llmctl quantize MODEL --method BACKEND:SCHEME [--eval]`` and ``llmctl quantize --list``."""

from __future__ import annotations

import typer

from llmctl.cli.output import complete_model, console, err_console
from llmctl.errors import DataError


def _complete_method(incomplete: str) -> list[str]:
    from llmctl.quantize.methods import all_method_names

    return [name for name in all_method_names() if name.startswith(incomplete)]


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def _print_methods() -> None:
    from rich.markup import escape
    from rich.table import Table

    from llmctl.quantize.methods import method_rows, quantizer_summaries

    table = Table(title="Quantization methods (--method)", title_justify="left", box=None, padding=(0, 1))
    for column in ("method", "bits", "needs", "here", "notes"):
        table.add_column(column, no_wrap=column in ("method", "needs"), justify="right" if column == "bits" else
                         "left")
    for row in method_rows():
        bits = f"{row.bits:g}" if row.bits is not None else "–"
        here = "[green]yes[/]" if row.usable else "[red]no[/]"
        note = escape(row.help) if row.usable else f"[red]{escape(row.reason)}[/]"
        table.add_row(row.method, bits, escape(row.needs), here, note)
    console.print(table)
    console.print("bits: nominal bits per weight, scales included; `--eval` measures the quality cost.")
    for line in quantizer_summaries():
        console.print(escape(line))


def _progress(label: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn(label), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console, transient=True)


def _print_comparison(comparison) -> None:
    from rich.table import Table

    table = Table(title="Quality on llmctl's bundled text (lower is better)", title_justify="left", box=None,
                  padding=(0, 1))
    for column in ("model", "weights", "run by", "size", "bits/w", "perplexity", "bits/byte"):
        table.add_column(column, no_wrap=True, justify="left" if column in ("model", "weights", "run by") else "right")
    for row in (comparison.before, comparison.after):
        table.add_row(row.model, row.weights, row.stack, _human(row.weight_bytes), f"{row.bits_per_weight:.2f}",
                      f"{row.result.perplexity:.3f}", f"{row.result.bits_per_byte:.4f}")
    console.print(table)
    change = comparison.perplexity_change * 100
    console.print(f"{comparison.after.weights}: perplexity {change:+.2f} % vs {comparison.before.weights} "
                  f"({comparison.before.stack}), weights {comparison.size_ratio:.2f}× smaller "
                  f"({comparison.after.result.scored_tokens} tokens scored).")


def quantize(
    model: str | None = typer.Argument(None, help="Model to quantize (name, store artefact, folder, .gguf).",
                                       autocompletion=complete_model),
    method: str | None = typer.Option(None, "--method", "-m", autocompletion=_complete_method,
                                      help="BACKEND:SCHEME, e.g. gguf:q8_0, gguf:q4_k_m, torchao:int8, quanto:int8, "
                                           "bnb:nf4 (see --list)."),
    evaluate: bool = typer.Option(False, "--eval", help="Measure perplexity and bits per byte before and after."),
    name: str | None = typer.Option(None, "--name", "-n", help="Name of the new artefact."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an artefact of the same name."),
    list_methods: bool = typer.Option(False, "--list", help="Show every method, what it needs and if it runs here."),
) -> None:
    """Quantize a model into a new artefact (GGUF types, torchao, quanto, bitsandbytes), optionally measuring it."""
    if list_methods:
        _print_methods()
        return
    if model is None or method is None:
        raise DataError("say what to quantize and how: llmctl quantize MODEL --method gguf:q8_0 (see --list)")
    if name is not None:
        from llmctl.store import validate_name

        validate_name(name)  # before any work: a name is one folder in the store, never a path
    from llmctl.models.resolve import resolve_model
    from llmctl.quantize.methods import parse_method, require_usable
    from llmctl.quantize.run import quantize_model

    choice = parse_method(method)
    require_usable(choice)  # refuse (bnb without CUDA, a missing extra) before resolving or writing anything
    artifact = resolve_model(model)
    with _progress(f"{artifact.name} → {choice.name}") as progress:
        task = progress.add_task("", total=None)

        def advance(done: int, total: int, tensor: str) -> None:
            progress.update(task, completed=done, total=total, description=tensor)

        def status(text: str) -> None:
            progress.update(task, completed=0, total=None, description=text)

        def warn(text: str) -> None:
            progress.console.print(f"[yellow]warning:[/] {text}")

        run = quantize_model(artifact, choice, name=name, evaluate=evaluate, overwrite=overwrite,
                             progress=advance, status=status, warn=warn)
    result = run.artifact
    record = run.quantization
    where = result.file() if result.format == "gguf" else result.path
    console.print(f"Wrote {result.name}: {choice.name}, {record.get('bits_per_weight', 0):.2f} bits/weight, "
                  f"{_human(result.size_bytes)} on disk, from {artifact.name} → {where}")
    if run.comparison is not None:
        _print_comparison(run.comparison)


def register(app: typer.Typer) -> None:
    """Add the ``quantize`` verb."""
    app.command("quantize")(quantize)
