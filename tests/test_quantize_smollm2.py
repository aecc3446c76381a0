"""``llmctl quantize`` on the bundled SmolLM2-135M, as the issue's acceptance runs it (slow: a real model).

The module resolves SmolLM2 once in the shared test store and links it into a private store, so the quantized
artefacts written here never touch the shared cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run_llmctl

pytestmark = pytest.mark.slow
pytest.importorskip("llama_cpp")
QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A private store whose ``smollm2-135m`` is the shared, already converted one."""
    from llmctl.models.resolve import resolve_model

    shared = resolve_model("smollm2-135m")
    root = tmp_path_factory.mktemp("quantize-home")
    (root / "models").mkdir()
    (root / "models" / shared.path.name).symlink_to(shared.path, target_is_directory=True)
    return root


def _run(home: Path, *args: str):
    return run_llmctl(*args, env={"LLMCTL_HOME": str(home)})


@pytest.fixture(scope="module")
def q8_0_eval(home: Path):
    """``llmctl quantize smollm2-135m --method gguf:q8_0 --eval``, run once for the module."""
    done = _run(home, "quantize", "smollm2-135m", "--method", "gguf:q8_0", "--eval")
    assert done.returncode == 0, done.stderr
    return done


def _meta(home: Path, name: str) -> dict:
    return json.loads((home / "models" / name / "llmctl.json").read_text())


def test_q8_0_eval_shows_both_models_and_matches_llamacpps_own_q8_0(home: Path, q8_0_eval, tmp_path: Path) -> None:
    from benchmarks.quantization import llamacpp_reference_quantize
    from llmctl.convert.gguf_export import export_gguf
    from llmctl.models.resolve import resolve_model
    from llmctl.quality import bundled_text, perplexity_llamacpp

    quality = _meta(home, "smollm2-135m-q8_0")["quality"]
    before, after = quality["before"], quality["after"]
    assert (before["weights"], after["weights"]) == ("f16", "q8_0")
    assert before["stack"] == after["stack"] == "llama.cpp"
    # The reference is computed here, on this CPU: llama.cpp's own quantizer on the same f16 file, scored by the same
    # llama.cpp build. A fixed threshold is not portable: llama.cpp's SIMD paths moved the q8_0 perplexity from
    # 26.62 (AVX2) to 26.68 (AVX-512) for the same file. Ours measured 0.997x llama.cpp's; 0.5 % leaves room for
    # rounding-tie differences between the two writers, and none for a real encoding bug (q4_0 would be +30 %).
    source = resolve_model("smollm2-135m")
    f16 = export_gguf(source.path, tmp_path / "f16.gguf", dtype="f16", model_name=source.name).path
    llamacpp_reference_quantize(f16, tmp_path / "llamacpp-q8_0.gguf", "q8_0")
    text = bundled_text()
    reference_f16 = perplexity_llamacpp(f16, text).perplexity
    reference_q8_0 = perplexity_llamacpp(tmp_path / "llamacpp-q8_0.gguf", text).perplexity
    assert abs(before["perplexity"] / reference_f16 - 1) < 1e-4, (before["perplexity"], reference_f16)
    assert after["perplexity"] / reference_q8_0 - 1 < 0.005, (after["perplexity"], reference_q8_0)
    for row in (before, after):  # the table printed both rows with their numbers
        assert f"{row['perplexity']:.3f}" in q8_0_eval.stdout
        assert f"{row['bits_per_byte']:.4f}" in q8_0_eval.stdout
    assert "already-quantized" in q8_0_eval.stderr  # the bundled model comes from a Q4_1 GGUF


def test_q8_0_and_q4_0_load_in_llama_cpp_and_answer(home: Path, q8_0_eval) -> None:
    done = _run(home, "quantize", "smollm2-135m", "--method", "gguf:q4_0")
    assert done.returncode == 0, done.stderr
    sizes = {}
    for name in ("smollm2-135m-q8_0", "smollm2-135m-q4_0"):
        meta = _meta(home, name)
        sizes[name] = meta["size_bytes"]
        chat = _run(home, "chat", name, "--engine", "llama.cpp", "--prompt", QUESTION, "--max-new-tokens", "20")
        assert chat.returncode == 0, chat.stderr
        assert len(chat.stdout.strip()) > 3, chat.stdout
    assert sizes["smollm2-135m-q4_0"] < 0.7 * sizes["smollm2-135m-q8_0"]
    # 4-bit blocks, with the embedding kept at 8 bits as llama.cpp keeps its output layer
    assert _meta(home, "smollm2-135m-q4_0")["quantization"]["bits_per_weight"] < 6


def test_torchao_int8_reloads_answers_and_reports_its_size(home: Path) -> None:
    pytest.importorskip("torchao")
    done = _run(home, "quantize", "smollm2-135m", "--method", "torchao:int8")
    assert done.returncode == 0, done.stderr
    meta = _meta(home, "smollm2-135m-torchao-int8")
    assert "MB on disk" in done.stdout
    assert meta["size_bytes"] < 0.35 * _meta(home, "smollm2-135m")["size_bytes"]
    # greedy: chat's default for SmolLM2 samples at temperature 0.2 (its model card), which says Paris only mostly
    chat = _run(home, "chat", "smollm2-135m-torchao-int8", "--prompt", QUESTION, "--max-new-tokens", "20", "-t", "0")
    assert chat.returncode == 0, chat.stderr
    assert "Paris" in chat.stdout
