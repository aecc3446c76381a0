"""LiPO-λ: the loss against the paper's formula computed pair by pair, training that ranks, and data errors."""

from __future__ import annotations

import json
import math
import random

import pytest

from llmctl.errors import DataError
from tests.align_fixtures import lora, tiny_causal_lm, word_tokenizer

PATTERN = "w7 w8 w9"


def paper_lambda_loss(policy: list[list], reference: list[list], scores: list[list[float]], beta: float):
    """LiPO-λ written from the paper, one list and one pair at a time (plain Python around torch scalars).

    s_i = β(log π(y_i|x) − log π_ref(y_i|x)); τ_i = rank of i by s (1 = best, ties in list order);
    G_i = 2^ψ_i − 1; D(τ) = log2(1 + τ); Δ_ij = |G_i − G_j|·|1/D(τ_i) − 1/D(τ_j)|;
    list loss = Σ_{ψ_i > ψ_j} Δ_ij · log(1 + exp(−(s_i − s_j))); batch loss = mean over lists.
    """
    import torch

    total = 0
    for logps, reference_logps, psi in zip(policy, reference, scores, strict=True):
        s = [beta * (p - r) for p, r in zip(logps, reference_logps, strict=True)]
        by_model = sorted(range(len(s)), key=lambda i: -s[i].item())  # stable: ties keep list order
        tau = {response: position + 1 for position, response in enumerate(by_model)}
        for i in range(len(s)):
            for j in range(len(s)):
                if psi[i] > psi[j]:
                    gain_i, gain_j = 2 ** psi[i] - 1, 2 ** psi[j] - 1
                    delta = abs(gain_i - gain_j) * abs(1 / math.log2(1 + tau[i]) - 1 / math.log2(1 + tau[j]))
                    total = total + delta * torch.log(1 + torch.exp(-(s[i] - s[j])))
    return total / len(scores)


def _padded(rows: list[list], width: int):
    import torch

    return torch.stack([torch.stack([*row, *[torch.zeros(())] * (width - len(row))]) for row in rows])


def test_lipo_loss_equals_the_papers_formula_with_gradients():
    """Acceptance 4 (LiPO): lists of different lengths (padding), tied scores, ranks by model score that differ
    from the data's order: loss and gradients of every log-probability equal the pair-by-pair computation."""
    import torch

    from llmctl_plugins.methods.lipo._loss import lipo_loss

    generator = torch.Generator().manual_seed(0)
    scores = [[3.0, 1.0, 2.0, 0.0], [0.5, 0.25], [1.0, 1.0, 0.0], [0.0, 2.0, 1.5, 1.0, 3.5]]
    policy = [torch.randn(len(s), generator=generator, dtype=torch.float64) * 5 for s in scores]
    reference = [torch.randn(len(s), generator=generator, dtype=torch.float64) * 5 for s in scores]
    for tensor in policy:
        tensor.requires_grad_(True)
    width = max(len(s) for s in scores)
    mask = torch.tensor([[k < len(s) for k in range(width)] for s in scores])
    psi = torch.tensor([[*s, *[0.0] * (width - len(s))] for s in scores], dtype=torch.float64)

    expected = paper_lambda_loss([list(p) for p in policy], [list(r) for r in reference], scores, beta=0.3)
    expected_grads = torch.autograd.grad(expected, policy)
    leaf = _padded([list(p) for p in policy], width).detach().requires_grad_(True)
    ours = lipo_loss(leaf, _padded([list(r) for r in reference], width), psi, mask, beta=0.3)
    ours.loss.backward()

    assert abs(ours.loss.item() - expected.item()) < 1e-9, (ours.loss.item(), expected.item())
    for row, grad in enumerate(expected_grads):
        torch.testing.assert_close(leaf.grad[row, :len(grad)], grad, atol=1e-9, rtol=0)
        assert not leaf.grad[row, len(grad):].any()  # padding takes no gradient
    assert all(g.abs().sum() > 0 for g in expected_grads)


def test_a_list_of_two_is_dpo_scaled_by_its_lambda_weight():
    import torch

    from llmctl_plugins.methods.dpo._loss import dpo_loss
    from llmctl_plugins.methods.lipo._loss import lipo_loss

    policy, reference = torch.tensor([[-3.0, -5.0], [-4.0, -2.0]]), torch.tensor([[-4.0, -4.0], [-3.0, -3.5]])
    scores = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    ours = lipo_loss(policy, reference, scores, torch.ones(2, 2, dtype=torch.bool), beta=0.1)
    dpo = dpo_loss(policy[:, 0], policy[:, 1], reference[:, 0], reference[:, 1], beta=0.1)
    delta = (2 ** 1 - 1) * (1 / math.log2(2) - 1 / math.log2(3))  # the chosen ranks 1st or 2nd: the same |Δ|
    assert float(ours.loss) == pytest.approx(delta * float(dpo.loss), rel=1e-6)


def lists(count: int, seed: int, size: int = 4) -> list[dict]:
    """Lists whose best-scored response contains ``w7 w8 w9``; the others are random words, scored lower."""
    rng = random.Random(seed)

    def words(n: int) -> str:
        return " ".join(f"w{rng.randrange(20, 200)}" for _ in range(n))

    records = []
    for _ in range(count):
        responses = [f"{words(2)} {PATTERN}", *(words(5) for _ in range(size - 1))]
        scores = [float(size - 1 - k) for k in range(size)]
        order = list(range(size))
        rng.shuffle(order)
        records.append({"prompt": words(4), "responses": [responses[k] for k in order],
                        "scores": [scores[k] for k in order]})
    return records


def write_jsonl(path, records) -> None:
    """One JSON object per line."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def our_batch(records: list[dict], tokenizer, list_size: int = 8) -> dict:
    """Our encoding and batching of ``records`` (lists capped at ``list_size``)."""
    from llmctl.data.encode import chat_template_for
    from llmctl_plugins.methods.lipo._data import cap_list, collate_lipo, encode_lipo, parse_lipo

    template = chat_template_for(tokenizer)
    items = [encode_lipo(cap_list(parse_lipo(r, "test"), list_size), tokenizer, 64, template) for r in records]
    return collate_lipo(items, tokenizer.pad_token_id)


def test_the_batched_model_loss_equals_scoring_each_response_alone():
    """Rows of lists of different lengths, padded into one batch: the loss and the adapter's gradients equal the
    paper's formula over log-probabilities from one forward pass per response."""
    import torch

    from llmctl.train.logprobs import completion_logprobs
    from llmctl_plugins.methods.lipo._loss import lipo_batch_loss

    tokenizer = word_tokenizer()
    records = [*lists(1, 0, size=3), *lists(1, 1, size=5)]
    policy = lora(tiny_causal_lm(seed=0, vocab_size=len(tokenizer)), init_b=True).train()
    batch = our_batch(records, tokenizer)
    ours = lipo_batch_loss(policy, batch, beta=0.5)
    ours.loss.backward()
    our_grads = {n: p.grad.clone() for n, p in policy.named_parameters() if p.requires_grad}
    policy.zero_grad()

    def alone(model, prompt: str, response: str):
        ids = tokenizer(prompt)["input_ids"], tokenizer(response)["input_ids"] + [tokenizer.eos_token_id]
        input_ids = torch.tensor([ids[0] + ids[1]])
        completion = torch.tensor([[0] * len(ids[0]) + [1] * len(ids[1])])
        return completion_logprobs(model, input_ids, torch.ones_like(input_ids), completion)[0][0]

    logps = [[alone(policy, r["prompt"], y) for y in r["responses"]] for r in records]
    with torch.no_grad(), policy.disable_adapter():
        reference = [[alone(policy, r["prompt"], y) for y in r["responses"]] for r in records]
    expected = paper_lambda_loss(logps, reference, [r["scores"] for r in records], beta=0.5)
    expected.backward()
    assert abs(float(ours.loss) - float(expected)) < 1e-5
    grads = {n: p.grad for n, p in policy.named_parameters() if p.requires_grad}
    assert sum(float(g.abs().sum()) for g in our_grads.values()) > 0
    for name, grad in our_grads.items():
        torch.testing.assert_close(grad, grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_lipo_on_the_training_loop_raises_the_best_responses(tmp_path):
    """A tiny run through the loop: held-out best-scored responses gain log-probability over the reference, more
    than the others; the run logs rewards and ranking accuracy and saves an adapter."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from llmctl.train.logprobs import completion_logprobs
    from tests.align_fixtures import finetune, metrics_of, word_model_dir

    model_dir = word_model_dir(tmp_path / "base")
    data = tmp_path / "lists.jsonl"
    write_jsonl(data, lists(24, 2))
    outcome = finetune(model_dir, "lipo", data, tmp_path / "runs", "max_steps=10", "batch_size=4",
                       "learning_rate=3e-3", "val_split=0")
    records = metrics_of(outcome.run)
    assert len(records) == 10
    for key in ("rewards/best", "rewards/worst", "rewards/margin", "rewards/accuracy"):
        assert key in records[-1]
    # at step 1 every s is 0 and the ranks are the list order; after that the margin of the best response grows
    assert records[-1]["rewards/margin"] > records[1]["rewards/margin"] + 0.2
    assert (outcome.run / "adapter_config.json").is_file()

    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), outcome.run).eval()
    held_out = lists(8, 3)
    batch = our_batch(held_out, word_tokenizer())
    inputs = (batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    with torch.no_grad():
        after, _ = completion_logprobs(tuned, *inputs)
        with tuned.disable_adapter():
            before, _ = completion_logprobs(tuned, *inputs)
    gain = (after - before).view(len(held_out), -1)
    best = batch["scores"].argmax(1)
    best_gain = gain[torch.arange(len(held_out)), best]
    others = gain.sum(1) - best_gain
    assert float(best_gain.mean()) > 1.0, gain
    assert float(best_gain.mean()) > float(others.mean() / (gain.shape[1] - 1)) + 1.0, gain


def test_long_lists_keep_the_best_the_worst_and_spread_ranks():
    from llmctl_plugins.methods.lipo._data import cap_list, parse_lipo

    example = parse_lipo({"prompt": "w1", "responses": [f"w{i}" for i in range(10, 19)],
                          "scores": [4, 8, 0, 7, 1, 6, 2, 5, 3]}, "test")
    capped = cap_list(example, 3)
    assert capped.scores == (4.0, 8.0, 0.0) and capped.responses == ("w10", "w11", "w12")  # ranks 1, 5, 9
    assert cap_list(example, 9) is example


BAD_LISTS = [
    ({"prompt": "w1", "responses": ["w2", "w3"]}, "missing field 'scores' (LiPO data needs prompt, responses"),
    ({"prompt": "w1", "responses": ["w2", "w3"], "scores": [1, 0, 2]}, "field 'scores' has 3 values for 2 responses"),
    ({"prompt": "w1", "responses": ["w2", "w3", "w4"], "scores": [1, 0]},
     "field 'scores' has 2 values for 3 responses"),
    ({"prompt": "w1", "responses": ["w2"], "scores": [1]},
     "field 'responses' must hold at least 2 responses to rank, got 1"),
    ({"prompt": "", "responses": ["w2", "w3"], "scores": [1, 0]}, "field 'prompt' must be a non-empty string"),
    ({"prompt": "w1", "responses": "w2", "scores": [1]}, "field 'responses' must be a list of responses"),
    ({"prompt": "w1", "responses": ["w2", "w3"], "scores": "1,0"}, "field 'scores' must be a list of numbers"),
    ({"prompt": "w1", "responses": ["w2", "w3"], "scores": [1, "a"]},
     "field 'scores' value 1 must be a finite number, got \"a\""),
    ({"prompt": "w1", "responses": ["w2", "w3"], "scores": [True, False]},
     "field 'scores' value 0 must be a finite number, got true"),
    ({"prompt": "w1", "responses": ["w2", ""], "scores": [1, 0]}, "field 'responses[1]' must be a non-empty string"),
    ({"prompt": "w1", "responses": ["w2", "w3"], "scores": [2, 2]},
     "every score is 2, so the list carries no preference"),
    ({"responses": ["w2", "w3"], "scores": [1, 0]}, "missing field 'prompt'"),
]


@pytest.mark.parametrize(("record", "message"), BAD_LISTS, ids=[m.split(" (")[0][:40] for _, m in BAD_LISTS])
def test_bad_lists_are_reported_with_file_and_line(tmp_path, record, message):
    from llmctl_plugins.methods.lipo._data import read_lipo

    path = tmp_path / "lists.jsonl"
    write_jsonl(path, [*lists(2, 0), record])
    with pytest.raises(DataError) as error:
        read_lipo(path)
    assert str(error.value).startswith(f"{path}:3: {message}")
    assert "\n" not in str(error.value)


def test_bad_data_stops_finetune_before_the_model_loads_and_dry_run_too(tmp_path, capsys, monkeypatch):
    """Acceptance 5: `error: file:line: what is wrong` (exit 3) before any model loads; `--dry-run` agrees."""
    from llmctl.train import finetune
    from tests.align_fixtures import llmctl_in_process, word_model_dir

    def no_model(*_args, **_kwargs):
        raise AssertionError("the model was loaded before the data was checked")

    monkeypatch.setattr(finetune, "load_and_prepare", no_model)
    monkeypatch.setenv("LLMCTL_RUNS_DIR", str(tmp_path / "runs"))
    model_dir = word_model_dir(tmp_path / "base")
    path = tmp_path / "lists.jsonl"
    write_jsonl(path, [*lists(3, 0), {"prompt": "w1", "responses": ["w2", "w3"], "scores": [3, 2, 1]}])
    for extra in ((), ("--dry-run",)):
        code, _, err = llmctl_in_process(capsys, "finetune", str(model_dir), "--method", "lipo", "--data", str(path),
                                         *extra)
        assert code == 3, err
        assert err.strip().splitlines()[-1] == f"error: {path}:4: field 'scores' has 3 values for 2 responses"
    write_jsonl(path, lists(3, 0))
    code, out, err = llmctl_in_process(capsys, "finetune", str(model_dir), "--method", "lipo", "--data", str(path),
                                       "--dry-run")
    assert code == 0, err
