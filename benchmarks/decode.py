"""Chat decode speed on the bundled SmolLM2-135M: our engines next to plain `model.generate` and raw llama-cpp."""

from __future__ import annotations

from benchmarks.report import Row, Section


def run(model: str = "smollm2-135m", tokens: int = 64) -> Section:
    """Decode tokens/s of each engine against the baseline a user would otherwise call, measured in one run."""
    from benchmarks.decode_speed import compare_decode_speed

    measured = compare_decode_speed(model, tokens)
    speeds = {r["label"]: r["tokens_per_second"] for r in measured["results"]}
    section = Section("Chat decode speed", f"{model}, {tokens} new tokens after a short chat prompt, greedy, batch 1, "
                      "default threads. Decode tokens/s (higher is better); ratio = ours ÷ baseline. The "
                      "transformers engine targets ≥ 2× plain `generate`, the llama.cpp engine ≥ 0.95× raw "
                      "llama-cpp-python.")
    plain = next((v for k, v in speeds.items() if k.startswith("transformers generate")), 0.0)
    raw = speeds.get("raw llama-cpp-python", 0.0)
    for label, value in speeds.items():
        if label.startswith("llmctl transformers"):
            section.rows.append(Row(label, value, "tok/s", "`model.generate` (fp32, as a user calls it)", plain))
        elif label.startswith("llmctl llama.cpp"):
            section.rows.append(Row(label, value, "tok/s", "raw llama-cpp-python, same GGUF", raw))
    if raw and plain:
        section.rows.append(Row("raw llama-cpp-python (for scale)", raw, "tok/s", "`model.generate` (fp32)", plain))
    return section
