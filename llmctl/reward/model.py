"""Reward models: a one-output sequence-classification head on a family's model; loading and scoring.

A reward model reads prompt + answer and returns one number; trained on preference pairs (the ``reward`` method) it
learns P(chosen ≻ rejected) = σ(r(chosen) − r(rejected)). Public: ``llmctl score``, ``llmctl merge``, PPO and
rejection sampling read rewards through this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

REWARD_KIND = "reward-model"


def reward_model_from_config(config: Any) -> Any:
    """A randomly initialised reward model (``num_labels=1``) for a transformers config."""
    from transformers import AutoModelForSequenceClassification

    config.num_labels = 1
    if getattr(config, "pad_token_id", None) is None:
        config.pad_token_id = config.eos_token_id if isinstance(config.eos_token_id, int) else 0
    return AutoModelForSequenceClassification.from_config(config)


def load_reward_model(path: str | Path, pad_token_id: int | None = None, dtype: str = "float32",
                      trust_remote_code: bool = False) -> Any:
    """A reward model from a directory: a saved reward model, or a causal LM that gets a new one-output head."""
    from transformers import AutoModelForSequenceClassification

    from llmctl.models.loading import torch_dtype

    model = AutoModelForSequenceClassification.from_pretrained(
        str(path), num_labels=1, dtype=torch_dtype(dtype), trust_remote_code=trust_remote_code,
        use_safetensors=True)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = pad_token_id if pad_token_id is not None else model.config.eos_token_id
    return model


def sequence_scores(model: Any, input_ids: Any, attention_mask: Any) -> Any:
    """One reward per row (read at the last non-padding token)."""
    return model(input_ids=input_ids, attention_mask=attention_mask).logits[:, 0].float()


def pair_scores(model: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
    """Rewards of the chosen and rejected rows of a ``[chosen…, rejected…]`` preference batch."""
    scores = sequence_scores(model, batch["input_ids"], batch["attention_mask"])
    chosen, rejected = scores.chunk(2)
    return chosen, rejected


def pairwise_accuracy(model: Any, batch: dict[str, Any]) -> float:
    """Share of pairs the reward model ranks the chosen answer above the rejected one."""
    import torch

    with torch.no_grad():
        chosen, rejected = pair_scores(model, batch)
    return float((chosen > rejected).float().mean())


def score_token_ids(model: Any, rows: Sequence[Sequence[int]], pad_token_id: int, batch_size: int = 8) -> list[float]:
    """Rewards of already-tokenized sequences, in batches of ``batch_size``, right-padded."""
    import torch

    scores: list[float] = []
    model.eval()
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        width = max(len(r) for r in chunk)
        ids = torch.full((len(chunk), width), pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for index, row in enumerate(chunk):
            ids[index, :len(row)] = torch.tensor(list(row), dtype=torch.long)
            mask[index, :len(row)] = 1
        with torch.no_grad():
            scores.extend(sequence_scores(model, ids, mask).tolist())
    return scores


def score_texts(model: Any, tokenizer: Any, prompts: Sequence[Any], answers: Sequence[str],
                chat_template: str | None = None, batch_size: int = 8) -> list[float]:
    """Rewards of (prompt, answer) pairs, encoded exactly as preference training encodes them."""
    from llmctl.data.preference import PreferenceExample, encode_preference

    rows = []
    for prompt, answer in zip(prompts, answers, strict=True):
        completion = [{"role": "assistant", "content": answer}] if isinstance(prompt, list) else answer
        pair = encode_preference(PreferenceExample(prompt, completion, completion), tokenizer,
                                 chat_template=chat_template)
        rows.append(pair.prompt_ids + pair.chosen_ids)
    from llmctl.models.tokens import pad_token_id

    return score_token_ids(model, rows, pad_token_id(tokenizer), batch_size)
