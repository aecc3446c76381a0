"""A model folder (``config.json`` plus safetensors, as transformers' ``save_pretrained`` writes it) names a model
for every verb, whatever its architecture: ``gpt2`` has no family plugin and must work as well as ``llama``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli_helpers import run_llmctl, run_main

GPT2 = {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 64, "vocab_size": 512, "bos_token_id": 1,
        "eos_token_id": 2}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    """``tiny-gpt2`` (transformers' GPT-2, no llmctl family) and ``tiny-llama`` (a family's tiny config), each with
    the tiny test tokenizer, saved with ``save_pretrained`` into one parent folder."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from tests.tiny_models import make_tiny_model_dir, tiny_tokenizer_dir

    parent = tmp_path_factory.mktemp("folders")
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(**GPT2)).save_pretrained(parent / "tiny-gpt2")
    for file in tiny_tokenizer_dir().iterdir():
        shutil.copy(file, parent / "tiny-gpt2" / file.name)
    make_tiny_model_dir("llama", parent / "tiny-llama")
    return parent


def stored_parameters(folder: Path) -> int:
    """Parameters in a folder's weights, counted by loading them (the reference for ``info``'s header count)."""
    from safetensors.torch import load_file

    return sum(tensor.numel() for tensor in load_file(folder / "model.safetensors").values())


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    """An empty store, so no artefact of the same name can stand in for a folder."""
    monkeypatch.setenv("LLMCTL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def info_json(capsys, monkeypatch, ref: str, cwd: Path) -> dict:
    """``llmctl info REF --json`` run in this process from ``cwd``; it must succeed."""
    monkeypatch.chdir(cwd)
    code, out, err = run_main(capsys, "info", ref, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("ref", ["./tiny-gpt2", "tiny-gpt2", "tiny-gpt2/", "ABSOLUTE"])
def test_info_describes_a_gpt2_folder_no_family_handles(folders, home, capsys, monkeypatch, ref):
    ref = str(folders / "tiny-gpt2") if ref == "ABSOLUTE" else ref
    described = info_json(capsys, monkeypatch, ref, folders)
    assert described["model"] == "tiny-gpt2" and described["family"] is None
    assert described["path"] == str(folders / "tiny-gpt2") and described["format"] == "safetensors"
    assert described["config"]["model_type"] == "gpt2"
    total = stored_parameters(folders / "tiny-gpt2")
    assert described["parameters"]["total"] == total == described["weights"]["parameters"]
    assert described["weights"]["dtypes"] == ["F32"]
    assert described["weights"]["bytes"] == (folders / "tiny-gpt2" / "model.safetensors").stat().st_size


def test_info_table_of_a_gpt2_folder_reads_gpt2s_own_config_names(folders, tmp_path):
    result = run_llmctl("info", "./tiny-gpt2", cwd=folders, env={"LLMCTL_HOME": str(tmp_path / "home")})
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    rows = {line.strip("│ ").split("│")[0].strip(): line.split("│")[2].strip()
            for line in result.stdout.splitlines() if line.count("│") == 3}
    assert rows["model type"] == "gpt2" and rows["layers"] == "2" and rows["hidden size"] == "32"
    assert rows["attention heads"] == "2" and rows["context length"] == "64"
    assert rows["weights"].startswith("safetensors, F32")
    assert "family unknown" in " ".join(result.stdout.split())  # the title may wrap


def test_info_of_a_family_folder_names_the_family(folders, home, capsys, monkeypatch):
    described = info_json(capsys, monkeypatch, "./tiny-llama", folders)
    assert described["family"] == "llama" and described["config"]["model_type"] == "llama"
    assert described["parameters"]["total"] == stored_parameters(folders / "tiny-llama")


def test_a_folder_wins_over_the_registry_model_of_the_same_name(folders, home, tmp_path, capsys, monkeypatch):
    shutil.copytree(folders / "tiny-gpt2", tmp_path / "smollm2-135m")
    described = info_json(capsys, monkeypatch, "smollm2-135m", tmp_path)
    assert described["config"]["model_type"] == "gpt2" and described["path"] == str(tmp_path / "smollm2-135m")


def test_a_path_that_is_no_model_says_why_in_one_line(home, tmp_path, capsys, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    for ref, why in (("./empty", "no config.json"), ("./missing", "no such file or folder")):
        code, _, err = run_main(capsys, "info", ref)
        assert code != 0 and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1 and why in err


@pytest.mark.parametrize(("argv", "expected"), [
    (["chat", "./tiny-gpt2", "-p", "hello", "-t", "0", "--max-new-tokens", "4"], "tokens"),
    (["finetune", "./tiny-gpt2", "--data", "DATA", "--dry-run"], "trainable parameters"),
    (["quantize", "./tiny-llama", "--method", "gguf:q8_0", "--name", "tl-q8"], "Wrote tl-q8"),
    (["convert", "./tiny-llama", "--to", "gguf", "--name", "tl-f16"], "Wrote tl-f16"),
])
def test_every_verb_takes_a_model_folder(folders, tmp_path, argv, expected):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": f"The capital of France is Paris. {i}"}) + "\n" for i in range(4)))
    argv = [str(data) if arg == "DATA" else arg for arg in argv]
    env = {"LLMCTL_HOME": str(tmp_path / "home"), "LLMCTL_RUNS_DIR": str(tmp_path / "runs")}
    result = run_llmctl(*argv, cwd=folders, env=env)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout + result.stderr


def test_gguf_verbs_on_a_gpt2_folder_name_the_missing_mapping_not_an_unknown_model(folders, tmp_path):
    result = run_llmctl("convert", "./tiny-gpt2", "--to", "gguf", cwd=folders, env={"LLMCTL_HOME": str(tmp_path)})
    assert result.returncode != 0 and "unknown model" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: no family plugin maps model type 'gpt2'")
