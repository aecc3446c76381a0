"""From the user's references (model, adapter run, proxy pair) to a loaded chat engine, with checks first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.errors import DataError, LlmctlError, UnknownNameError
from llmctl.generate.engine import artefact_formats, runs_gguf_file
from llmctl.generate.fits import check_fits, needed_bytes_for_gguf, needed_bytes_from_config, read_config
from llmctl.generate.template import fallback_template, is_instruction_tuned

BASE_KEYS = ("base_model", "base", "model", "model_name")


@dataclass
class EngineRequest:
    """Everything ``llmctl chat`` asks of the loader."""

    model: str
    engine: str = "auto"
    adapter: str | None = None
    proxy: str | None = None
    proxy_base: str | None = None
    proxy_alpha: float = 1.0
    dtype: str = "auto"
    context: int | None = None
    trust_remote_code: bool = False
    allow_pickle: bool = False


def find_run(ref: str) -> Path:
    """A finetune run directory from a path or a run id under the runs folder."""
    from llmctl.registry import suggest
    from llmctl.store import runs_dir

    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    candidate = runs_dir() / ref
    if candidate.is_dir():
        return candidate
    known = [p.name for p in runs_dir().iterdir() if p.is_dir()] if runs_dir().is_dir() else []
    raise UnknownNameError("run", ref, suggest(ref, known))


def run_base_model(run: Path) -> str | None:
    """The base model a run's ``llmctl.json`` names, if any."""
    try:
        meta = json.loads((run / "llmctl.json").read_text())
    except (OSError, ValueError):
        return None
    for key in BASE_KEYS:
        if isinstance(meta.get(key), str):
            return meta[key]
    parents = meta.get("parents")
    return parents[0] if isinstance(parents, list) and parents else None


def precheck_memory(ref: str, engine: str, dtype: str, context: int) -> None:
    """Refuse, before any download, a registry model whose weights cannot fit the free memory."""
    from llmctl.plugins import get_registry

    found = get_registry().find_model(ref)
    if found is None:
        return
    lightest = "int4" if runs_gguf_file(engine) else ("bfloat16" if dtype == "auto" else _dtype_name(dtype))
    check_fits(found[1].name, needed_bytes_from_config(dict(found[1].config), lightest, context),
               f"{lightest} weights + {context}-token KV cache")


def _dtype_name(dtype: str) -> str:
    from llmctl.models.loading import DTYPES

    return DTYPES.get(dtype, dtype)


def check_artefact_memory(artefact: Any, engine_name: str, dtype: str, context: int) -> None:
    """Refuse a resolved artefact that cannot fit, estimated from its files before loading."""
    config = read_config(artefact.path)
    if runs_gguf_file(engine_name) and "gguf" in artefact_formats(artefact):
        path = artefact.gguf_path()
        if path is not None and path.is_file():
            check_fits(artefact.name, needed_bytes_for_gguf(path, config, context), "GGUF + KV cache")
        return
    if config is not None:
        name = "bfloat16" if dtype == "auto" else _dtype_name(dtype)
        check_fits(artefact.name, needed_bytes_from_config(config, name, context), f"{name} weights + KV cache")


def require_pickle_allowed(artefact: Any, allow_pickle: bool) -> None:
    """Refuse, in one line naming ``--allow-pickle``, an artefact whose only weights are pickle files."""
    if artefact.format == "pytorch" and not allow_pickle:
        raise DataError(f"{artefact.name} holds only pickle weights (.bin/.pt), which can run code when loaded; "
                        "pass --allow-pickle if you trust it")


def resolve(ref: str, request: EngineRequest) -> Any:
    """The artefact for a model reference (downloading or converting once when needed)."""
    from llmctl.models.resolve import resolve_model

    return resolve_model(ref, allow_pickle=request.allow_pickle, trust_remote_code=request.trust_remote_code)


def load_chat_engine(request: EngineRequest, status: Any = None) -> tuple[Any, Any]:
    """Resolve, check and load: returns ``(engine, artefact)``. ``status(text)`` reports progress."""
    from llmctl.generate.engine import select_engine

    say = status or (lambda text: None)
    context = request.context or 4096
    adapter_dir: Path | None = None
    if request.adapter:
        adapter_dir = find_run(request.adapter)
    precheck_memory(request.model, request.engine, request.dtype, context)
    say(f"Resolving {request.model}…")
    artefact = resolve(request.model, request)
    require_pickle_allowed(artefact, request.allow_pickle)
    features = (["adapter"] if adapter_dir else []) + (["proxy"] if request.proxy else [])
    descriptor = select_engine(artefact, request.engine, features)
    if artefact.format == "safetensors" and (Path(artefact.path) / "config.json").is_file():
        from llmctl.models.loading import check_model_dir

        check_model_dir(artefact.path, request.trust_remote_code)  # one line for a damaged folder, before the estimate
    check_artefact_memory(artefact, descriptor.name, request.dtype, context)
    proxy = _proxy_parts(request) if request.proxy else None
    config = read_config(artefact.path) or {}
    names = [request.model, artefact.name, str(artefact.meta.get("origin", ""))]
    template = fallback_template(config.get("model_type"), is_instruction_tuned(names))
    say(f"Loading {artefact.name} on {descriptor.name}…")
    assert descriptor.load is not None
    engine = descriptor.load(artefact, adapter=adapter_dir, proxy=proxy, dtype=request.dtype,
                             context=request.context, trust_remote_code=request.trust_remote_code,
                             allow_pickle=request.allow_pickle, fallback_template=template)
    return engine, artefact


def _proxy_parts(request: EngineRequest) -> tuple[Any, Any, float]:
    """The tuned and untuned small models: each a model reference or a finetune run (base model + adapter)."""
    tuned = _model_or_run(request.proxy or "", request)
    base_ref = request.proxy_base
    if base_ref is None:
        if isinstance(tuned, tuple):
            base_ref = run_base_model(find_run(request.proxy or ""))
        if base_ref is None:
            raise DataError("--proxy needs --proxy-base: the small model before tuning")
    base = _model_or_run(base_ref, request)
    return tuned, base, request.proxy_alpha


def _model_or_run(ref: str, request: EngineRequest) -> Any:
    """An artefact, or ``(base artefact, adapter dir)`` when ``ref`` is a finetune run holding an adapter."""
    try:
        run = find_run(ref)
    except UnknownNameError:
        return resolve(ref, request)
    if (run / "config.json").is_file():
        return resolve(str(run), request)
    base = run_base_model(run)
    if base is None:
        raise LlmctlError(f"run {ref!r} does not name its base model in llmctl.json")
    return resolve(base, request), run


def generation_defaults(ref: str, artefact: Any) -> dict[str, Any]:
    """The sampling the model recommends: its family's documented values (found from the name the user typed or
    the artefact's ancestry, so a quantized or merged artefact inherits them from the registry model it was made
    from), overridden key by key by what the artefact itself states (``generation_config.json`` in a transformers
    folder, ``general.sampling.*`` in a GGUF). Empty when nothing recommends anything."""
    from llmctl.generate.params import sampling_from_generation_config, sampling_from_gguf, valid_settings
    from llmctl.plugins import get_registry
    from llmctl.store import find_artifact

    registry = get_registry()
    family: dict[str, Any] = {}
    names = [ref, artefact.name]
    seen: set[str] = set()
    while names:
        name = names.pop(0)
        if not name or name in seen or len(seen) > 8:
            continue
        seen.add(name)
        found = registry.find_model(name)
        if found is not None:
            family = valid_settings(found[0].generation_defaults)
            break
        parent = find_artifact(name)
        if parent is not None:
            names.extend(parent.parents)
    own: dict[str, Any] = {}
    folder = Path(artefact.path)
    if folder.is_dir() and (folder / "generation_config.json").is_file():
        try:
            config = json.loads((folder / "generation_config.json").read_text())
        except (OSError, ValueError):
            config = None
        if isinstance(config, dict):
            own = sampling_from_generation_config(config)
    gguf_file = artefact.gguf_path()
    if gguf_file is not None and gguf_file.is_file():
        own = {**sampling_from_gguf(gguf_file), **own}
    return {**family, **own}
