"""Tiny models and a word-level tokenizer for the alignment tests: built in milliseconds, nothing downloaded."""

from __future__ import annotations

from typing import Any

SPECIALS = ("<pad>", "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>")
WORDS = tuple(f"w{i}" for i in range(480)) + ("user", "assistant", "system")
CHATML = (
    "{% for message in messages %}{{ '<|im_start|> ' + message['role'] + ' ' + message['content'] + ' <|im_end|> ' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|> assistant ' }}{% endif %}"
)


def word_tokenizer() -> Any:
    """A transformers fast tokenizer over the words ``w0 … w479`` (ids 6 …) with pad 0, bos 1, eos 2."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(SPECIALS + WORDS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                        unk_token="<unk>")
    tokenizer.chat_template = CHATML
    return tokenizer


def tiny_causal_lm(family: str = "llama", seed: int = 0, **overrides: Any) -> Any:
    """A random tiny causal LM of ``family`` built from its plugin's ``tiny_config``."""
    import torch
    from transformers import AutoModelForCausalLM

    from llmctl.models.params import build_config
    from llmctl.plugins import get_registry

    config = build_config({**get_registry().family(family).tiny_config, **overrides})
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config)


def lora(model: Any, r: int = 8, seed: int = 0, init_b: bool = False) -> Any:
    """``model`` with a peft LoRA adapter on every projection (B randomised when ``init_b``, so it is not a no-op)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                               "up_proj", "down_proj"], lora_dropout=0.0)
    peft_model = get_peft_model(model, config)
    if init_b:
        with torch.no_grad():
            for name, parameter in peft_model.named_parameters():
                if "lora_B" in name:
                    parameter.normal_(0, 0.05)
    return peft_model


def llmctl_in_process(capsys: Any, *args: str) -> tuple[int, str, str]:
    """Run ``llmctl ARGS`` through the real entry point in this process (no second torch import): code, out, err."""
    from llmctl.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def word_model_dir(path: Any, seed: int = 0) -> Any:
    """A tiny random Llama saved with the word tokenizer (so rule-based rewards can read its words)."""
    from pathlib import Path

    path = Path(path)
    tokenizer = word_tokenizer()
    tokenizer.save_pretrained(path)
    model = tiny_causal_lm(seed=seed, vocab_size=len(tokenizer))
    model.save_pretrained(path)
    return path


def finetune(model_dir: Any, method: str, data: Any, runs: Any, *overrides: str) -> Any:
    """Run ``llmctl finetune`` as a function (quietly: no validation or checkpoints unless asked); the outcome."""
    import os

    from llmctl.train.finetune import FinetuneRequest, run_finetune

    os.environ["LLMCTL_RUNS_DIR"] = str(runs)
    request = FinetuneRequest(model=str(model_dir), method=method, data=str(data),
                              overrides=["eval_every=0", "save_every=0", "warmup_ratio=0", *overrides])
    return run_finetune(request)


def metrics_of(run: Any) -> list[dict]:
    """The training records of a run's ``metrics.jsonl``."""
    import json

    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
