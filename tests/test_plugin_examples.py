"""The worked example plugins of docs/plugins.md, installed with pip and used through the CLI as a user would.

Each package under docs/examples/ is built and installed with ``pip install --target`` into one folder (never into
the venv). ``llmctl plugins`` in a fresh process finds them there through ``PYTHONPATH`` without importing torch;
the verbs then run in this process (``llmctl.testing.run_cli``, the folder on ``sys.path``), which finds the same
entry points and skips a second torch start-up per command:

- ``llmctl finetune TINY --method ia3`` trains (the loss falls, in the fp32 the method asks for) and
  ``llmctl chat TINY --adapter RUN`` answers with the adapter, which peft loads as an IA3 adapter;
- ``llmctl quantize TINY --method rtn:int8`` writes an artefact whose weights reload within half a rounding step,
  and ``llmctl chat`` runs it;
- ``llmctl chat TINY --engine simple`` decodes greedily exactly as the builtin transformers engine does.

The last test uses :mod:`llmctl.testing` the way a plugin's own tests would: a family registered for the test only
(``plugin_registered``), a tiny model of it, and the CLI run in a temporary store.
"""

from __future__ import annotations

import ast
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmctl.api import Family, chat_templates, hookimpl
from llmctl.plugins import reset_host
from llmctl.testing import (
    make_tiny_model_dir,
    plugin_registered,
    run_cli,
    run_cli_subprocess,
    temporary_store,
    write_instruction_data,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("llmctl-ia3", "llmctl-rtn", "llmctl-simple-engine")
GREEDY = ("-t", "0", "--repetition-penalty", "1", "--min-p", "0", "--no-stop-loops", "--json")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The three example packages built from copies of their folders and installed into one target folder."""
    sources = tmp_path_factory.mktemp("example-sources")
    target = tmp_path_factory.mktemp("example-site")
    for name in EXAMPLES:
        shutil.copytree(ROOT / "docs" / "examples" / name, sources / name,
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(target), *(str(sources / name) for name in EXAMPLES)], check=True, capture_output=True)
    return target


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random Llama with the tiny BPE tokenizer (ChatML template)."""
    return make_tiny_model_dir("llama", tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture()
def examples(site, tmp_path):
    """This process sees the installed examples (and a store of its own) for one test, then forgets them."""
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    reset_host()
    try:
        with temporary_store(tmp_path) as store:
            yield store
    finally:
        sys.path.remove(str(site))
        reset_host()


def test_examples_are_listed_in_a_fresh_process_without_importing_torch(site):
    result = run_cli_subprocess("plugins", "--json", env={"PYTHONPATH": str(site)})
    assert result.code == 0, result.err
    plugins = {p["name"]: p for p in json.loads(result.out)}
    assert plugins["ia3"]["registers"] == {"method": ["ia3"]}
    assert plugins["rtn"]["registers"] == {"quantizer": ["rtn"]}
    assert plugins["simple-engine"]["registers"] == {"engine": ["simple"]}
    assert {plugins[n]["distribution"] for n in ("ia3", "rtn", "simple-engine")} == set(EXAMPLES)
    check = "import sys, llmctl_ia3, llmctl_rtn, llmctl_simple_engine; assert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", check], env={"PYTHONPATH": str(site)}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_ia3_method_trains_in_fp32_and_chat_loads_its_adapter(examples, tiny_model, tmp_path):
    data = write_instruction_data(tmp_path / "data.jsonl", count=20)
    code, out, err = run_cli("finetune", str(tiny_model), "--method", "ia3", "--data", str(data), "--name", "ia3-run",
                             "max_steps=8", "eval_every=4", "save_every=0", "warmup_ratio=0")
    assert code == 0, err
    run = examples.runs / "ia3-run"
    meta = json.loads((run / "llmctl.json").read_text())
    assert meta["method"] == "ia3" and meta["kind"] == "adapter"
    assert meta["settings"]["precision"] == "fp32" and meta["settings"]["learning_rate"] == 0.01
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    validation = [r["val_loss"] for r in records if "val_loss" in r]
    assert len(losses) == 8 and losses[-1] < losses[0] and validation[-1] < validation[0]

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), str(run))
    assert tuned.peft_config["default"].peft_type.value == "IA3"
    vectors = [p for n, p in tuned.named_parameters() if "ia3_l" in n]
    assert vectors and any(float((v - 1).abs().max()) > 1e-4 for v in vectors)  # trained away from the identity

    code, out, err = run_cli("chat", str(tiny_model), "--adapter", "ia3-run", "--prompt", "Name 3", "-n", "6", *GREEDY)
    assert code == 0, err
    assert json.loads(out)["stats"]["new_tokens"] > 0


def test_rtn_quantizer_writes_an_artefact_that_reloads_and_chats(examples, tiny_model):
    code, out, err = run_cli("quantize", str(tiny_model), "--method", "rtn:int8", "--name", "tiny-rtn-int8")
    assert code == 0, err
    folder = examples.home / "models" / "tiny-rtn-int8"
    record = json.loads((folder / "llmctl.json").read_text())["quantization"]
    assert record["quantizer"] == "rtn" and record["scheme"] == "int8" and record["group_size"] == 32

    import llmctl_rtn
    import torch
    from safetensors.torch import load_file

    from llmctl.store import find_artifact

    reloaded = llmctl_rtn.load(find_artifact("tiny-rtn-int8"), "float32").state_dict()
    original = load_file(tiny_model / "model.safetensors")
    weight = original["model.layers.0.self_attn.q_proj.weight"]
    error = (reloaded["model.layers.0.self_attn.q_proj.weight"] - weight).abs().max()
    assert 0 < error <= weight.abs().max() / 127 / 2 * 1.01  # at most half a rounding step
    assert torch.equal(reloaded["model.embed_tokens.weight"], original["model.embed_tokens.weight"])
    packed, scales = llmctl_rtn.quantize_tensor(weight, 4)
    assert packed.dtype == torch.uint8 and packed.shape == (weight.shape[0], weight.shape[1] // 2)
    back = llmctl_rtn.dequantize_tensor(packed, scales, 4, torch.float32)
    assert (back - weight).abs().max() <= weight.abs().max() / 7 / 2 * 1.01

    code, out, err = run_cli("chat", "tiny-rtn-int8", "--prompt", "Name 3", "-n", "6", *GREEDY)
    assert code == 0, err
    assert json.loads(out)["stats"]["new_tokens"] > 0


def test_simple_engine_decodes_as_the_builtin_engine_does(examples, tiny_model):
    replies = {}
    for engine in ("simple", "transformers"):
        code, out, err = run_cli("chat", str(tiny_model), "--engine", engine, "--prompt", "Name 3", "-n", "12",
                                 *GREEDY)
        assert code == 0, err
        replies[engine] = json.loads(out)
    assert replies["simple"]["engine"] == "simple"
    assert replies["simple"]["stats"]["new_tokens"] == 12
    assert replies["simple"]["reply"] == replies["transformers"]["reply"] != ""


GPT2_TINY = {"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 256, "vocab_size": 512}


class Gpt2Family:
    """A family plugin under test, registered for one test only (the docs' "test without installing" path)."""

    @hookimpl
    def register_families(self, register):
        register(Family(name="gpt2-test", description="GPT-2 (test plugin)", model_types=("gpt2",), models=(),
                        lora_target_modules=("c_attn", "c_proj"), tiny_config=GPT2_TINY,
                        chat_template=chat_templates.CHATML))


def test_testing_helpers_serve_a_plugin_under_test(tmp_path):
    model = make_tiny_model_dir(Family("gpt2-test", "", ("gpt2",), (), (), GPT2_TINY), tmp_path / "tiny-gpt2")
    data = write_instruction_data(tmp_path / "data.jsonl")
    with temporary_store(tmp_path) as store, plugin_registered(Gpt2Family(), "gpt2-test"):
        code, out, err = run_cli("info", str(model), "--json")
        assert code == 0 and json.loads(out)["family"] == "gpt2-test", err
        code, out, err = run_cli("finetune", str(model), "--method", "lora", "--data", str(data), "--name", "gpt2",
                                 "max_steps=2", "eval_every=0", "save_every=0")
        assert code == 0, err
        adapter = json.loads((store.runs / "gpt2" / "adapter_config.json").read_text())
        assert sorted(adapter["target_modules"]) == ["c_attn", "c_proj"]  # the family's LoRA targets
    assert json.loads(run_cli("info", str(model), "--json").out)["family"] is None  # gone after the block


def test_public_api_imports_no_heavy_library_and_examples_import_only_it():
    check = ("import sys, llmctl.api, llmctl.testing; heavy = {'torch', 'transformers', 'peft'} & set(sys.modules); "
             "assert not heavy, heavy; assert all(hasattr(llmctl.api, n) for n in llmctl.api.__all__)")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for module in sorted((ROOT / "docs" / "examples").glob("*/*.py")):
        if "build" in module.parts:
            continue
        tree = ast.parse(module.read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert {name for name in imported if name.split(".")[0] == "llmctl"} <= {"llmctl.api"}, module
