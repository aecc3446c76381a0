"""Bad settings, process counts, recipes and runs folders are refused with one line before any model loads.

Each case is what a user types (``finetune … --dry-run``, ``recipe run … --dry-run``, ``runs``) and what they see:
a non-zero exit code and one line on stderr naming the setting, where it came from and what is allowed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmctl.errors import DataError
from tests.cli_helpers import run_main

PREFERENCES = Path(__file__).parent.parent / "recipes" / "data" / "preferences.jsonl"


_llmctl = run_main


def _one_line(err: str) -> str:
    """The single error line (fails when there is more, or a raw exception class name)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Error:" not in lines[0] and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(("setting", "allowed"), [
    ("max_steps=-1", "must be at least 1, got -1"),
    ("max_steps=0", "must be at least 1, got 0"),
    ("grad_accum=0", "must be at least 1, got 0"),
    ("batch_size=0", "must be at least 1, got 0"),
    ("max_length=0", "must be at least 1, got 0"),
    ("val_split=1.5", "must be in [0, 1), got 1.5"),
    ("val_split=-0.1", "must be in [0, 1), got -0.1"),
    ("save_every=-1", "must be at least 0, got -1"),
    ("eval_every=-1", "must be at least 0, got -1"),
    ("keep_checkpoints=-1", "must be at least 0, got -1"),
    ("max_grad_norm=-1", "must be at least 0, got -1.0"),
    ("learning_rate=-1", "must be greater than 0, got -1.0"),
    ("learning_rate=nan", "must be a finite number, got nan"),
    ("learning_rate=inf", "must be a finite number, got inf"),
    ("warmup_ratio=1.5", "must be in [0, 1], got 1.5"),
    ("min_lr_ratio=-0.5", "must be in [0, 1], got -0.5"),
    ("weight_decay=-0.1", "must be at least 0, got -0.1"),
    ("max_steps=99999999999999999999999", "does not fit in 64 bits"),
    ("max_steps=1e30", "does not fit in 64 bits"),
    ("max_steps=null", "expects int, got None"),
])
def test_out_of_range_loop_setting_is_refused_by_dry_run(tiny, capsys, setting, allowed):
    model, data = tiny
    code, out, err = _llmctl(capsys, "finetune", str(model), "--data", str(data), setting, "--dry-run")
    line = _one_line(err)
    key = setting.partition("=")[0]
    assert code == 3 and line.startswith(f"error: command line: setting {key!r}") and allowed in line, line
    assert "trainable parameters" not in out  # refused before the model was built


def test_a_recipe_file_setting_is_refused_with_its_file_and_line(tiny, capsys, tmp_path):
    model, data = tiny
    recipe = tmp_path / "settings.yaml"
    recipe.write_text("lora_r: 4\nval_split: 1.0\n")
    code, _, err = _llmctl(capsys, "finetune", str(model), "--data", str(data), "--recipe", str(recipe), "--dry-run")
    assert code == 3
    assert _one_line(err) == f"error: {recipe}:2: setting 'val_split' must be in [0, 1), got 1.0"


@pytest.mark.parametrize(("method", "setting", "allowed"), [
    ("dpo", "loss_type=bogus", "setting 'loss_type' must be one of sigmoid, ipo, got 'bogus'"),
    ("dpo", "beta=0", "setting 'beta' must be greater than 0, got 0.0"),
    ("dpo", "label_smoothing=0.7", "setting 'label_smoothing' must be in [0, 0.5), got 0.7"),
    ("dpo", "adapter=qlora", "setting 'adapter' must be one of lora, dora, none, got 'qlora'"),
    ("lora", "lora_r=0", "setting 'lora_r' must be at least 1, got 0"),
    ("dora", "lora_dropout=1", "setting 'lora_dropout' must be in [0, 1), got 1.0"),
    ("lora+", "loraplus_ratio=-2", "setting 'loraplus_ratio' must be greater than 0, got -2.0"),
    ("lora", "lora_alpha=0", "setting 'lora_alpha' must be greater than 0, got 0"),
    ("reward", "lora_r=-4", "setting 'lora_r' must be at least 1, got -4"),
    ("ppo", "gamma=2", "setting 'gamma' must be in [0, 1], got 2.0"),
    ("ppo", "kl_estimator=k2", "setting 'kl_estimator' must be one of k1, k3, got 'k2'"),
    ("ppo", "temperature=0", "setting 'temperature' must be greater than 0, got 0.0"),
    ("ppo", "minibatch_size=0", "setting 'minibatch_size' must be at least 1, got 0"),
    ("rejection-sampling", "num_samples=0", "setting 'num_samples' must be at least 1, got 0"),
])
def test_a_method_setting_out_of_its_declared_range_is_refused_by_dry_run(tiny, capsys, method, setting, allowed):
    model, _ = tiny
    code, _, err = _llmctl(capsys, "finetune", str(model), "--method", method, "--data", str(PREFERENCES), setting,
                           "--dry-run")
    assert code == 3 and _one_line(err) == f"error: command line: {allowed}"


def test_a_method_validate_sees_the_settings_together(tiny, capsys):
    model, _ = tiny
    code, _, err = _llmctl(capsys, "finetune", str(model), "--method", "dpo", "--data", str(PREFERENCES),
                           "loss_type=ipo", "label_smoothing=0.1", "--dry-run")
    assert code == 3
    assert _one_line(err) == ("error: method dpo: label_smoothing applies to loss_type=sigmoid only; set "
                              "label_smoothing=0 for ipo")


def test_a_third_party_method_declares_choices_ranges_and_a_check():
    from llmctl.config import Range, resolve_settings
    from llmctl.descriptors import Method

    def validate(values):
        return "warmup needs more than one step" if values["warmup_ratio"] and values["max_steps"] < 2 else None

    method = Method("mine", "a plugin's method", defaults={"alpha": 0.5, "mode": "fast"},
                    choices={"mode": ("fast", "slow")}, ranges={"alpha": Range(0, 1, low_open=True)},
                    validate=validate)
    settings = resolve_settings("mine", method.defaults, overrides=[("alpha", 1, "test")], method=method)
    assert settings["alpha"] == 1.0
    for override, message in [(("alpha", 0, "test"), "test: setting 'alpha' must be in (0, 1], got 0.0"),
                              (("mode", "slo", "test"), "test: setting 'mode' must be one of fast, slow, got 'slo'"),
                              (("max_steps", 1, "test"), "method mine: warmup needs more than one step")]:
        with pytest.raises(DataError) as caught:
            resolve_settings("mine", method.defaults, overrides=[override], method=method)
        assert str(caught.value) == message


def test_a_missing_val_data_file_is_refused_by_dry_run(tiny, capsys, tmp_path):
    model, data = tiny
    missing = tmp_path / "nowhere.jsonl"
    code, _, err = _llmctl(capsys, "finetune", str(model), "--data", str(data), f"val_data={missing}", "--dry-run")
    assert code == 3 and _one_line(err) == f"error: command line: setting 'val_data': {missing}: no such file"


@pytest.mark.parametrize(("nproc", "message"), [
    ("-1", "--nproc must be at least 1 (processes on this machine), got -1"),
    ("0", "--nproc must be at least 1 (processes on this machine), got 0"),
])
def test_nproc_below_one_is_refused(tiny, capsys, nproc, message):
    model, data = tiny
    code, _, err = _llmctl(capsys, "finetune", str(model), "--data", str(data), "--nproc", nproc, "--dry-run")
    assert code == 3 and _one_line(err) == f"error: {message}"


def test_nproc_beyond_this_machine_is_refused(tiny, capsys):
    model, data = tiny
    cores = len(os.sched_getaffinity(0))
    code, out, err = _llmctl(capsys, "finetune", str(model), "--data", str(data), "--nproc", "1000", "--dry-run",
                             "backend=cpu")
    line = _one_line(err)
    assert code == 3 and f"--nproc 1000 is more than the {cores} CPU core(s)" in line
    assert f"use --nproc {cores} or fewer" in line and "trainable parameters" not in out
    code, _, err = _llmctl(capsys, "finetune", str(model), "--data", str(data), "--nproc", "1000", "max_steps=1",
                           "backend=cpu")
    assert code == 3 and "--nproc 1000 is more than" in _one_line(err)


def test_nproc_beyond_the_gpus_here_is_refused(monkeypatch):
    import llmctl.backends
    from llmctl.descriptors import BackendStatus
    from llmctl.train.launch import check_nproc

    gpus = BackendStatus(True, "2 GPU(s)", "cuda", "bfloat16", ("cuda:0 H200", "cuda:1 H200"))
    monkeypatch.setattr(llmctl.backends, "select_backend", lambda registry, name: (None, gpus))
    check_nproc(2)
    with pytest.raises(DataError) as caught:
        check_nproc(3)
    assert str(caught.value) == ("--nproc 3 is more than the 2 cuda device(s) here; each worker drives one device "
                                 "(use --nproc 2 or fewer)")


def test_a_runs_folder_that_is_a_file_is_refused(tiny, capsys, tmp_path, monkeypatch):
    model, data = tiny
    not_a_folder = tmp_path / "runs-file"
    not_a_folder.write_text("")
    monkeypatch.setenv("LLMCTL_RUNS_DIR", str(not_a_folder))
    expected = f"error: {not_a_folder}: LLMCTL_RUNS_DIR must be a directory, but this is a file"
    code, out, err = _llmctl(capsys, "runs")
    assert code == 3 and _one_line(err) == expected and "no runs" not in out
    code, _, err = _llmctl(capsys, "finetune", str(model), "--data", str(data), "max_steps=1")
    assert code == 3 and _one_line(err) == expected
    code, _, err = _llmctl(capsys, "finetune", str(model), "--data", str(data), "--dry-run")
    assert code == 3 and _one_line(err) == expected


RECIPE = """\
name: loops
settings:
  model: smollm2-135m
  a: ${b}
  b: ${a}
steps:
  - id: look
    run: info ${model}
"""


def test_settings_that_refer_to_each_other_are_a_one_line_cycle_error(tmp_path, capsys):
    path = tmp_path / "loops.yaml"
    path.write_text(RECIPE)
    code, out, err = _llmctl(capsys, "recipe", "run", str(path), "--dry-run")
    assert code == 3
    assert _one_line(err) == f"error: {path}:4: settings refer to each other in a cycle: a: ${{b}} → b: ${{a}}"
    assert "${b}" not in out
    path.write_text(RECIPE.replace("  a: ${b}\n  b: ${a}\n", "  a: x-${a}\n"))
    code, _, err = _llmctl(capsys, "recipe", "run", str(path), "--dry-run")
    assert code == 3 and _one_line(err).endswith(":4: settings refer to each other in a cycle: a: ${a}")


def test_settings_may_still_name_other_settings(tmp_path, capsys):
    path = tmp_path / "chain.yaml"
    path.write_text(RECIPE.replace("  a: ${b}\n  b: ${a}\n", "  a: ${b}\n  b: ${model}\n").replace(
        "info ${model}", "info ${a}"))
    code, out, err = _llmctl(capsys, "recipe", "run", str(path), "--dry-run")
    assert code == 0, err
    assert "llmctl info smollm2-135m" in out


@pytest.mark.parametrize(("run", "message"), [
    ("info ${model} --bogus", "step 'look' (llmctl info): No such option: --bogus"),
    ("finetune ${model} --methd lora", "step 'look' (llmctl finetune): No such option: --methd (Possible options: "
                                       "--method, --name)"),
    ("chat ${model} --temperature", "step 'look' (llmctl chat): Option '--temperature' requires an argument."),
    ("info ${model} extra", "step 'look' (llmctl info): unexpected extra argument(s): extra"),
    ("recipe run", "step 'look' (llmctl recipe run): missing argument RECIPE"),
])
def test_a_step_with_an_unknown_flag_fails_the_dry_run(tmp_path, capsys, run, message):
    path = tmp_path / "flags.yaml"
    path.write_text(RECIPE.replace("  a: ${b}\n  b: ${a}\n", "").replace("info ${model}", run))
    code, _, err = _llmctl(capsys, "recipe", "run", str(path), "--dry-run")
    assert code == 3 and _one_line(err) == f"error: {path}:6: {message}"


def test_every_shipped_recipe_passes_the_option_check():
    from llmctl.recipes import available_recipes, check_options, load_recipe, plan

    for path in available_recipes().values():
        recipe = load_recipe(path)
        check_options(recipe, plan(recipe, recipe.settings))


def test_precision_auto_trains_in_fp32_on_every_cpu_and_follows_the_backend_elsewhere():
    """On a CPU, bf16 autocast was measured no faster than fp32's fused LoRA branch and learned less (make bench):
    `precision=auto` is fp32 there whether or not the CPU computes bf16 natively; a bf16 GPU still gets bf16."""
    from llmctl.config import resolve_settings
    from llmctl.descriptors import BackendStatus
    from llmctl.plugins import get_registry
    from llmctl.train.finetune import precision_for

    auto = resolve_settings("lora", {})
    cpu = get_registry().get("backend", "cpu").probe()
    assert precision_for(auto, cpu) == "fp32"
    gpu = BackendStatus(True, "1 GPU", "cuda", "bfloat16", ("cuda:0",))
    assert precision_for(auto, gpu) == "bf16"
    assert precision_for(resolve_settings("lora", {}, overrides=[("precision", "bf16", "command line")]), cpu) == "bf16"


def test_a_methods_own_loop_defaults_win_over_the_familys_and_dry_run_says_so():
    """Full fine-tuning's learning rate is not replaced by SmolLM's LoRA-sized one; LoRA still gets Llama's rank."""
    from llmctl.config import resolve_settings
    from llmctl.plugins import get_registry

    registry = get_registry()
    full, smollm = registry.get("method", "full"), registry.family("smollm2")
    assert smollm.finetune_defaults["learning_rate"] != full.defaults["learning_rate"]
    settings = resolve_settings("full", full.defaults, "smollm2", smollm.finetune_defaults)
    assert settings["learning_rate"] == full.defaults["learning_rate"]
    assert settings.sources["learning_rate"] == "method full"
    lora, llama = registry.get("method", "lora"), registry.family("llama")
    settings = resolve_settings("lora", lora.defaults, "llama", llama.finetune_defaults)
    assert settings["lora_r"] == llama.finetune_defaults["lora_r"] != lora.defaults["lora_r"]
    assert settings.sources["lora_r"] == "family llama"


def test_a_method_can_declare_the_precision_it_needs():
    from llmctl.config import resolve_settings
    from llmctl.descriptors import BackendStatus, Method
    from llmctl.train.finetune import precision_for

    method = Method("needs-fp32", "test", defaults={"precision": "fp32"})
    settings = resolve_settings(method.name, method.defaults, "llama", {"precision": "bf16"}, method=method)
    bf16_gpu = BackendStatus(True, "", "cuda", "bfloat16", train_precision="bf16")
    assert precision_for(settings, bf16_gpu) == "fp32"
    assert precision_for(resolve_settings("plain", {}, method=Method("plain", "t")), bf16_gpu) == "bf16"


def test_dry_run_shows_what_each_setting_does_and_who_set_it(tiny, capsys):
    model, data = tiny
    code, out, err = _llmctl(capsys, "finetune", str(model), "--data", str(data), "--method", "dpo", "beta=0.2",
                             "--dry-run")
    assert code == 0, err
    beta = next(line for line in out.splitlines() if line.strip().startswith("beta"))
    assert "0.2" in beta and "command line" in beta and "strength of the KL tie" in beta
    rate = next(line for line in out.splitlines() if line.strip().startswith("learning_rate"))
    assert "method dpo" in rate and "peak learning rate" in rate
