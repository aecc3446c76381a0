"""Names of store artefacts and runs are validated in one place, and two writers of one name are serialised.

Issue 16, defects 3 (``--name ../escape`` wrote outside the store or recorded a path as the name) and 4 (two
``convert --name X`` at once both said "Wrote"; one artefact was lost).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading

import pytest

from llmctl import store
from llmctl.errors import DataError
from llmctl.store import create_artifact, find_artifact, list_artifacts, models_dir, run_path, runs_dir, validate_name
from tests.cli_helpers import LLMCTL, run_llmctl
from tests.tiny_models import make_tiny_model_dir

BAD_NAMES = ["../escape", "a/b", "a\\b", "..", ".hidden", "", " ", "/abs", "~user", "a..b", "x" * 101,
             "-dash", "tab\there", "sp ace", "née"]
GOOD_NAMES = ["conc-diff", "smollm2-135m-q8_0", "my.model_v2+lora", "A", "x" * 100]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private, empty store (and runs folder) for this test and the llmctl subprocesses it starts."""
    monkeypatch.setenv("LLMCTL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LLMCTL_RUNS_DIR", str(tmp_path / "home" / "runs"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A tiny random llama model folder with a tokenizer."""
    return make_tiny_model_dir("llama", tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.mark.parametrize("name", BAD_NAMES)
def test_user_names_that_are_paths_or_odd_are_refused_in_one_line(name):
    with pytest.raises(DataError) as caught:
        validate_name(name, "run")
    message = str(caught.value)
    assert message.startswith(f"invalid run name {name!r}: ") and "\n" not in message


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_plain_names_pass(name):
    assert validate_name(name) == name


def test_names_made_from_hub_ids_stay_valid_but_paths_do_not(home):
    for name in ("HuggingFaceTB/SmolLM2-135M", "org/model@main", "org/model@main-q8_0", "My Model-q8_0"):
        assert validate_name(name, derived=True) == name
    for name in ("../escape-q", "org/../x", "/etc/x", "a//b", "./x", "a\\..\\b"):
        with pytest.raises(DataError):
            validate_name(name, derived=True)
        with pytest.raises(DataError), create_artifact(name, kind="model", format="safetensors", origin="test"):
            pass
    assert list_artifacts() == []


def test_run_paths_stay_inside_the_runs_folder(home):
    assert run_path("20261123-101500-smollm2-135m-lora") == runs_dir() / "20261123-101500-smollm2-135m-lora"
    for name in ("../escape-run", "a/b", "/tmp/x", ".."):
        with pytest.raises(DataError):
            run_path(name)


@pytest.mark.parametrize("verb", [
    ["convert", "{model}", "--to", "gguf", "--name", "../escape-c"],
    ["quantize", "{model}", "--method", "gguf:q8_0", "--name", "../escape-q"],
    ["merge", "{model}", "{model}", "--name", "../escape-m"],
])
def test_verbs_refuse_a_name_that_is_a_path_before_any_work(home, tiny_dir, verb):
    argv = [str(tiny_dir) if part == "{model}" else part for part in verb]
    result = run_llmctl(*argv)
    assert result.returncode == 3, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid artefact name '../escape-"), result.stderr
    assert "Traceback" not in result.stderr and "Error:" not in lines[0]
    assert list_artifacts() == []
    assert not any(p.name.startswith("escape-") for p in [*home.parent.iterdir(), *models_dir().glob("*")])


@pytest.fixture
def data_file(tmp_path):
    """A one-example instruction file."""
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"instruction": "Say hi.", "output": "Hi!"}) + "\n")
    return data


def test_finetune_refuses_a_run_name_that_is_a_path(home, data_file, tiny_dir):
    result = run_llmctl("finetune", str(tiny_dir), "--data", str(data_file), "max_steps=1", "--name", "../escape-run")
    assert result.returncode == 3, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid run name '../escape-run'"), result.stderr
    assert not (runs_dir().parent / "escape-run").exists()
    assert not (runs_dir() / "escape-run").exists()


def test_finetune_refuses_an_empty_run_name_even_in_a_dry_run(home, data_file, tiny_dir):
    result = run_llmctl("finetune", str(tiny_dir), "--data", str(data_file), "--dry-run", "--name", "")
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: invalid run name '': it is empty")


def _convert(tiny_dir, *extra: str) -> list[str]:
    return [LLMCTL, "convert", str(tiny_dir), "--to", "gguf", "--name", "conc-diff", *extra]


def _start_second_writer(argv: list[str]) -> subprocess.Popen:
    """Start ``argv`` and return once it says it waits for the lock; fail if it exits without waiting."""
    second = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "COLUMNS": "200"})
    killer = threading.Timer(300, second.kill)
    killer.start()
    seen = []
    try:
        for line in second.stderr:  # blocks until it says it waits, or it exits (today's main: it wrote)
            seen.append(line)
            if "waiting for another llmctl process" in line:
                return second
    finally:
        killer.cancel()
    out, err = second.communicate()
    pytest.fail(f"the second writer did not wait for the first: {''.join(seen) + err!r} {out!r}")


def test_a_second_writer_of_one_name_waits_then_fails_as_a_sequential_one_would(home, tiny_dir):
    """Deterministic: this process holds the name (a writer mid-write); the CLI's convert must wait for it and
    then refuse exactly as a convert started after it finished does (today's main wrote over it and said Wrote)."""
    env = {**os.environ, "COLUMNS": "200"}
    with create_artifact("conc-diff", kind="model", format="gguf", origin="test", extra={"file": "x.gguf"}) as folder:
        (folder / "x.gguf").write_bytes(b"first writer")
        second = _start_second_writer(_convert(tiny_dir, "--dtype", "q8_0"))
    out, err = second.communicate(timeout=300)
    assert second.returncode == 1, out + err
    concurrent = err.strip().splitlines()
    assert len(concurrent) == 1 and "already exists" in concurrent[0], err
    assert "Wrote" not in out
    artefact = find_artifact("conc-diff")
    assert artefact is not None and (artefact.path / "x.gguf").read_bytes() == b"first writer"
    sequential = subprocess.run(_convert(tiny_dir), capture_output=True, text=True, env=env, timeout=300)
    assert sequential.returncode == 1
    assert sequential.stderr.strip().splitlines() == concurrent


def test_overwrite_waits_for_the_writer_then_replaces_its_artefact(home, tiny_dir):
    with create_artifact("conc-diff", kind="model", format="gguf", origin="test", extra={"file": "x.gguf"}) as folder:
        (folder / "x.gguf").write_bytes(b"first writer")
        second = _start_second_writer(_convert(tiny_dir, "--overwrite"))
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert out.startswith("Wrote conc-diff")
    artefact = find_artifact("conc-diff")
    assert artefact is not None and artefact.file().name == "conc-diff.gguf" and artefact.file().stat().st_size > 1000
    assert [a.name for a in list_artifacts()] == ["conc-diff"]


def test_a_second_finetune_of_one_run_name_waits_then_fails_as_a_sequential_one_would(home, data_file, tiny_dir):
    """This process holds the run name while it creates the run (as a first finetune does); the CLI's finetune
    must wait, then refuse with the message a finetune started afterwards gives."""
    argv = [LLMCTL, "finetune", str(tiny_dir), "--data", str(data_file), "max_steps=1", "--name", "conc-run"]
    with store.name_lock(runs_dir(), "conc-run", "run"):
        second = _start_second_writer(argv)
        run = run_path("conc-run")
        run.mkdir(parents=True)
        (run / "request.json").write_text("{}\n")
    out, err = second.communicate(timeout=300)
    assert second.returncode == 1, out + err
    concurrent = err.strip().splitlines()
    assert len(concurrent) == 1 and "already exists" in concurrent[0], err
    assert (run / "request.json").read_text() == "{}\n"
    sequential = run_llmctl(*argv[1:])
    assert sequential.returncode == 1
    assert sequential.stderr.strip().splitlines() == concurrent


def test_the_name_lock_is_reentrant_so_a_source_can_check_then_create_under_it(home):
    with store.name_lock(models_dir(), "tiny-bundled"):
        assert find_artifact("tiny-bundled") is None
        with create_artifact("tiny-bundled", kind="model", format="safetensors", origin="test") as folder:
            (folder / "config.json").write_text("{}")
    assert find_artifact("tiny-bundled") is not None
