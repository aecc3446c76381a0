"""``convert RUN --merge``: find a fine-tuning run's adapter and base model, merge them into a new model artefact."""

from __future__ import annotations

import json
from pathlib import Path

from llmctl.convert.adapter_merge import ADAPTER_CONFIG, ProgressCallback, load_adapter, merge_adapter
from llmctl.errors import DataError
from llmctl.models.adapters import find_adapter_dir
from llmctl.store import META_FILE, Artifact, create_artifact, find_artifact, read_meta, runs_dir

# llmctl.json keys a run may name its base model under, most specific first
_BASE_KEYS = ("base_model", "base", "model")


def find_run(ref: str) -> Path:
    """The run directory for ``ref``: a path, a run id under the runs folder, or an adapter artefact in the store."""
    candidates = [Path(ref).expanduser(), runs_dir() / ref]
    stored = find_artifact(ref)
    if stored is not None:
        candidates.insert(0, stored.path)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise DataError(f"no run {ref!r}: not a folder, not a run under {runs_dir()}, not an adapter in the store")


def base_model_ref(run_dir: Path, adapter_dir: Path) -> str:
    """The base model a run was trained from: named in the run's ``llmctl.json``, else in the adapter config."""
    for folder in (adapter_dir, run_dir):
        meta = read_meta(folder) or {}
        for key in _BASE_KEYS:
            if isinstance(meta.get(key), str) and meta[key]:
                return meta[key]
        if meta.get("kind") in ("adapter", "run") and meta.get("parents"):
            return str(meta["parents"][0])
    config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
    if config.get("base_model_name_or_path"):
        return str(config["base_model_name_or_path"])
    raise DataError(f"{run_dir}: the run does not say which base model it was trained from ({META_FILE})")


def merge_run(ref: str, *, name: str | None = None, overwrite: bool = False,
              progress: ProgressCallback | None = None) -> Artifact:
    """Merge the adapter of run ``ref`` into its base model and publish the full model as a new artefact."""
    from llmctl.models.resolve import resolve_model

    run_dir = find_run(ref)
    run_meta = read_meta(run_dir) or {}
    if run_meta.get("status") not in (None, "finished"):
        raise DataError(f"run {ref!r} is {run_meta['status']}; finish it (`llmctl finetune --resume {run_dir.name}`) "
                        "before merging")
    if run_meta.get("kind") == "model" and not (run_dir / ADAPTER_CONFIG).is_file():
        raise DataError(f"run {ref!r} trained the full model: there is no adapter to merge; use it as a model")
    adapter_dir = find_adapter_dir(run_dir)
    base = resolve_model(base_model_ref(run_dir, adapter_dir), download=False)
    if base.format != "safetensors":
        raise DataError(f"base model {base.name} is {base.format}; merging needs its safetensors weights")
    method = load_adapter(adapter_dir).method
    run_name = (read_meta(run_dir) or {}).get("name") or run_dir.name
    name = name or f"{run_name}-merged"
    record: dict[str, object] = {"adapter": str(adapter_dir.resolve()), "method": method}
    with create_artifact(name, kind="model", format="safetensors", origin=f"merge:{run_name}",
                         parents=[base.name, run_name], dtype=base.meta.get("dtype"), overwrite=overwrite,
                         extra=record) as folder:
        record.update(merge_adapter(base.path, adapter_dir, folder, progress=progress))
    artifact = find_artifact(name)
    assert artifact is not None
    return artifact
