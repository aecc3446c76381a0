"""Proxy-tuning on tiny models: the combined logits, a large model adopting the tuned small model's preference,
and the one-line error when vocabularies differ."""

from __future__ import annotations

import pytest

from llmctl.errors import DataError
from llmctl.generate.params import SamplingParams
from tests.cli_helpers import run_llmctl
from tests.tiny_models import make_tiny_model_dir


def _load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def _tune_towards(model, token: int, steps: int = 40):
    """Fine-tune ``model`` (all weights, a few Adam steps) to predict ``token`` after any prefix."""
    import torch

    torch.manual_seed(0)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        ids = torch.randint(6, model.config.vocab_size, (4, 12))
        logits = model(input_ids=ids).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 torch.full((4 * 12,), token))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def trio(tmp_path_factory):
    """A 'large' tiny model, a smaller base model and that small model tuned to prefer one token."""
    root = tmp_path_factory.mktemp("proxy")
    large, tokenizer = _load(make_tiny_model_dir("llama", root / "large", seed=0, num_hidden_layers=3))
    base_dir = make_tiny_model_dir("llama", root / "small", seed=1, hidden_size=32, intermediate_size=64)
    base, _ = _load(base_dir)
    tuned, _ = _load(base_dir)
    return large, base, tuned, tokenizer, root


def _full_forward_last(model, ids):
    import torch

    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[:, -1, :].float()


def test_combined_logits_equal_the_direct_computation(trio):
    import torch

    from llmctl.generate.decode import CachedCausalLM
    from llmctl.generate.proxy import ProxyTunedSource

    large, base, _, tokenizer, _ = trio
    tuned = _tune_towards(_load(trio[4] / "small")[0], token=77, steps=5)
    source = ProxyTunedSource(CachedCausalLM(large), CachedCausalLM(tuned), CachedCausalLM(base), alpha=0.7)
    ids = tokenizer("The capital of France is")["input_ids"]

    def direct(seq):
        return _full_forward_last(large, seq) + 0.7 * (_full_forward_last(tuned, seq) - _full_forward_last(base, seq))

    torch.testing.assert_close(source.prefill(ids), direct(ids), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(source.extend([42]), direct(ids + [42]), atol=1e-4, rtol=1e-4)


def test_large_model_adopts_the_tuned_small_models_preference(trio):
    from llmctl.generate.decode import CachedCausalLM, decode_tokens
    from llmctl.generate.proxy import ProxyTunedSource

    large, base, tuned, tokenizer, _ = trio
    ids = tokenizer("Write a short poem about the sea")["input_ids"]
    greedy = SamplingParams(temperature=0, max_new_tokens=8)
    alone = list(decode_tokens(CachedCausalLM(large), ids, greedy, stop_ids=set()))
    preferred = next(t for t in range(6, 500) if t not in alone)
    _tune_towards(tuned, preferred)
    steered = list(decode_tokens(ProxyTunedSource(CachedCausalLM(large), CachedCausalLM(tuned),
                                                  CachedCausalLM(base), alpha=1.0), ids, greedy, stop_ids=set()))
    assert preferred not in alone
    assert steered == [preferred] * 8


def test_different_vocabularies_are_refused(trio, tmp_path):
    from llmctl.generate.proxy import check_same_vocabulary

    _, _, _, tokenizer, root = trio
    other = make_tiny_model_dir("llama", tmp_path / "other", seed=2)
    from transformers import AutoTokenizer

    changed = AutoTokenizer.from_pretrained(other)
    changed.add_tokens(["<extra-token>"])
    changed.save_pretrained(other)
    with pytest.raises(DataError, match="shared vocabulary"):
        check_same_vocabulary({"model": tokenizer, "--proxy": changed})
    result = run_llmctl("chat", str(root / "large"), "--proxy", str(other), "--proxy-base", str(root / "small"),
                        "--prompt", "hi", "-n", "2")
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "shared vocabulary" in lines[0] and "Traceback" not in result.stderr
