"""Training data: formats, file:line errors, answer-only labels, validation split and packing isolation."""

from __future__ import annotations

import json

import pytest

from llmctl.data.batching import collate_packed, collate_padded, pack_examples
from llmctl.data.dataset import load_sft_data, split_validation
from llmctl.data.encode import IGNORE, encode_example
from llmctl.data.formats import parse_examples
from llmctl.data.records import read_records
from llmctl.errors import DataError
from tests.tiny_models import CHATML, make_tiny_model_dir, tiny_tokenizer_dir


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir())


def _write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) if not isinstance(r, str) else r for r in rows) + "\n")
    return path


def _alpaca(n):
    return [{"instruction": f"What is the capital of country {i}?", "input": "", "output": f"City {i}."}
            for i in range(n)]


def test_a_broken_line_7_names_the_file_and_line_7(tmp_path):
    rows = _alpaca(10)
    rows[6] = '{"instruction": "broken", "output": '
    path = _write_jsonl(tmp_path / "data.jsonl", rows)
    with pytest.raises(DataError) as error:
        read_records(path)
    message = str(error.value)
    assert message.startswith(f"{path}:7: invalid JSON") and "\n" not in message


def test_a_missing_field_is_named_with_its_line(tmp_path):
    rows = _alpaca(5)
    del rows[3]["output"]
    path = _write_jsonl(tmp_path / "data.jsonl", rows)
    with pytest.raises(DataError, match=rf"{path}:4: missing field 'output'"):
        parse_examples(read_records(path), "alpaca")
    with pytest.raises(DataError, match=r":2: missing field 'messages\[1\].content'"):
        parse_examples(read_records(_write_jsonl(tmp_path / "m.jsonl", [
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant"}]}])), "auto")


def test_formats_are_detected_from_jsonl_json_and_csv(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(_alpaca(3), indent=1))
    (tmp_path / "t.csv").write_text('text\n"hello there"\n"second, with comma"\n')
    _write_jsonl(tmp_path / "m.jsonl", [{"messages": [{"role": "user", "content": "q"},
                                                      {"role": "assistant", "content": "a"}]}])
    assert parse_examples(read_records(tmp_path / "a.json"))[1] == "alpaca"
    examples, detected = parse_examples(read_records(tmp_path / "t.csv"))
    assert detected == "text" and examples[1].text == "second, with comma" and examples[1].where.endswith(":3")
    assert parse_examples(read_records(tmp_path / "m.jsonl"))[1] == "messages"
    with pytest.raises(DataError, match=r"a\.json:2: missing field 'text'"):
        parse_examples(read_records(tmp_path / "a.json"), "text")


def test_instruction_data_takes_loss_on_the_answer_only(tokenizer):
    example = parse_examples([_record({"instruction": "Name a colour", "output": "Red"})])[0][0]
    encoded = encode_example(example, tokenizer, CHATML, max_length=128)
    answer = [t for t, label in zip(encoded.input_ids, encoded.labels, strict=True) if label != IGNORE]
    assert tokenizer.decode(answer) == "Red<|im_end|>\n"
    prompt = tokenizer.decode(encoded.input_ids[: len(encoded.input_ids) - len(answer)])
    assert prompt == "<|im_start|>user\nName a colour<|im_end|>\n<|im_start|>assistant\n"
    everything = encode_example(example, tokenizer, CHATML, max_length=128, train_on_prompt=True)
    assert everything.trained_tokens == len(everything.input_ids) - 1


def _record(values):
    from llmctl.data.records import Record

    return Record(values, "mem:1")


def test_validation_split_is_seeded_and_disjoint():
    items = list(range(50))
    train, validation = split_validation(items, 0.2, seed=3)
    assert len(validation) == 10 and not set(train) & set(validation)
    assert split_validation(items, 0.2, seed=3) == (train, validation)


def test_packed_batch_gives_each_example_the_logits_it_gets_alone(tmp_path, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    directory = make_tiny_model_dir("llama", tmp_path / "llama")
    model = AutoModelForCausalLM.from_pretrained(directory, attn_implementation="sdpa").eval()
    texts = ["The capital of France is Paris.", "red green blue", "Write a short poem about the sea and the sky."]
    path = _write_jsonl(tmp_path / "t.jsonl", [{"text": t} for t in texts])
    data = load_sft_data(path, tokenizer, max_length=64, val_split=0, packing=True)
    assert len(data.train) == 1 and len(data.train[0]) == 3  # all three share one row
    packed = collate_packed(data.train, tokenizer.pad_token_id)
    with torch.no_grad():
        packed_logits = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"],
                              use_cache=False).logits[0]
        start = 0
        for example in data.train[0]:
            alone = model(input_ids=torch.tensor([example.input_ids]), use_cache=False).logits[0]
            size = len(example.input_ids)
            torch.testing.assert_close(packed_logits[start:start + size], alone, atol=1e-5, rtol=1e-5)
            start += size
        # without restarting positions the examples would see each other: the check above can fail
        leaked = model(input_ids=packed["input_ids"], use_cache=False).logits[0]
    second = len(data.train[0][0].input_ids)
    assert not torch.allclose(leaked[second:second + 3], packed_logits[second:second + 3], atol=1e-3)


def test_packing_fills_rows_without_splitting_examples(tokenizer):
    from llmctl.data.encode import EncodedExample

    examples = [EncodedExample(tuple(range(n)), tuple(range(n))) for n in (5, 3, 4, 2, 6)]
    rows = pack_examples(examples, max_length=8)
    assert [sum(len(e.input_ids) for e in row) for row in rows] == [8, 6, 6]
    padded = collate_padded(examples[:2], pad_id=0)
    assert padded["labels"][1].tolist() == [0, 1, 2, IGNORE, IGNORE]
