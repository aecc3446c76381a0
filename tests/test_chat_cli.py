"""``llmctl chat`` as a user runs it: real bundled models (slow) and the one-line errors (fast)."""

from __future__ import annotations

import json
import re

import pytest

from tests.cli_helpers import run_llmctl

QUESTION = "What is the capital of France?"
# SmolLM2-135M as Q4_1 on llama.cpp is a near tie between "The capital…" and "L'Étoile…" under the GGUF
# template's own default system prompt (its logits correlate 0.999 with the dequantized transformers model, top two
# swapped); with a plain system prompt its greedy answer is "The capital of France is Paris."
PLAIN_SYSTEM = "You are a helpful assistant. Answer questions directly and briefly."


@pytest.mark.slow
def test_transformers_engine_answers_paris():
    result = run_llmctl("chat", "smollm2-135m", "--engine", "transformers", "--prompt", QUESTION, "-t", "0",
                        "-n", "16")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert re.search(r"\d+ tokens, [\d.]+ tok/s", result.stderr)


@pytest.mark.slow
def test_llamacpp_engine_answers_paris():
    pytest.importorskip("llama_cpp")
    result = run_llmctl("chat", "smollm2-135m", "--engine", "llama.cpp", "--system", PLAIN_SYSTEM,
                        "--prompt", QUESTION, "-t", "0", "-n", "16")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout


@pytest.mark.slow
def test_questions_on_stdin_get_one_answer_each_and_json_is_valid():
    result = run_llmctl("chat", "smollm2-135m", "-n", "16", "--seed", "1", input="Name a colour.\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert len(re.findall(r"tok/s", result.stderr)) == 1
    result = run_llmctl("chat", "smollm2-135m", "-n", "8", "-t", "0", "--json",
                        input="Name a colour.\n\nName a fruit.\n")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["prompt"] for r in records] == ["Name a colour.", "Name a fruit."]
    assert all(r["reply"] and r["stats"]["new_tokens"] > 0 for r in records)


@pytest.mark.slow
def test_base_model_without_template_says_so_once_and_completes_text():
    result = run_llmctl("chat", "gemma3-270m", "--prompt", "Once upon a time, there was a little", "-t", "0",
                        "-n", "12")
    assert result.returncode == 0, result.stderr
    notices = [line for line in result.stderr.splitlines() if "no chat template" in line]
    assert len(notices) == 1 and "plain completion" in notices[0]
    assert len(re.findall(r"[A-Za-z]+", result.stdout)) >= 5


def test_unknown_model_suggests_close_names():
    result = run_llmctl("chat", "smollm2-135", "--prompt", "hi")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: unknown model 'smollm2-135'; did you mean")


def test_model_too_large_for_memory_is_refused_before_download():
    result = run_llmctl("chat", "mixtral-8x22b", "--prompt", "hi")
    assert result.returncode == 4, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: mixtral-8x22b needs about") and "free" in last


def test_missing_llamacpp_extra_is_one_line(tmp_path):
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['llama_cpp'] = None  # not installed\n")
    result = run_llmctl("chat", "smollm2-135m", "--engine", "llama.cpp", "--prompt", "hi",
                        env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 6, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the llama.cpp engine needs llama-cpp-python: pip install 'llmctl[llamacpp]'")
