"""The run's ``metrics.jsonl`` (one JSON object per logged step) and its loss plot."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class MetricsLog:
    """Append-only JSON lines, flushed as written; on resume, lines after the checkpoint step are dropped."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def truncate_after(self, step: int) -> None:
        """Keep only records of steps up to ``step`` (used when resuming from that step's checkpoint)."""
        kept = [r for r in self.read() if r.get("step", 0) <= step]
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text("".join(json.dumps(r) + "\n" for r in kept))
        os.replace(temporary, self.path)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record."""
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()

    def read(self) -> list[dict[str, Any]]:
        """Every record so far."""
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def losses(records: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    """``(step, value)`` pairs of ``key`` (``loss`` or ``val_loss``)."""
    return [(r["step"], r[key]) for r in records if key in r]


def plot_losses(records: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Write a PNG of training and validation loss against step (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    for key, label in (("loss", "training loss"), ("val_loss", "validation loss")):
        points = losses(records, key)
        if points:
            steps, values = zip(*points, strict=True)
            axes.plot(steps, values, label=label, marker="o" if key == "val_loss" else None, markersize=3)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    temporary = path.with_name(f".tmp-{path.name}")
    figure.savefig(temporary, format="png")
    plt.close(figure)
    os.replace(temporary, path)
