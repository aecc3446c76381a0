"""HF → GGUF export: llama.cpp loads what we write and computes the same logits as transformers.

Fast tests build tiny random models of each family (with a byte-level BPE tokenizer trained here) and compare
llama.cpp's logits with transformers' on the same token ids — a wrong tensor name, a missing q/k permutation or a
wrong norm offset all show up as different logits. Slow tests convert the bundled SmolLM2 135M.
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
from tests.convert_fixtures import CHATML, largest_shard, peak_memory_of, sharded_model_dir, tiny_model_dir

torch = pytest.importorskip("torch")
llama_cpp = pytest.importorskip("llama_cpp")

PROMPT_IDS = [7, 42, 99, 180, 260, 311, 402, 45, 12, 500, 77, 3]


def _llama_cpp_logits(gguf_path: Path, ids: list[int]):
    import numpy as np

    llm = llama_cpp.Llama(str(gguf_path), n_ctx=64, logits_all=True, verbose=False)
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)]), dict(llm.metadata)
    finally:
        llm.close()


def _transformers_logits(model_dir: Path, ids: list[int]):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].numpy()


GEMMA3 = {"model_type": "gemma3_text", "sliding_window": 64, "query_pre_attn_scalar": 16}
# Llama 3.1 rope scaling squeezed into the 12-token prompt: with base 100 and an original context of 16, all but the
# two fastest of the 8 rotary frequencies are divided (by 8, or blended); larger weights make attention depend on
# position. Without llama.cpp's rope_freqs tensor the logits differ by 0.23 (scale 1.9) and the argmax changes.
LLAMA3_ROPE = {"initializer_range": 0.2, "rope_theta": 100.0,
               "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 16}}
CASES = {
    "llama": ("llama", {}),
    "llama3-rope": ("llama", LLAMA3_ROPE),
    "tinyllama": ("tinyllama", {}),
    "smollm2": ("smollm2", {}),
    "mistral": ("mistral", {}),
    "qwen2": ("qwen2", {}),
    "gemma": ("gemma", {}),
    "gemma3": ("gemma", GEMMA3),
    "gemma3-sliding": ("gemma", {**GEMMA3, "sliding_window": 4, "num_hidden_layers": 7}),
    "phi3": ("phi3", {}),
    "phi3-partial-rotary": ("phi3", {"partial_rotary_factor": 0.5}),
    "olmo": ("olmo", {}),
    "olmo-clip-qkv": ("olmo", {"clip_qkv": 0.05}),
    "mixtral": ("mixtral", {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tiny_model_logits_in_llama_cpp_match_transformers(tmp_path: Path, case: str) -> None:
    from llmctl.convert.gguf_export import export_gguf

    family, overrides = CASES[case]
    model_dir = tiny_model_dir(tmp_path / "hf", family, **overrides)
    result = export_gguf(model_dir, tmp_path / "tiny.gguf", dtype="f32")
    ours, metadata = _llama_cpp_logits(result.path, PROMPT_IDS)
    reference = _transformers_logits(model_dir, PROMPT_IDS)

    assert ours.shape == reference.shape
    scale = float(abs(reference).max())
    assert abs(ours - reference).max() < 2e-3 * max(scale, 1.0), (abs(ours - reference).max(), scale)
    assert (ours.argmax(-1) == reference.argmax(-1)).all()
    assert metadata["tokenizer.chat_template"] == CHATML
    assert metadata["tokenizer.ggml.model"] == "gpt2"


def test_mixtral_experts_stacked_as_transformers_holds_them_export_like_per_expert_ones(tmp_path: Path) -> None:
    """transformers 5 holds experts as 3-D ``experts.gate_up_proj``/``down_proj`` (save_pretrained writes them per
    expert); a checkpoint saved in that layout must give the same GGUF tensors as the per-expert one."""
    import shutil

    import numpy as np
    from gguf import GGUFReader
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    from llmctl.convert.gguf_export import export_gguf

    per_expert = tiny_model_dir(tmp_path / "hf", "mixtral")
    fused = shutil.copytree(per_expert, tmp_path / "fused")
    state = AutoModelForCausalLM.from_pretrained(per_expert, dtype=torch.float32).state_dict()
    assert "model.layers.0.mlp.experts.gate_up_proj" in state
    save_file({k: v.contiguous() for k, v in state.items()}, fused / "model.safetensors", metadata={"format": "pt"})
    tensors = []
    for model_dir in (per_expert, fused):
        reader = GGUFReader(export_gguf(model_dir, tmp_path / f"{model_dir.name}.gguf", dtype="f32").path)
        tensors.append({t.name: np.asarray(t.data) for t in reader.tensors})
    expected, got = tensors
    assert got.keys() == expected.keys()
    for name, data in expected.items():
        np.testing.assert_array_equal(got[name], data, err_msg=name)


def test_q8_0_and_bf16_tiny_exports_load_and_stay_close(tmp_path: Path) -> None:
    from llmctl.convert.gguf_export import export_gguf

    model_dir = tiny_model_dir(tmp_path / "hf", "llama")
    reference = _transformers_logits(model_dir, PROMPT_IDS)
    for dtype, tolerance in (("bf16", 0.05), ("q8_0", 0.05)):
        result = export_gguf(model_dir, tmp_path / f"tiny-{dtype}.gguf", dtype=dtype)
        ours, metadata = _llama_cpp_logits(result.path, PROMPT_IDS)
        assert abs(ours - reference).max() < tolerance * float(abs(reference).max()), dtype
        assert metadata["general.file_type"] == {"bf16": "32", "q8_0": "7"}[dtype]


def test_unknown_architecture_names_the_plugin_hook(tmp_path: Path) -> None:
    from llmctl.convert.gguf_export import export_gguf
    from llmctl.errors import DataError

    model_dir = tiny_model_dir(tmp_path / "hf", "olmo", model_type="olmo2")  # the olmo family maps no olmo2
    with pytest.raises(DataError, match="GGUFMapping"):
        export_gguf(model_dir, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


def test_llama3_rope_freqs_written_from_old_and_new_config_layouts(tmp_path: Path) -> None:
    """``rope_freqs`` (F32, one divisor per rotary frequency) is the same whether the config keeps the scaling in
    transformers 5's ``rope_parameters`` or in the older ``rope_scaling`` beside a top-level ``rope_theta``."""
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFReader

    from llmctl.convert.gguf_export import export_gguf

    model_dir = tiny_model_dir(tmp_path / "hf", "llama", **LLAMA3_ROPE)
    config = json.loads((model_dir / "config.json").read_text())
    freqs = []
    for layout in ("new", "old"):
        if layout == "old":
            rope = config.pop("rope_parameters")
            config["rope_theta"] = rope.pop("rope_theta")
            config["rope_scaling"] = {**rope, "type": rope.pop("rope_type")}
            (model_dir / "config.json").write_text(json.dumps(config))
        reader = GGUFReader(export_gguf(model_dir, tmp_path / f"{layout}.gguf", dtype="q8_0").path)
        (tensor,) = [t for t in reader.tensors if t.name == "rope_freqs.weight"]
        assert tensor.tensor_type == GGMLQuantizationType.F32
        freqs.append(np.asarray(tensor.data))
    np.testing.assert_array_equal(freqs[0], freqs[1])
    assert freqs[0].shape == (8,) and freqs[0][0] < 8.0 and (freqs[0][2:] == 8.0).all()


def test_rope_scaling_llama_cpp_would_ignore_is_refused(tmp_path: Path) -> None:
    """Linear, dynamic and yarn scaling (and llama3 for a mapping without rope_freqs) are refused, not written as
    plain rope that llama.cpp would rotate differently from transformers."""
    from llmctl.convert.gguf_export import export_gguf
    from llmctl.errors import DataError

    model_dir = tiny_model_dir(tmp_path / "hf", "llama")
    config = json.loads((model_dir / "config.json").read_text())
    llama3 = LLAMA3_ROPE["rope_scaling"]
    refused = [("llama", "rope_parameters", {"rope_type": "linear", "factor": 2.0}),
               ("llama", "rope_parameters", {"rope_type": "dynamic", "factor": 2.0}),
               ("llama", "rope_parameters", {"rope_type": "yarn", "factor": 4.0}),
               ("llama", "rope_scaling", {"type": "linear", "factor": 2.0}),
               ("mistral", "rope_parameters", llama3)]
    for model_type, key, rope in refused:
        changed = {k: v for k, v in config.items() if k != "rope_parameters"}
        (model_dir / "config.json").write_text(json.dumps({**changed, "model_type": model_type, key: rope}))
        kind = rope.get("rope_type") or rope["type"]
        with pytest.raises(DataError, match=f"{key}: rope scaling '{kind}' cannot be written") as error:
            export_gguf(model_dir, tmp_path / "x.gguf")
        assert "\n" not in str(error.value)
        assert not (tmp_path / "x.gguf").exists()


def test_export_memory_stays_near_one_shard(tmp_path: Path) -> None:
    model_dir = sharded_model_dir(tmp_path / "big")
    total = sum(p.stat().st_size for p in model_dir.glob("*.safetensors"))
    used = peak_memory_of("export", model_dir, tmp_path / "big.gguf", "f16")
    assert (tmp_path / "big.gguf").stat().st_size > total // 2 - 1_000_000  # f16: half the float32 bytes
    assert used < 3 * largest_shard(model_dir), (used, largest_shard(model_dir))
    assert used < total / 2, (used, total)


# --- the bundled SmolLM2 135M -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2_home(tmp_path_factory) -> Path:
    """A private store holding the (shared, converted once) SmolLM2 artefact, so conversions land in a temp dir."""
    from llmctl.models.resolve import resolve_model

    source = resolve_model("smollm2-135m")
    home = tmp_path_factory.mktemp("home")
    (home / "models").mkdir()
    (home / "models" / source.path.name).symlink_to(source.path, target_is_directory=True)
    return home


def _greedy_llama_cpp(path: Path, ids: list[int], count: int) -> list[int]:
    llm = llama_cpp.Llama(str(path), n_ctx=256, verbose=False)
    try:
        produced = []
        for token in llm.generate(ids, top_k=1, temp=0.0, reset=True):
            produced.append(token)
            if len(produced) == count:
                return produced
        return produced
    finally:
        llm.close()


@pytest.mark.slow
def test_smollm2_f16_and_q8_0_load_in_llama_cpp_and_f16_matches_transformers(smollm2_home: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    env = {"LLMCTL_HOME": str(smollm2_home)}
    for dtype in ("f16", "q8_0"):
        done = run_llmctl("convert", "smollm2-135m", "--to", "gguf", "--dtype", dtype, env=env)
        assert done.returncode == 0, done.stderr
        assert f"smollm2-135m-{dtype}" in done.stdout
    models = smollm2_home / "models"
    f16 = models / "smollm2-135m-f16" / "smollm2-135m-f16.gguf"
    q8 = models / "smollm2-135m-q8_0" / "smollm2-135m-q8_0.gguf"
    meta = json.loads((models / "smollm2-135m-q8_0" / "llmctl.json").read_text())
    assert (meta["format"], meta["dtype"], meta["parents"], meta["file"]) == ("gguf", "q8_0", ["smollm2-135m"],
                                                                            q8.name)
    assert q8.stat().st_size < 0.6 * f16.stat().st_size

    source = models / "smollm2-135m"
    tokenizer = AutoTokenizer.from_pretrained(source)
    ids = tokenizer("The capital of France is").input_ids
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    expected = model.generate(torch.tensor([ids]), max_new_tokens=20, do_sample=False)[0][len(ids):].tolist()
    assert _greedy_llama_cpp(f16, ids, 20) == expected
    assert _greedy_llama_cpp(q8, ids, 4) == expected[:4]  # q8_0 rounds weights; the start must still agree


@pytest.mark.slow
def test_gguf_to_hf_to_gguf_round_trip_keeps_tensors_and_chat_template(smollm2_home: Path) -> None:
    import numpy as np
    from gguf import GGUFReader

    env = {"LLMCTL_HOME": str(smollm2_home)}
    models = smollm2_home / "models"
    if not (models / "smollm2-135m-f16").exists():
        assert run_llmctl("convert", "smollm2-135m", "--to", "gguf", env=env).returncode == 0
    steps = [("convert", "smollm2-135m-f16", "--to", "hf", "--name", "rt-hf"),
             ("convert", "rt-hf", "--to", "gguf", "--dtype", "f16", "--name", "rt-gguf")]
    for step in steps:
        done = run_llmctl(*step, env=env)
        assert done.returncode == 0, done.stderr
    assert json.loads((models / "rt-hf" / "llmctl.json").read_text())["parents"] == ["smollm2-135m-f16"]

    first = GGUFReader(models / "smollm2-135m-f16" / "smollm2-135m-f16.gguf")
    second = GGUFReader(models / "rt-gguf" / "rt-gguf.gguf")
    before = {t.name: t for t in first.tensors}
    after = {t.name: t for t in second.tensors}
    assert before.keys() == after.keys()
    for name, tensor in before.items():
        assert tensor.tensor_type == after[name].tensor_type, name
        np.testing.assert_allclose(np.asarray(after[name].data, dtype=np.float32),
                                   np.asarray(tensor.data, dtype=np.float32), rtol=1e-3, atol=1e-4, err_msg=name)

    def template(reader: GGUFReader) -> str:
        field = reader.fields["tokenizer.chat_template"]
        return bytes(field.parts[field.data[0]]).decode()

    assert template(second) == template(first)
    assert "<|im_start|>" in template(first)


@pytest.mark.slow
def test_convert_killed_with_sigkill_leaves_no_artefact(smollm2_home: Path) -> None:
    from llmctl.store import list_artifacts

    models = smollm2_home / "models"
    before = {a.name for a in list_artifacts(models)}
    env = {**os.environ, "LLMCTL_HOME": str(smollm2_home)}
    process = subprocess.Popen([LLMCTL, "convert", "smollm2-135m", "--to", "gguf", "--dtype", "f32",
                                "--name", "killed"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not any(p.stat().st_size > 1_000_000 for p in models.glob(".tmp-killed-*/*.gguf")):
            assert process.poll() is None, "the conversion ended before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert {a.name for a in list_artifacts(models)} == before
    assert not (models / "killed").exists()


@pytest.mark.slow
def test_gemma3_270m_f16_tokenizes_and_continues_like_transformers(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmctl.convert.gguf_export import export_gguf
    from llmctl.models.resolve import resolve_model

    source = resolve_model("gemma3-270m").path
    result = export_gguf(source, tmp_path / "gemma3.gguf", dtype="f16", model_name="gemma3-270m")
    assert (result.architecture, result.tokenizer) == ("gemma3", "llama-hf")
    prompt = "Once upon a time, there was a little"
    ids = AutoTokenizer.from_pretrained(source)(prompt).input_ids
    llm = llama_cpp.Llama(str(result.path), n_ctx=128, verbose=False)
    try:
        assert llm.tokenize(prompt.encode(), add_bos=True, special=False) == ids
    finally:
        llm.close()
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    expected = model.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False)[0][len(ids):].tolist()
    assert _greedy_llama_cpp(result.path, ids, 8) == expected
