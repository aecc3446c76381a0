"""The cached decode loop and chat session, on tiny random models (fast, no real weights)."""

from __future__ import annotations

import pytest

from llmctl.errors import DataError
from llmctl.generate.params import SamplingParams
from tests.tiny_models import make_tiny_model_dir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny llama model, its tokenizer and a transformers chat engine on it."""
    from llmctl.store import Artifact
    from llmctl_plugins.engines.transformers._chat import load_transformers_engine

    path = make_tiny_model_dir("llama", tmp_path_factory.mktemp("tiny") / "llama")
    engine = load_transformers_engine(Artifact("tiny", path, {"format": "safetensors"}), dtype="float32")
    return engine


def _generate(model, ids, n):
    import torch

    out = model.generate(torch.tensor([ids]), max_new_tokens=n, min_new_tokens=n, do_sample=False)
    return out[0, len(ids):].tolist()


def test_cached_loop_gives_the_greedy_tokens_of_generate_across_turns(tiny):
    from llmctl.generate.decode import CachedCausalLM, decode_tokens

    source = CachedCausalLM(tiny.model)
    greedy = SamplingParams(temperature=0, max_new_tokens=12)
    first = tiny.encode_chat([{"role": "user", "content": "What is the capital of France?"}])
    reply = list(decode_tokens(source, first, greedy, stop_ids=set()))
    assert reply == _generate(tiny.model, first, 12)
    conversation = [{"role": "user", "content": "What is the capital of France?"},
                    {"role": "assistant", "content": tiny.tokenizer.decode(reply, skip_special_tokens=True)},
                    {"role": "user", "content": "And of Italy?"}]
    second = tiny.encode_chat(conversation)
    reply2 = list(decode_tokens(source, second, greedy, stop_ids=set()))
    assert source.reused_tokens >= len(first)  # the first turn was not fed again
    assert reply2 == _generate(tiny.model, second, 12)


def test_seeded_sampling_repeats_and_different_seeds_differ(tiny):
    ids = tiny.encode_text("The capital of")
    runs = {seed: "".join(tiny.stream(ids, SamplingParams(temperature=1.5, top_k=0, top_p=1.0, max_new_tokens=16,
                                                          seed=seed))) for seed in (1, 1, 2)}
    again = "".join(tiny.stream(ids, SamplingParams(temperature=1.5, top_k=0, top_p=1.0, max_new_tokens=16, seed=1)))
    assert runs[1] == again
    assert runs[1] != runs[2]


def test_history_is_trimmed_oldest_first_with_a_notice(tiny):
    from llmctl.generate.session import ChatSession

    notices = []
    tiny.context_size = 60
    try:
        session = ChatSession(tiny, SamplingParams(temperature=0, max_new_tokens=8), system="Be brief.",
                              notify=notices.append)
        for question in ("first question about the sea", "second question about the sky", "third question"):
            "".join(session.ask(question))
        assert notices and "history trimmed" in notices[0]
        assert session.messages[0]["content"] != "first question about the sea"
        assert session.conversation()[0] == {"role": "system", "content": "Be brief."}
        assert len(tiny.encode_chat(session.conversation())) <= 60
    finally:
        tiny.context_size = 512


def test_save_and_load_round_trip_and_bad_files(tiny, tmp_path):
    from llmctl.generate.session import ChatSession

    session = ChatSession(tiny, SamplingParams(temperature=0, max_new_tokens=4), system="Be brief.")
    "".join(session.ask("hello"))
    saved = session.save(tmp_path / "chat.json")
    other = ChatSession(tiny, SamplingParams())
    other.load(saved)
    assert other.messages == session.messages and other.system == "Be brief."
    (tmp_path / "bad.json").write_text('{"messages": [{"role": "robot", "content": "x"}]}')
    with pytest.raises(DataError, match="message 0"):
        other.load(tmp_path / "bad.json")


def test_params_parse_from_slash_command_text():
    params = SamplingParams().updated("temperature", "0.2").updated("top-k", "5")
    assert (params.temperature, params.top_k) == (0.2, 5)
    with pytest.raises(DataError, match="unknown setting"):
        params.updated("warmth", "1")
    with pytest.raises(DataError, match="top-p"):
        params.updated("top_p", "2")
