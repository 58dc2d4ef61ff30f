"""The prediction server (``loraforge serve``): /predict, /health, /models, /metrics.

Thin: requests are checked here (bounded texts, documented limits), answered by the
ModelSet's engines through their batchers; every refusal is the platform's error shape
(``{"detail", "hint", "errors"}``) with its own status: 422 bad input, 404 unknown model,
429 queue full (Retry-After), 503 model not loaded, 504 past the deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loraforge.api import errors as api_errors
from loraforge.auth import service_tokens
from loraforge.auth.service_tokens import Caller
from loraforge.db.engine import session_scope
from loraforge.errors import TimedOut, Unavailable
from loraforge.serving.metrics import ServeMetrics
from loraforge.serving.models import Current, ModelSet, Served, ServerOptions
from loraforge.settings import Settings

log = logging.getLogger("loraforge.serving.requests")

MAX_TEXTS = 256  # per request: one request should not fill a batch budget many times over
MAX_TEXT_CHARS = 20_000  # far beyond any model's max_length in tokens; bounds tokenizing
DEFAULT_TIMEOUT_MS = 30_000
PREDICT_SCOPE = "predict"


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


class ServePredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"texts": ["what a great flight"], "model": "tweet-sentiment@production"}]
        },
    )

    texts: list[Annotated[str, Field(max_length=MAX_TEXT_CHARS), AfterValidator(_not_blank)]] = (
        Field(
            min_length=1,
            max_length=MAX_TEXTS,
            description=f"1 to {MAX_TEXTS} texts, none empty, each at most {MAX_TEXT_CHARS} "
            "characters; answers come back in the same order.",
        )
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="NAME@production, NAME@staging, NAME:3 or an experiment id; optional "
        "when the server serves one model.",
    )


class Prediction(BaseModel):
    label: Any
    probability: float
    latency_ms: float
    base_model: str
    language: str


class Predictions(BaseModel):
    model: str = Field(description="The version that answered: NAME:VERSION or an experiment id.")
    data: list[Prediction]


class RequestLog:
    """One JSON line and the request metrics per /predict (never the texts). A plain ASGI
    middleware: Starlette's ``BaseHTTPMiddleware`` costs a task and a stream per request,
    measurable at hundreds of requests a second."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        seen = scope.setdefault("state", {})
        seen["arrived"] = began
        status = {"code": 500}

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            model = seen.get("model") or "unknown"
            seconds = time.perf_counter() - began
            self.metrics.requests.labels(model, str(status["code"])).inc()
            self.metrics.request_duration.labels(model).observe(seconds)
            extra = {
                "model": model,
                "status": status["code"],
                "latency_ms": round(seconds * 1000, 2),
                "texts": seen.get("texts"),
                "caller": seen.get("caller"),
            }
            log.info("predict %s %s", model, status["code"], extra=extra)


class ShedWhenFull:
    """A /predict that arrives while every queue is full gets its 429 before its body is
    read, parsed or authenticated. Under a flood most requests are refused, and a refusal
    that went through JSON parsing, validation and routing cost about as much CPU as a
    prediction's share of a batch: the refusals starved the answers (measured: throughput
    halved, p99 2.7 s at 4x the sustainable rate). A queue that is only nearly full still
    takes the exact decision in ``Batcher.admit``, by the request's number of texts."""

    def __init__(self, app: ASGIApp, models: ModelSet) -> None:
        self.app, self.models = app, models

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/predict" and scope["method"] == "POST":
            batchers = self.models.batchers()
            if batchers and all(batcher.full for batcher in batchers):
                if len(self.models.served) == 1:  # the request log's model label
                    scope.setdefault("state", {})["model"] = self.models.served[0].ref
                await api_errors.error_response(batchers[0].refusal())(scope, receive, send)
                return
        await self.app(scope, receive, send)


_bearer = HTTPBearer(auto_error=False, description="A user's or a service token (scope predict).")


async def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller | None:
    """In production a token is needed (a user's, or a service token of scope predict);
    in development none is (the server listens on 127.0.0.1 by default). Async: in
    development it costs nothing, in production the database check runs in a thread."""
    settings: Settings = request.app.state.settings
    if settings.env != "production":
        return None
    token = credentials.credentials if credentials else None

    def check() -> Caller:
        with session_scope(settings.resolved_database_url()) as session:
            return service_tokens.authenticate(
                session, token, settings=settings, scope=PREDICT_SCOPE
            )

    return await run_in_threadpool(check)


CallerDep = Annotated[Caller | None, Depends(_caller)]


def _served_public(served: Served, quantize: str) -> dict[str, Any]:
    current = served.current
    body: dict[str, Any] = {
        "ref": served.ref,
        "status": "loaded" if current else ("loading" if served.loading else "failed"),
        "error": served.error if current is None else None,
        "follows": served.follows,
        "swaps": served.swaps,
        "swap_error": served.swap_error,
    }
    if current is not None:
        target, loaded = current.target, current.loaded
        body |= {
            "model": target.identity,
            "name": target.name,
            "version": target.version,
            "stage": target.stage,
            "experiment_id": target.experiment_id,
            "base_model": loaded.base_model,
            "language": loaded.language,
            "labels": loaded.labels,
            "max_length": loaded.max_length,
            "quantization": quantize,
            "adapter_parameters": loaded.parameters,
            "adapter_memory_bytes": loaded.parameters * 4,
            "load_seconds": loaded.load_seconds,
            "accuracy": current.accuracy,
        }
    return body


def create_serve_app(
    settings: Settings,
    refs: list[str],
    options: ServerOptions | None = None,
    *,
    timeout_ms: float = DEFAULT_TIMEOUT_MS,
) -> FastAPI:
    options = options or ServerOptions()
    models = ModelSet(settings, refs, options)
    metrics = ServeMetrics()
    metrics.models_requested.set(len(models.served))
    metrics.track(models.queue_size, lambda: sum(1 for s in models.served if s.ready))
    models.batch_observers.append(metrics.observe_batch)

    def on_load(served: Served, seconds: float) -> None:
        metrics.load_seconds.labels(served.ref).set(seconds)
        if served.swaps:
            metrics.swaps.labels(served.ref).inc()

    models.on_load.append(on_load)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await models.start()
        yield
        await models.stop()

    app = FastAPI(
        title="loraforge serve",
        summary="Predictions from LoRA adapters on shared base models, micro-batched.",
        lifespan=lifespan,
    )
    api_errors.install(app)
    app.add_middleware(api_errors.LastResortMiddleware)
    app.state.models = models
    app.state.settings = settings
    app.state.metrics = metrics

    app.add_middleware(ShedWhenFull, models=models)
    app.add_middleware(RequestLog, metrics=metrics)  # outermost: logs the early 429s too

    async def _answer(
        current: Current, texts: list[str], arrived: float
    ) -> tuple[list[list[float]], float]:
        loop = asyncio.get_running_loop()
        deadline = arrived + timeout_ms / 1000
        current.batcher.admit(len(texts))  # 429 at once when the server holds enough
        try:
            return await _queued(current, texts, deadline, loop)
        finally:
            current.batcher.leave(len(texts))

    async def _queued(
        current: Current, texts: list[str], deadline: float, loop: asyncio.AbstractEventLoop
    ) -> tuple[list[list[float]], float]:
        ids = await loop.run_in_executor(
            models.tokenizing, current.engine.tokenize, texts, current.loaded.max_length
        )
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise TimedOut(
                f"no answer within {timeout_ms:.0f} ms",
                hint="The server is overloaded: send it again later, or fewer texts at once.",
            )
        probabilities, queue_s, _ = await current.batcher.submit(
            current.adapter, ids, timeout_s=remaining
        )
        return probabilities, queue_s

    @app.post(
        "/predict",
        response_model=Predictions,
        summary="Classify texts",
        responses=api_errors.error_responses(401, 403, 404, 422, 429, 503, 504),
    )
    async def predict(body: ServePredictRequest, request: Request, who: CallerDep) -> Predictions:
        """One answer per text, in order. `latency_ms` is this request's own time, from
        arrival to answer (queue wait and inference)."""
        seen = request.scope.setdefault("state", {})
        arrived = seen.get("arrived", time.perf_counter())
        seen["caller"] = who.name if who else None
        served = models.find(body.model)
        seen["model"], seen["texts"] = served.ref, len(body.texts)
        current = models.acquire(served)
        if current is None:
            state = "is still loading" if served.loading else f"failed to load: {served.error}"
            raise Unavailable(
                f"model {served.ref} {state}", hint="GET /health says when every model is ready."
            )
        try:
            probabilities, queue_s = await _answer(current, body.texts, arrived)
        finally:
            models.release(current)
        metrics.queue_duration.observe(queue_s)
        metrics.texts.labels(served.ref).inc(len(body.texts))
        latency_ms = round((time.perf_counter() - arrived) * 1000, 2)
        data = [
            Prediction(**current.loaded.answer(row, latency_ms).to_dict()) for row in probabilities
        ]
        return Predictions(model=current.target.identity, data=data)

    @app.get("/health", summary="200 when every requested model is loaded, else 503")
    async def health() -> JSONResponse:
        listed = [_served_public(s, options.quantize) for s in models.served]
        missing = [s for s in models.served if not s.ready]
        if not missing:
            return JSONResponse({"status": "ok", "models": listed})
        words = "; ".join(
            f"{s.ref}: {'loading' if s.loading else s.error or 'not loaded'}" for s in missing
        )
        body = api_errors.error_body(
            f"{len(missing)} of {len(models.served)} models not loaded: {words}",
            "The loaded models keep serving; GET /models shows each one.",
        )
        return JSONResponse({**body, "status": "unavailable", "models": listed}, status_code=503)

    @app.get(
        "/models",
        summary="What is loaded: versions, labels, quantization, memory",
        responses=api_errors.error_responses(401, 403),
    )
    async def loaded_models(_who: CallerDep) -> dict[str, Any]:
        return {
            "data": [_served_public(s, options.quantize) for s in models.served],
            "base_models": models.bases(),
        }

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        payload, content_type = metrics.exposition()
        return Response(payload, media_type=content_type)

    return app
