"""Reward functions as plugins: the builtins, several rewards with weights, ``file.py:function``, a reward from a
separately installed package, and one-line errors naming the reward and the step of a reward that fails."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from llmctl.errors import DataError, UnknownNameError
from llmctl.reward.functions import resolve_reward, resolve_rewards, split_specs
from llmctl_plugins.rewards.builtin import answers_match, final_answer

# --- the builtins, on plain strings --------------------------------------------------------------------------------


@pytest.mark.parametrize(("completion", "reference", "expected"), [
    ("so 6 * 7 = 42", "42", True),                        # the last number
    ("6 * 7 is 42, not 41", "42", False),
    ("Let me think... #### 1,234", "1234", True),          # after ####, thousands separator
    ("The answer is: Paris.", "paris", True),              # after 'answer:', case and full stop ignored
    ("<think>hm</think> <answer>3.50</answer>", 3.5, True),  # <answer> tag, numbers by value
    ("\\boxed{17} and then 4", "17", True),
    ("Paris", "London", False),
    ("no number here", "5", False),
    ("blah", "work #### 12", False),                       # a GSM8K-style reference is read after its ####
    ("it is 12", "work #### 12", True),
])
def test_exact_match_compares_the_final_answer(completion, reference, expected):
    assert answers_match(completion, reference) is expected


def test_final_answer_falls_back_to_the_stripped_completion():
    assert final_answer("  just this \n") == "just this"
    assert final_answer("a\nFinal answer: 7\nthanks") == "7"


def test_builtins_score_lists_through_the_reward_set():
    rewards = resolve_rewards("exact-match,format-match,length-penalty:10")
    assert rewards.names == ["exact-match", "format-match", "length-penalty:10"]
    assert rewards.required_columns() == ["answer"]
    completions = ["<think>x</think><answer>4</answer>", "5", "a" * 30]
    totals, raw = rewards.score(["p"] * 3, completions, [{"answer": 4}, {"answer": "5"}, {"answer": "1"}], step=1)
    assert raw["exact-match"] == [1.0, 1.0, 0.0]
    assert raw["format-match"] == [1.0, 0.0, 0.0]
    assert raw["length-penalty:10"] == [-2.4, 0.0, -2.0]
    assert totals == pytest.approx([1.0 + 1.0 - 2.4, 1.0, -2.0])


def test_builtin_arguments_regex_column_and_length():
    rewards = resolve_rewards("format-match:^\\d{1,3}$,exact-match:solution,length-penalty:4")
    assert split_specs("format-match:^\\d{1,3}$,exact-match") == ["format-match:^\\d{1,3}$", "exact-match"]
    assert rewards.required_columns() == ["solution"]
    _, raw = rewards.score(["p", "p"], ["123", "1234"], [{"solution": "123"}, {"solution": "x"}])
    assert raw == {"format-match:^\\d{1,3}$": [1.0, 0.0], "exact-match:solution": [1.0, 0.0],
                   "length-penalty:4": [0.0, -0.0]}
    with pytest.raises(DataError, match=r"reward 'format-match:\(': not a regular expression"):
        resolve_rewards("format-match:(")
    with pytest.raises(DataError, match="'length-penalty:x': 'x' is not a whole number"):
        resolve_rewards("length-penalty:x")


# --- weights, names, columns -----------------------------------------------------------------------------------------


def test_weights_from_a_string_or_a_list_and_a_wrong_count_is_one_line():
    assert resolve_rewards("format-match,length-penalty", "2, 0.5").weights == [2.0, 0.5]
    assert resolve_rewards("format-match,length-penalty", [1, 3]).weights == [1.0, 3.0]
    assert resolve_rewards("format-match,length-penalty").weights == [1.0, 1.0]
    with pytest.raises(DataError) as error:
        resolve_rewards("format-match,length-penalty", "1.0")
    assert str(error.value) == ("reward_weights gives 1 weight for 2 rewards (format-match, length-penalty); "
                                "give one per reward, in order")
    with pytest.raises(DataError, match="reward_weights: 'heavy' is not a number"):
        resolve_rewards("format-match", "heavy")


def test_unknown_names_and_arguments_are_one_line():
    with pytest.raises(UnknownNameError, match="unknown reward 'exact-mach'; did you mean 'exact-match'"):
        resolve_rewards("exact-mach")
    with pytest.raises(DataError, match="no reward given"):
        resolve_rewards(" , ")
    with pytest.raises(DataError, match="needs the record column 'answer'.*--method grpo"):
        resolve_reward("exact-match")  # PPO and rejection sampling pass no columns


def test_a_python_file_reward_gets_the_columns_its_signature_names(tmp_path):
    (tmp_path / "my_rewards.py").write_text(textwrap.dedent("""
        def by_level(prompts, completions, level):
            return [float(len(c) * lv) for c, lv in zip(completions, level)]

        def everything(prompts, completions, **columns):
            return [float(len(columns)) for _ in completions]
    """))
    rewards = resolve_rewards(f"{tmp_path}/my_rewards.py:by_level,{tmp_path}/my_rewards.py:everything", "1,10")
    assert rewards.names == ["my_rewards.py:by_level", "my_rewards.py:everything"]
    totals, raw = rewards.score(["p", "q"], ["ab", "abc"], [{"level": 1, "other": 0}, {"level": 2, "other": 0}])
    assert raw["my_rewards.py:by_level"] == [2.0, 6.0] and raw["my_rewards.py:everything"] == [2.0, 2.0]
    assert totals == [22.0, 26.0]
    with pytest.raises(DataError, match="has no function 'missing'"):
        resolve_rewards(f"{tmp_path}/my_rewards.py:missing")
    with pytest.raises(DataError, match="no file"):
        resolve_rewards(f"{tmp_path}/nothing.py:f")


def test_missing_columns_are_refused_as_file_and_line_before_anything_loads(tmp_path):
    data = tmp_path / "prompts.jsonl"
    data.write_text('{"prompt": "1+1", "answer": "2"}\n{"prompt": "2+2"}\n')
    with pytest.raises(DataError) as error:
        resolve_rewards("exact-match,format-match").check_data(data)
    assert str(error.value) == f"{data}:2: missing column 'answer' (reward 'exact-match' compares against it)"
    resolve_rewards("format-match").check_data(data)


@pytest.mark.parametrize(("body", "message"), [
    ("raise RuntimeError('no  network\\n here')", "raised RuntimeError: no network here"),
    ("return [1.0]", "returned 1 values for 2 completions"),
    ("return [1.0, float('nan')]", "value 1 is nan, not a finite number"),
    ("return [1.0, None]", "value 1 is None, not a finite number"),
    ("return 3", "raised TypeError"),
])
def test_a_failing_reward_is_one_line_naming_the_reward_and_the_step(tmp_path, body, message):
    (tmp_path / "bad.py").write_text(f"def reward(prompts, completions):\n    {body}\n")
    rewards = resolve_rewards(f"format-match,{tmp_path}/bad.py:reward")
    with pytest.raises(DataError) as error:
        rewards.score(["p", "q"], ["a", "b"], step=7)
    assert str(error.value).startswith(f"reward 'bad.py:reward' at step 7: {message}")
    assert "\n" not in str(error.value)


# --- a reward from a separately installed package ----------------------------------------------------------------

PACKAGE_MODULE = '''
"""A reward plugin: how many words of the answer are in the target set w10 ... w59."""

from llmctl.api import Reward, hookimpl


def target_words(prompts, completions, **_):
    """One point per target word."""
    return [float(sum(w in {f"w{i}" for i in range(10, 60)} for w in text.split())) for text in completions]


@hookimpl
def register_rewards(register):
    """Register target-words."""
    register(Reward("target-words", "one point per word w10 ... w59", target_words))
'''


@pytest.fixture(scope="module")
def reward_site(tmp_path_factory):
    """``llmctl-target-words`` installed with pip into its own folder (never into the venv)."""
    source = tmp_path_factory.mktemp("llmctl-target-words")
    (source / "llmctl_target_words.py").write_text(PACKAGE_MODULE)
    (source / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "llmctl-target-words"
        version = "0.2.0"
        dependencies = ["llmctl"]

        [project.entry-points.llmctl]
        target-words = "llmctl_target_words"

        [tool.setuptools]
        py-modules = ["llmctl_target_words"]
    """))
    site = tmp_path_factory.mktemp("reward-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(site), str(source)], check=True, capture_output=True)
    return site


def test_an_installed_reward_is_listed_and_resolved_by_name_without_importing_torch(reward_site):
    from llmctl.testing import run_cli_subprocess

    listed = run_cli_subprocess("plugins", "--json", env={"PYTHONPATH": str(reward_site)})
    assert listed.code == 0, listed.err
    plugin = next(p for p in json.loads(listed.out) if p["name"] == "target-words")
    assert plugin["registers"] == {"reward": ["target-words"]} and plugin["distribution"] == "llmctl-target-words"
    assert plugin["error"] is None and not plugin["builtin"]
    table = run_cli_subprocess("plugins", env={"PYTHONPATH": str(reward_site)})
    assert "target-words" in table.out and "exact-match" in table.out
    check = ("import sys; from llmctl.reward.functions import resolve_rewards; "
             "r = resolve_rewards('target-words,length-penalty:3', '2,1'); "
             "print(r.names, r(['p'], ['w11 w12 w300'])); assert 'torch' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", check], env={"PYTHONPATH": str(reward_site)}, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['target-words', 'length-penalty:3'] [1.0]"  # 2 × 2 target words − (12 − 3) / 3


def test_an_installed_reward_scores_a_run_by_name(reward_site, tmp_path, monkeypatch):
    """In this process (a fresh one only adds torch's import time): the entry point is found on ``sys.path``."""
    from llmctl.plugins import reset_host
    from llmctl.testing import run_cli, temporary_store
    from tests.align_fixtures import word_model_dir

    model = word_model_dir(tmp_path / "base")
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"w{100 + i} w{200 + i}"}) + "\n" for i in range(2)))
    monkeypatch.syspath_prepend(str(reward_site))
    reset_host()
    try:
        with temporary_store(tmp_path / "store") as store:
            code, _, err = run_cli("finetune", str(model), "--method", "rejection-sampling", "--data", str(data),
                                   "--name", "best", "reward=target-words", "num_samples=2", "max_new_tokens=8")
    finally:
        reset_host()
    assert code == 0, err[-2000:]
    candidates = [json.loads(line) for line in (store.runs / "best" / "candidates.jsonl").read_text().splitlines()]
    targets = {f"w{i}" for i in range(10, 60)}
    assert len(candidates) == 4
    assert all(c["reward"] == sum(w in targets for w in c["completion"].split()) for c in candidates)


# --- a failing reward stops a real run in one line; the last checkpoint stays usable --------------------------------

FLAKY = '''
import os

calls = 0


def reward(prompts, completions):
    """Fails on its third call while the marker file exists."""
    global calls
    calls += 1
    if calls == 3 and os.path.exists(MARKER):
        raise RuntimeError("scorer went away")
    return [float(len(c.split())) for c in completions]
'''


def _flaky_reward(folder, marker):
    path = folder / "flaky.py"
    path.write_text(f"MARKER = {str(marker)!r}\n" + FLAKY)
    return path


def test_rejection_sampling_stops_with_one_line_naming_the_reward_and_the_step(tmp_path):
    from llmctl.testing import run_cli, temporary_store
    from tests.align_fixtures import word_model_dir

    model = word_model_dir(tmp_path / "base")
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"w{100 + i}"}) + "\n" for i in range(3)))
    marker = tmp_path / "fail"
    marker.touch()
    reward = _flaky_reward(tmp_path, marker)
    with temporary_store(tmp_path / "store"):
        code, _, err = run_cli("finetune", str(model), "--method", "rejection-sampling", "--data", str(data),
                               f"reward={reward}:reward", "num_samples=2", "max_new_tokens=3", "batch_size=1")
    assert code == 3
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines == ["error: reward 'flaky.py:reward' at step 3: raised RuntimeError: scorer went away"]
    assert "Traceback" not in err


def test_ppo_stops_at_the_failing_step_and_resumes_from_the_checkpoint_before_it(tmp_path):
    from llmctl.testing import run_cli, temporary_store
    from tests.align_fixtures import word_model_dir

    model = word_model_dir(tmp_path / "base")
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"w{100 + i} w{200 + i}"}) + "\n" for i in range(4)))
    marker = tmp_path / "fail"
    marker.touch()
    reward = _flaky_reward(tmp_path, marker)
    with temporary_store(tmp_path / "store") as store:
        code, _, err = run_cli("finetune", str(model), "--method", "ppo", "--data", str(data), "--name", "ppo-run",
                               f"reward={reward}:reward", "max_steps=3", "save_every=1", "batch_size=2",
                               "minibatch_size=2", "ppo_epochs=1", "max_new_tokens=3", "adapter=lora",
                               "eval_every=0")
        assert code == 3, err
        assert [line for line in err.splitlines() if line.startswith("error:")] == [
            "error: reward 'flaky.py:reward' at step 3: raised RuntimeError: scorer went away"]
        run = store.runs / "ppo-run"
        assert (run / "checkpoints").is_dir() and "step" in " ".join(p.name for p in (run / "checkpoints").iterdir())
        marker.unlink()
        code, _, err = run_cli("finetune", "--resume", "ppo-run")
        assert code == 0, err
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    assert (run / "adapter_config.json").is_file()


# --- the plugin rules hold for rewards --------------------------------------------------------------------------------


def test_a_plugin_cannot_replace_a_builtin_reward_and_a_failing_hook_registers_nothing(capsys):
    from llmctl.api import Reward, hookimpl
    from llmctl.testing import plugin_registered

    class Impostor:
        @hookimpl
        def register_rewards(self, register):
            register(Reward("exact-match", "always 1", lambda prompts, completions, **_: [1.0] * len(completions)))
            register(Reward("always-one", "always 1", lambda prompts, completions, **_: [1.0] * len(completions)))

    class Broken:
        @hookimpl
        def register_rewards(self, register):
            register(Reward("half-done", "never used", lambda prompts, completions: []))
            raise RuntimeError("scorer missing")

    with plugin_registered(Impostor(), "impostor"), plugin_registered(Broken(), "broken"):
        assert resolve_rewards("exact-match").score(["p"], ["no"], [{"answer": "yes"}])[0] == [0.0]
        assert resolve_rewards("always-one")(["p"], ["x"]) == [1.0]
        with pytest.raises(UnknownNameError):
            resolve_rewards("half-done")
    err = capsys.readouterr().err
    assert "using 'rewards-builtin' (builtins take precedence)" in err and "scorer missing" in err
