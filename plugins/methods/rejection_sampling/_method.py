"""Rejection sampling (best-of-N): sample N answers per prompt, score them, keep the best as a new SFT data set.

The run folder gets ``candidates.jsonl`` (every answer with its reward and rank, the best marked) and ``best.jsonl``
(messages format, ready for ``llmctl finetune --data``). With ``finetune=true`` the loop then trains the adapter on
the best answers at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmctl.train.adapters import wrap_for_training
from llmctl.train.method import MethodContext, TrainingMethod

CANDIDATES_FILE = "candidates.jsonl"
BEST_FILE = "best.jsonl"


class RejectionSamplingMethod(TrainingMethod):
    """Best-of-N sampling scored by a reward model or function; optionally SFT on the winners."""

    name = "rejection-sampling"
    needs_model_for_data = True

    def __init__(self) -> None:
        self.candidates: list[dict[str, Any]] = []
        self.best: list[dict[str, Any]] = []
        self.model: Any = None
        self.trained = False

    def prepare(self, model: Any, settings: Any, context: MethodContext) -> Any:
        """An adapter for the optional fine-tuning (it starts as a no-op, so sampling sees the base model)."""
        model, _ = wrap_for_training(model, {**settings.values, "adapter": "lora"}, context)
        self.model = model
        return model

    def load_data(self, settings: Any, context: MethodContext) -> Any:
        """Sample, score and rank; the best answers become the SFT training items."""
        from llmctl.data.dataset import SftData, split_validation
        from llmctl.data.encode import chat_template_for, encode_example
        from llmctl.data.formats import SftExample
        from llmctl.models.tokens import pad_token_id
        from llmctl.reward.functions import require_reward, resolve_reward
        from llmctl.train.progress import TrainingProgress
        from llmctl.train.prompts import load_prompts
        from llmctl.train.sampling import SamplingSettings, sample_responses

        score = resolve_reward(require_reward(settings), context.trust_remote_code, settings["reward_weights"])
        prompts = load_prompts(settings, context)
        n = settings["num_samples"]
        sampling = SamplingSettings.of(settings)
        tokenizer = context.tokenizer
        per_call = max(1, settings["batch_size"])
        with TrainingProgress(len(prompts), 0, f"sampling {n} answers per prompt") as progress:
            for start in range(0, len(prompts), per_call):
                chunk = prompts[start:start + per_call]
                rows = [ids for _, ids in chunk for _ in range(n)]
                out = sample_responses(self.model, rows, pad_token_id(tokenizer), tokenizer.eos_token_id, sampling)
                width = out["prompt_width"]
                texts = [tokenizer.decode(r[m.bool()], skip_special_tokens=True).strip()
                         for r, m in zip(out["input_ids"][:, width:], out["response_mask"], strict=True)]
                rewards = score([p for p, _ in chunk for _ in range(n)], texts, step=start // per_call + 1)
                for index, (prompt, _) in enumerate(chunk):
                    self._rank(prompt, texts[index * n:(index + 1) * n], rewards[index * n:(index + 1) * n])
                progress.update(min(start + per_call, len(prompts)), None, None, 0.0)
        template = chat_template_for(tokenizer, getattr(context.family, "chat_template", None))
        examples = [SftExample(f"{BEST_FILE}:{i + 1}", messages=tuple(r["messages"])) for i, r in enumerate(self.best)]
        encoded = [encode_example(e, tokenizer, template, settings["max_length"], False) for e in examples]
        train, validation = split_validation(encoded, settings["val_split"], settings["seed"])
        if not settings["finetune"]:
            validation = []
        return SftData(train, validation, "messages", len(examples))

    def _rank(self, prompt: Any, answers: list[str], rewards: list[float]) -> None:
        """Record every candidate of one prompt with its rank, and the best one as an SFT example."""
        order = sorted(range(len(answers)), key=lambda i: -rewards[i])
        for rank, i in enumerate(order, start=1):
            self.candidates.append({"prompt": prompt, "completion": answers[i], "reward": rewards[i], "rank": rank,
                                    "best": rank == 1})
        messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        self.best.append({"messages": [*messages, {"role": "assistant", "content": answers[order[0]]}],
                          "reward": rewards[order[0]]})

    def trains(self, settings: Any) -> bool:
        """Fine-tune on the best answers only with ``finetune=true``; else the run is the data set."""
        return bool(settings["finetune"])

    def output_kind(self, settings: Any) -> str:
        """A LoRA adapter (plus the data files) with ``finetune=true``; else the data files only."""
        return "adapter" if settings["finetune"] else "data"

    def save(self, model: Any, tokenizer: Any, directory: Path, state_dict: dict[str, Any] | None = None) -> None:
        """The scored candidates and the best-of-N data set; the adapter too when it was fine-tuned."""
        (directory / CANDIDATES_FILE).write_text("".join(json.dumps(c) + "\n" for c in self.candidates))
        (directory / BEST_FILE).write_text("".join(json.dumps(b) + "\n" for b in self.best))
        if self.trained:
            model.save_pretrained(directory, state_dict=state_dict)

    def after_step(self, model: Any, step: int) -> None:
        """Note that the adapter was trained (so it is saved)."""
        self.trained = True
