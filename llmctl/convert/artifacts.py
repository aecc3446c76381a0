"""Conversions between store artefacts: HF → GGUF and GGUF → HF, each written as a new artefact.

Every output goes through :func:`llmctl.store.create_artifact`, so an interrupted conversion (Ctrl-C, SIGKILL)
leaves only a hidden temporary directory that the next store write sweeps away, never an artefact listed as complete.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from llmctl.convert.gguf_export import ProgressCallback, export_gguf
from llmctl.errors import DataError
from llmctl.store import Artifact, create_artifact, find_artifact, safe_name

StatusCallback = Callable[[str], None]


def gguf_artifact_name(source: Artifact, dtype: str) -> str:
    """Default name of a GGUF conversion: the source's name with the dtype appended."""
    return f"{source.name}-{dtype.lower()}"


def convert_to_gguf(source: Artifact, *, dtype: str = "f16", name: str | None = None, overwrite: bool = False,
                    progress: ProgressCallback | None = None, status: StatusCallback | None = None) -> Artifact:
    """Write ``source`` (a safetensors model, or a GGUF re-encoded through a float copy) as a GGUF artefact."""
    name = name or gguf_artifact_name(source, dtype)
    file_name = f"{safe_name(name)}.gguf"
    record: dict[str, object] = {"file": file_name}  # completed below; llmctl.json is written when the block ends
    with create_artifact(name, kind="model", format="gguf", origin=f"convert:{source.name}", parents=[source.name],
                         dtype=dtype.lower(), overwrite=overwrite, extra=record) as folder:
        if source.format == "gguf":
            with tempfile.TemporaryDirectory(prefix=".float-", dir=folder) as scratch:
                if status is not None:
                    status(f"dequantizing {source.name} to a float copy")
                _gguf_to_hf(source, Path(scratch))
                result = export_gguf(Path(scratch), folder / file_name, dtype=dtype, model_name=source.name,
                                     progress=progress)
        else:
            result = export_gguf(source.path, folder / file_name, dtype=dtype, model_name=source.name,
                                 progress=progress)
        record.update(architecture=result.architecture, family=result.family, chat_template=result.chat_template,
                      tensors=result.tensors)
    artifact = find_artifact(name)
    assert artifact is not None
    return artifact


def convert_to_hf(source: Artifact, *, name: str | None = None, dtype: str = "float32",
                  overwrite: bool = False) -> Artifact:
    """Write the GGUF of ``source`` as a safetensors model directory artefact (weights dequantized to ``dtype``)."""
    if source.gguf_path() is None:
        raise DataError(f"{source.name} is already a {source.format} model; `--to hf` converts a GGUF")
    name = name or f"{source.name}-hf"
    with create_artifact(name, kind="model", format="safetensors", origin=f"convert:{source.name}",
                         parents=[source.name], dtype=dtype, overwrite=overwrite) as folder:
        _gguf_to_hf(source, folder, dtype)
    artifact = find_artifact(name)
    assert artifact is not None
    return artifact


def _gguf_to_hf(source: Artifact, folder: Path, dtype: str = "float32") -> None:
    from llmctl.models.gguf_import import gguf_to_hf_dir

    gguf_path = source.gguf_path()
    assert gguf_path is not None
    gguf_to_hf_dir(gguf_path, folder, dtype=dtype)

