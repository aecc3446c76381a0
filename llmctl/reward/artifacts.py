"""Finding the model directories alignment verbs read: store artefacts by name, or folders on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmctl.errors import LlmctlError
from llmctl.models.adapters import is_adapter_dir


def resolve_model_dir(name: str) -> Path:
    """The directory of a store artefact called ``name``, or ``name`` itself when it is a folder."""
    from llmctl.registry import suggest
    from llmctl.store import find_artifact, list_artifacts

    artifact = find_artifact(name)
    if artifact is not None:
        return artifact.path
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    hint = suggest(name, [a.name for a in list_artifacts()])
    more = f"; did you mean {', '.join(repr(h) for h in hint)}?" if hint else " (see `llmctl models`)"
    raise LlmctlError(f"no model artefact or folder {name!r}{more}")


def load_reward_model_dir(path: Path, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """(reward model, tokenizer) from a saved reward model or a peft sequence-classification adapter folder."""
    from llmctl.models.loading import load_tokenizer
    from llmctl.models.tokens import pad_token_id
    from llmctl.reward.model import load_reward_model

    if is_adapter_dir(path):
        from peft import AutoPeftModelForSequenceClassification

        model = AutoPeftModelForSequenceClassification.from_pretrained(str(path), num_labels=1,
                                                                       trust_remote_code=trust_remote_code)
        tokenizer = load_tokenizer(path if (path / "tokenizer_config.json").is_file()
                                   else model.peft_config["default"].base_model_name_or_path, trust_remote_code)
        if model.config.pad_token_id is None:
            model.config.pad_token_id = pad_token_id(tokenizer)
        return model.eval(), tokenizer
    tokenizer = load_tokenizer(path, trust_remote_code)
    return load_reward_model(path, pad_token_id=pad_token_id(tokenizer), trust_remote_code=trust_remote_code).eval(), \
        tokenizer
