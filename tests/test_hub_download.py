"""`llmctl download` with the real huggingface_hub client against a hub served on 127.0.0.1 by the test."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli_helpers import LLMCTL, run_llmctl
from tests.hubserver import HubRepo, HubServer, Stall
from tests.tiny_models import make_tiny_model_dir

# Large enough that huggingface_hub (10 MiB chunks) has written part of it to disk when the transfer stalls.
BIG = {"hidden_size": 512, "intermediate_size": 2048, "num_attention_heads": 8, "num_key_value_heads": 4,
       "head_dim": 64}
STALL_AFTER = 12 * 1024 * 1024


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A local hub holding a tiny model, a bigger one (for the resume test), a gated and a pickle-only repo."""
    root = tmp_path_factory.mktemp("hub")
    tiny = make_tiny_model_dir("llama", root / "tiny")
    (tiny / "training_args.bin").write_bytes(b"not wanted")  # real repos carry pickles llmctl must skip
    (tiny / "README.md").write_text("# tiny\n")
    big = make_tiny_model_dir("llama", root / "big", **BIG)
    pickle_only = root / "pickle"
    pickle_only.mkdir()
    (pickle_only / "config.json").write_text((tiny / "config.json").read_text())
    (pickle_only / "pytorch_model.bin").write_bytes(b"\x80\x04pickle bytes")
    gguf_repo = root / "gguf"
    gguf_repo.mkdir()
    write_tiny_gguf(gguf_repo / "tiny-Q8_0.gguf")
    write_tiny_gguf(gguf_repo / "tiny-F16.gguf")
    server = HubServer().start()
    server.repos.update({"org/tiny": HubRepo.from_dir(tiny), "org/big": HubRepo.from_dir(big),
                         "org/gated": HubRepo.from_dir(tiny, gated=True),
                         "org/pickle-only": HubRepo.from_dir(pickle_only), "org/gguf": HubRepo.from_dir(gguf_repo)})
    server.source_dirs = {"tiny": tiny, "big": big}  # type: ignore[attr-defined]
    yield server
    server.stop()


def write_tiny_gguf(path: Path) -> None:
    """A small but real GGUF file (one tensor, a little metadata) written with the gguf library."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.arange(64, dtype=np.float32).reshape(8, 8))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture
def env(tmp_path, hub):
    """A private store and HF cache for one test, with the hub pointed at the local server."""
    return {"LLMCTL_HOME": str(tmp_path / "home"), "HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": hub.url,
            "HF_HUB_DISABLE_TELEMETRY": "1"}


def local_artifacts(env: dict[str, str]) -> list[dict]:
    """What `llmctl models --local --json` lists."""
    result = run_llmctl("models", "--local", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_download_fetches_safetensors_config_and_tokenizer_only(hub, env):
    import torch

    from llmctl.models.loading import load_causal_lm, load_tokenizer

    result = run_llmctl("download", "org/tiny", env=env)
    assert result.returncode == 0, result.stderr
    [listed] = local_artifacts(env)
    assert listed["name"] == "org/tiny" and listed["format"] == "safetensors"
    assert listed["origin"] == f"hub:org/tiny@{hub.repos['org/tiny'].sha}"
    folder = Path(listed["path"])
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert not (folder / "training_args.bin").exists() and not (folder / "README.md").exists()
    assert not any("training_args.bin" in path for _, path, _ in hub.requests)

    original = load_causal_lm(hub.source_dirs["tiny"])
    downloaded = load_causal_lm(folder)
    ids = load_tokenizer(folder)("The capital of France", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(original(ids).logits, downloaded(ids).logits)


def test_dry_run_lists_files_and_total_without_downloading(hub, env):
    hub.requests.clear()
    result = run_llmctl("download", "org/tiny", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert "model.safetensors" in result.stdout and "total" in result.stdout and "free" in result.stdout
    assert "training_args.bin" not in result.stdout
    assert not any(method == "GET" and "/resolve/" in path for method, path, _ in hub.requests)
    assert local_artifacts(env) == []


def test_killed_download_resumes_where_it_stopped(hub, env):
    weights = (hub.source_dirs["big"] / "model.safetensors").read_bytes()
    assert len(weights) > STALL_AFTER
    hub.stalls.append(Stall("org/big", "model.safetensors", STALL_AFTER))
    hub.requests.clear()
    process = subprocess.Popen([LLMCTL, "download", "org/big"], env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    incomplete_dir = Path(env["LLMCTL_HOME"]) / "models"
    deadline = time.monotonic() + 120
    written = 0
    while time.monotonic() < deadline and process.poll() is None:
        written = max((p.stat().st_size for p in incomplete_dir.rglob("*.incomplete")), default=0)
        if written:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert written > 0, "the interrupted download never wrote a partial file"
    assert local_artifacts(env) == []  # nothing half-downloaded looks complete

    result = run_llmctl("download", "org/big", env=env)
    assert result.returncode == 0, result.stderr
    ranges = [rng for method, path, rng in hub.requests if method == "GET" and path.endswith("/model.safetensors")]
    assert ranges[0] is None and ranges[-1] is not None
    assert int(ranges[-1].split("=")[1].rstrip("-")) >= written  # it continued, it did not start over
    [listed] = local_artifacts(env)
    assert (Path(listed["path"]) / "model.safetensors").read_bytes() == weights


def test_pickle_only_repo_is_refused_without_allow_pickle(hub, env):
    refused = run_llmctl("download", "org/pickle-only", env=env)
    assert refused.returncode != 0
    [line] = error_lines(refused)
    assert "--allow-pickle" in line and "pickle" in line
    assert local_artifacts(env) == []

    allowed = run_llmctl("download", "org/pickle-only", "--allow-pickle", env=env)
    assert allowed.returncode == 0, allowed.stderr
    [listed] = local_artifacts(env)
    assert (Path(listed["path"]) / "pytorch_model.bin").is_file()


@pytest.mark.parametrize(("repo", "expected"), [
    ("org/gated", ("gated", "accept its licence", "hf auth login", "HF_TOKEN")),
    ("org/no-such-model", ("no model 'org/no-such-model'",)),
])
def test_gated_or_missing_repo_is_one_clear_line(hub, env, repo, expected):
    result = run_llmctl("download", repo, env=env)
    assert result.returncode != 0
    [line] = error_lines(result)
    assert line.startswith("error:") and all(part in line for part in expected), line
    assert local_artifacts(env) == []


def test_unreachable_hub_is_one_line_and_non_zero(env):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = run_llmctl("download", "HuggingFaceTB/SmolLM2-135M", "--dry-run", env={**env, "HF_ENDPOINT": closed})
    assert result.returncode != 0
    [line] = error_lines(result)
    assert line.startswith("error: cannot reach the Hugging Face hub")


def test_a_gguf_repo_needs_include_and_gives_a_gguf_artifact(hub, env):
    import gguf

    from llmctl.store import Artifact

    refused = run_llmctl("download", "org/gguf", env=env)
    assert refused.returncode != 0
    [line] = error_lines(refused)
    assert "--include" in line and ".gguf" in line

    result = run_llmctl("download", "org/gguf", "--include", "*Q8_0.gguf", env=env)
    assert result.returncode == 0, result.stderr
    [listed] = local_artifacts(env)
    assert listed["format"] == "gguf"
    artifact = Artifact(listed["name"], Path(listed["path"]), json.loads((Path(listed["path"]) / "llmctl.json")
                                                                         .read_text()))
    assert artifact.file().name == "tiny-Q8_0.gguf" and not (artifact.path / "tiny-F16.gguf").exists()
    assert [t.name for t in gguf.GGUFReader(artifact.file()).tensors] == ["token_embd.weight"]


def test_a_corrupted_partial_file_is_caught_by_its_checksum_and_fetched_again(hub, env, monkeypatch):
    from llmctl.errors import NetworkError
    from llmctl.models.resolve import resolve_model
    from llmctl.store import models_dir

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    weights = (hub.source_dirs["tiny"] / "model.safetensors").read_bytes()
    partial = models_dir() / ".download-org--tiny"
    partial.mkdir(parents=True)
    (partial / "model.safetensors.incomplete").write_bytes(b"\0" * 1000)  # not what the hub holds
    with pytest.raises(NetworkError, match="checksum mismatch"):
        resolve_model("org/tiny")
    artifact = resolve_model("org/tiny")  # the bad file was discarded, so this run starts it afresh
    assert (artifact.path / "model.safetensors").read_bytes() == weights
