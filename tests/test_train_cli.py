"""``llmctl finetune`` and ``llmctl runs`` as a user types them: one-line errors, dry run, a listed run."""

from __future__ import annotations

import json

from tests.cli_helpers import run_main

_llmctl = run_main


def test_broken_line_7_fails_with_one_line_naming_file_and_line(tiny, capsys):
    model, data = tiny
    lines = data.read_text().splitlines()
    lines[6] = lines[6][:-5]
    data.write_text("\n".join(lines) + "\n")
    code, _, err = _llmctl(capsys, "finetune", str(model), "--data", str(data), "max_steps=1")
    assert code == 3 and err.strip().count("\n") == 0
    assert f"{data}:7: invalid JSON" in err


def test_unknown_setting_is_one_line_with_a_suggestion(tiny, capsys):
    model, data = tiny
    code, _, err = _llmctl(capsys, "finetune", str(model), "--data", str(data), "--method", "dora", "lora_rank=4")
    assert code == 3 and "unknown setting 'lora_rank'" in err and "lora_r" in err and err.count("\n") == 1


def test_dry_run_prints_settings_parameters_steps_and_memory(tiny, capsys, tmp_path):
    model, data = tiny
    recipe = tmp_path / "r.yaml"
    recipe.write_text("lora_r: 4\n")
    code, out, _ = _llmctl(capsys, "finetune", str(model), "--data", str(data), "--recipe", str(recipe),
                           "--dry-run", "max_steps=7")
    assert code == 0
    assert "trainable parameters" in out and "memory estimate" in out and "steps: 7" in out
    assert f"{recipe}:1" in out
    assert not (tmp_path / "runs").exists()


def test_finetune_writes_a_run_that_runs_lists(tiny, capsys):
    model, data = tiny
    code, out, err = _llmctl(capsys, "finetune", str(model), "--data", str(data), "--name", "my-run",
                             "max_steps=2", "eval_every=1", "precision=fp32")
    assert code == 0, err
    code, out, _ = _llmctl(capsys, "runs", "--json")
    listed = json.loads(out)
    assert [r["id"] for r in listed] == ["my-run"]
    assert listed[0]["method"] == "lora" and listed[0]["steps"] == 2 and listed[0]["final_val_loss"] is not None


def test_adapter_none_on_the_command_line_trains_every_weight(tiny, capsys):
    """`adapter=none` is the word "none" (as YAML reads it), not a null that fails the choice check."""
    from pathlib import Path

    model, _ = tiny
    preferences = Path(__file__).parent.parent / "recipes" / "data" / "preferences.jsonl"
    code, out, err = _llmctl(capsys, "finetune", str(model), "--method", "reward", "--data", str(preferences),
                             "adapter=none", "--dry-run")
    assert code == 0, err
    assert "none" in out and "trainable parameters" in out
