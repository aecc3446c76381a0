"""The Hugging Face hub, through the real ``huggingface_hub`` client (``HF_ENDPOINT``, ``HF_TOKEN`` and login honoured).

Only safetensors weights, configs and tokenizer files are fetched by default; pickle weights (``.bin``/``.pt``) only
with ``--allow-pickle``, Python files only with ``--trust-remote-code``. Each file is streamed by
``huggingface_hub.file_download.http_get`` into ``<name>.incomplete`` in a hidden partial directory of the store,
continued with an HTTP range request when the download is run again after an interrupt (huggingface_hub 2.x no
longer resumes across processes by itself), checked against the hub's sha256 / git blob id, and the artefact is
published only once every file is there.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llmctl.descriptors import Source
from llmctl.errors import LlmctlError, NetworkError
from llmctl.hookspecs import hookimpl
from llmctl.store import Artifact, create_artifact, ensure_free_space, find_artifact, models_dir, safe_name

DEFAULT_ENDPOINT = "https://huggingface.co"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json")
SUPPORT_PATTERNS = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                    "tokenizer.model", "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt",
                    "*.tiktoken", "chat_template.jinja", "chat_template.json")
PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt")
PICKLE_PATTERNS = (*PICKLE_WEIGHTS, "*.bin.index.json")
CODE_PATTERNS = ("*.py",)
PARTIAL_PREFIX = ".download-"


def endpoint() -> str:
    """The hub address: ``$HF_ENDPOINT`` (tests point it at a local server) or huggingface.co."""
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def matches_hub_id(ref: str) -> bool:
    """True for something shaped like a hub repo id (``org/name``) that is not a path on disk."""
    return bool(HUB_ID.match(ref)) and not Path(ref).exists()


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the hub could not be reached at all (refused, DNS, timeout, offline mode)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return isinstance(exc, ConnectionError | TimeoutError) or bool(
        names & {"TransportError", "ConnectError", "TimeoutException", "OfflineModeIsEnabled"})


@contextmanager
def hub_errors(repo: str, revision: str | None) -> Iterator[None]:
    """Turn ``huggingface_hub`` failures into one-line llmctl errors saying what to do."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        yield
    except GatedRepoError as exc:
        raise LlmctlError(f"{repo} is gated: accept its licence on {endpoint()}/{repo}, then log in with "
                          "`hf auth login` (or set HF_TOKEN)") from exc
    except RepositoryNotFoundError as exc:
        raise LlmctlError(f"no model {repo!r} on the hub at {endpoint()} (if it is private, log in with "
                          "`hf auth login` or set HF_TOKEN)") from exc
    except RevisionNotFoundError as exc:
        raise LlmctlError(f"{repo} has no revision {revision!r}") from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise NetworkError(f"the Hugging Face hub answered HTTP {status} for {repo}") from exc
    except LocalEntryNotFoundError as exc:
        raise NetworkError(f"cannot reach the Hugging Face hub ({endpoint()}); no complete local copy of {repo}") \
            from exc
    except Exception as exc:
        if _unreachable(exc):
            raise NetworkError(f"cannot reach the Hugging Face hub ({endpoint()}: {exc})") from exc
        raise


def _patterns(allow_pickle: bool, trust_remote_code: bool, include: list[str]) -> tuple[str, ...]:
    patterns = WEIGHT_PATTERNS + SUPPORT_PATTERNS + tuple(include)
    if allow_pickle:
        patterns += PICKLE_PATTERNS
    if trust_remote_code:
        patterns += CODE_PATTERNS
    return patterns


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(Path(name).name, p) for p in patterns)


def select_files(repo: str, files: list[tuple[str, int]], *, allow_pickle: bool = False,
                 trust_remote_code: bool = False, include: list[str] | None = None) -> list[tuple[str, int]]:
    """The repo files to download; refuses a repo whose only weights are pickle files unless ``allow_pickle``."""
    chosen = [(n, s) for n, s in files if _matches(n, _patterns(allow_pickle, trust_remote_code, include or []))]
    if not allow_pickle:
        chosen = [(n, s) for n, s in chosen if not _matches(n, PICKLE_PATTERNS)]
    weights = [n for n, _ in chosen if n.endswith((".safetensors", ".gguf")) or _matches(n, PICKLE_WEIGHTS)]
    if not weights:
        if any(_matches(n, PICKLE_PATTERNS) for n, _ in files) and not allow_pickle:
            raise LlmctlError(f"{repo} has only pickle weights (.bin/.pt), which can run code when loaded; "
                              "pass --allow-pickle if you trust this repo")
        ggufs = sorted(n for n, _ in files if n.endswith(".gguf"))
        if ggufs:
            raise LlmctlError(f"{repo} holds GGUF files only; choose one with --include, e.g. "
                              f"--include '{ggufs[0]}'")
        raise LlmctlError(f"{repo} has no model weights llmctl can use (no .safetensors)")
    return chosen


def _model_info(repo: str, revision: str | None) -> Any:
    from huggingface_hub import HfApi

    with hub_errors(repo, revision):
        return HfApi(endpoint=endpoint()).model_info(repo, revision=revision, files_metadata=True)


def _check_access(repo: str, revision: str | None, file_name: str) -> None:
    """Ask for one file's metadata first, so a gated repo fails with its one line before any progress bar starts."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    with hub_errors(repo, revision):
        get_hf_file_metadata(hf_hub_url(repo, file_name, revision=revision, endpoint=endpoint()))


def plan_hub(ref: str, *, revision: str | None = None, allow_pickle: bool = False, trust_remote_code: bool = False,
             include: list[str] | None = None, **options: object) -> list[tuple[str, int]]:
    """The files ``fetch_hub`` would download and their sizes (asks the hub; downloads nothing)."""
    info = _model_info(ref, revision)
    files = [(s.rfilename, int(s.size or 0)) for s in info.siblings or []]
    return select_files(ref, files, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code, include=include)


def _weights_format(names: list[str]) -> tuple[str, str | None]:
    if any(n.endswith(".safetensors") for n in names):
        return "safetensors", None
    ggufs = sorted(n for n in names if n.endswith(".gguf"))
    if ggufs:
        return "gguf", ggufs[0]
    return "pytorch", None


def _config_dtype(folder: Path) -> str | None:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return config.get("dtype") or config.get("torch_dtype")


def _verify(path: Path, sibling: Any) -> None:
    """Check a finished file against the hub's sha256 (LFS files) or git blob id (small files)."""
    import hashlib

    lfs = getattr(sibling, "lfs", None)
    if lfs is not None and lfs.get("sha256"):
        digest, expected = hashlib.sha256(), lfs["sha256"]
    elif getattr(sibling, "blob_id", None):
        digest, expected = hashlib.sha1(b"blob %d\0" % path.stat().st_size), sibling.blob_id
    else:
        return
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        path.unlink()
        raise NetworkError(f"{sibling.rfilename} arrived corrupted (checksum mismatch); run the download again")


def download_file(repo: str, commit: str, sibling: Any, partial: Path, headers: dict[str, str]) -> None:
    """Fetch one repo file into ``partial``, continuing an ``.incomplete`` file left by an interrupted run."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.file_download import http_get

    target = partial / sibling.rfilename
    if target.is_file():
        return  # finished (and verified) by an earlier run
    incomplete = target.with_name(target.name + ".incomplete")
    incomplete.parent.mkdir(parents=True, exist_ok=True)
    size = int(sibling.size or 0)
    if incomplete.exists() and size and incomplete.stat().st_size > size:
        incomplete.unlink()
    with hub_errors(repo, commit), incomplete.open("ab") as out:
        http_get(hf_hub_url(repo, sibling.rfilename, revision=commit, endpoint=endpoint()), out,
                 resume_size=out.tell(), headers=headers, expected_size=size or None,
                 displayed_filename=sibling.rfilename)
    _verify(incomplete, sibling)
    os.replace(incomplete, target)


def fetch_hub(ref: str, *, revision: str | None = None, allow_pickle: bool = False, trust_remote_code: bool = False,
              include: list[str] | None = None, **options: object) -> Artifact:
    """Download ``ref`` (resuming an earlier partial download) and publish it as a store artefact."""
    from filelock import FileLock
    from huggingface_hub.utils import build_hf_headers

    name = f"{ref}@{revision}" if revision else ref
    existing = find_artifact(name)
    if existing is not None:
        return existing
    info = _model_info(ref, revision)
    siblings = {s.rfilename: s for s in info.siblings or []}
    chosen = select_files(ref, [(n, int(s.size or 0)) for n, s in siblings.items()], allow_pickle=allow_pickle,
                          trust_remote_code=trust_remote_code, include=include)
    names = [n for n, _ in chosen]
    commit = info.sha or revision or "main"
    partial = models_dir() / f"{PARTIAL_PREFIX}{safe_name(name)}"
    partial.mkdir(parents=True, exist_ok=True)
    with FileLock(str(partial) + ".lock"):  # a second `download` of the same model waits instead of interleaving
        existing = find_artifact(name)
        if existing is not None:  # the process we waited for published it
            shutil.rmtree(partial, ignore_errors=True)
            return existing
        have = sum(f.stat().st_size for f in partial.rglob("*") if f.is_file())
        ensure_free_space(sum(size for _, size in chosen) - have, models_dir())
        _check_access(ref, commit, names[0])
        headers = build_hf_headers()
        for file_name in names:
            download_file(ref, commit, siblings[file_name], partial, headers)
        weights_format, main_file = _weights_format(names)
        extra: dict[str, Any] = {"hub_id": ref, "revision": revision or "main", "commit": info.sha, "files": names,
                                 "trust_remote_code": trust_remote_code}
        if main_file:
            extra["file"] = main_file
        with create_artifact(name, kind="model", format=weights_format, origin=f"hub:{ref}@{commit}",
                             dtype=_config_dtype(partial), extra=extra) as folder:
            for file_name in names:
                target = folder / file_name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(partial / file_name, target)
        shutil.rmtree(partial, ignore_errors=True)
    artifact = find_artifact(name)
    assert artifact is not None
    return artifact


@hookimpl
def register_sources(register):
    """Register the Hugging Face hub source."""
    register(Source(
        name="hub",
        description="the Hugging Face hub (or $HF_ENDPOINT): safetensors by default, resumable downloads",
        priority=100,
        matches=matches_hub_id,
        fetch=fetch_hub,
        plan=plan_hub,
        network=True,
    ))
