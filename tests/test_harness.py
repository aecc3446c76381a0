"""The lm-evaluation-harness bridge runs a local task end to end, offline, and records the chat-template choice."""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None, reason="needs the eval extra")


def test_local_task_runs_end_to_end(tiny_text_lm):
    from llmctl.bench.harness import bundled_task_names, evaluate_tasks

    model, tokenizer = tiny_text_lm
    assert "llmctl_capitals" in bundled_task_names()
    result = evaluate_tasks(model, tokenizer, ["llmctl_capitals"], limit=8)
    metrics = result["tasks"]["llmctl_capitals"]
    assert 0.0 <= metrics["acc"] <= 1.0
    assert result["chat_template_applied"] is False


def test_unknown_task_is_one_line_with_a_suggestion(tiny_text_lm):
    from llmctl.bench.harness import evaluate_tasks
    from llmctl.errors import LlmctlError

    model, tokenizer = tiny_text_lm
    with pytest.raises(LlmctlError, match="did you mean 'llmctl_capitals'"):
        evaluate_tasks(model, tokenizer, ["llmctl_capitols"])


def test_custom_task_folder(tiny_text_lm, tmp_path):
    from llmctl.bench.harness import evaluate_tasks

    data = tmp_path / "yesno.jsonl"
    data.write_text('{"q": "Is fire hot?", "a": 0}\n{"q": "Is ice hot?", "a": 1}\n')
    (tmp_path / "yesno.yaml").write_text(
        f"task: my_yesno\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n"
        "output_type: multiple_choice\ndoc_to_text: '{{q}}'\ndoc_to_choice: ['yes', 'no']\ndoc_to_target: a\n"
        "metric_list:\n  - metric: acc\n")
    model, tokenizer = tiny_text_lm
    result = evaluate_tasks(model, tokenizer, ["my_yesno"], tasks_dir=tmp_path)
    assert result["tasks"]["my_yesno"]["acc"] in (0.0, 0.5, 1.0)
