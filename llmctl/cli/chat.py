"""``llmctl chat MODEL``: a streamed terminal chat on transformers or llama.cpp, with scripts in mind too."""

from __future__ import annotations

import sys
from typing import Any

import typer

from llmctl.cli.output import complete_model, console, err_console, print_json

MIN_CONTEXT = 64  # a chat template plus a short question and reply; llama.cpp would read 0 as "the model's own"
MAX_CONTEXT = 2**31 - 1  # llama.cpp's n_ctx is a C integer
LOOP_NOTE = "(reply cut: it began repeating itself; --no-stop-loops lets it run)"


def whole_number(option: str) -> Any:
    """A typer parser for ``option`` that reads an integer written as ``4096``, ``1e20`` or ``1_000`` and refuses
    anything else in one line (not typer's multi-line usage box), so the range check can name the value."""

    def parse(text: str) -> int:
        from decimal import Decimal, InvalidOperation

        from llmctl.errors import DataError

        try:
            value = Decimal(str(text).strip().replace("_", ""))
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or value != value.to_integral_value():
            raise DataError(f"{option} needs a whole number, got {text!r}")
        return int(value)

    return parse


def check_arguments(asked: dict[str, Any], context: int | None, proxy_alpha: float) -> None:
    """Refuse, in one line before anything loads, sampling values out of range or not finite, a context below
    MIN_CONTEXT, and a --max-new-tokens that leaves no room for the prompt in the context asked for."""
    import math

    from llmctl.errors import DataError
    from llmctl.generate.params import CHAT_DEFAULTS, SamplingParams

    if context is not None and not MIN_CONTEXT <= context <= MAX_CONTEXT:
        raise DataError(f"--context {context} is out of range: it must be a whole number of tokens from "
                        f"{MIN_CONTEXT} to {MAX_CONTEXT}")
    if not math.isfinite(proxy_alpha):
        raise DataError(f"--proxy-alpha must be a finite number, got {proxy_alpha}")
    params = SamplingParams.layered(CHAT_DEFAULTS, asked)
    if asked.get("max_new_tokens") is None:
        return
    if context is not None:
        params.check_context(context)
    elif params.max_new_tokens >= MAX_CONTEXT:
        raise DataError(f"--max-new-tokens {params.max_new_tokens} is out of range: it must be a whole number of at "
                        f"least 1 and below the context size")


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
    temperature: float | None = typer.Option(None, "--temperature", "-t", help="0 for greedy decoding. Default: the "
                                             "model's recommendation, else 0.7."),
    top_p: float | None = typer.Option(None, "--top-p", help="Default: the model's recommendation, else 0.9."),
    top_k: int | None = typer.Option(None, "--top-k", help="0 disables top-k. Default: the model's "
                                     "recommendation, else 40."),
    min_p: float | None = typer.Option(None, "--min-p", help="Drop tokens less likely than this fraction of the "
                                       "likeliest; 0 disables it. Default: 0.05."),
    repetition_penalty: float | None = typer.Option(None, "--repetition-penalty", help="Divide the scores of "
                                                    "recently generated tokens; 1 disables it. Default: 1.1."),
    repeat_last_n: int | None = typer.Option(None, "--repeat-last-n", help="How many recent tokens the repetition "
                                             "penalty looks at; 0 disables it, -1 the whole context. Default: 64."),
    stop_loops: bool | None = typer.Option(None, "--stop-loops/--no-stop-loops", help="End a reply whose last "
                                           "tokens repeat one sequence three times. Default: on."),
    max_new_tokens: int | None = typer.Option(None, "--max-new-tokens", "-n", parser=whole_number("--max-new-tokens"),
                                              help="Default: 512, at most half the context."),
    seed: int | None = typer.Option(None, "--seed", help="Seed for reproducible sampling."),
    context: int | None = typer.Option(None, "--context", parser=whole_number("--context"),
                                       help=f"Context length in tokens, at least {MIN_CONTEXT} (default 4096, capped "
                                            "at the model's)."),
    dtype: str = typer.Option("auto", "--dtype", help="transformers engine: auto (bfloat16 where the CPU "
                                                      "computes it natively, else float32), float32, float16."),
    json_output: bool = typer.Option(False, "--json", help="Print answers as JSON (with --prompt or stdin)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Run the model's own Python code."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Accept pickle weights (unsafe)."),
) -> None:
    """Chat with a model: streamed replies, history, slash commands; --prompt or stdin for scripts."""
    from llmctl.generate.loader import EngineRequest, generation_defaults, load_chat_engine
    from llmctl.generate.params import CHAT_DEFAULTS, SamplingParams
    from llmctl.generate.session import ChatSession

    asked = {"temperature": temperature, "top_p": top_p, "top_k": top_k, "min_p": min_p,
             "repetition_penalty": repetition_penalty, "repeat_last_n": repeat_last_n, "stop_loops": stop_loops,
             "max_new_tokens": max_new_tokens, "seed": seed}
    check_arguments(asked, context, proxy_alpha)  # bad values fail before loading
    request = EngineRequest(model, engine, adapter, proxy, proxy_base, proxy_alpha, dtype, context,
                            trust_remote_code, allow_pickle)
    with err_console.status(f"Loading {model}…") as spinner:
        loaded, artefact = load_chat_engine(request, status=lambda text: spinner.update(text))
    recommended = generation_defaults(model, artefact)
    params = SamplingParams.layered(CHAT_DEFAULTS, recommended, asked)
    if max_new_tokens is None and params.max_new_tokens > loaded.context_size // 2:
        params = SamplingParams.layered(params.as_dict(), {"max_new_tokens": max(loaded.context_size // 2, 1)})
    params.check_context(loaded.context_size)
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
        if stats.stop_reason == "loop":
            err_console.print(f"[dim]{LOOP_NOTE}[/dim]", highlight=False)
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
