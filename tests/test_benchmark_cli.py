"""`llmctl benchmark`: one table for several artefacts, and JSON and PNG files that carry the same numbers."""

from __future__ import annotations

import json

from tests.cli_helpers import run_llmctl
from tests.tiny_models import make_tiny_model_dir


def test_two_models_side_by_side_with_json_and_plot(tmp_path):
    first = make_tiny_model_dir("llama", tmp_path / "tiny-llama")
    second = make_tiny_model_dir("qwen2", tmp_path / "tiny-qwen")
    result = run_llmctl("benchmark", str(first), str(second), "--speed", "--quality", "--repeats", "2",
                        "--new-tokens", "8", "--prompt-tokens", "16", "--window", "64", "--stride", "32",
                        "--json", str(tmp_path / "bench.json"), "--plot", str(tmp_path / "bench.png"),
                        env={"LLMCTL_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr[-3000:]
    records = json.loads((tmp_path / "bench.json").read_text())
    assert [r["engine"] for r in records] == ["transformers", "transformers"]
    for record in records:
        speed = record["speed"]
        assert speed["decode_tokens_per_second"]["n"] == 2 and speed["decode_tokens_per_second"]["median"] > 0
        assert speed["time_to_first_token_ms"]["median"] > 0
        assert record["quality"]["perplexity"] > 1 and record["peak_memory_bytes"] > 0
        # the table shows the same numbers the JSON holds
        assert f"{record['quality']['perplexity']:.3f}" in result.stdout
        assert f"{speed['decode_tokens_per_second']['median']:.1f}" in result.stdout
    assert records[0]["quality"]["perplexity"] != records[1]["quality"]["perplexity"]
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unknown_model_is_reported_in_its_row(tmp_path):
    result = run_llmctl("benchmark", "smollm2-135mm", "--quality", env={"LLMCTL_HOME": str(tmp_path / "home")})
    assert result.returncode != 0
    assert "smollm2-135m" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
