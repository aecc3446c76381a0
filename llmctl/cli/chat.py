"""``llmctl chat MODEL``: a streamed terminal chat on transformers or llama.cpp, with scripts in mind too."""

from __future__ import annotations

import sys
from typing import Any

import typer

from llmctl.cli.output import complete_model, console, err_console, print_json


def _engine_names(incomplete: str) -> list[str]:
    from llmctl.plugins import get_registry

    return [n for n in ["auto", *get_registry().names("engine")] if n.startswith(incomplete)]


def chat(
    model: str = typer.Argument(..., help="Model name, alias, hub id, store artefact or local path.",
                                autocompletion=complete_model),
    engine: str = typer.Option("auto", "--engine", "-e", autocompletion=_engine_names,
                               help="Inference engine: auto (llama.cpp for a GGUF when installed), transformers, "
                                    "llama.cpp, or a plugin's."),
    prompt: str | None = typer.Option(None, "--prompt", "-p", help="Answer this one question and exit."),
    system: str | None = typer.Option(None, "--system", "-s", help="System prompt."),
    adapter: str | None = typer.Option(None, "--adapter", help="Finetune run (path or id) whose adapter to apply."),
    proxy: str | None = typer.Option(None, "--proxy", help="Proxy-tuning: the tuned small model (or run)."),
    proxy_base: str | None = typer.Option(None, "--proxy-base", help="Proxy-tuning: the same small model untuned."),
    proxy_alpha: float = typer.Option(1.0, "--proxy-alpha", help="Proxy-tuning strength."),
    temperature: float | None = typer.Option(None, "--temperature", "-t", help="0 for greedy decoding. "
                                             "[default: the family's recommendation, else 0.7]"),
    top_p: float | None = typer.Option(None, "--top-p", help="[default: the family's recommendation, else 0.9]"),
    top_k: int | None = typer.Option(None, "--top-k", help="0 disables top-k. [default: 40]"),
    repetition_penalty: float | None = typer.Option(None, "--repetition-penalty", help="[default: 1.0]"),
    max_new_tokens: int | None = typer.Option(None, "--max-new-tokens", "-n", help="[default: 512]"),
    seed: int | None = typer.Option(None, "--seed", help="Seed for reproducible sampling."),
    context: int | None = typer.Option(None, "--context", help="Context length in tokens (default 4096, capped "
                                                               "at the model's)."),
    dtype: str = typer.Option("auto", "--dtype", help="transformers engine: auto (bfloat16 where the CPU "
                                                      "computes it natively, else float32), float32, float16."),
    json_output: bool = typer.Option(False, "--json", help="Print answers as JSON (with --prompt or stdin)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Run the model's own Python code."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Accept pickle weights (unsafe)."),
) -> None:
    """Chat with a model: streamed replies, history, slash commands; --prompt or stdin for scripts."""
    from llmctl.generate.loader import EngineRequest, generation_defaults, load_chat_engine
    from llmctl.generate.params import SamplingParams
    from llmctl.generate.session import ChatSession

    asked = {"temperature": temperature, "top_p": top_p, "top_k": top_k, "repetition_penalty": repetition_penalty,
             "max_new_tokens": max_new_tokens, "seed": seed}
    SamplingParams(**{k: v for k, v in asked.items() if v is not None}).validated()  # bad values fail before loading
    request = EngineRequest(model, engine, adapter, proxy, proxy_base, proxy_alpha, dtype, context,
                            trust_remote_code, allow_pickle)
    with err_console.status(f"Loading {model}…") as spinner:
        loaded, artefact = load_chat_engine(request, status=lambda text: spinner.update(text))
    defaults = generation_defaults(model, artefact)
    params = SamplingParams(**{**defaults, **{k: v for k, v in asked.items() if v is not None}}).validated()
    session = ChatSession(loaded, params, system=system,
                          notify=lambda text: err_console.print(f"[yellow]{text}[/yellow]", highlight=False))
    if session.plain:
        err_console.print(f"{artefact.name} has no chat template (a base model): continuing your text as plain "
                          f"completion", highlight=False)
    interactive = prompt is None and sys.stdin.isatty()
    if interactive:
        _interactive(session, artefact.name)
        return
    questions = [prompt] if prompt is not None else [line.strip() for line in sys.stdin if line.strip()]
    records = [_answer(session, question, stream=not json_output) for question in questions]
    if json_output:
        meta = {"model": artefact.name, "engine": loaded.name}
        if prompt is not None:
            print_json({**meta, **records[0]})
        else:
            print_json([{**meta, **record} for record in records])


def _answer(session: Any, question: str, stream: bool) -> dict[str, Any]:
    """One independent question: reply streamed to stdout (or collected for --json); stats on stderr."""
    session.reset()
    pieces: list[str] = []
    for piece in session.ask(question):
        pieces.append(piece)
        if stream:
            sys.stdout.write(piece)
            sys.stdout.flush()
    stats = session.engine.stats
    if stream:
        sys.stdout.write("\n")
        sys.stdout.flush()
        err_console.print(f"[dim]{stats.new_tokens} tokens, {stats.tokens_per_second:.1f} tok/s[/dim]")
    return {"prompt": question, "reply": "".join(pieces), "stats": stats.as_dict()}


def _interactive(session: Any, model_name: str) -> None:
    from llmctl.generate.repl import ChatRepl, enable_line_editing
    from llmctl.store import home

    enable_line_editing(home() / "chat_history")
    ChatRepl(session, console, err_console, model_name).run()


def register(app: typer.Typer) -> None:
    """Add the ``chat`` verb."""
    app.command("chat")(chat)
