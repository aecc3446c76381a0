"""Every builtin method on a tiny random model of every family: loss falls, and the saved result reloads exactly."""

from __future__ import annotations

import json

import pytest

from llmctl.train.finetune import FinetuneRequest, run_finetune
from tests.tiny_models import make_tiny_model_dir

FAMILIES = ["llama", "mistral", "mixtral", "gemma", "gemma3_text", "phi3", "olmo", "qwen2"]
METHODS = ["lora", "lora+", "dora", "full"]
FAST = ["max_steps=10", "batch_size=4", "val_split=0", "eval_every=0", "save_every=0", "precision=fp32",
        "warmup_ratio=0", "schedule=constant"]


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-models")
    return {family: make_tiny_model_dir(family, root / family) for family in FAMILIES}


@pytest.fixture(scope="module")
def memorisation_set(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "memorise.jsonl"
    rows = [{"instruction": f"What is the capital of land {i}?", "output": f"The capital is city {i}."}
            for i in range(4)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture(autouse=True)
def runs_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMCTL_RUNS_DIR", str(tmp_path / "runs"))


def _reload(method: str, base_dir, run):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    if method == "full":
        return AutoModelForCausalLM.from_pretrained(run).eval()
    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), run).eval()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("family", FAMILIES)
def test_loss_falls_and_the_result_reloads_to_the_same_logits(family, method, model_dirs, memorisation_set):
    import torch

    rates = {"full": 3e-3, "lora+": 2e-3}  # LoRA+ moves B at 16 × the rate
    extra = [f"learning_rate={rates.get(method, 1e-2)}", *(["lora_dropout=0"] if method != "full" else [])]
    outcome = run_finetune(FinetuneRequest(str(model_dirs[family]), method, str(memorisation_set),
                                           overrides=[*FAST, *extra]))
    losses = [r["loss"] for r in outcome.result.history if "loss" in r]
    assert len(losses) == 10
    assert losses[-1] < losses[0] - 0.3, losses  # from ~ln(vocab): clearly learning, not noise
    meta = json.loads((outcome.run / "llmctl.json").read_text())
    assert meta["method"] == method and meta["status"] == "finished" and meta["steps"] == 10
    assert (outcome.run / "loss.png").stat().st_size > 1000
    reloaded = _reload(method, model_dirs[family], outcome.run)
    ids = torch.tensor([[1, 40, 41, 42, 43, 44, 45, 46]])
    trained = outcome.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, trained(input_ids=ids).logits,
                                   atol=1e-5, rtol=1e-5)


def test_loraplus_gives_b_matrices_ratio_times_the_learning_rate(model_dirs):
    from llmctl.config import resolve_settings
    from llmctl.models.loading import load_causal_lm
    from llmctl.plugins import get_registry
    from llmctl.train.method import MethodContext

    descriptor = get_registry().get("method", "lora+")
    settings = resolve_settings("lora+", descriptor.defaults, overrides=[("loraplus_ratio", 8, "test"),
                                                                         ("learning_rate", 1e-3, "test")])
    method = descriptor.build()
    family = get_registry().family("llama")
    model = method.prepare(load_causal_lm(model_dirs["llama"]), settings, MethodContext(family=family))
    optimizer = method.make_optimizer(model, settings)
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    a = [lr_of[id(p)] for n, p in model.named_parameters() if "lora_A" in n]
    b = [lr_of[id(p)] for n, p in model.named_parameters() if "lora_B" in n]
    assert a and b and set(a) == {1e-3} and all(lr == pytest.approx(8e-3) for lr in b)
    assert sum(1 for n, _ in model.named_parameters() if "lora_A" in n) == 14  # 7 projections × 2 layers


def test_mixtral_lora_reaches_the_expert_parameters(model_dirs):
    from llmctl.config import resolve_settings
    from llmctl.models.loading import load_causal_lm
    from llmctl.plugins import get_registry
    from llmctl.train.method import MethodContext

    registry = get_registry()
    descriptor = registry.get("method", "lora")
    method = descriptor.build()
    family = registry.family("mixtral")
    settings = resolve_settings("lora", descriptor.defaults, family.name, family.finetune_defaults)
    model = method.prepare(load_causal_lm(model_dirs["mixtral"]), settings, MethodContext(family=family))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("experts" in n for n in names) and any("q_proj" in n for n in names)


def test_qlora_without_cuda_says_so_in_one_line(model_dirs, memorisation_set):
    import torch

    from llmctl.errors import ResourceError

    if torch.cuda.is_available():
        pytest.skip("CUDA is usable here")
    with pytest.raises(ResourceError, match="needs a CUDA GPU"):
        run_finetune(FinetuneRequest(str(model_dirs["llama"]), "qlora", str(memorisation_set)))
