"""One rule finds a run's adapter: ``chat --adapter`` and ``convert --merge`` apply the same folder of a run that
holds several (a finished result beside its checkpoints, or only checkpoints).

Before this rule existed the two disagreed: chat took the first sub-folder by name (``checkpoint-100`` before
``checkpoint-1000``) and merge the most recently modified one anywhere below the run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llmctl.errors import DataError
from llmctl.models.adapters import find_adapter_dir


def _fake_adapter(folder: Path, mtime: float | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text("{}")
    if mtime is not None:
        os.utime(folder, (mtime, mtime))
    return folder


@pytest.mark.parametrize("final", [".", "adapter", "final"])
def test_the_finished_result_wins_over_checkpoints(tmp_path: Path, final: str) -> None:
    run = tmp_path / "run"
    for step in (200, 1000):
        _fake_adapter(run / "checkpoints" / f"checkpoint-{step}")
    expected = _fake_adapter(run / final)
    assert find_adapter_dir(run) == (run if final == "." else expected)


def test_the_latest_checkpoint_by_step_number_then_time(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _fake_adapter(run / "checkpoint-1000", mtime=1_000_000)
    _fake_adapter(run / "checkpoint-200", mtime=2_000_000)  # newer on disk (a copy), but an earlier step
    _fake_adapter(run / "checkpoint-90", mtime=3_000_000)
    _fake_adapter(run / ".tmp-checkpoint-2000")  # half-written: never picked
    assert find_adapter_dir(run) == run / "checkpoint-1000"
    nested = tmp_path / "nested"
    _fake_adapter(nested / "checkpoints" / "step-000200")
    _fake_adapter(nested / "checkpoints" / "step-000100")
    assert find_adapter_dir(nested) == nested / "checkpoints" / "step-000200"


def test_a_run_without_adapter_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no peft adapter"):
        find_adapter_dir(tmp_path / "run")


@pytest.mark.parametrize("layout", ["result-and-checkpoints", "checkpoints-only"])
def test_chat_and_merge_apply_the_same_adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    """Different adapters in one run: the chat engine's model and the merged artefact carry the same one (the
    result, else the highest step; neither the first by name nor the newest on disk)."""
    torch = pytest.importorskip("torch")
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from llmctl.convert.run_merge import merge_run
    from llmctl.plugins import get_registry
    from llmctl.store import Artifact
    from tests.tiny_models import make_tiny_model_dir

    monkeypatch.setenv("LLMCTL_HOME", str(tmp_path / "home"))
    base_dir = make_tiny_model_dir("llama", tmp_path / "base")
    run = tmp_path / "runs" / "run-1"
    folders = {name: run / name for name in ("checkpoint-100", "checkpoint-200", "checkpoint-1000")}
    if layout == "result-and-checkpoints":
        folders["result"] = run
    for seed, folder in enumerate(folders.values(), start=1):
        torch.manual_seed(seed)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                               LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "lora_" in name:
                    parameter.copy_(torch.randn_like(parameter) * 0.1)
        model.save_pretrained(folder)
    os.utime(folders["checkpoint-200"], (2e9, 2e9))  # the older step is the newer folder on disk
    (run / "llmctl.json").write_text(json.dumps({"kind": "adapter", "status": "finished",
                                                 "base_model": str(base_dir)}))
    expected_dir = folders["result" if layout == "result-and-checkpoints" else "checkpoint-1000"]
    expected = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), str(expected_dir))
    expected = expected.merge_and_unload().state_dict()

    engine = get_registry().get("engine", "transformers")
    chat = engine.load(Artifact("base", base_dir, {"format": "safetensors"}), adapter=run, dtype="float32")
    merged_artefact = merge_run(str(run), name="merged")
    merged = AutoModelForCausalLM.from_pretrained(merged_artefact.path).state_dict()

    assert merged_artefact.meta["adapter"] == str(expected_dir.resolve())
    for name, weight in expected.items():
        torch.testing.assert_close(chat.model.state_dict()[name], weight, msg=name)
        torch.testing.assert_close(merged[name], weight, msg=name)
