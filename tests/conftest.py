"""Test-wide settings: never touch the user's cache; share the one-time conversion of the bundled models.

``LLMCTL_HOME`` points at ``tests/.cache/llmctl-home`` (git-ignored) for the whole session, so the bundled
SmolLM2/Gemma GGUF → safetensors conversion happens once and later sessions reuse it. Tests that create or delete
artefacts should point ``LLMCTL_HOME`` at their own ``tmp_path`` (monkeypatch.setenv) instead.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

SHARED_HOME = Path(__file__).parent / ".cache" / "llmctl-home"

os.environ["LLMCTL_HOME"] = str(SHARED_HOME)
os.environ.setdefault("LLMCTL_RUNS_DIR", str(Path(__file__).parent / ".cache" / "runs"))
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.pop("HF_TOKEN", None)

# A shell starts background jobs (`make test &`) with SIGINT ignored, and children inherit that: the Ctrl-C tests'
# subprocesses would then ignore the interrupt they test. Give them the usual disposition back.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def tiny_text_lm():
    """A tiny random llama with a byte-level BPE tokenizer trained on llmctl's bundled evaluation text."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    from llmctl.models.params import build_config
    from llmctl.plugins import get_registry
    from llmctl.quality import bundled_text

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator([bundled_text()], trainers.BpeTrainer(vocab_size=512, special_tokens=["<pad>", "<eos>"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>", pad_token="<pad>")
    config = build_config({**get_registry().family("llama").tiny_config, "vocab_size": bpe.get_vocab_size()})
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).eval(), tokenizer


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    """A tiny random qwen2 model and a ten-example instruction file, with runs written under ``tmp_path``."""
    from llmctl.testing import write_instruction_data
    from tests.tiny_models import make_tiny_model_dir

    monkeypatch.setenv("LLMCTL_RUNS_DIR", str(tmp_path / "runs"))
    data = write_instruction_data(tmp_path / "data.jsonl", count=10)
    return make_tiny_model_dir("qwen2", tmp_path / "qwen"), data
