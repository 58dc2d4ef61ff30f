"""Prometheus metrics of the API. Route templates, not raw paths, label the series so that
ids in URLs do not explode cardinality.

Per-process counters (HTTP requests and latencies) use prometheus_client's multiprocess
mode when ``loraforge api --workers N`` runs several processes (``PROMETHEUS_MULTIPROC_DIR``,
set by the command): whichever process answers a scrape reports the sum of all of them.
What the jobs table knows (monitoring/jobs_metrics.py) and the machine's gauges
(monitoring/system_metrics.py) are read at scrape time.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from loraforge.monitoring.jobs_metrics import JobsCollector
from loraforge.monitoring.system_metrics import SystemCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "loraforge_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "loraforge_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SYSTEM = SystemCollector()  # one per process: its CPU figure is "since the last scrape"


def _process_metrics() -> bytes:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def exposition(database_url: str | None = None) -> tuple[bytes, str]:
    """This process's (or, in multiprocess mode, every API process's) counters, then the
    jobs table's and the machine's figures, read now."""
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(SYSTEM)
    if database_url is not None:
        scraped.register(JobsCollector(database_url))
    return _process_metrics() + generate_latest(scraped), CONTENT_TYPE_LATEST


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)
