"""What a training run tells whoever watches it: the CLI's progress bar, later a job's row."""

from __future__ import annotations

from typing import Protocol


class ProgressReporter(Protocol):
    def data_warnings(self, *, messages: list[str]) -> None: ...

    def started(self, *, experiment_id: str, total_steps: int, epochs: int) -> None: ...

    def step(self, *, step: int, epoch: float, loss: float | None) -> None: ...

    def evaluated(self, *, epoch: float, metrics: dict[str, float]) -> None: ...

    def throughput(
        self, *, samples_per_second: float, tokens_per_second: float, gpu_memory_bytes: int | None
    ) -> None: ...

    def finished(self) -> None: ...


class SilentReporter:
    def data_warnings(self, *, messages: list[str]) -> None:
        pass

    def started(self, *, experiment_id: str, total_steps: int, epochs: int) -> None:
        pass

    def step(self, *, step: int, epoch: float, loss: float | None) -> None:
        pass

    def evaluated(self, *, epoch: float, metrics: dict[str, float]) -> None:
        pass

    def throughput(
        self, *, samples_per_second: float, tokens_per_second: float, gpu_memory_bytes: int | None
    ) -> None:
        pass

    def finished(self) -> None:
        pass
