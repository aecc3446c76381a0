"""The foundation as a user meets it: plugins, models, info, env, errors, completion and start-up weight."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.cli_helpers import run_llmctl

HEAVY = ("torch", "transformers", "peft")


@pytest.mark.parametrize("argv", [["--help"], ["plugins"], ["plugins", "--json"], ["models"], ["info", "--help"]])
def test_light_commands_import_no_heavy_library(argv):
    code = (
        "import sys\n"
        "from llmctl.cli import main\n"
        f"sys.argv = ['llmctl', *{argv!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY=\n" in result.stdout, result.stdout[-500:] + result.stderr[-2000:]


def test_completion_suggests_model_names_without_torch():
    code = (
        "import os, sys\n"
        "os.environ.update(_LLMCTL_COMPLETE='complete_bash', COMP_WORDS='llmctl info gemma-7', COMP_CWORD='2')\n"
        "from llmctl.cli import main\n"
        "sys.argv = ['llmctl']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "gemma-7b" in result.stdout.splitlines()
    assert "HEAVY=\n" in result.stdout


def test_plugins_json_lists_builtins_by_kind():
    result = run_llmctl("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = json.loads(result.stdout)
    families = [name for p in plugins for name in p["registers"].get("family", [])]
    backends = [name for p in plugins for name in p["registers"].get("backend", [])]
    assert len(families) >= 10
    assert sorted(backends) == ["cpu", "cuda", "mps", "rocm"]
    assert {p["distribution"] for p in plugins if p["builtin"]} == {"llmctl"}


def test_plugins_table_shows_kind_and_distribution():
    result = run_llmctl("plugins")
    assert result.returncode == 0
    lines = [line for line in result.stdout.splitlines() if "family-gemma" in line]
    assert lines and "family" in lines[0] and "llmctl" in lines[0]


def test_models_lists_families_and_aliases():
    result = run_llmctl("models", "--json")
    data = {f["family"]: f for f in json.loads(result.stdout)}
    for family in ("llama", "tinyllama", "smollm2", "mistral", "mixtral", "gemma", "phi3", "olmo", "openelm", "qwen2"):
        assert family in data
    names = {m["name"] for f in data.values() for m in f["models"]}
    for name in ("gemma-7b", "mistral-7b", "mixtral-8x22b", "llama-3-8b", "phi-3-mini", "openelm-270m", "smollm2-135m"):
        assert name in names


def test_info_gemma_7b_counts_parameters_from_config():
    result = run_llmctl("info", "gemma-7b", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["config"]["vocab_size"] == 256000
    assert info["config"]["num_hidden_layers"] == 28
    assert 8.4e9 < info["parameters"]["total"] < 8.6e9
    labels = [row["label"] for row in info["memory"]]
    assert {"inference bfloat16", "inference int8", "inference int4"} <= set(labels)
    assert any("LoRA" in label for label in labels) and any("full" in label for label in labels)
    table = run_llmctl("info", "gemma-7b").stdout
    for word in ("layers", "hidden size", "KV heads", "256000", "8.54 B"):
        assert word in table


def test_info_mixtral_8x22b_total_and_active_parameters():
    info = json.loads(run_llmctl("info", "mixtral-8x22b", "--json").stdout)
    assert 139e9 < info["parameters"]["total"] < 143e9
    assert 38e9 < info["parameters"]["active"] < 40e9


def test_info_openelm_uses_the_family_counter_without_remote_code():
    info = json.loads(run_llmctl("info", "openelm-270m", "--json").stdout)
    assert 260e6 < info["parameters"]["total"] < 290e6


def test_unknown_model_suggests_close_name_in_one_line():
    result = run_llmctl("info", "gemma-7bb")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "gemma-7b" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_env_reports_each_backend_with_a_reason():
    result = run_llmctl("env", "--json")
    assert result.returncode == 0, result.stderr
    backends = {b["name"]: b for b in json.loads(result.stdout)["backends"]}
    assert backends["cpu"]["usable"]
    for name in ("cuda", "rocm", "mps"):
        assert not backends[name]["usable"] and backends[name]["reason"]
    assert json.loads(result.stdout)["auto_backend"] == "cpu"
