"""``llmctl convert SRC --to gguf|hf`` and ``llmctl convert RUN --merge``: new artefacts from existing ones."""

from __future__ import annotations

import typer

from llmctl.cli.output import complete_model, console, err_console
from llmctl.errors import DataError

TARGETS = ("gguf", "hf")
GGUF_DTYPE_HELP = "GGUF weight type: f16, bf16, q8_0 (also f32, q4_0, q4_1, q5_0, q5_1)."


def _progress(label: str):
    """A transient rich bar on stderr counting tensors or shards."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                    TimeElapsedColumn(), console=err_console, transient=True)


def _human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def convert(
    source: str = typer.Argument(..., help="Model (name, folder, .gguf) or, with --merge, a fine-tuning run.",
                                 autocompletion=complete_model),
    to: str | None = typer.Option(None, "--to", help="Target format: gguf or hf (safetensors)."),
    dtype: str | None = typer.Option(None, "--dtype", help=GGUF_DTYPE_HELP + " For --to hf: float32, float16, "
                                                                         "bfloat16."),
    merge: bool = typer.Option(False, "--merge", help="Merge the run's LoRA/DoRA adapter into its base model."),
    name: str | None = typer.Option(None, "--name", "-n", help="Name of the new artefact."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an artefact of the same name."),
) -> None:
    """Convert a model between formats (HF ⇄ GGUF) or merge a fine-tuning run's adapter, tensor by tensor."""
    if name is not None:
        from llmctl.store import validate_name

        validate_name(name)  # before any work: a name is one folder in the store, never a path
    if merge:
        if to is not None:
            raise DataError("--merge writes a safetensors model; convert the merged model with --to afterwards")
        _merge(source, name, overwrite)
        return
    if to not in TARGETS:
        raise DataError(f"say what to convert to: --to gguf or --to hf (got {to!r})" if to else
                        "say what to convert to: --to gguf or --to hf (or --merge for a run's adapter)")
    from llmctl.models.resolve import resolve_model

    artifact = resolve_model(source)
    if to == "gguf":
        _to_gguf(artifact, (dtype or "f16").lower(), name, overwrite)
    else:
        _to_hf(artifact, (dtype or "float32").lower(), name, overwrite)


def _to_gguf(artifact, dtype: str, name: str | None, overwrite: bool) -> None:
    from llmctl.convert.artifacts import convert_to_gguf
    from llmctl.convert.gguf_encode import quantization_type

    quantization_type(dtype)  # an unknown dtype fails here, listing the choices, before any work
    with _progress(f"{artifact.name} → GGUF {dtype}") as progress:
        task = progress.add_task("", total=None)

        def advance(done: int, total: int, tensor: str) -> None:
            progress.update(task, completed=done, total=total, description=tensor)

        def status(text: str) -> None:
            progress.update(task, description=text)

        result = convert_to_gguf(artifact, dtype=dtype, name=name, overwrite=overwrite, progress=advance,
                                 status=status)
    template = "with chat template" if result.meta.get("chat_template") else "no chat template"
    console.print(f"Wrote {result.name}: {result.meta.get('architecture')} GGUF {dtype}, "
                  f"{result.meta.get('tensors')} tensors, {_human(result.size_bytes)}, {template} → {result.file()}")


def _to_hf(artifact, dtype: str, name: str | None, overwrite: bool) -> None:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from llmctl.convert.artifacts import convert_to_hf

    spinner = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console,
                       transient=True)
    with spinner:
        spinner.add_task(f"{artifact.name} GGUF → safetensors ({dtype})…", total=None)
        result = convert_to_hf(artifact, name=name, dtype=dtype, overwrite=overwrite)
    console.print(f"Wrote {result.name}: safetensors model ({dtype}), {_human(result.size_bytes)} → {result.path}")


def _merge(run: str, name: str | None, overwrite: bool) -> None:
    from llmctl.convert.run_merge import merge_run

    with _progress(f"merging {run}") as progress:
        task = progress.add_task("", total=None)
        result = merge_run(run, name=name, overwrite=overwrite,
                           progress=lambda done, total, shard: progress.update(task, completed=done, total=total,
                                                                               description=shard))
    meta = result.meta
    method = {"lora": "LoRA", "lora+": "LoRA+", "dora": "DoRA"}.get(meta.get("method", "lora"), meta.get("method"))
    console.print(f"Merged {method} adapter ({meta.get('merged')} modules) into "
                  f"{result.parents[0]} shard by shard → {result.name} ({_human(result.size_bytes)}, {result.path})")


def register(app: typer.Typer) -> None:
    """Add the ``convert`` verb."""
    app.command("convert")(convert)
