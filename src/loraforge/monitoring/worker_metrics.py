"""A worker's own scrape target (``loraforge worker --metrics-port 9101``).

Job counts come from the API's /metrics (the jobs table); a worker reports what only it
can: that it is alive (Prometheus' ``up`` for its target: the no-worker alert), the jobs
running in it, and its machine's CPU and memory.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import psutil
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from loraforge.db.engine import session_scope
from loraforge.db.models import Job
from loraforge.jobs import state
from loraforge.monitoring.system_metrics import SystemCollector


class WorkerJobsCollector(Collector):
    """Running jobs whose row names this worker's process or one of its pool children
    (a job's ``worker`` is ``host:pid`` of the process that runs it)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def collect(self) -> Iterator[Metric]:
        me = psutil.Process(os.getpid())
        pids = {me.pid, *(child.pid for child in me.children(recursive=True))}
        names = {f"{socket.gethostname()}:{pid}" for pid in pids}
        gauge = GaugeMetricFamily("loraforge_worker_jobs_running", "Jobs running in this worker")
        try:
            with session_scope(self.database_url) as session:
                workers = session.scalars(
                    select(Job.worker).where(Job.status == state.RUNNING)
                ).all()
        except SQLAlchemyError:
            return  # the series is missing for this scrape; `up` still says it is alive
        gauge.add_metric([], sum(1 for worker in workers if worker in names))
        yield gauge


def serve_worker_metrics(port: int, database_url: str, host: str = "0.0.0.0") -> None:
    """Start the metrics endpoint on a daemon thread (prometheus_client's own server)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SystemCollector())
    registry.register(WorkerJobsCollector(database_url))
    start_http_server(port, addr=host, registry=registry)
