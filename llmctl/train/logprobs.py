"""Log-probabilities of completion tokens under a causal language model."""

from __future__ import annotations

from typing import Any


def token_logprobs(logits: Any, input_ids: Any) -> Any:
    """Log-probability of each next token: ``[batch, length - 1]`` for tokens 1 … length-1."""
    import torch

    logits = logits[:, :-1, :].float()
    targets = input_ids[:, 1:].unsqueeze(-1)
    # gather − logsumexp keeps no vocabulary-sized log-softmax alive for the backward pass
    return torch.gather(logits, 2, targets).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def completion_logprobs(model: Any, input_ids: Any, attention_mask: Any, completion_mask: Any) -> tuple[Any, Any]:
    """Summed log-probabilities of the completion tokens of every row, and each row's completion length."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    per_token = token_logprobs(logits, input_ids)
    mask = completion_mask[:, 1:].to(per_token.dtype)
    return (per_token * mask).sum(-1), mask.sum(-1)


def entropy_from_logits(logits: Any) -> Any:
    """Entropy of the next-token distribution at every position (nats)."""
    import torch

    logits = logits.float()
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)
