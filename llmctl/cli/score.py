"""``llmctl score MODEL --data FILE``: rewards from a reward model, printed or written as JSONL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from llmctl.cli.output import console, err_console
from llmctl.errors import DataError

ANSWER_FIELDS = ("completion", "response", "answer", "output")


def _completion_records(path: Path) -> list[tuple[Any, str, dict[str, Any]]]:
    """(prompt, answer, record) for every line of a prompt/completion JSONL file."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{number}: invalid JSON ({error.msg})") from None
        answer_field = next((f for f in ANSWER_FIELDS if f in record), None)
        if not isinstance(record, dict) or ("text" not in record and answer_field is None):
            raise DataError(f"{path}:{number}: needs 'prompt' and one of {', '.join(ANSWER_FIELDS)} "
                            "(or 'chosen'/'rejected' pairs, or 'text')")
        if answer_field is None:
            rows.append(("", record["text"], record))
        else:
            rows.append((record.get("prompt", ""), record[answer_field], record))
    if not rows:
        raise DataError(f"{path}: no records found")
    return rows


def score(
    model: str = typer.Argument(..., help="Reward-model artefact name or folder."),
    data: Path = typer.Option(..., "--data", help="JSONL of preference pairs or prompt/completion records."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write records with their rewards (JSONL)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Sequences scored per forward pass."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Run the model's own Python code."),
) -> None:
    """Score answers with a reward model; on preference pairs also report how often chosen wins."""
    from llmctl.data.preference import is_preference_file, read_preferences
    from llmctl.reward.artifacts import load_reward_model_dir, resolve_model_dir
    from llmctl.reward.model import score_texts

    directory = resolve_model_dir(model)
    with err_console.status(f"Loading reward model {model}…"):
        reward_model, tokenizer = load_reward_model_dir(directory, trust_remote_code)
    if is_preference_file(data):
        pairs = read_preferences(data)
        with err_console.status(f"Scoring {len(pairs)} pairs…"):
            prompts = [p.prompt for p in pairs] * 2
            answers = [_answer_text(p.chosen) for p in pairs] + [_answer_text(p.rejected) for p in pairs]
            rewards = score_texts(reward_model, tokenizer, prompts, answers, batch_size=batch_size)
        chosen, rejected = rewards[:len(pairs)], rewards[len(pairs):]
        records = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected, "chosen_reward": c,
                    "rejected_reward": r} for p, c, r in zip(pairs, chosen, rejected, strict=True)]
        accuracy = sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(pairs)
        summary = (f"{len(pairs)} pairs: mean chosen reward {sum(chosen) / len(chosen):.4f}, mean rejected "
                   f"{sum(rejected) / len(rejected):.4f}, accuracy {accuracy:.3f}")
    else:
        rows = _completion_records(data)
        with err_console.status(f"Scoring {len(rows)} answers…"):
            rewards = score_texts(reward_model, tokenizer, [r[0] for r in rows], [r[1] for r in rows],
                                  batch_size=batch_size)
        records = [{**record, "reward": value} for (_, _, record), value in zip(rows, rewards, strict=True)]
        summary = f"{len(rows)} answers: mean reward {sum(rewards) / len(rewards):.4f}"
    if output is not None:
        temporary = output.with_name(output.name + ".tmp")
        temporary.write_text("".join(json.dumps(r) + "\n" for r in records))
        temporary.replace(output)
        console.print(f"{summary}; wrote {output}")
        return
    for record in records:
        if "reward" in record:
            console.print(f"reward {record['reward']:+.4f}", markup=False)
        else:
            console.print(f"chosen {record['chosen_reward']:+.4f}  rejected {record['rejected_reward']:+.4f}",
                          markup=False)
    console.print(summary)


def _answer_text(answer: Any) -> str:
    """The text of an answer given as a string or as a list of (assistant) messages."""
    return answer if isinstance(answer, str) else "".join(m["content"] for m in answer)


def register(app: typer.Typer) -> None:
    """Add the ``score`` verb."""
    app.command("score")(score)
