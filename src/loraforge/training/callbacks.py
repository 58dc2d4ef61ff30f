"""Trainer callbacks: progress, log lines, MLflow metrics and training-only throughput."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from loraforge.errors import Cancelled
from loraforge.tracking.mlflow_bridge import MlflowRun
from loraforge.training.progress import ProgressReporter

logger = logging.getLogger("loraforge.training")


class ReportingCallback(TrainerCallback):
    """Feeds the progress reporter, ``logs.txt`` and MLflow from the Trainer's events."""

    def __init__(
        self, *, experiment_id: str, reporter: ProgressReporter, mlflow_run: MlflowRun
    ) -> None:
        self.experiment_id = experiment_id
        self.reporter = reporter
        self.mlflow_run = mlflow_run
        self.latest_loss: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        logger.info(
            "training %s: %d steps over %d epoch(s)",
            self.experiment_id,
            state.max_steps,
            args.num_train_epochs,
        )
        self.reporter.started(
            experiment_id=self.experiment_id,
            total_steps=state.max_steps,
            epochs=int(args.num_train_epochs),
        )

    def on_step_end(self, args, state, control, **kwargs):
        # No loss here: one is reported only when the Trainer logs a new one (on_log), so a
        # loss curve gets a point per logged loss, not the same value repeated every step.
        self.reporter.step(step=state.global_step, epoch=state.epoch or 0.0, loss=None)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.latest_loss = float(logs["loss"])
            self.reporter.step(
                step=state.global_step, epoch=state.epoch or 0.0, loss=self.latest_loss
            )
            logger.info(
                "step %d/%d epoch %.2f loss %.4f lr %.3g",
                state.global_step,
                state.max_steps,
                state.epoch or 0.0,
                self.latest_loss,
                float(logs.get("learning_rate", 0.0)),
            )
        numeric = {
            k: float(v)
            for k, v in logs.items()
            if isinstance(v, int | float) and k not in ("epoch", "step")
        }
        self.mlflow_run.log_metrics(numeric, step=state.global_step)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        metrics = {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, int | float)}
        epoch = float(state.epoch or 0.0)
        self.reporter.evaluated(epoch=epoch, metrics=metrics)
        logger.info(
            "epoch %.2f eval: %s",
            epoch,
            ", ".join(
                f"{k.removeprefix('eval_')}={v:.4f}"
                for k, v in metrics.items()
                if "runtime" not in k
            ),
        )


def _accelerator_memory() -> int | None:
    """Bytes the training process holds on its GPU (CUDA or MPS), None on a CPU."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return int(torch.cuda.memory_allocated())
    mps = getattr(torch, "mps", None)
    if mps is not None and torch.backends.mps.is_available():
        return int(mps.current_allocated_memory())
    return None


class ThroughputCallback(TrainerCallback):
    """Time spent in training epochs only: per-epoch evaluation and saving are excluded.
    ``start_epoch`` is where this attempt began (non-zero when resumed from a checkpoint).

    With a ``reporter``, it also tells it the live samples/s and tokens/s of this attempt
    (and GPU memory) every ``REPORT_EVERY_S`` seconds: a job's row carries them, and the
    API's /metrics exposes them for the dashboard."""

    REPORT_EVERY_S = 2.0

    def __init__(
        self,
        reporter: ProgressReporter | None = None,
        *,
        samples_per_step: int = 0,
        tokens_per_sample: float = 0.0,
    ) -> None:
        self.train_seconds = 0.0
        self.start_epoch = 0.0
        self._epoch_started: float | None = None
        self.reporter = reporter
        self.samples_per_step = samples_per_step
        self.tokens_per_sample = tokens_per_sample
        self._start_step = 0
        self._reported_at = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start_epoch = float(state.epoch or 0.0)
        self._start_step = int(state.global_step)
        self._reported_at = time.perf_counter()

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._epoch_started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        if self.reporter is None or now - self._reported_at < self.REPORT_EVERY_S:
            return
        self._reported_at = now
        running = now - self._epoch_started if self._epoch_started is not None else 0.0
        seconds = self.train_seconds + running
        steps = int(state.global_step) - self._start_step
        if seconds <= 0 or steps <= 0:
            return
        samples = steps * self.samples_per_step / seconds
        self.reporter.throughput(
            samples_per_second=samples,
            tokens_per_second=samples * self.tokens_per_sample,
            gpu_memory_bytes=_accelerator_memory(),
        )

    def on_epoch_end(self, args, state, control, **kwargs):
        if self._epoch_started is not None:
            self.train_seconds += time.perf_counter() - self._epoch_started
            self._epoch_started = None


class StopCallback(TrainerCallback):
    """Polls ``should_stop`` after every step; True ends the run as cancelled."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop = should_stop

    def on_step_end(self, args, state, control, **kwargs):
        if self.should_stop():
            raise Cancelled("the job was cancelled")


def epoch_history(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Per-evaluation rows from the Trainer's own log (it survives a resume from checkpoint),
    each with the latest training loss logged before it."""
    rows: list[dict[str, float]] = []
    latest_loss: float | None = None
    for entry in log_history:
        if "loss" in entry:
            latest_loss = float(entry["loss"])
        if any(key.startswith("eval_") for key in entry):
            row = {"epoch": round(float(entry.get("epoch", 0.0)), 4), "step": int(entry["step"])}
            row.update({k: float(v) for k, v in entry.items() if k.startswith("eval_")})
            if latest_loss is not None:
                row["train_loss"] = latest_loss
            rows.append(row)
    return rows
