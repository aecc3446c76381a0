"""Helpers for testing a plugin (and llmctl itself): a temporary store, the CLI as a function, tiny models and data.

Nothing here downloads anything, and importing this module imports neither torch nor transformers (the functions
that build models import them when called). A plugin's test might read::

    from llmctl.testing import make_tiny_model_dir, run_cli, temporary_store, write_instruction_data

    def test_my_method_trains(tmp_path):
        model = make_tiny_model_dir("llama", tmp_path / "model")         # a random 2-layer model, milliseconds
        data = write_instruction_data(tmp_path / "data.jsonl")
        with temporary_store(tmp_path):                                   # LLMCTL_HOME and the runs folder
            code, out, err = run_cli("finetune", str(model), "--method", "my-method", "--data", str(data),
                                     "max_steps=2")
        assert code == 0, err

``run_cli`` runs in this process, so it sees the plugins this process loaded: an installed plugin (its entry
point), or one registered for the test with :func:`plugin_registered`. ``run_cli_subprocess`` starts ``python -m
llmctl`` exactly as a user would, for tests that need a fresh process (``PYTHONPATH`` pointing at a folder the
plugin was installed into with ``pip install --target``).
"""

from __future__ import annotations

import functools
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from llmctl.chat_templates import CHATML
from llmctl.descriptors import Family

__all__ = [
    "SPECIAL_TOKENS",
    "CliResult",
    "Store",
    "TINY_CORPUS",
    "TINY_VOCAB",
    "make_tiny_model_dir",
    "plugin_registered",
    "run_cli",
    "run_cli_subprocess",
    "temporary_store",
    "tiny_config",
    "tiny_tokenizer_dir",
    "word_tokenizer_dir",
    "write_instruction_data",
    "write_preference_data",
    "write_prompt_data",
]

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>")
TINY_CORPUS = (
    "The capital of France is Paris. The capital of Italy is Rome. The capital of Spain is Madrid. "
    "Question: what is two plus two? Answer: four. Translate to French: cat, dog, house, water, bread. "
    "Write a short poem about the sea and the sky. List three colours: red, green, blue. "
    "user assistant system instruction input output response the a of and to in is that it was for on with"
)
"""The text the tiny BPE tokenizer is trained on (its merges cover these words)."""
TINY_VOCAB = 512
WORDS = tuple(f"w{i}" for i in range(480)) + ("user", "assistant", "system")
TOKENIZER_FILES = ("special_tokens_map.json", "chat_template.jinja", "vocab.json", "merges.txt")


# --- the store and the CLI -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    """Where a :func:`temporary_store` puts things: ``home`` (``LLMCTL_HOME``: models/) and ``runs``."""

    root: Path
    home: Path
    runs: Path

    @property
    def env(self) -> dict[str, str]:
        """The environment variables that point llmctl at this store (for a subprocess)."""
        return {"LLMCTL_HOME": str(self.home), "LLMCTL_RUNS_DIR": str(self.runs)}


class CliResult(NamedTuple):
    """What one llmctl command did: exit code, standard output and standard error (unpacks as a tuple)."""

    code: int
    out: str
    err: str


@contextmanager
def _environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables for the duration of the block, then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def temporary_store(root: str | Path | None = None) -> Iterator[Store]:
    """Point ``LLMCTL_HOME`` and ``LLMCTL_RUNS_DIR`` at folders under ``root`` (a new temporary folder when None).

    The variables are restored when the block ends; a folder this function created is removed then.
    """
    created = root is None
    base = Path(tempfile.mkdtemp(prefix="llmctl-store-")) if root is None else Path(root)
    store = Store(base, base / "llmctl-home", base / "runs")
    store.home.mkdir(parents=True, exist_ok=True)
    try:
        with _environment(store.env):
            yield store
    finally:
        if created:
            shutil.rmtree(base, ignore_errors=True)


def run_cli(*args: str, env: Mapping[str, str | None] | None = None, input: str = "") -> CliResult:
    """Run ``llmctl ARGS`` in this process and capture what it printed (``env`` is set for the call only)."""
    from llmctl.cli import main

    out, err = io.StringIO(), io.StringIO()
    stdin = sys.stdin
    sys.stdin = io.StringIO(input)
    try:
        with _environment(dict(env or {})), redirect_stdout(out), redirect_stderr(err):
            try:
                main(list(args))
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        sys.stdin = stdin
    return CliResult(code, out.getvalue(), err.getvalue())


def run_cli_subprocess(*args: str, env: Mapping[str, str] | None = None, input: str = "", timeout: float = 600,
                       cwd: str | Path | None = None) -> CliResult:
    """Run ``python -m llmctl ARGS`` in a new process with this environment plus ``env``."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    done = subprocess.run([sys.executable, "-m", "llmctl", *args], capture_output=True, text=True, env=full_env,
                          input=input, timeout=timeout, cwd=cwd)
    return CliResult(done.returncode, done.stdout, done.stderr)


@contextmanager
def plugin_registered(plugin: object, name: str = "under-test") -> Iterator[None]:
    """Register ``plugin`` (a module or object with ``@hookimpl`` functions) for the block, as if installed.

    Only this process sees it (use :func:`run_cli`, not :func:`run_cli_subprocess`). A plugin that is installed
    already (its entry point loaded it) stays as it is.
    """
    from llmctl.plugins import get_host

    host = get_host()
    if host.pm.is_registered(plugin):
        yield
        return
    host.register_object(plugin, name, distribution=name)
    try:
        yield
    finally:
        host.unregister(name)


# --- tiny models -----------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _trained_tokenizer_dir(vocab_size: int) -> Path:
    """A byte-level BPE tokenizer trained on :data:`TINY_CORPUS`, saved once per process in a temporary folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator([TINY_CORPUS] * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                        unk_token="<unk>")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHATML
    directory = Path(tempfile.mkdtemp(prefix="llmctl-tiny-tokenizer-"))
    tokenizer.save_pretrained(directory)
    return directory


def tiny_tokenizer_dir() -> Path:
    """A folder holding the tiny BPE tokenizer (512 tokens; pad 0, bos 1, eos 2, unk 3, ChatML 4 and 5)."""
    return _trained_tokenizer_dir(TINY_VOCAB)


@functools.lru_cache(maxsize=1)
def word_tokenizer_dir() -> Path:
    """A folder holding a word-level tokenizer over ``w0 … w479`` (ids 6 …; pad 0, bos 1, eos 2) with ChatML.

    Every word is one token, so a test can write data whose tokens it knows (a reward counting ``w7``).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS + WORDS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                        unk_token="<unk>")
    tokenizer.chat_template = (
        "{% for message in messages %}{{ '<|im_start|> ' + message['role'] + ' ' + message['content'] + "
        "' <|im_end|> ' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|> assistant ' }}{% endif %}")
    directory = Path(tempfile.mkdtemp(prefix="llmctl-word-tokenizer-"))
    tokenizer.save_pretrained(directory)
    return directory


def _family(family: Family | str) -> Family:
    """A family descriptor from itself, its name or one of its transformers model types."""
    if isinstance(family, Family):
        return family
    from llmctl.errors import UnknownNameError
    from llmctl.plugins import get_registry

    registry = get_registry()
    try:
        return registry.family(family)
    except UnknownNameError:
        found = registry.family_for_model_type(family)
        if found is None:
            raise
        return found


def tiny_config(family: Family | str, **overrides: Any) -> dict[str, Any]:
    """A family's ``tiny_config`` (the family, its name or a model type it handles) with ``overrides`` applied."""
    return {**_family(family).tiny_config, **overrides}


def make_tiny_model_dir(family: Family | str, path: str | Path, *, tokenizer: str | Path = "bpe", seed: int = 0,
                        **overrides: Any) -> Path:
    """Write a random tiny model of ``family`` with a tokenizer to ``path`` and return ``path``.

    ``family`` is a :class:`~llmctl.descriptors.Family` (yours, registered or not), a registered family's name or a
    model type. ``tokenizer`` is ``"bpe"`` (:func:`tiny_tokenizer_dir`), ``"word"`` (:func:`word_tokenizer_dir`) or
    a folder to copy a tokenizer from. The vocabulary and special-token ids follow the tokenizer; ``overrides``
    change the configuration last (``num_hidden_layers=1``). The weights are deterministic for a given ``seed``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmctl.models.params import build_config

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if tokenizer == "bpe":
        source = tiny_tokenizer_dir()
    elif tokenizer == "word":
        source = word_tokenizer_dir()
    else:
        source = Path(tokenizer)
    for item in source.iterdir():
        if item.name.startswith("tokenizer") or item.name in TOKENIZER_FILES:
            shutil.copy(item, path / item.name)
    loaded = AutoTokenizer.from_pretrained(path)
    ids = {"pad_token_id": loaded.pad_token_id if loaded.pad_token_id is not None else loaded.eos_token_id,
           "bos_token_id": loaded.bos_token_id, "eos_token_id": loaded.eos_token_id}
    config = build_config({**tiny_config(family), "vocab_size": len(loaded), **ids, **overrides})
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    return path


# --- tiny data sets --------------------------------------------------------------------------------------------------


def _write_jsonl(path: str | Path, records: Sequence[Mapping[str, Any]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def write_instruction_data(path: str | Path, count: int = 10,
                           records: Sequence[Mapping[str, Any]] | None = None) -> Path:
    """Write an instruction data set (alpaca JSONL: ``instruction``, ``output``) to ``path`` and return it.

    The default ``count`` records (``Name 3`` → ``It is 3.``) share one answer pattern, so a few steps of training on
    a tiny model visibly lower the loss; pass ``records`` to write your own.
    """
    rows = records if records is not None else [{"instruction": f"Name {i}", "output": f"It is {i}."}
                                                for i in range(count)]
    return _write_jsonl(path, rows)


def write_preference_data(path: str | Path, count: int = 16, seed: int = 0,
                          records: Sequence[Mapping[str, Any]] | None = None) -> Path:
    """Write a preference data set (JSONL: ``prompt``, ``chosen``, ``rejected``) to ``path`` and return it.

    The default records are words of :func:`word_tokenizer_dir`: every chosen answer ends ``w7 w8 w9`` and no
    rejected one does, so a preference method has something to learn.
    """
    rng = random.Random(seed)

    def words(n: int) -> str:
        return " ".join(f"w{rng.randrange(20, 200)}" for _ in range(n))

    rows = records if records is not None else [
        {"prompt": words(4), "chosen": f"{words(2)} w7 w8 w9", "rejected": words(5)} for _ in range(count)]
    return _write_jsonl(path, rows)


def write_prompt_data(path: str | Path, count: int = 8, seed: int = 0) -> Path:
    """Write a prompt-only data set (JSONL: ``prompt``; for PPO or rejection sampling) to ``path`` and return it."""
    rng = random.Random(seed)
    rows = [{"prompt": " ".join(f"w{rng.randrange(100, 400)}" for _ in range(3))} for _ in range(count)]
    return _write_jsonl(path, rows)
