"""KTO: loss and gradients against trl's KTOTrainer, a training run that learns from labels, and data errors."""

from __future__ import annotations

import copy
import json
import random

import pytest

from llmctl.errors import DataError
from tests.align_fixtures import lora, tiny_causal_lm, word_tokenizer

PATTERN = "w7 w8 w9"


def kto_rows(count: int, seed: int, chat: bool = False) -> list[dict]:
    """Rows whose desirable completions contain ``w7 w8 w9`` and whose undesirable ones are random words."""
    rng = random.Random(seed)

    def words(n: int) -> str:
        return " ".join(f"w{rng.randrange(20, 200)}" for _ in range(n))

    rows = []
    for index in range(count):
        label = index % 2 == 0
        prompt, completion = words(4), f"{words(2)} {PATTERN}" if label else words(5)
        if chat:
            rows.append({"prompt": [{"role": "user", "content": prompt}],
                         "completion": [{"role": "assistant", "content": completion}], "label": label})
        else:
            rows.append({"prompt": prompt, "completion": completion, "label": label})
    return rows


def write_jsonl(path, records) -> None:
    """One JSON object per line."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def our_batch(records: list[dict], tokenizer) -> dict:
    """Our encoding and batching of ``records``, in the order given."""
    from llmctl.data.encode import chat_template_for
    from llmctl_plugins.methods.kto._data import collate_kto, encode_kto, parse_kto

    template = chat_template_for(tokenizer)
    items = [encode_kto(e, tokenizer, 64, template) for r in records for e in parse_kto(r, "test")]
    return collate_kto(items, tokenizer.pad_token_id, 64)


def _trl_trainer(oracle_model, reference, tokenizer, records, tmp_path, adapter=None, **config):
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer

    args = KTOConfig(output_dir=str(tmp_path / "trl"), bf16=False, use_cpu=True, report_to=[], max_length=64,
                     per_device_train_batch_size=len(records), **config)
    return KTOTrainer(model=oracle_model, ref_model=reference, args=args, train_dataset=Dataset.from_list(records),
                      processing_class=tokenizer, peft_config=adapter)


@pytest.mark.parametrize(("adapter", "policy_seed", "weights", "clamped"), [
    (False, 0, (1.0, 1.0), True),    # full weights and a frozen reference: the mismatched log-ratio is < 0, z0 = 0
    (False, 1, (1.3, 0.7), False),   # the two models swapped: z0 > 0; unequal label weights
    (True, 0, (1.0, 1.0), False),    # a LoRA adapter; the reference is the adapter switched off
])
def test_kto_loss_and_gradients_match_trl(tmp_path, adapter, policy_seed, weights, clamped):
    """Acceptance 1 (KTO): trl 1.16's KTOTrainer, given the same rows, builds the same batch (rows, mismatched KL
    rows, labels) and computes the same loss and gradients, within 1e-5."""
    import torch

    from llmctl_plugins.methods.kto._loss import kto_batch_loss

    tokenizer = word_tokenizer()
    records = kto_rows(6, 1, chat=True)
    records[1]["label"] = True  # unbalanced: 4 desirable, 2 undesirable
    policy = tiny_causal_lm(seed=policy_seed, vocab_size=len(tokenizer))
    oracle_model = copy.deepcopy(policy)
    if adapter:
        policy, reference = lora(policy, init_b=True), None
    else:
        reference = tiny_causal_lm(seed=1 - policy_seed, vocab_size=len(tokenizer)).eval()
    policy.train()
    desirable_weight, undesirable_weight = weights
    batch = our_batch(records, tokenizer)
    ours = kto_batch_loss(policy, batch, beta=0.1, desirable_weight=desirable_weight,
                          undesirable_weight=undesirable_weight, reference_model=reference)
    ours.loss.backward()

    peft_config = policy.peft_config["default"] if adapter else None
    trainer = _trl_trainer(oracle_model, copy.deepcopy(reference), tokenizer, records, tmp_path, peft_config,
                           beta=0.1, desirable_weight=desirable_weight, undesirable_weight=undesirable_weight)
    if adapter:  # a new adapter from peft_config means "the base is the reference", as ours; copy ours in
        assert not trainer.model.load_state_dict(policy.state_dict(), strict=False).missing_keys
    theirs_batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(records))])
    for key in ("input_ids", "attention_mask", "completion_mask", "KL_input_ids", "KL_attention_mask",
                "KL_completion_mask", "label"):
        assert torch.equal(batch[key], theirs_batch[key].to(batch[key].dtype)), key
    trainer.model.train()
    theirs = trainer.compute_loss(trainer.model, theirs_batch)
    theirs.backward()

    difference = abs(ours.loss.item() - theirs.item())
    assert difference < 1e-5, (ours.loss.item(), theirs.item())
    assert abs(ours.loss.item() - 0.5 * (3 * desirable_weight + undesirable_weight) / 4) > 1e-4  # not at init
    assert (float(ours.kl) == 0.0) == clamped
    our_grads = {n: p.grad for n, p in policy.named_parameters() if p.requires_grad}
    their_grads = {n: p.grad for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert our_grads.keys() == their_grads.keys()
    assert sum(float(g.abs().sum()) for g in our_grads.values()) > 0
    for name, grad in our_grads.items():
        torch.testing.assert_close(grad, their_grads[name], atol=1e-5, rtol=0, msg=name)


def test_kto_on_the_training_loop_raises_desirable_completions(tmp_path):
    """A tiny run through the loop: held-out desirable completions gain log-probability over the reference,
    undesirable ones do not; the run logs the KL reference point and rewards and saves an adapter."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from llmctl.train.logprobs import completion_logprobs
    from tests.align_fixtures import finetune, metrics_of, word_model_dir

    model_dir = word_model_dir(tmp_path / "base")
    data = tmp_path / "kto.jsonl"
    write_jsonl(data, kto_rows(32, 2))
    outcome = finetune(model_dir, "kto", data, tmp_path / "runs", "max_steps=12", "batch_size=8",
                       "learning_rate=3e-3", "val_split=0")
    records = metrics_of(outcome.run)
    assert len(records) == 12
    for key in ("kl", "rewards/chosen", "rewards/rejected", "rewards/margin"):
        assert key in records[-1]
    assert records[-1]["loss"] < records[0]["loss"]
    assert (outcome.run / "adapter_config.json").is_file()

    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), outcome.run).eval()
    held_out = our_batch(kto_rows(16, 3), word_tokenizer())
    inputs = (held_out["input_ids"], held_out["attention_mask"], held_out["completion_mask"])
    with torch.no_grad():
        after, _ = completion_logprobs(tuned, *inputs)
        with tuned.disable_adapter():
            before, _ = completion_logprobs(tuned, *inputs)
    gain = after - before
    desirable, undesirable = gain[held_out["label"]], gain[~held_out["label"]]
    assert float(desirable.mean()) > 1.0, gain
    assert float(desirable.mean()) > float(undesirable.mean()) + 1.0, gain


def test_preference_pairs_are_read_as_two_labelled_rows(tmp_path):
    from llmctl_plugins.methods.kto._data import read_kto

    path = tmp_path / "pairs.jsonl"
    write_jsonl(path, [{"prompt": "w1", "chosen": "w2", "rejected": "w3"}])
    rows = read_kto(path)
    assert [(r.completion, r.label) for r in rows] == [("w2", True), ("w3", False)]


def test_csv_labels_are_the_words_true_and_false(tmp_path):
    from llmctl_plugins.methods.kto._data import read_kto

    path = tmp_path / "rows.csv"
    path.write_text("prompt,completion,label\nw1,w2,true\nw3,w4,False\nw5,w6,yes\n")
    with pytest.raises(DataError, match=r"rows\.csv:4: field 'label' must be true or false, got \"yes\""):
        read_kto(path)
    path.write_text("prompt,completion,label\nw1,w2,true\nw3,w4,False\n")
    assert [r.label for r in read_kto(path)] == [True, False]


BAD_ROWS = [
    ({"prompt": "w1", "completion": "w2"}, "missing field 'label' (KTO data needs prompt, completion, label"),
    ({"prompt": "w1", "completion": "w2", "label": 1}, "field 'label' must be true or false, got 1"),
    ({"prompt": "w1", "completion": "w2", "label": "true"}, "field 'label' must be true or false, got \"true\""),
    ({"prompt": "w1", "completion": "w2", "label": None}, "field 'label' must be true or false, got null"),
    ({"prompt": "", "completion": "w2", "label": True}, "field 'prompt' must be a non-empty string"),
    ({"prompt": [{"role": "user", "content": " "}], "completion": "w2", "label": True},
     "field 'prompt' has only empty messages"),
    ({"completion": "w2", "label": True}, "missing field 'prompt'"),
    ({"prompt": "w1", "label": False}, "missing field 'completion'"),
    ({"prompt": "w1", "completion": "", "label": False}, "field 'completion' must be a non-empty string"),
]


@pytest.mark.parametrize(("record", "message"), BAD_ROWS, ids=[m.split(" (")[0] for _, m in BAD_ROWS])
def test_bad_rows_are_reported_with_file_and_line(tmp_path, record, message):
    from llmctl_plugins.methods.kto._data import read_kto

    path = tmp_path / "kto.jsonl"
    write_jsonl(path, [*kto_rows(2, 0), record])
    with pytest.raises(DataError) as error:
        read_kto(path)
    assert str(error.value).startswith(f"{path}:3: {message}")
    assert "\n" not in str(error.value)


def test_bad_data_stops_finetune_before_the_model_loads_and_dry_run_too(tmp_path, capsys, monkeypatch):
    """Acceptance 5: the CLI prints `error: file:line: what is wrong` (exit 3) before any model loads, and
    `--dry-run` refuses the same file."""
    from llmctl.train import finetune
    from tests.align_fixtures import llmctl_in_process, word_model_dir

    def no_model(*_args, **_kwargs):
        raise AssertionError("the model was loaded before the data was checked")

    monkeypatch.setattr(finetune, "load_and_prepare", no_model)
    monkeypatch.setenv("LLMCTL_RUNS_DIR", str(tmp_path / "runs"))
    model_dir = word_model_dir(tmp_path / "base")
    path = tmp_path / "kto.jsonl"
    write_jsonl(path, [*kto_rows(3, 0), {"prompt": "w1", "completion": "w2", "label": "no"}])
    for extra in ((), ("--dry-run",)):
        code, _, err = llmctl_in_process(capsys, "finetune", str(model_dir), "--method", "kto", "--data", str(path),
                                         *extra)
        assert code == 3, err
        assert err.strip().splitlines()[-1] == f"error: {path}:4: field 'label' must be true or false, got \"no\""
    write_jsonl(path, kto_rows(3, 0))
    code, out, err = llmctl_in_process(capsys, "finetune", str(model_dir), "--method", "kto", "--data", str(path),
                                       "--dry-run")
    assert code == 0, err


def test_a_batch_of_one_row_is_refused(tmp_path, capsys):
    """With one row per micro-batch the mismatched row is the row itself, and z0 would be its own reward."""
    from tests.align_fixtures import llmctl_in_process, word_model_dir

    path = tmp_path / "kto.jsonl"
    write_jsonl(path, kto_rows(3, 0))
    code, _, err = llmctl_in_process(capsys, "finetune", str(word_model_dir(tmp_path / "base")), "--method", "kto",
                                     "--data", str(path), "batch_size=1", "--dry-run")
    assert code != 0
    assert "setting 'batch_size' must be at least 2, got 1" in err.strip().splitlines()[-1]
