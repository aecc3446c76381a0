"""Side-by-side presentation of benchmark records: one table row per artefact, and a PNG chart."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.table import Table

# (metric, path into a record, format)
COLUMNS = (
    ("prompt tok/s", ("speed", "prompt_tokens_per_second"), "{:.0f}"),
    ("decode tok/s", ("speed", "decode_tokens_per_second"), "{:.1f}"),
    ("first token ms", ("speed", "time_to_first_token_ms"), "{:.0f}"),
    ("perplexity", ("quality", "perplexity"), "{:.3f}"),
    ("bits/byte", ("quality", "bits_per_byte"), "{:.4f}"),
)


def value_at(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` in a record (a median for spread values), or None."""
    value: Any = record
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value["median"] if isinstance(value, dict) and "median" in value else value


def _cell(record: dict[str, Any], path: tuple[str, ...], pattern: str) -> str:
    value = value_at(record, path)
    if value is None:
        return "-"
    return pattern.format(value)


def comparison_table(records: list[dict[str, Any]]) -> Table:
    """A rich table with one column per artefact and one row per metric, so a few artefacts fit a terminal."""
    from llmctl.models.memory import human_bytes

    table = Table(title="llmctl benchmark", caption="speed: medians after a warm-up (min/max in the JSON)")
    table.add_column("", no_wrap=True)
    for record in records:
        table.add_column(record["model"], justify="right")
    good = [r for r in records if "error" not in r]

    def row(label: str, cell: Any) -> None:
        table.add_row(label, *("-" if "error" in r else cell(r) for r in records))

    row("engine", lambda r: r["engine"])
    row("size", lambda r: human_bytes(r["size_bytes"]) if r.get("size_bytes") else "-")
    for title, path, pattern in COLUMNS:
        if any(value_at(r, path) is not None for r in good):  # rows nobody measured are left out
            row(title, lambda r, path=path, pattern=pattern: _cell(r, path, pattern))
    row("peak memory", lambda r: human_bytes(r["peak_memory_bytes"]))
    tasks = sorted({(task, metric) for r in good if r.get("tasks")
                    for task, values in r["tasks"]["tasks"].items() for metric in values})
    for task, metric in tasks:
        row(f"{task} {metric}", lambda r, task=task, metric=metric: _task_cell(r, task, metric))
    if tasks:
        row("chat template", lambda r: ("on" if r["tasks"]["chat_template_applied"] else "off") if r.get("tasks")
            else "-")
    if len(good) < len(records):
        table.add_row("error", *(f"[red]{r['error']}[/red]" if "error" in r else "" for r in records))
    return table


def _task_cell(record: dict[str, Any], task: str, metric: str) -> str:
    value = ((record.get("tasks") or {}).get("tasks") or {}).get(task, {}).get(metric)
    return "-" if value is None else f"{value:.3f}"


def write_plot(records: list[dict[str, Any]], path: str | Path) -> None:
    """A PNG with one bar chart per measured metric (the same numbers as the table)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    good = [r for r in records if "error" not in r]
    metrics = [(title, p) for title, p, _ in COLUMNS if any(value_at(r, p) is not None for r in good)]
    metrics.append(("peak memory MiB", ("peak_memory_mib",)))
    for record in good:
        record.setdefault("peak_memory_mib", record["peak_memory_bytes"] / 2**20)
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.6), squeeze=False)
    labels = [r["model"] if len(r["model"]) <= 18 else "…" + r["model"][-17:] for r in good]
    for axis, (title, metric_path) in zip(axes[0], metrics, strict=True):
        values = [value_at(r, metric_path) or 0 for r in good]
        bars = axis.bar(range(len(values)), values, color="#4c72b0")
        axis.bar_label(bars, fmt="%.3g", fontsize=7)
        axis.set_title(title, fontsize=9)
        axis.set_xticks(range(len(values)), labels, rotation=30, ha="right", fontsize=7)
    for record in good:
        record.pop("peak_memory_mib", None)
    figure.tight_layout()
    temporary = Path(f"{path}.tmp-{os.getpid()}.png")
    figure.savefig(temporary, dpi=110)
    plt.close(figure)
    temporary.replace(path)
