"""The training progress bar: step, loss, tokens per second and time left (rich)."""

from __future__ import annotations

from typing import Any


class TrainingProgress:
    """A rich progress bar for the training loop; silent when ``enabled`` is false (non-zero ranks)."""

    def __init__(self, total: int, start: int, description: str, enabled: bool = True) -> None:
        self.enabled = enabled
        self.progress: Any = None
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from llmctl.console import err_console

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("val {task.fields[val]}"),
            TextColumn("{task.fields[speed]} tok/s"), TimeRemainingColumn(), console=err_console,
        )
        self.task = self.progress.add_task(description, total=total, completed=start, loss="-", val="-", speed="-")

    def __enter__(self) -> TrainingProgress:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, step: int, loss: float | None = None, val: float | None = None,
               tokens_per_s: float | None = None) -> None:
        """Show step ``step`` done with its numbers."""
        if self.progress is None:
            return
        fields: dict[str, Any] = {}
        if loss is not None:
            fields["loss"] = f"{loss:.4f}"
        if val is not None:
            fields["val"] = f"{val:.4f}"
        if tokens_per_s is not None:
            fields["speed"] = f"{tokens_per_s:,.0f}"
        self.progress.update(self.task, completed=step, **fields)
