"""The real acceptance run, shortened: DoRA on the bundled SmolLM2-135M with our instruction set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent.parent / "recipes" / "data" / "instructions.jsonl"


@pytest.mark.slow
def test_dora_on_smollm2_lowers_validation_loss_and_chat_can_load_it(tmp_path, monkeypatch):
    from peft import PeftModel

    from llmctl.models.loading import load_causal_lm
    from llmctl.train.finetune import FinetuneRequest, run_finetune

    monkeypatch.setenv("LLMCTL_RUNS_DIR", str(tmp_path / "runs"))
    outcome = run_finetune(FinetuneRequest("smollm2-135m", "dora", str(DATA),
                                           overrides=["max_steps=6", "eval_every=3", "val_split=0.05",
                                                      "learning_rate=1e-3"]))
    result = outcome.result
    assert result.final_val_loss < result.first_val_loss
    meta = json.loads((outcome.run / "llmctl.json").read_text())
    assert meta["base_model"] == "smollm2-135m" and meta["kind"] == "adapter"
    from llmctl.models.resolve import resolve_model

    base = load_causal_lm(resolve_model("smollm2-135m", download=False).path)
    adapted = PeftModel.from_pretrained(base, outcome.run)
    assert adapted.peft_config["default"].use_dora
