"""What a job's row says while it trains, fed by the training run's progress events."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from loraforge.monitoring.logs import utc_iso

MAX_POINTS = 500  # loss curve points kept in the row: enough for a chart, bounded in size


class JobProgress:
    """A ProgressReporter that keeps a snapshot for the heartbeat to store, and the stop flag."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"phase": "starting"}
        self._stop = threading.Event()

    def _set(self, **values: Any) -> None:
        with self._lock:
            # "Z", as every other time in the API's answers (the row's JSON is passed through).
            self._state.update(values, updated_at=utc_iso(datetime.now(UTC)))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._state)

    def data_warnings(self, *, messages: list[str]) -> None:
        self._set(data_warnings=list(messages))

    def started(self, *, experiment_id: str, total_steps: int, epochs: int) -> None:
        self._set(
            phase="training",
            experiment_id=experiment_id,
            total_steps=total_steps,
            epochs=epochs,
            step=0,
        )

    def step(self, *, step: int, epoch: float, loss: float | None) -> None:
        if loss is None:
            self._set(phase="training", step=step, epoch=round(epoch, 4))
            return
        with self._lock:
            history = self._state.setdefault("loss_history", [])
            if not history or history[-1][0] != step:
                history.append([step, round(loss, 5)])
                del history[:-MAX_POINTS]
        self._set(phase="training", step=step, epoch=round(epoch, 4), loss=loss)

    def evaluated(self, *, epoch: float, metrics: dict[str, float]) -> None:
        evaluation = {
            k.removeprefix("eval_"): v
            for k, v in metrics.items()
            if "runtime" not in k and "per_second" not in k
        }
        with self._lock:
            self._state.setdefault("eval_history", []).append(
                {"epoch": round(epoch, 4), **evaluation}
            )
        self._set(eval=evaluation)

    def throughput(
        self, *, samples_per_second: float, tokens_per_second: float, gpu_memory_bytes: int | None
    ) -> None:
        # Read by the API's /metrics from the job's row (monitoring/jobs_metrics.py).
        self._set(
            samples_per_second=round(samples_per_second, 3),
            tokens_per_second=round(tokens_per_second, 1),
            gpu_memory_bytes=gpu_memory_bytes,
        )

    def finished(self) -> None:
        self._set(phase="evaluating")

    def done(self, **values: Any) -> None:
        self._set(phase="done", **values)

    def request_stop(self) -> None:
        self._stop.set()

    def should_stop(self) -> bool:
        return self._stop.is_set()
