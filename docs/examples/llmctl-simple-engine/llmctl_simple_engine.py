"""An example llmctl engine plugin: a plain PyTorch decoding loop over a transformers model.

Each step runs the model on the newest token with the key/value cache of the earlier ones and picks the next token:
the most likely one at temperature 0, else a sample from the softmax at that temperature (the other sampling
settings are ignored). ``llmctl chat MODEL --engine simple`` uses it; ``auto`` keeps choosing the builtins.
"""

import time
from collections.abc import Iterator, Sequence
from typing import Any

from llmctl.api import Artifact, Engine, GenerationStats, SamplingParams, hookimpl, load_causal_lm, load_tokenizer


class SimpleEngine:
    """A model and its tokenizer behind llmctl's ``ChatEngine`` interface."""

    name = "simple"

    def __init__(self, model: Any, tokenizer: Any, chat_template: str | None, context_size: int) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.chat_template = chat_template  # None: a base model, chat continues plain text
        self.context_size = context_size
        self.stats = GenerationStats()
        eos = getattr(model.generation_config, "eos_token_id", None)  # an instruct model may stop at its turn's end
        self.stop_ids = {tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}

    def encode_chat(self, messages: Sequence[dict[str, str]]) -> list[int]:
        """The conversation rendered with the chat template, ending with the assistant's turn opening."""
        text = self.tokenizer.apply_chat_template(list(messages), chat_template=self.chat_template,
                                                  add_generation_prompt=True, tokenize=False)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_text(self, text: str) -> list[int]:
        """Plain text with the tokenizer's own special tokens."""
        return list(self.tokenizer(text)["input_ids"])

    def stream(self, prompt_ids: Sequence[int], params: SamplingParams) -> Iterator[str]:
        """Yield the reply's text as it grows; stop at the end-of-sequence token or ``max_new_tokens``."""
        import torch

        stats = self.stats = GenerationStats(prompt_tokens=len(prompt_ids), stop_reason="length")
        generator = torch.Generator().manual_seed(params.seed) if params.seed is not None else None
        inputs, cache, reply, shown = torch.tensor([list(prompt_ids)]), None, [], ""
        start = time.perf_counter()
        with torch.no_grad():
            for _ in range(params.max_new_tokens):
                output = self.model(input_ids=inputs, past_key_values=cache, use_cache=True)
                cache, logits = output.past_key_values, output.logits[0, -1].float()
                if params.temperature > 0:
                    token = int(torch.multinomial(torch.softmax(logits / params.temperature, -1), 1,
                                                  generator=generator))
                else:
                    token = int(logits.argmax())
                if stats.new_tokens == 0:
                    stats.prefill_seconds, first = time.perf_counter() - start, time.perf_counter()
                if token in self.stop_ids:
                    stats.stop_reason = "stop"
                    break
                reply.append(token)
                stats.new_tokens, stats.decode_seconds = len(reply), time.perf_counter() - first
                text = self.tokenizer.decode(reply, skip_special_tokens=True)
                if not text.endswith("\ufffd"):  # wait for the rest of a character split over tokens
                    yield text[len(shown):]
                    shown = text
                inputs = torch.tensor([[token]])


def load(artefact: Artifact, *, dtype: str = "auto", context: int | None = None, trust_remote_code: bool = False,
         fallback_template: str | None = None, **_: Any) -> SimpleEngine:
    """Load a safetensors artefact (``fallback_template``: the family's chat template when the files have none)."""
    model = load_causal_lm(artefact.path, dtype="float32" if dtype == "auto" else dtype,
                           trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(artefact.path, trust_remote_code=trust_remote_code)
    limit = getattr(model.config, "max_position_embeddings", None) or 2048
    return SimpleEngine(model, tokenizer, tokenizer.chat_template or fallback_template, min(limit, context or limit))


@hookimpl
def register_engines(register):
    """Register the ``simple`` engine."""
    register(Engine(
        name="simple",
        description="plain PyTorch decoding loop over a transformers model (example plugin)",
        formats=("safetensors",),
        load=load,
        priority=-10,  # below the builtins: `--engine auto` never picks it, `--engine simple` does
    ))
