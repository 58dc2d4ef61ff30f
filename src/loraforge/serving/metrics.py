"""Prometheus metrics of a prediction server, in the style of text-embeddings-inference's
``te_*`` family: requests by model and status, request / queue / inference histograms,
queue depth, batch sizes in texts and tokens, loaded models, load time.

Each server has its own registry (tests run several in one process).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from loraforge.monitoring.system_metrics import SystemCollector

PREFIX = "lf_serve"
# Milliseconds to seconds: a micro-batched request is answered in 5 ms to a few seconds.
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        r.register(SystemCollector())  # the seed's system_cpu_percent, system_memory_*
        self.requests = Counter(
            f"{PREFIX}_request_count",
            "Prediction requests by model and status",
            ["model", "status"],
            registry=r,
        )
        self.texts = Counter(
            f"{PREFIX}_text_count", "Texts classified, by model", ["model"], registry=r
        )
        self.request_duration = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Request time from arrival to answer",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_duration = Histogram(
            f"{PREFIX}_queue_duration_seconds",
            "Time a request's texts waited for a batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_duration = Histogram(
            f"{PREFIX}_inference_duration_seconds",
            "Forward pass time of one batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            f"{PREFIX}_batch_size", "Texts per batch", buckets=SIZE_BUCKETS, registry=r
        )
        self.batch_tokens = Histogram(
            f"{PREFIX}_batch_tokens",
            "Real (unpadded) tokens per batch",
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.queue_size = Gauge(f"{PREFIX}_queue_size", "Texts waiting for a batch", registry=r)
        self.models_loaded = Gauge(
            f"{PREFIX}_models_loaded", "Requested models that are loaded", registry=r
        )
        self.models_requested = Gauge(
            f"{PREFIX}_models_requested", "Models this server was asked to serve", registry=r
        )
        self.load_seconds = Gauge(
            f"{PREFIX}_model_load_seconds",
            "Seconds the model's last load took",
            ["model"],
            registry=r,
        )
        self.swaps = Counter(
            f"{PREFIX}_model_swap_count",
            "Hot swaps to a new version, by model",
            ["model"],
            registry=r,
        )

    def observe_batch(self, texts: int, tokens: int, seconds: float) -> None:
        self.batch_size.observe(texts)
        self.batch_tokens.observe(tokens)
        self.inference_duration.observe(seconds)

    def track(self, queue_size: Callable[[], int], loaded: Callable[[], int]) -> None:
        self.queue_size.set_function(queue_size)
        self.models_loaded.set_function(loaded)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
