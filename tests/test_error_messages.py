"""Every failure a user can cause is one line on stderr naming the file and what is wrong (issue 16, defects 5-6).

Each class of corrupted input below used to print a raw library exception (``error: ValueError: Failed to load
model from file``, ``SafetensorError``, ``RecursionError``, ``error: error: unpack_from …``) or refuse valid input
(a JSONL with a UTF-8 BOM, ``--data /dev/null`` called "no such file"). The commands run the real console script
against tiny random models in a temporary store.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmctl.errors import DataError
from tests.cli_helpers import run_llmctl
from tests.tiny_models import make_tiny_model_dir

# an exception class name as Python prints it ("ValueError:", "SafetensorError:") or a doubled prefix
RAW_EXCEPTION = re.compile(r"\b[A-Z]\w*(Error|Exception)\b|Traceback|error: error:")
RECORD = {"instruction": "Say hi", "output": "Hi there"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A tiny llama folder, its GGUF export and good data, with LLMCTL_HOME/LLMCTL_RUNS_DIR in the temp dir."""
    from llmctl.convert.gguf_export import export_gguf

    root = tmp_path_factory.mktemp("errors")
    model = make_tiny_model_dir("llama", root / "tiny")
    export_gguf(model, root / "tiny.gguf", dtype="f16")
    (root / "good.jsonl").write_text("".join(json.dumps(RECORD) + "\n" for _ in range(4)))
    env = {"LLMCTL_HOME": str(root / "home"), "LLMCTL_RUNS_DIR": str(root / "runs"), "OMP_NUM_THREADS": "1"}
    return root, env


def assert_one_line_error(done: subprocess.CompletedProcess, code: int, *names: str) -> str:
    """The command failed with ``code`` and one stderr line that names ``names`` and no exception class."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == code, done.stderr[-2000:]
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("error: "), lines[0]
    assert not RAW_EXCEPTION.search(lines[0]), lines[0]
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


# --- data files ------------------------------------------------------------------------------------------------

DATA_CASES = {
    "deep.json": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "deep.jsonl": ("[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
    "deep-object.jsonl": ('{"a":' * 100_000 + "1" + "}" * 100_000 + "\n", "nested too deeply"),
    "huge-number.jsonl": ('{"instruction": ' + "9" * 5000 + ', "output": "x"}\n', "invalid JSON value"),
    "role-list.jsonl": (json.dumps({"messages": [{"role": ["user"], "content": "x"},
                                                 {"role": "assistant", "content": "y"}]}) + "\n", "must be a string"),
    "surrogate.jsonl": ('{"text": "bad \\ud800 text"}\n', "surrogate"),
    "empty.jsonl": ("", "the file is empty"),
    "folder.jsonl": (None, "is a folder, not a data file"),
}


@pytest.mark.parametrize("name", sorted(DATA_CASES))
def test_a_bad_data_file_is_one_line_naming_it(workspace, name):
    root, env = workspace
    content, expected = DATA_CASES[name]
    path = root / "data" / name
    path.parent.mkdir(exist_ok=True)
    if content is None:
        path.mkdir(exist_ok=True)
    else:
        path.write_text(content)
    done = run_llmctl("finetune", str(root / "tiny"), "--data", str(path), "--dry-run", env=env)
    line = assert_one_line_error(done, DataError.exit_code, name)
    assert expected in line


def test_data_that_is_not_a_regular_file_says_what_it_is(workspace):
    root, env = workspace
    done = run_llmctl("finetune", str(root / "tiny"), "--data", "/dev/null", "--dry-run", env=env)
    line = assert_one_line_error(done, DataError.exit_code, "/dev/null")
    assert "no such file" not in line and "not a regular file" in line


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_a_data_file_with_a_utf8_bom_is_accepted(workspace, suffix):
    root, env = workspace
    path = root / f"bom{suffix}"
    body = {".jsonl": "".join(json.dumps(RECORD) + "\n" for _ in range(4)), ".json": json.dumps([RECORD] * 4),
            ".csv": "instruction,output\n" + "Say hi,Hi there\n" * 4}[suffix]
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    done = run_llmctl("finetune", str(root / "tiny"), "--data", str(path), "--dry-run", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "4 examples" in done.stdout


# --- GGUF files ------------------------------------------------------------------------------------------------

def _gguf_variant(root: Path, kind: str) -> Path:
    raw = (root / "tiny.gguf").read_bytes()
    data = {"empty": b"", "garbage": bytes(range(256)) * 64, "magic-only": raw[:4], "header-cut": raw[:100],
            "half": raw[: len(raw) // 2], "tail-cut": raw[:-1000]}[kind]
    path = root / "gguf" / f"{kind}.gguf"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind", ["empty", "garbage", "header-cut", "tail-cut"])
def test_a_corrupted_gguf_in_llamacpp_is_one_line(workspace, kind):
    pytest.importorskip("llama_cpp")
    root, env = workspace
    path = _gguf_variant(root, kind)
    done = run_llmctl("chat", str(path), "--prompt", "hi", "--max-new-tokens", "2", env=env)
    line = assert_one_line_error(done, DataError.exit_code, path.name)
    assert "llama.cpp cannot load it" in line


@pytest.mark.parametrize("kind", ["empty", "garbage", "magic-only", "header-cut"])
def test_a_corrupted_gguf_read_by_transformers_is_one_line(workspace, kind):
    root, env = workspace
    path = _gguf_variant(root, kind)
    done = run_llmctl("convert", str(path), "--to", "hf", "--name", f"hf-{kind}", env=env)
    assert_one_line_error(done, DataError.exit_code, path.name)


@pytest.mark.parametrize("kind", ["empty", "half"])
def test_quantizing_a_corrupted_gguf_is_one_line(workspace, kind):
    root, env = workspace
    path = _gguf_variant(root, kind)
    done = run_llmctl("quantize", str(path), "--method", "gguf:q8_0", "--name", f"q-{kind}", env=env)
    assert_one_line_error(done, DataError.exit_code, path.name)


# --- safetensors weights and config.json -----------------------------------------------------------------------

def _model_variant(root: Path, name: str, weights: bytes | None = None, config: str | None = None) -> Path:
    folder = root / "models" / name
    if not folder.exists():
        shutil.copytree(root / "tiny", folder)
    if weights is not None:
        (folder / "model.safetensors").write_bytes(weights)
    if config is not None:
        (folder / "config.json").write_text(config)
    return folder


def _weights(root: Path, kind: str) -> bytes:
    raw = (root / "tiny" / "model.safetensors").read_bytes()
    return {"empty": b"", "garbage": bytes(range(256)) * 20, "truncated": raw[: len(raw) // 2],
            "bad-header": raw[:8] + b"{" * 50 + raw[58:], "huge-length": (10**12).to_bytes(8, "little") + raw[8:]}[kind]


@pytest.mark.parametrize(("kind", "verb"), [(kind, "convert") for kind in ("empty", "garbage", "truncated",
                                                                          "bad-header", "huge-length")]
                         + [("truncated", "chat"), ("bad-header", "chat"), ("truncated", "info"), ("empty", "info")])
def test_corrupted_safetensors_are_one_line_naming_the_file(workspace, kind, verb):
    root, env = workspace
    folder = _model_variant(root, f"st-{kind}", weights=_weights(root, kind))
    args = {"convert": ["convert", str(folder), "--to", "gguf", "--name", f"g-{kind}"],
            "chat": ["chat", str(folder), "--engine", "transformers", "--prompt", "hi", "--max-new-tokens", "2"],
            "info": ["info", str(folder)]}[verb]
    done = run_llmctl(*args, env=env)
    assert_one_line_error(done, DataError.exit_code, f"st-{kind}/model.safetensors")


@pytest.mark.parametrize("kind", ["list", "wrong-type", "deep"])
def test_a_bad_config_json_is_one_line_naming_it(workspace, kind):
    root, env = workspace
    config = json.loads((root / "tiny" / "config.json").read_text())
    text = {"list": "[1, 2]", "wrong-type": json.dumps({**config, "hidden_size": "big"}),
            "deep": "[" * 100_000 + "]" * 100_000}[kind]
    folder = _model_variant(root, f"cfg-{kind}", config=text)
    done = run_llmctl("convert", str(folder), "--to", "gguf", "--name", f"c-{kind}", env=env)
    assert_one_line_error(done, DataError.exit_code, f"cfg-{kind}/config.json")


def test_a_model_with_its_own_code_names_trust_remote_code(workspace):
    root, env = workspace
    config = json.loads((root / "tiny" / "config.json").read_text())
    config.update(model_type="mymodel", auto_map={"AutoConfig": "configuration_my.MyConfig",
                                                  "AutoModelForCausalLM": "modeling_my.MyModel"})
    folder = _model_variant(root, "remote-code", config=json.dumps(config))
    done = run_llmctl("finetune", str(folder), "--data", str(root / "good.jsonl"), "max_steps=1", "val_split=0",
                      "--name", "remote-code", env=env)
    line = assert_one_line_error(done, DataError.exit_code, "remote-code/config.json")
    assert "--trust-remote-code" in line


# --- the catch-all ---------------------------------------------------------------------------------------------

def test_an_unexpected_exception_is_called_a_bug_without_its_class_name(monkeypatch, capsys):
    import llmctl.cli
    import llmctl.cli.app

    def broken_app():
        raise ValueError("something impossible happened\nwith a second line")

    monkeypatch.delenv("LLMCTL_DEBUG", raising=False)
    monkeypatch.setattr(llmctl.cli.app, "build_app", broken_app)
    with pytest.raises(SystemExit) as exit_info:
        llmctl.cli.main(["models"])
    assert exit_info.value.code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "ValueError" not in lines[0]
    assert lines[0].startswith("error: internal error (a bug in llmctl")
    assert "something impossible happened" in lines[0] and "--debug" in lines[0]


# --- a failure inside a --nproc 2 run --------------------------------------------------------------------------

def test_a_failing_torchrun_job_leaves_each_workers_one_line_and_no_report(workspace, tmp_path):
    """Two workers that both refuse a corrupted model: torchrun's own report is gone, each rank's line is kept."""
    from dataclasses import asdict

    from llmctl.train.finetune import FinetuneRequest
    from llmctl.train.worker import worker_error

    root, env = workspace
    folder = _model_variant(root, "st-truncated", weights=_weights(root, "truncated"))
    request = FinetuneRequest(str(folder), "lora", str(root / "good.jsonl"), "auto", None,
                              ["max_steps=1", "val_split=0"], "nproc-fail", False, False)
    (tmp_path / "request.json").write_text(json.dumps(asdict(request)))
    done = subprocess.run([sys.executable, "-m", "llmctl.train.worker", "--torchrun", "--nproc_per_node=2",
                           "--master_port=29547", "-m", "llmctl.train.worker", str(tmp_path / "request.json")],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    assert done.returncode == DataError.exit_code, done.stderr[-3000:]
    assert not RAW_EXCEPTION.search(done.stderr), done.stderr[-3000:]
    assert "ChildFailedError" not in done.stderr and "Root Cause" not in done.stderr
    found = worker_error(tmp_path)
    assert found is not None
    code, line = found
    assert code == DataError.exit_code
    assert line.startswith("error: ") and "st-truncated/model.safetensors" in line and "\n" not in line


@pytest.mark.slow
def test_finetune_nproc_2_shows_the_workers_one_line_error(workspace):
    root, env = workspace
    folder = _model_variant(root, "st-truncated", weights=_weights(root, "truncated"))
    done = run_llmctl("finetune", str(folder), "--data", str(root / "good.jsonl"), "max_steps=1", "val_split=0",
                      "--nproc", "2", "--master-port", "29548", "--name", "nproc-cli-fail", env=env, timeout=300)
    assert_one_line_error(done, DataError.exit_code, "st-truncated/model.safetensors")


def test_the_launcher_raises_the_first_ranks_line_with_its_exit_code(tmp_path, monkeypatch):
    from llmctl.errors import LlmctlError
    from llmctl.train.worker import QUIET_ENV, raise_worker_error, write_worker_error

    raise_worker_error(tmp_path)  # no rank failed: nothing to raise
    monkeypatch.setenv(QUIET_ENV, "1")
    write_worker_error(tmp_path, 1, 4, "error: rank one ran out of memory")
    write_worker_error(tmp_path, 0, 3, "error: data.jsonl:2: missing field 'output'\n(continued)")
    with pytest.raises(LlmctlError) as raised:
        raise_worker_error(tmp_path)
    assert str(raised.value) == "data.jsonl:2: missing field 'output' (continued)"
    assert raised.value.exit_code == 3


@pytest.mark.parametrize("args, start", [
    (["chat", "smollm2-135m", "--top-k", "abc"], "error: Invalid value for '--top-k'"),
    (["finetune", "smollm2-135m", "--nproc", "x"], "error: Invalid value for '--nproc'"),
    (["chat", "smollm2-135m", "--no-such-flag"], "error: No such option: --no-such-flag"),
    (["chat"], "error: Missing argument"),
])
def test_a_bad_flag_or_value_is_one_line_pointing_at_the_help(args, start):
    done = run_llmctl(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(start), done.stderr
    assert f"llmctl {args[0]} --help" in lines[0]
