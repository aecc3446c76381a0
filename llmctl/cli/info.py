"""``llmctl info MODEL``: architecture, parameter count and memory needs, without loading any weights.

A registry model is described from the config its family ships; a model folder (``config.json`` plus safetensors,
such as one written by transformers' ``save_pretrained``), a store artefact or a ``.gguf`` file from what is on disk.
A folder's parameters are counted from its safetensors headers, so a model type no family handles (``gpt2``) is
described as well as one that a family does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from llmctl.cli.output import complete_model, console, err_console, print_json

# (config keys, first present wins; label): older architectures such as gpt2 spell the common fields differently
SUMMARY_FIELDS = (
    (("model_type",), "model type"),
    (("num_hidden_layers", "n_layer", "num_layers"), "layers"),
    (("hidden_size", "n_embd", "d_model"), "hidden size"),
    (("intermediate_size", "n_inner", "ffn_dim"), "MLP size"),
    (("num_attention_heads", "n_head"), "attention heads"),
    (("num_key_value_heads",), "KV heads"),
    (("head_dim",), "head dim"),
    (("vocab_size",), "vocabulary"),
    (("max_position_embeddings", "n_positions", "n_ctx"), "context length"),
    (("sliding_window",), "sliding window"),
    (("num_local_experts",), "experts per layer"),
    (("num_experts_per_tok",), "experts per token"),
    (("tie_word_embeddings",), "tied embeddings"),
)


@dataclass
class StoredWeights:
    """What a folder's safetensors headers say: tensor count, parameters, dtypes and bytes on disk."""

    tensors: int
    parameters: int
    dtypes: tuple[str, ...]
    bytes: int


def stored_weights(folder: Path) -> StoredWeights | None:
    """Read every safetensors shard's header in ``folder`` (no tensor data); None when it has no safetensors."""
    from safetensors import safe_open

    from llmctl.models.loading import check_safetensors_file, safetensors_files

    shards = safetensors_files(folder)
    tensors = parameters = size = 0
    dtypes: dict[str, None] = {}
    for shard in shards:
        check_safetensors_file(shard)  # a damaged download is one line here, not a library traceback
        size += shard.stat().st_size
        with safe_open(str(shard), framework="numpy") as handle:
            for key in handle.keys():  # noqa: SIM118 - a safetensors handle is not iterable
                piece = handle.get_slice(key)
                count = 1
                for dim in piece.get_shape():
                    count *= dim
                tensors += 1
                parameters += count
                dtypes[piece.get_dtype()] = None
    return StoredWeights(tensors, parameters, tuple(dtypes), size) if shards else None


def summary_rows(config: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``(label, value)`` rows of the summary table that ``config`` has values for."""
    rows = []
    for keys, label in SUMMARY_FIELDS:
        value = next((config[key] for key in keys if config.get(key) is not None), None)
        if value is not None:
            rows.append((label, str(value)))
    return rows


@dataclass
class Described:
    """What ``info`` shows about a model: its name, where it is, its family and its ``config.json`` values."""

    name: str
    config: dict[str, Any]
    family: Any = None
    hub_id: str | None = None
    path: Path | None = None
    format: str | None = None
    stored: StoredWeights | None = None

    @property
    def title(self) -> str:
        """The summary table's title: name, hub id or location, family."""
        where = self.hub_id or (str(self.path) if self.path else "")
        family = self.family.name if self.family is not None else "unknown"
        return f"{self.name}  ({where}, family {family})"


def describe(ref: str) -> Described:
    """A registry model (from its config, nothing downloaded), else a store artefact, model folder or ``.gguf``
    file, found the way every other verb finds it (used in place; no weights are read)."""
    from llmctl.models.resolve import names_local_path, resolve_model
    from llmctl.plugins import get_registry

    registry = get_registry()
    found = None if names_local_path(ref) else registry.find_model(ref)  # a folder on disk wins, as in every verb
    if found is not None:
        family, spec = found
        return Described(spec.name, dict(spec.config), family, spec.hub_id)
    # info reads configs, never weights: pickle-only folders are described without --allow-pickle
    artefact = resolve_model(ref, download=False, allow_pickle=True)
    config = _artefact_config(artefact)
    family = registry.family_for_model_type(str(config.get("model_type", "")))
    where = artefact.file() if artefact.format == "gguf" else artefact.path
    stored = stored_weights(artefact.path) if artefact.format != "gguf" else None
    return Described(artefact.name, config, family, path=where, format=artefact.format, stored=stored)


def _artefact_config(artefact: Any) -> dict[str, Any]:
    """The artefact's ``config.json``, or for a GGUF the configuration transformers reads from its metadata."""
    from llmctl.errors import DataError
    from llmctl.generate.fits import read_config

    config = read_config(artefact.path) if artefact.format != "gguf" else None
    if config is not None:
        if "model_type" not in config:
            raise DataError(f"{artefact.path / 'config.json'}: no model_type, so the architecture is unknown")
        return config
    gguf = artefact.gguf_path()
    if gguf is None:
        raise DataError(f"{artefact.path}: no config.json and no GGUF file to read the architecture from")
    return gguf_config(gguf)


def gguf_config(path: Path) -> dict[str, Any]:
    """The transformers configuration a GGUF file's metadata describes (its tensors are not read)."""
    from llmctl.errors import DataError

    architecture = gguf_architecture(path)
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
    except Exception:  # transformers raises several kinds for an architecture it cannot map
        raise DataError(f"{path}: transformers cannot describe the GGUF architecture {architecture!r} "
                        "(its metadata has no transformers equivalent)") from None
    values = config.to_dict()
    values["model_type"] = config.model_type
    return values


def gguf_architecture(path: Path) -> str:
    """``general.architecture`` of a GGUF file; a truncated or foreign file is a one-line DataError."""
    from llmctl.errors import DataError

    try:
        from gguf import GGUFReader

        field = GGUFReader(str(path)).fields.get("general.architecture")
        value = field.contents() if field is not None else None
    except Exception:  # the reader raises struct, value and index errors on a damaged file
        raise DataError(f"{path}: not a readable GGUF file (truncated or damaged)") from None
    if not isinstance(value, str):
        raise DataError(f"{path}: the GGUF names no architecture (general.architecture)")
    return value


def _count(described: Described) -> Any:
    """Parameters: a folder's unquantized safetensors headers give the total (exact for any architecture), the config
    (built on the meta device) gives the rest; an architecture neither can count is one line."""
    from llmctl.descriptors import ParameterCount
    from llmctl.errors import DataError
    from llmctl.models.params import count_parameters

    stored = described.stored
    from_headers = stored is not None and stored.parameters > 0 and not described.config.get("quantization_config")
    try:
        counted = count_parameters(described.config, described.family)
    except (ValueError, KeyError, TypeError) as error:
        if from_headers:  # transformers cannot build it, but the weights on disk say how many there are
            return ParameterCount(total=stored.parameters, active=stored.parameters)
        if described.config.get("auto_map"):
            raise DataError(f"{described.name}: its architecture is custom code; `llmctl info` cannot count it "
                            "without loading that code") from None
        kind = described.config.get("model_type")
        raise DataError(f"{described.name}: cannot build model type {kind!r} from its config "
                        f"({str(error).strip().splitlines()[0] if str(error).strip() else 'invalid config'})") from None
    if not from_headers or counted.total == stored.parameters:
        return counted
    # the headers are what is really there; routed experts stay proportionally inactive
    active = stored.parameters * counted.active // counted.total if counted.total else stored.parameters
    return ParameterCount(total=stored.parameters, active=active, embedding=counted.embedding)


def info(
    model: str = typer.Argument(..., help="Model name, alias, hub id, store artefact, model folder or .gguf file.",
                                autocompletion=complete_model),
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Show a model's architecture, parameter count and memory table without downloading weights."""
    from llmctl.models.memory import human_bytes, human_count, memory_table

    described = describe(model)
    config, family = described.config, described.family
    with err_console.status("Computing parameters from the config (no weights)…"):
        params = _count(described)
    rows = memory_table(params, config)
    stored = described.stored
    if json_output:
        print_json({
            "model": described.name, "family": family.name if family is not None else None,
            "hub_id": described.hub_id, "path": str(described.path) if described.path else None,
            "format": described.format, "config": config,
            "parameters": {"total": params.total, "active": params.active, "embedding": params.embedding},
            "weights": None if stored is None else {"tensors": stored.tensors, "parameters": stored.parameters,
                                                    "dtypes": list(stored.dtypes), "bytes": stored.bytes},
            "memory": [{"label": r.label, "bytes": r.bytes, "note": r.note} for r in rows],
        })
        return
    summary = Table(title=described.title, show_header=False)
    summary.add_column("field", style="bold")
    summary.add_column("value")
    for label, value in summary_rows(config):
        summary.add_row(label, value)
    if stored is not None:
        summary.add_row("weights", f"{described.format}, {', '.join(stored.dtypes)}, {stored.tensors} tensors, "
                                   f"{human_bytes(stored.bytes)}")
    elif described.format:
        summary.add_row("weights", described.format)
    summary.add_row("parameters", f"{human_count(params.total)} ({params.total:,})")
    if params.active != params.total:
        summary.add_row("active per token", f"{human_count(params.active)} ({params.active:,})")
    if family is not None and family.trust_remote_code:
        summary.add_row("note", "custom modelling code: loading needs --trust-remote-code")
    console.print(summary)
    memory = Table(title="Estimated memory")
    for column in ("use", "memory", "assumes"):
        memory.add_column(column)
    for row in rows:
        memory.add_row(row.label, human_bytes(row.bytes), row.note)
    console.print(memory)


def register(app: typer.Typer) -> None:
    """Add the ``info`` verb."""
    app.command("info")(info)
