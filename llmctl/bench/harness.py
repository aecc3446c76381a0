"""A bridge to lm-evaluation-harness (the ``eval`` extra) that works from local data sets only.

llmctl ships one small local task (``llmctl_capitals``); users add their own task YAML folders with
``--tasks-dir``. Whether the chat template was applied is always recorded, because it moves scores a lot.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from llmctl.errors import LlmctlError, MissingExtraError

BUNDLED_TASKS = Path(__file__).with_name("eval_tasks")


def _write_bundled_tasks(folder: Path) -> None:
    """Fill the bundled task templates with absolute data paths (lm-eval resolves data files from the cwd)."""
    for template in BUNDLED_TASKS.glob("*.yaml.in"):
        data_file = BUNDLED_TASKS / template.name.replace(".yaml.in", ".jsonl")
        (folder / template.name.removesuffix(".in")).write_text(template.read_text().format(data_file=data_file))


def bundled_task_names() -> list[str]:
    """Names of the tasks llmctl ships."""
    return [f"llmctl_{p.name.removesuffix('.yaml.in')}" for p in BUNDLED_TASKS.glob("*.yaml.in")]


def evaluate_tasks(model: Any, tokenizer: Any, tasks: list[str], tasks_dir: str | Path | None = None,
                   apply_chat_template: bool = False, limit: int | None = None,
                   batch_size: int = 8) -> dict[str, Any]:
    """Run lm-eval ``tasks`` on an in-memory transformers model; returns metrics per task plus the settings used."""
    try:
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError as error:
        raise MissingExtraError("lm-eval", "eval", "task evaluation") from error
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if apply_chat_template and not getattr(tokenizer, "chat_template", None):
        raise LlmctlError("--chat-template was asked for but this model has no chat template")
    with tempfile.TemporaryDirectory(prefix="llmctl-tasks-") as folder:
        _write_bundled_tasks(Path(folder))
        include = [folder] + ([str(tasks_dir)] if tasks_dir else [])
        manager = TaskManager(include_path=include, include_defaults=False)
        unknown = [t for t in tasks if t not in manager.all_tasks]
        if unknown:
            from llmctl.registry import suggest

            hints = suggest(unknown[0], manager.all_tasks)
            more = f"; did you mean {hints[0]!r}?" if hints else f" (local tasks: {', '.join(manager.all_tasks)})"
            raise LlmctlError(f"unknown evaluation task {unknown[0]!r}{more}")
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
        output = simple_evaluate(model=lm, tasks=tasks, task_manager=manager, limit=limit,
                                 apply_chat_template=apply_chat_template, log_samples=False)
    results: dict[str, Any] = {}
    for task, metrics in output["results"].items():
        results[task] = {key.split(",")[0]: value for key, value in metrics.items()
                         if "," in key and "stderr" not in key}
    return {"tasks": results, "chat_template_applied": apply_chat_template, "limit": limit}
