"""``llmctl quantize`` on tiny random models: GGUF files llama.cpp loads with the right tensor types and logits close
to the float model's, torchao/quanto artefacts that reload and chat, refusals, and interrupted runs.

Every test writes into its own ``LLMCTL_HOME``; the real-model (SmolLM2) checks live in test_quantize_smollm2.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli_helpers import LLMCTL, run_llmctl
from tests.convert_fixtures import sharded_model_dir, tiny_model_dir

torch = pytest.importorskip("torch")
PROMPT_IDS = [7, 42, 99, 180, 260, 311, 402, 45, 12, 500, 77, 3]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    """A tiny random llama (hidden 64) with a ChatML tokenizer, shared by the module's tests."""
    return tiny_model_dir(tmp_path_factory.mktemp("tiny") / "tiny-llama", "llama")


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    """A fresh store for the test."""
    monkeypatch.setenv("LLMCTL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _meta(home: Path, name: str) -> dict:
    return json.loads((home / "models" / name / "llmctl.json").read_text())


def _llama_cpp_logits(path: Path):
    import numpy as np

    llama_cpp = pytest.importorskip("llama_cpp")
    llm = llama_cpp.Llama(str(path), n_ctx=64, logits_all=True, verbose=False)
    try:
        llm.eval(PROMPT_IDS)
        return np.array(llm.scores[: len(PROMPT_IDS)])
    finally:
        llm.close()


def _tensor_types(path: Path) -> set[str]:
    import gguf

    return {t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors if len(t.shape) > 1}


def test_gguf_q8_0_and_q4_0_load_in_llama_cpp_close_to_the_float_model(tiny_llama: Path, home: Path,
                                                                       tmp_path: Path) -> None:
    from llmctl.convert.gguf_export import export_gguf

    pytest.importorskip("llama_cpp")
    reference = _llama_cpp_logits(export_gguf(tiny_llama, tmp_path / "f32.gguf", dtype="f32").path)
    errors = {}
    for scheme in ("q8_0", "q4_0"):
        done = run_llmctl("quantize", str(tiny_llama), "--method", f"gguf:{scheme}")
        assert done.returncode == 0, done.stderr
        meta = _meta(home, f"tiny-llama-{scheme}")
        record = meta["quantization"]
        assert (meta["format"], meta["parents"], record["method"]) == ("gguf", ["tiny-llama"], f"gguf:{scheme}")
        gguf_path = home / "models" / f"tiny-llama-{scheme}" / meta["file"]
        assert scheme.upper() in _tensor_types(gguf_path)
        assert meta["size_bytes"] >= gguf_path.stat().st_size
        assert f"{record['bits_per_weight']:.2f}" in done.stdout
        logits = _llama_cpp_logits(gguf_path)
        errors[scheme] = float(abs(logits - reference).max())
    scale = float(abs(reference).max())
    assert errors["q8_0"] < 0.02 * scale, errors
    assert errors["q8_0"] < errors["q4_0"], errors  # fewer bits, more error: the types really differ
    assert not list((home / "models").glob(".tmp-*"))


def test_k_quant_goes_through_llama_cpp_quantizer(tiny_llama: Path, home: Path) -> None:
    pytest.importorskip("llama_cpp")
    done = run_llmctl("quantize", str(tiny_llama), "--method", "gguf:q4_k_m", "--name", "tiny-k")
    assert done.returncode == 0, done.stderr
    meta = _meta(home, "tiny-k")
    assert meta["quantization"]["writer"].startswith("llama.cpp")
    path = home / "models" / "tiny-k" / meta["file"]
    # rows of 64 are not divisible by the 256-wide K blocks, so llama.cpp falls back to its own choice per tensor
    assert _tensor_types(path) - {"F16", "F32"}
    assert _llama_cpp_logits(path).shape == (len(PROMPT_IDS), 512)


def test_list_shows_every_method_with_its_needs_and_usability() -> None:
    done = run_llmctl("quantize", "--list")
    assert done.returncode == 0, done.stderr
    for method in ("gguf:q8_0", "gguf:q4_0", "gguf:q4_k_m", "torchao:int8", "quanto:int8", "bnb:nf4", "bnb:int8"):
        assert method in done.stdout
    line = next(line for line in done.stdout.splitlines() if line.lstrip().startswith("gguf:q8_0"))
    assert " yes " in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: bitsandbytes may run")
@pytest.mark.parametrize("method", ["bnb:nf4", "bnb:int8"])
def test_bitsandbytes_needs_cuda_one_line_nothing_written(tiny_llama: Path, home: Path, method: str) -> None:
    done = run_llmctl("quantize", str(tiny_llama), "--method", method)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "CUDA backend" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (home / "models").exists() or not any((home / "models").iterdir())


def test_unknown_method_suggests_close_names(tiny_llama: Path, home: Path) -> None:
    done = run_llmctl("quantize", str(tiny_llama), "--method", "gguf:q4_k_n")
    assert done.returncode == 2
    assert "gguf:q4_k_m" in done.stderr


def test_torchao_int8_reloads_with_int8_weights_and_chats(tiny_llama: Path, home: Path) -> None:
    pytest.importorskip("torchao")
    done = run_llmctl("quantize", str(tiny_llama), "--method", "torchao:int8")
    assert done.returncode == 0, done.stderr
    meta = _meta(home, "tiny-llama-torchao-int8")
    assert meta["format"] == "safetensors" and meta["quantization"]["scheme"] == "int8"
    assert "MB on disk" in done.stdout or "KB on disk" in done.stdout

    from llmctl.quantize.loading import load_quantized
    from llmctl.store import find_artifact

    artifact = find_artifact("tiny-llama-torchao-int8")
    model = load_quantized(artifact, "bfloat16")
    weight = model.model.layers[0].mlp.up_proj.weight
    assert "Int8" in type(weight).__name__  # really int8 after the reload, not dequantized floats
    from transformers import AutoModelForCausalLM

    float_model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.bfloat16)
    ids = torch.tensor([PROMPT_IDS])
    with torch.no_grad():
        ours, reference = model(ids).logits.float(), float_model(ids).logits.float()
    assert (ours - reference).abs().max() < 0.05 * reference.abs().max()

    chat = run_llmctl("chat", "tiny-llama-torchao-int8", "--prompt", "The capital", "--max-new-tokens", "4",
                      "--engine", "transformers")
    assert chat.returncode == 0, chat.stderr


def test_quanto_int8_reloads_through_its_own_loader(tiny_llama: Path, home: Path) -> None:
    pytest.importorskip("optimum.quanto")
    done = run_llmctl("quantize", str(tiny_llama), "--method", "quanto:int8")
    assert done.returncode == 0, done.stderr
    assert (home / "models" / "tiny-llama-quanto-int8" / "quanto_qmap.json").is_file()

    from llmctl.quantize.loading import load_quantized_model
    from llmctl.store import find_artifact

    model = load_quantized_model(find_artifact("tiny-llama-quanto-int8"), "bfloat16")
    assert "QLinear" in type(model.model.layers[0].mlp.up_proj).__name__
    # torch's int8 CPU matmul reads weights with aligned AVX-512 loads: a weight viewed from the safetensors buffer
    # at an unaligned offset made chat die with SIGSEGV on AVX-512 machines (and only there), so check the cause.
    quantized = [p for m in model.modules() for p in m._parameters.values() if hasattr(p, "__tensor_flatten__")]
    assert quantized
    unaligned = [name for p in quantized for name in p.__tensor_flatten__()[0] if getattr(p, name).data_ptr() % 64]
    assert not unaligned, f"{len(unaligned)} quantized weight tensors are not 64-byte aligned"
    chat = run_llmctl("chat", "tiny-llama-quanto-int8", "--prompt", "The capital", "--max-new-tokens", "4")
    assert chat.returncode == 0, chat.stderr


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_quantize_leaves_no_complete_artefact(tmp_path: Path, home: Path, sig: int) -> None:
    source = sharded_model_dir(tmp_path / "big", layers=4, hidden=1024, intermediate=4096)
    process = subprocess.Popen([LLMCTL, "quantize", str(source), "--method", "gguf:q4_0", "--name", "half"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    models = home / "models"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(p.stat().st_size for p in models.glob(".tmp-*/*.gguf")):
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    assert process.poll() is None, "quantize finished before it could be interrupted"
    process.send_signal(sig)
    process.communicate(timeout=60)
    assert not (models / "half").exists()
    listing = run_llmctl("models", "--local")
    assert "half" not in listing.stdout
    if sig == signal.SIGINT:  # a clean interrupt also removes its temporary directory
        assert not list(models.glob(".tmp-*"))
