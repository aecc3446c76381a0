"""Valid input that used to be refused (issue 16, defect 5): ``info`` of a model folder or a ``.gguf`` file, and
``chat --allow-pickle`` of a checkpoint whose only weights are ``pytorch_model.bin``."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import run_llmctl
from tests.tiny_models import make_tiny_model_dir


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private, empty store for the llmctl subprocesses."""
    monkeypatch.setenv("LLMCTL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A tiny random llama folder (safetensors + tokenizer) and its true parameter count."""
    return make_tiny_model_dir("llama", tmp_path_factory.mktemp("tiny") / "tiny-llama")


def _parameters(folder) -> int:
    from transformers import AutoModelForCausalLM

    return sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(folder).parameters())


@pytest.fixture(scope="module")
def pickle_dir(tmp_path_factory, tiny_dir):
    """The tiny model saved as pickle only: ``pytorch_model.bin`` + config + tokenizer, no safetensors.

    transformers 5 ignores ``save_pretrained(..., safe_serialization=False)`` (it always writes safetensors), so the
    state dict is pickled with ``torch.save`` as older transformers and many hub checkpoints did.
    """
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("pickle") / "pickle-llama"
    shutil.copytree(tiny_dir, folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "pytorch_model.bin")
    assert (folder / "pytorch_model.bin").is_file() and not list(folder.glob("*.safetensors"))
    return folder


def test_info_of_a_model_folder_counts_its_parameters(home, tiny_dir):
    result = run_llmctl("info", str(tiny_dir), "--json")
    assert result.returncode == 0, result.stderr
    described = json.loads(result.stdout)
    assert described["model"] == "tiny-llama" and described["family"] == "llama"
    assert described["config"]["model_type"] == "llama"
    assert described["parameters"]["total"] == _parameters(tiny_dir)
    table = run_llmctl("info", str(tiny_dir))
    assert table.returncode == 0, table.stderr
    assert "tiny-llama" in table.stdout and "Estimated memory" in table.stdout


def test_info_of_a_gguf_file_reads_its_metadata(home, tiny_dir, tmp_path):
    from llmctl.convert.gguf_export import export_gguf

    gguf = tmp_path / "tiny.gguf"
    export_gguf(tiny_dir, gguf, dtype="f16")
    result = run_llmctl("info", str(gguf), "--json")
    assert result.returncode == 0, result.stderr
    described = json.loads(result.stdout)
    assert described["family"] == "llama" and described["path"] == str(gguf.resolve())
    assert described["format"] == "gguf"
    config = json.loads((tiny_dir / "config.json").read_text())
    for key in ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size"):
        assert described["config"][key] == config[key], key
    assert described["parameters"]["total"] == _parameters(tiny_dir)


def test_info_of_a_pickle_only_folder_needs_no_flag_and_reads_no_weights(home, pickle_dir, tiny_dir):
    result = run_llmctl("info", str(pickle_dir), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["parameters"]["total"] == _parameters(tiny_dir)


def test_info_of_a_broken_gguf_is_one_line(home, tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF\x03\x00\x00\x00")
    result = run_llmctl("info", str(broken))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: {broken}: not a readable GGUF file (truncated or damaged)"], result.stderr


def test_info_of_a_store_artefact_by_name(home, tiny_dir):
    import shutil

    from llmctl.store import create_artifact

    with create_artifact("tiny-stored", kind="model", format="safetensors", origin="test") as folder:
        shutil.copytree(tiny_dir, folder, dirs_exist_ok=True)
    result = run_llmctl("info", "tiny-stored", "--json")
    assert result.returncode == 0, result.stderr
    described = json.loads(result.stdout)
    assert described["model"] == "tiny-stored" and described["format"] == "safetensors"
    assert described["parameters"]["total"] == _parameters(tiny_dir)


def test_chat_runs_a_pickle_only_checkpoint_with_allow_pickle(home, pickle_dir):
    result = run_llmctl("chat", str(pickle_dir), "--allow-pickle", "--prompt", "Hello", "-t", "0", "-n", "4")
    assert result.returncode == 0, result.stderr
    assert "tok/s" in result.stderr


def test_chat_refuses_a_pickle_only_checkpoint_without_the_flag_in_one_line(home, pickle_dir):
    result = run_llmctl("chat", str(pickle_dir), "--prompt", "Hello", "-n", "4")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--allow-pickle" in lines[0], result.stderr


def test_the_engine_itself_refuses_pickle_unless_allowed(pickle_dir):
    from llmctl.errors import DataError
    from llmctl.store import Artifact
    from llmctl_plugins.engines.transformers._chat import load_hf_model

    artefact = Artifact("pickle-llama", pickle_dir, {"format": "pytorch"})
    with pytest.raises(DataError, match="--allow-pickle"):
        load_hf_model(artefact, "float32")
    model, _ = load_hf_model(artefact, "float32", allow_pickle=True)
    assert sum(p.numel() for p in model.parameters()) > 0
