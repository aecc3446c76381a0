"""The `make bench` suite: llmctl timed against the tools a user would otherwise run (HF Trainer + peft, trl,
plain ``model.generate``, raw llama-cpp-python, llama.cpp's quantizer). It writes docs/benchmarks.md.

Run from the repository root as ``python -m benchmarks`` (``--only WORD`` for the sections whose module holds
WORD). It lives outside the wheel: what ``llmctl benchmark`` measures is in ``llmctl.bench``.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository root: recipes/ data, docs/, and the `-m` import path
