"""The `make bench` suite: llmctl timed against the tools a user would otherwise run (HF Trainer + peft, trl,
plain ``model.generate``, raw llama-cpp-python, llama.cpp's quantizer). It writes docs/benchmarks.md.

Run from the repository root as ``python -m benchmarks`` (``--only WORD`` for the sections whose module holds
WORD). It lives outside the wheel: what ``llmctl benchmark`` measures is in ``llmctl.bench``.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository root: recipes/ data, docs/, and the `-m` import path


def spawn_worker(module: str, kind: str) -> dict:
    """Run ``python -m MODULE KIND`` in a fresh process (its own peak memory) and return its last JSON line."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", module, kind], capture_output=True, text=True, check=False,
                          cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} worker failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(lines[-1])
