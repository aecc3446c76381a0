"""Test-wide settings: never touch the user's cache; share the one-time conversion of the bundled models.

``LLMCTL_HOME`` points at ``tests/.cache/llmctl-home`` (git-ignored) for the whole session, so the bundled
SmolLM2/Gemma GGUF → safetensors conversion happens once and later sessions reuse it. Tests that create or delete
artefacts should point ``LLMCTL_HOME`` at their own ``tmp_path`` (monkeypatch.setenv) instead.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_HOME = Path(__file__).parent / ".cache" / "llmctl-home"

os.environ["LLMCTL_HOME"] = str(SHARED_HOME)
os.environ.setdefault("LLMCTL_RUNS_DIR", str(Path(__file__).parent / ".cache" / "runs"))
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.pop("HF_TOKEN", None)
