"""Job metrics read from the jobs table at scrape time, under the seed's names.

The table is the record of truth for jobs (a worker killed mid-job is reaped there), so
what it knows is counted from it, not by counters in the processes that happen to run:
every API replica reports the same totals, a restarted process loses nothing, and no
multiprocess bookkeeping is needed for them. Since every replica reports the same value,
dashboards and alerts aggregate these series with ``max``, never ``sum``.

    task_success_total, task_failure_total   jobs that ended succeeded / failed (counters;
                                             deleted ones too, so they never go down)
    task_queue_length                        jobs queued now
    task_duration_seconds                    started → finished of ended jobs (histogram)
    loraforge_jobs{status}                   jobs by status now
    loraforge_job_stale_seconds              since the least recently progressing running
                                             job last reported progress (0: none runs)
    loraforge_training_samples_per_second{job_id}, …_tokens_per_second{job_id},
    loraforge_gpu_memory_bytes{job_id}       of running jobs, as their workers report them
                                             (``job_id``: Prometheus keeps ``job`` for
                                             the scrape job)

One scrape runs two small queries; the durations are summed in Python, which holds to
some hundred thousand ended jobs per scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from loraforge.db.engine import session_scope
from loraforge.db.models import Job, RetiredJob
from loraforge.jobs import state

log = logging.getLogger("loraforge.monitoring")

# Seconds: a LoRA job runs from under a minute (tiny models) to hours.
DURATION_BUCKETS = (30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _progress_time(progress: dict[str, Any] | None) -> datetime | None:
    value = (progress or {}).get("updated_at")
    if not isinstance(value, str):
        return None
    try:
        return _aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def duration_histogram(durations: list[float]) -> list[tuple[str, float]]:
    """Cumulative (le, count) buckets, +Inf last, in the exposition's own form."""
    buckets = [
        (str(float(le)), float(sum(1 for d in durations if d <= le))) for le in DURATION_BUCKETS
    ]
    return [*buckets, ("+Inf", float(len(durations)))]


class JobsCollector(Collector):
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def collect(self) -> Iterator[Metric]:
        try:
            with session_scope(self.database_url) as session:
                counts = dict(
                    session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
                )
                # Ended jobs deleted with their experiment still count (RetiredJob).
                retired = dict(
                    session.execute(
                        select(RetiredJob.status, func.count()).group_by(RetiredJob.status)
                    ).all()
                )
                ended = []
                for table in (Job, RetiredJob):
                    ended += session.execute(
                        select(table.started_at, table.finished_at).where(
                            table.status.in_((state.SUCCEEDED, state.FAILED)),
                            table.started_at.is_not(None),
                            table.finished_at.is_not(None),
                        )
                    ).all()
                running = session.execute(
                    select(Job.id, Job.progress, Job.started_at).where(Job.status == state.RUNNING)
                ).all()
        except SQLAlchemyError as failure:
            # A scrape must not fail as a whole: the HTTP series still come, and this
            # gauge says why the job series are missing.
            log.warning("metrics: the jobs table cannot be read: %s", failure)
            broken = GaugeMetricFamily(
                "loraforge_jobs_table_up", "1 when the jobs table could be read at this scrape"
            )
            broken.add_metric([], 0)
            yield broken
            return
        up = GaugeMetricFamily(
            "loraforge_jobs_table_up", "1 when the jobs table could be read at this scrape"
        )
        up.add_metric([], 1)
        yield up

        success = CounterMetricFamily("task_success_total", "Jobs that ended succeeded")
        success.add_metric([], counts.get(state.SUCCEEDED, 0) + retired.get(state.SUCCEEDED, 0))
        yield success
        failure = CounterMetricFamily("task_failure_total", "Jobs that ended failed")
        failure.add_metric([], counts.get(state.FAILED, 0) + retired.get(state.FAILED, 0))
        yield failure
        queue = GaugeMetricFamily("task_queue_length", "Jobs waiting for a worker")
        queue.add_metric([], counts.get(state.QUEUED, 0))
        yield queue

        durations = [
            (_aware(finished) - _aware(started)).total_seconds() for started, finished in ended
        ]
        histogram = HistogramMetricFamily(
            "task_duration_seconds", "Jobs' time from start to end (succeeded or failed)"
        )
        histogram.add_metric([], duration_histogram(durations), sum_value=sum(durations))
        yield histogram

        by_status = GaugeMetricFamily("loraforge_jobs", "Jobs by status", labels=["status"])
        for status in (state.QUEUED, state.RUNNING, *state.FINISHED):
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status

        now = datetime.now(UTC)
        stale = 0.0
        samples = GaugeMetricFamily(
            "loraforge_training_samples_per_second",
            "Training samples a second of a running job (this attempt)",
            labels=["job_id"],
        )
        tokens = GaugeMetricFamily(
            "loraforge_training_tokens_per_second",
            "Training tokens a second of a running job (this attempt)",
            labels=["job_id"],
        )
        gpu = GaugeMetricFamily(
            "loraforge_gpu_memory_bytes",
            "GPU memory a running job's process holds (CUDA or MPS)",
            labels=["job_id"],
        )
        for job_id, progress, started in running:
            since = _progress_time(progress) or _aware(started) or now
            stale = max(stale, (now - since).total_seconds())
            progress = progress or {}
            if isinstance(progress.get("samples_per_second"), int | float):
                samples.add_metric([job_id], progress["samples_per_second"])
            if isinstance(progress.get("tokens_per_second"), int | float):
                tokens.add_metric([job_id], progress["tokens_per_second"])
            if isinstance(progress.get("gpu_memory_bytes"), int | float):
                gpu.add_metric([job_id], progress["gpu_memory_bytes"])
        stale_gauge = GaugeMetricFamily(
            "loraforge_job_stale_seconds",
            "Seconds since the least recently progressing running job reported progress",
        )
        stale_gauge.add_metric([], round(stale, 3))
        yield stale_gauge
        yield samples
        yield tokens
        yield gpu
