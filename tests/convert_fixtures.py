"""Model directories for the convert and merge tests: a trained tiny tokenizer, tiny random models of a family, and
a multi-shard model of a few hundred MB for the memory tests, plus a subprocess that reports its peak RSS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\\n'}}{% endif %}")


def save_tokenizer(path: Path, vocab_size: int = 512) -> None:
    """A byte-level BPE tokenizer with ChatML specials and a chat template, trained on a fixed text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|im_start|>",
                                                                         "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(["The capital of France is Paris. Two plus two is four. The sea, the sky. " * 8],
                             trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        unk_token="<|endoftext|>")
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(path)


def tiny_model_dir(path: Path, family: str, **overrides) -> Path:
    """A random tiny model of ``family`` (its registered tiny config) saved with a tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    from llmctl.models.params import build_config
    from llmctl.plugins import get_registry

    torch.manual_seed(0)
    config = build_config({**get_registry().family(family).tiny_config, **overrides})
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():  # norms away from their initial value, so a wrong norm offset would show
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.uniform_(-0.5, 0.5)
    model.save_pretrained(path)
    save_tokenizer(path, config.vocab_size)
    return path


def sharded_model_dir(path: Path, layers: int = 8, hidden: int = 1024, intermediate: int = 4096) -> Path:
    """A Llama-shaped float32 model with one shard per layer (64 MB each by default) and a tokenizer."""
    import torch
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": hidden,
              "intermediate_size": intermediate, "num_hidden_layers": layers, "num_attention_heads": 8,
              "num_key_value_heads": 8, "vocab_size": 512, "max_position_embeddings": 512, "rms_norm_eps": 1e-5,
              "tie_word_embeddings": True, "rope_theta": 10000.0, "bos_token_id": 1, "eos_token_id": 2}
    (path / "config.json").write_text(json.dumps(config))
    generator = torch.Generator().manual_seed(0)
    weight_map = {}
    for layer in range(layers):
        prefix = f"model.layers.{layer}."
        shapes = {"self_attn.q_proj": (hidden, hidden), "self_attn.k_proj": (hidden, hidden),
                  "self_attn.v_proj": (hidden, hidden), "self_attn.o_proj": (hidden, hidden),
                  "mlp.gate_proj": (intermediate, hidden), "mlp.up_proj": (intermediate, hidden),
                  "mlp.down_proj": (hidden, intermediate)}
        tensors = {f"{prefix}{name}.weight": torch.randn(*shape, generator=generator) * 0.02
                   for name, shape in shapes.items()}
        tensors[f"{prefix}input_layernorm.weight"] = torch.ones(hidden)
        tensors[f"{prefix}post_attention_layernorm.weight"] = torch.ones(hidden)
        if layer == 0:
            tensors["model.embed_tokens.weight"] = torch.randn(512, hidden, generator=generator)
        if layer == layers - 1:
            tensors["model.norm.weight"] = torch.ones(hidden)
        shard = f"model-{layer + 1:05d}-of-{layers:05d}.safetensors"
        save_file(tensors, str(path / shard), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, shard))
    (path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    save_tokenizer(path)
    return path


def lora_adapter_dir(path: Path, layers: int = 8, hidden: int = 1024, rank: int = 8) -> Path:
    """A peft-format LoRA adapter on q_proj and v_proj of every layer of :func:`sharded_model_dir`'s model."""
    import torch
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for layer in range(layers):
        for module in ("q_proj", "v_proj"):
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}."
            tensors[prefix + "lora_A.weight"] = torch.randn(rank, hidden) * 0.01
            tensors[prefix + "lora_B.weight"] = torch.randn(hidden, rank) * 0.01
    save_file(tensors, str(path / "adapter_model.safetensors"))
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank,
                                                          "target_modules": ["q_proj", "v_proj"]}))
    return path


_MEASURE = """
import json, resource, sys
from pathlib import Path
import gguf, numpy, safetensors.torch, torch  # the libraries' own memory is the baseline, not the work's
from llmctl.convert.adapter_merge import merge_adapter
from llmctl.convert.gguf_export import export_gguf

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

baseline = peak()
mode, source, out, extra = sys.argv[1:5]
if mode == "export":
    export_gguf(Path(source), Path(out), dtype=extra)
else:
    Path(out).mkdir()
    merge_adapter(Path(source), Path(extra), Path(out))
print(json.dumps({"baseline": baseline, "peak": peak()}))
"""


def peak_memory_of(mode: str, source: Path, out: Path, extra: str) -> int:
    """Run an export (``extra`` = dtype) or merge (``extra`` = adapter dir) in a fresh process; bytes above baseline."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, mode, str(source), str(out), extra], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    numbers = json.loads(done.stdout.strip().splitlines()[-1])
    return numbers["peak"] - numbers["baseline"]


def largest_shard(model_dir: Path) -> int:
    """Bytes of the biggest safetensors shard of ``model_dir``."""
    return max(p.stat().st_size for p in model_dir.glob("*.safetensors"))
