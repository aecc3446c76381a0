"""Recipes: validation with file:line:key, placeholders and output names, and resuming after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmctl.recipes import RecipeError, available_recipes, load_recipe, plan, read_state
from tests.cli_helpers import LLMCTL, run_llmctl

RECIPE = """\
name: tiny
description: a test pipeline
settings:
  model: smollm2-135m
steps:
  - id: look
    run: info ${model}
  - id: where
    run: env
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_unknown_step_key_names_file_line_and_key(tmp_path):
    path = write(tmp_path, RECIPE.replace("    run: env\n", "    run: env\n    retries: 3\n"))
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert str(caught.value).startswith(f"{path}:10:") and "'retries'" in str(caught.value)
    result = run_llmctl("recipe", "run", str(path))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {path}:10: unknown key 'retries'")


def test_unknown_top_level_key_and_unknown_verb(tmp_path):
    with pytest.raises(RecipeError, match=r":3: unknown key 'setings'"):
        load_recipe(write(tmp_path, RECIPE.replace("settings:", "setings:")))
    with pytest.raises(RecipeError, match=r":9: step 'where' runs unknown verb 'evn'; did you mean 'env'"):
        load_recipe(write(tmp_path, RECIPE.replace("run: env", "run: evn")))


def test_placeholders_and_artefact_names(tmp_path):
    text = RECIPE + "  - id: train\n    run: finetune ${model} --method lora\n  - id: merge\n" \
                    "    run: convert ${steps.train.output} --merge\n"
    recipe = load_recipe(write(tmp_path, text))
    steps = plan(recipe, {"model": "gemma3-270m"})
    assert steps[0].argv == ["info", "gemma3-270m"]
    train, merge = steps[2], steps[3]
    assert train.output and train.output.endswith("-train") and train.argv[-2:] == ["--name", train.output]
    assert merge.argv[1] == train.output
    with pytest.raises(RecipeError, match="unknown placeholder"):
        plan(load_recipe(write(tmp_path, RECIPE.replace("${model}", "${modle}"))), {"model": "x"})


def test_unknown_override_is_one_line(tmp_path):
    result = run_llmctl("recipe", "run", str(write(tmp_path, RECIPE)), "modle=x", "--dry-run")
    assert result.returncode != 0 and "unknown setting 'modle'" in result.stderr


def test_killed_recipe_resumes_from_the_interrupted_step(tmp_path):
    slow = RECIPE.replace("run: env", "run: info mixtral-8x22b")
    path = write(tmp_path, slow)
    env = {**os.environ, "LLMCTL_HOME": str(tmp_path / "home")}
    process = subprocess.Popen([LLMCTL, "recipe", "run", str(path)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and "look" not in read_state_at(tmp_path / "home"):
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # killed during step 2
    process.wait()
    assert list(read_state_at(tmp_path / "home")) == ["look"]
    result = run_llmctl("recipe", "run", str(path), env={"LLMCTL_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr
    assert "done (skipped)" in result.stdout and "step 2/2: where" in result.stdout
    assert "step 1/2" not in result.stdout
    assert list(read_state_at(tmp_path / "home")) == ["look", "where"]


def read_state_at(home: Path) -> dict:
    old = os.environ.get("LLMCTL_HOME")
    os.environ["LLMCTL_HOME"] = str(home)
    try:
        return read_state("tiny")["finished"]
    finally:
        os.environ["LLMCTL_HOME"] = old or ""


def test_every_shipped_recipe_is_valid():
    recipes = available_recipes()
    for name, path in recipes.items():
        recipe = load_recipe(path)
        assert plan(recipe, recipe.settings), name
    assert json.dumps(sorted(recipes))  # listing works even when there are none yet


def test_a_recipe_killed_during_training_resumes_that_training_run(tmp_path):
    from llmctl.train.checkpoint import list_checkpoints
    from tests.tiny_models import make_tiny_model_dir

    model = make_tiny_model_dir("llama", tmp_path / "tiny-llama")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"Say {i}", "output": f"It is {i}."}) + "\n"
                            for i in range(16)))
    path = write(tmp_path, f"""\
name: train-then-merge
settings:
  steps: 400
steps:
  - id: train
    run: finetune {model} --data {data} max_steps=${{steps}} save_every=5 eval_every=0 val_split=0
  - id: merge
    run: convert ${{steps.train.output}} --merge
""")
    env = {**os.environ, "LLMCTL_HOME": str(tmp_path / "home"), "LLMCTL_RUNS_DIR": str(tmp_path / "runs")}
    process = subprocess.Popen([LLMCTL, "recipe", "run", str(path)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    run = tmp_path / "runs" / "train-then-merge-train"
    deadline = time.time() + 300
    while time.time() < deadline and not list_checkpoints(run):
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # killed during training, after its first checkpoint
    process.wait()
    assert list_checkpoints(run), "no checkpoint appeared"
    result = run_llmctl("recipe", "run", str(path), env={"LLMCTL_HOME": str(tmp_path / "home"),
                                                        "LLMCTL_RUNS_DIR": str(tmp_path / "runs")})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "resuming the interrupted run train-then-merge-train" in result.stdout
    losses = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    assert [r["step"] for r in losses] == list(range(1, 401))  # every step once: resumed, not restarted
    meta = json.loads((tmp_path / "home" / "models" / "train-then-merge-merge" / "llmctl.json").read_text())
    assert "train-then-merge-train" in meta["parents"]


def test_verb_list_matches_the_apps_commands():
    """recipes check step verbs against llmctl.verbs without building the app: the list must be the app's."""
    import importlib

    import typer

    from llmctl.cli.app import build_app
    from llmctl.verbs import CORE_VERBS, command_names, known_verbs, plugin_verbs, verb_module

    for verb in CORE_VERBS:  # each core module registers exactly the verb it is named after
        scratch = typer.Typer()
        importlib.import_module(verb_module(verb)).register(scratch)
        assert command_names(scratch) == [verb]
    assert sorted(command_names(build_app())) == sorted([*CORE_VERBS, *plugin_verbs()])
    assert sorted(known_verbs()) == sorted(command_names(build_app()))


def test_loading_a_recipe_does_not_build_the_app(tmp_path):
    """A recipe of core verbs loads without importing a single verb module."""
    path = write(tmp_path, RECIPE)
    code = ("import sys; from llmctl.recipes import load_recipe; load_recipe(sys.argv[1]); "
            "print(sorted(m for m in sys.modules if m.startswith('llmctl.cli')))")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
