"""A run killed with SIGKILL and resumed gives the same per-step losses as one that never stopped; Ctrl-C saves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from llmctl.train.finetune import FinetuneRequest, run_finetune
from llmctl.train.loop import TrainingInterrupted
from tests.tiny_models import make_tiny_model_dir

SETTINGS = ["max_steps=8", "save_every=3", "batch_size=2", "grad_accum=2", "val_split=0.25", "eval_every=2",
            "precision=fp32", "lora_dropout=0.1", "learning_rate=5e-3", "warmup_ratio=0.25"]


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMCTL_RUNS_DIR", str(tmp_path / "runs"))
    model = make_tiny_model_dir("llama", tmp_path / "llama")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"Name thing {i}", "output": f"Thing {i} is here."}) + "\n"
                            for i in range(12)))
    return model, data, tmp_path


def _curve(run):
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r.get("loss"), r.get("val_loss")) for r in records]


def test_sigkill_then_resume_matches_an_uninterrupted_run(setup):
    model, data, tmp_path = setup
    reference = run_finetune(FinetuneRequest(str(model), "lora", str(data), overrides=SETTINGS, name="straight"))
    script = textwrap.dedent(f"""
        import os, signal
        from llmctl.train.finetune import FinetuneRequest, run_finetune

        def kill_at_five(step, record):
            if step == 5:
                os.kill(os.getpid(), signal.SIGKILL)

        run_finetune(FinetuneRequest({str(model)!r}, "lora", {str(data)!r}, overrides={SETTINGS!r}, name="killed"),
                     callbacks=[kill_at_five])
    """)
    child = subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), capture_output=True)
    assert child.returncode == -9, child.stderr.decode()[-2000:]
    killed = tmp_path / "runs" / "killed"
    assert [p.name for p in (killed / "checkpoints").iterdir()] == ["step-000003"]
    assert not (killed / "adapter_config.json").exists()  # no result from an unfinished run
    resumed = run_finetune(FinetuneRequest(""), resume="killed")
    straight, again = _curve(reference.run), _curve(resumed.run)
    assert [s for s, _, _ in again] == [s for s, _, _ in straight]
    for (_, loss_a, val_a), (_, loss_b, val_b) in zip(straight, again, strict=True):
        assert (loss_a is None) == (loss_b is None) and (val_a is None) == (val_b is None)
        if loss_a is not None:
            assert abs(loss_a - loss_b) < 1e-5
        if val_a is not None:
            assert abs(val_a - val_b) < 1e-5
    assert json.loads((resumed.run / "llmctl.json").read_text())["status"] == "finished"


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(setup):
    model, data, _ = setup

    def interrupt(step, record):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as error:
        run_finetune(FinetuneRequest(str(model), "lora", str(data), overrides=SETTINGS, name="stopped"),
                     callbacks=[interrupt])
    assert "--resume" in str(error.value) and "step 2" in str(error.value)
    run = error.value.args[0].split("saved in ")[1].split(";")[0]
    assert run.endswith("step-000002")
    resumed = run_finetune(FinetuneRequest(""), resume="stopped")
    assert resumed.result.steps == 8
