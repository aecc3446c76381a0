"""``--nproc 2`` (torchrun, gloo on CPU) matches the one-process loss curve at the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.tiny_models import make_tiny_model_dir

COMMON = ["max_steps=4", "val_split=0", "precision=fp32", "lora_dropout=0", "save_every=0", "learning_rate=1e-2"]


def _losses(run):
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_match_one_at_the_same_global_batch(tmp_path, strategy):
    model = make_tiny_model_dir("llama", tmp_path / "m")
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"Say {i}", "output": f"Number {i} " * (1 + i % 4)}) + "\n"
                            for i in range(8)))
    env = {**os.environ, "LLMCTL_RUNS_DIR": str(tmp_path / "runs"), "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "llmctl", "finetune", str(model), "--data", str(data), *COMMON]
    one = subprocess.run([*base, "batch_size=4", "--name", "one"], env=env, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([*base, "batch_size=2", f"strategy={strategy}", "--nproc", "2", "--name", "two",
                          "--master-port", "29533"], env=env, capture_output=True, text=True)
    assert two.returncode == 0, (two.stdout + two.stderr)[-3000:]
    single, double = _losses(tmp_path / "runs" / "one"), _losses(tmp_path / "runs" / "two")
    assert len(single) == len(double) == 4
    assert max(abs(a - b) for a, b in zip(single, double, strict=True)) < 1e-3
    assert (tmp_path / "runs" / "two" / "adapter_config.json").is_file()
