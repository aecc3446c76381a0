"""``llmctl runs`` tells a run whose process was killed (``interrupted``, with the resume command) from a live one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from llmctl.train.runs import REQUEST_FILE, write_json_atomic
from tests.cli_helpers import run_main
from tests.tiny_models import make_tiny_model_dir

_llmctl = run_main


@pytest.fixture()
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMCTL_RUNS_DIR", str(tmp_path / "runs"))
    (tmp_path / "runs").mkdir()
    return tmp_path / "runs"


def _record(run, writer=None):
    run.mkdir()
    (run / REQUEST_FILE).write_text(json.dumps({"model": "m", "method": "lora"}))
    record = {"kind": "adapter", "method": "lora", "base_model": "m", "status": "running", "steps": 3,
              "max_steps": 8}
    write_json_atomic(run / "llmctl.json", record)  # stamped with this (live) process
    if writer is not None:
        (run / "llmctl.json").write_text(json.dumps({**record, "writer": writer}))


def _listed(capsys):
    code, out, err = _llmctl(capsys, "runs", "--json")
    assert code == 0, err
    return {r["id"]: r for r in json.loads(out)}


def test_a_run_written_by_a_killed_process_is_listed_as_interrupted_with_its_resume_command(runs, capsys):
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from llmctl.train.runs import write_json_atomic

        run = Path({str(runs / "dead")!r})
        run.mkdir()
        (run / "request.json").write_text("{{}}")
        write_json_atomic(run / "llmctl.json", {{"kind": "adapter", "method": "lora", "status": "running"}})
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert child.returncode == -9, child.stderr.decode()
    _record(runs / "alive")
    listed = _listed(capsys)
    assert listed["dead"]["status"] == "interrupted"
    assert listed["dead"]["resume"] == "llmctl finetune --resume dead"
    assert listed["alive"]["status"] == "running" and listed["alive"]["resume"] is None
    code, out, _ = _llmctl(capsys, "runs")
    assert code == 0 and "interrupted" in out
    assert "dead was interrupted; resume it with: llmctl finetune --resume dead" in out
    assert "alive was interrupted" not in out


def test_a_reused_pid_does_not_keep_a_dead_run_running(runs, capsys):
    from llmctl.train.runs import writer_stamp

    stamp = writer_stamp()
    _record(runs / "reused", {**stamp, "started": "1"})  # our pid, but a process that started at another time
    _record(runs / "elsewhere", {**stamp, "host": "another-machine"})  # cannot be told from here: as recorded
    listed = _listed(capsys)
    assert listed["reused"]["status"] == "interrupted"
    assert listed["elsewhere"]["status"] == "running"


def test_a_sigkilled_finetune_is_interrupted_and_its_command_resumes_it(runs, capsys, tmp_path):
    model = make_tiny_model_dir("llama", tmp_path / "llama")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"Name {i}", "output": f"It is {i}."}) + "\n"
                            for i in range(8)))
    settings = ["max_steps=4", "save_every=2", "eval_every=0", "val_split=0", "precision=fp32"]
    script = textwrap.dedent(f"""
        import os, signal
        from llmctl.train.finetune import FinetuneRequest, run_finetune

        def kill_at_three(step, record):
            if step == 3:
                os.kill(os.getpid(), signal.SIGKILL)

        run_finetune(FinetuneRequest({str(model)!r}, "lora", {str(data)!r}, overrides={settings!r}, name="killed"),
                     callbacks=[kill_at_three])
    """)
    child = subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), capture_output=True)
    assert child.returncode == -9, child.stderr.decode()[-2000:]
    assert json.loads((runs / "killed" / "llmctl.json").read_text())["status"] == "running"  # as the kill left it
    listed = _listed(capsys)
    assert listed["killed"]["status"] == "interrupted"
    command = listed["killed"]["resume"]
    assert command == "llmctl finetune --resume killed"
    code, out, err = _llmctl(capsys, *command.split()[1:])
    assert code == 0, err
    assert "done: 4 steps" in out
    assert _listed(capsys)["killed"]["status"] == "finished"
