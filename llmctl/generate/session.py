"""Chat session state: the conversation, its system prompt, trimming to the context, saving and loading."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from llmctl.errors import DataError
from llmctl.generate.engine import ChatEngine, Message
from llmctl.generate.params import SamplingParams

ROLES = ("system", "user", "assistant")


class ChatSession:
    """A conversation with one engine. A model without a chat template runs as plain completion (no history)."""

    def __init__(self, engine: ChatEngine, params: SamplingParams, system: str | None = None,
                 notify: Callable[[str], None] = lambda message: None) -> None:
        self.engine = engine
        self._params = params
        self.system = system
        self.messages: list[Message] = []
        self.notify = notify

    @property
    def params(self) -> SamplingParams:
        """The sampling settings of the next reply."""
        return self._params

    @params.setter
    def params(self, params: SamplingParams) -> None:
        """Replace the settings (``/params``); a ``max_new_tokens`` that leaves the prompt no room is refused."""
        self._params = params.validated().check_context(self.engine.context_size, option="max_new_tokens")

    @property
    def plain(self) -> bool:
        """True when the model has no chat template and each input is continued as plain text."""
        return self.engine.chat_template is None

    def conversation(self) -> list[Message]:
        """The messages the model sees: the system prompt (if any), then the turns."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.messages

    def reset(self) -> None:
        """Forget the turns (the system prompt stays)."""
        self.messages = []

    def prompt_ids(self) -> list[int]:
        """Token ids for the next reply; the oldest turns are dropped, with a notice, until it fits the context."""
        budget = self.engine.context_size - self.params.max_new_tokens
        if self.plain:
            ids = self.engine.encode_text(self.messages[-1]["content"])
            if len(ids) > budget:
                raise DataError(f"the text is {len(ids)} tokens; the context leaves room for {max(budget, 0)} "
                                f"(lower --max-new-tokens or raise --context)")
            return ids
        ids = self.engine.encode_chat(self.conversation())
        dropped = 0
        while len(ids) > budget and len(self.messages) > 1:
            cut = 2 if len(self.messages) > 2 and self.messages[1]["role"] == "assistant" else 1
            del self.messages[:cut]
            dropped += cut
            ids = self.engine.encode_chat(self.conversation())
        if dropped:
            self.notify(f"history trimmed: dropped the {dropped} oldest message{'s' * (dropped > 1)} to fit the "
                        f"{self.engine.context_size}-token context")
        if len(ids) > budget:
            self.messages.pop()
            raise DataError(f"the message is {len(ids)} tokens with the system prompt; the context leaves room for "
                            f"{max(budget, 0)} (lower --max-new-tokens or raise --context)")
        return ids

    def ask(self, text: str) -> Iterator[str]:
        """Stream the reply to ``text``; the reply (even an interrupted one) is kept in the history."""
        if self.plain:
            self.messages = []
        self.messages.append({"role": "user", "content": text})
        ids = self.prompt_ids()
        pieces: list[str] = []
        try:
            for piece in self.engine.stream(ids, self.params):
                pieces.append(piece)
                yield piece
            self._note_loop_stop()
        finally:
            self.messages.append({"role": "assistant", "content": "".join(pieces)})

    def _note_loop_stop(self) -> None:
        """Mark the reply's stats ``loop`` when the transformers decode loop ended it for repeating itself (that loop
        leaves its reason on the engine's logit source; the llama.cpp engine sets the stats itself)."""
        stats = getattr(self.engine, "stats", None)
        source = getattr(self.engine, "source", None)
        if stats is not None and stats.stop_reason == "stop" and getattr(source, "stop_reason", "") == "loop":
            stats.stop_reason = "loop"

    def save(self, path: str | Path) -> Path:
        """Write the conversation and settings as JSON (atomically)."""
        path = Path(path).expanduser()
        data = {"system": self.system, "messages": self.messages, "params": self.params.as_dict()}
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        os.replace(temporary, path)
        return path

    def load(self, path: str | Path) -> None:
        """Replace the conversation (and system prompt) with one written by :meth:`save`."""
        path = Path(path).expanduser()
        try:
            data = json.loads(path.read_text())
        except OSError as error:
            raise DataError(f"cannot read {path}: {error.strerror}") from None
        except ValueError as error:
            raise DataError(f"{path}: not valid JSON ({error})") from None
        self.system, self.messages = parse_saved(data, path)


def parse_saved(data: Any, path: Path) -> tuple[str | None, list[Message]]:
    """Validate a saved conversation: a system prompt and a list of role/content messages."""
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise DataError(f"{path}: expected an object with a 'messages' list")
    messages: list[Message] = []
    for index, message in enumerate(data["messages"]):
        if (not isinstance(message, dict) or message.get("role") not in ROLES
                or not isinstance(message.get("content"), str)):
            raise DataError(f"{path}: message {index} needs a role ({', '.join(ROLES)}) and a text content")
        messages.append({"role": message["role"], "content": message["content"]})
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        raise DataError(f"{path}: 'system' must be text")
    return system, messages
