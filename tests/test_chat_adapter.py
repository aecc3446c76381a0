"""``llmctl chat --adapter RUN`` applies a peft LoRA adapter from a finetune run (tiny model, trained here)."""

from __future__ import annotations

import json

from tests.cli_helpers import run_llmctl
from tests.tiny_models import make_tiny_model_dir

PHRASE = "The capital of France is Paris."
QUESTION = "hello"


def _train_adapter(model_dir, run_dir, steps: int = 60) -> None:
    """Train a LoRA adapter (peft) so the tiny model answers QUESTION with PHRASE, saved as a finetune run.

    The tiny model's random output layer is too weak to express a confident answer, so LoRA covers it as well.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": QUESTION}], add_generation_prompt=True,
                                           tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    target = tokenizer(PHRASE, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = torch.tensor([prompt_ids + target])
    labels = torch.tensor([[-100] * len(prompt_ids) + target])
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj",
                                                                                  "o_proj", "up_proj", "down_proj",
                                                                                  "lm_head"]))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        loss = model(input_ids=ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1
    model.save_pretrained(run_dir)
    (run_dir / "llmctl.json").write_text(json.dumps({"kind": "adapter", "base_model": str(model_dir)}))


def test_adapter_changes_the_reply_to_the_trained_phrase(tmp_path):
    model_dir = make_tiny_model_dir("llama", tmp_path / "tiny")
    run_dir = tmp_path / "runs" / "run-1"
    _train_adapter(model_dir, run_dir)
    assert (run_dir / "adapter_model.safetensors").is_file()
    common = ("chat", str(model_dir), "--prompt", QUESTION, "-t", "0", "-n", "16", "--dtype", "float32", "--json")
    plain = run_llmctl(*common)
    adapted = run_llmctl(*common, "--adapter", "run-1", env={"LLMCTL_RUNS_DIR": str(tmp_path / "runs")})
    assert plain.returncode == 0 and adapted.returncode == 0, plain.stderr + adapted.stderr
    assert json.loads(adapted.stdout)["reply"] == PHRASE
    assert json.loads(plain.stdout)["reply"] != PHRASE


def test_unknown_run_is_one_line_with_exit_code(tmp_path):
    model_dir = make_tiny_model_dir("llama", tmp_path / "tiny")
    result = run_llmctl("chat", str(model_dir), "--adapter", "no-such-run", "--prompt", "hi",
                        env={"LLMCTL_RUNS_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: unknown run 'no-such-run'")
