"""A rich progress bar fed by a training run: steps, epoch, latest loss and eval metric."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RichReporter:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("epoch {task.fields[epoch]:.2f} loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = None

    def data_warnings(self, *, messages: list[str]) -> None:
        # Said before training starts: a problem in the data should not wait for the end.
        for message in messages:
            self.console.print(f"  [yellow]data warning[/yellow] {escape(message)}")

    def started(self, *, experiment_id: str, total_steps: int, epochs: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("training", total=total_steps, epoch=0.0, loss="-")

    def step(self, *, step: int, epoch: float, loss: float | None) -> None:
        if self.task is None:
            return
        if loss is None:  # between logged losses: keep showing the last one
            self.progress.update(self.task, completed=step, epoch=epoch)
        else:
            self.progress.update(self.task, completed=step, epoch=epoch, loss=f"{loss:.4f}")

    def throughput(
        self, *, samples_per_second: float, tokens_per_second: float, gpu_memory_bytes: int | None
    ) -> None:
        pass  # the bar's own rate column says it; the figures are for a job's metrics

    def evaluated(self, *, epoch: float, metrics: dict[str, float]) -> None:
        accuracy = metrics.get("eval_accuracy")
        f1 = metrics.get("eval_f1_macro")
        if accuracy is not None and f1 is not None:
            self.progress.console.print(
                f"  epoch {epoch:.0f}: eval accuracy {accuracy:.4f}, macro-F1 {f1:.4f}"
            )

    def finished(self) -> None:
        self.progress.stop()
