"""The interactive chat loop: line editing, streamed replies, slash commands, Ctrl-C that stops only the reply."""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmctl.errors import LlmctlError
from llmctl.generate.session import ChatSession

COMMANDS = {
    "/help": "show this help",
    "/system [TEXT]": "show the system prompt, or set it (/system - clears it)",
    "/reset": "forget the conversation (keeps the system prompt)",
    "/params [KEY=VALUE ...]": "show or change sampling settings (temperature, top_p, min_p, stop_loops, …)",
    "/save FILE": "write the conversation to a JSON file",
    "/load FILE": "read a conversation written by /save",
    "/exit": "leave (also /quit, /bye or Ctrl-D)",
}


def enable_line_editing(history_file: Path | None) -> None:
    """Arrow keys, editing and a persistent history of your own inputs, through readline when available."""
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input still works
        return
    if history_file is None:
        return
    import atexit

    try:
        history_file.parent.mkdir(parents=True, exist_ok=True)
        if history_file.exists():
            readline.read_history_file(str(history_file))
    except OSError:
        return
    readline.set_history_length(1000)
    atexit.register(_write_history, readline, history_file)


def _write_history(readline: Any, path: Path) -> None:
    with contextlib.suppress(OSError):
        readline.write_history_file(str(path))


def stream_reply(session: ChatSession, text: str, write: Callable[[str], None]) -> bool:
    """Stream one reply through ``write``; returns False when Ctrl-C stopped it."""
    try:
        for piece in session.ask(text):
            write(piece)
    except KeyboardInterrupt:
        return False
    return True


class ChatRepl:
    """Reads lines, runs slash commands, streams replies."""

    def __init__(self, session: ChatSession, console: Any, err_console: Any, model_name: str) -> None:
        self.session = session
        self.console = console
        self.err = err_console
        self.model_name = model_name

    def _write(self, piece: str) -> None:
        self.console.file.write(piece)
        self.console.file.flush()

    def run(self, read_line: Callable[[str], str] = input) -> None:
        """Loop until /exit or end of input."""
        mode = "plain completion" if self.session.plain else "chat"
        self.err.print(f"[dim]{self.model_name} on {self.session.engine.name} ({mode}). "
                       f"/help for commands, Ctrl-C stops a reply, Ctrl-D quits.[/dim]")
        while True:
            try:
                line = read_line(">>> ")
            except EOFError:
                self.console.print()
                return
            except KeyboardInterrupt:
                self.console.print("\n[dim](Ctrl-D or /exit to quit)[/dim]")
                continue
            line = line.strip()
            if not line:
                continue
            try:
                if line.startswith("/"):
                    if self.command(line) == "exit":
                        return
                    continue
                self.reply(line)
            except LlmctlError as error:
                self.err.print(f"[red]error:[/red] {error}", markup=True, highlight=False)

    def reply(self, text: str) -> None:
        """Stream the model's answer to ``text`` and print its speed."""
        finished = stream_reply(self.session, text, self._write)
        stats = self.session.engine.stats
        self._write("\n")
        if not finished:
            self.err.print("[yellow]\\[reply stopped][/yellow]")
        elif stats.stop_reason == "loop":
            self.err.print("[dim](reply cut: it began repeating itself; /params stop_loops=off lets it run)[/dim]",
                           highlight=False)
        self.err.print(f"[dim]{stats.new_tokens} tokens, {stats.tokens_per_second:.1f} tok/s[/dim]")

    def command(self, line: str) -> str | None:
        """Run a slash command; returns ``"exit"`` to leave."""
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        session = self.session
        if name in ("/exit", "/quit", "/bye"):
            return "exit"
        if name in ("/help", "/?"):
            for usage, text in COMMANDS.items():
                self.console.print(f"  [bold]{usage:<26}[/bold] {text}", highlight=False)
        elif name == "/reset":
            session.reset()
            self.console.print("[dim]conversation cleared[/dim]")
        elif name == "/system":
            if not rest:
                self.console.print(session.system or "[dim](no system prompt)[/dim]", highlight=False)
            else:
                session.system = None if rest == "-" else rest
                self.console.print("[dim]system prompt " + ("cleared" if rest == "-" else "set") + "[/dim]")
        elif name == "/params":
            for pair in shlex.split(rest):
                key, sep, value = pair.partition("=")
                if not sep:
                    raise LlmctlError(f"expected KEY=VALUE, got {pair!r}")
                session.params = session.params.updated(key.strip(), value.strip())
            for key, value in session.params.as_dict().items():
                self.console.print(f"  {key} = {value}", highlight=False)
        elif name in ("/save", "/load"):
            if not rest:
                raise LlmctlError(f"{name} needs a file name")
            if name == "/save":
                self.console.print(f"[dim]saved to {session.save(rest)}[/dim]")
            else:
                session.load(rest)
                self.console.print(f"[dim]loaded {len(session.messages)} messages from {rest}[/dim]")
        else:
            from llmctl.registry import suggest

            close = suggest(name, [usage.split()[0] for usage in COMMANDS] + ["/quit", "/bye"])
            hint = f"; did you mean {close[0]}?" if close else ""
            raise LlmctlError(f"unknown command {name}{hint} (/help lists them)")
        return None
