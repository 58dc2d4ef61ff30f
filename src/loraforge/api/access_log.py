"""Per request, timed once: one JSON access-log line (with the task id when the request is
about a task) and the Prometheus request metrics."""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loraforge.monitoring.logs import task_context, task_id_var
from loraforge.monitoring.metrics import observe_request

logger = logging.getLogger("loraforge.api.access")
TASK_PATH = re.compile(r"^/task/([0-9a-fA-F-]{36})(/|$)")


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        match = TASK_PATH.match(scope["path"])
        started = time.perf_counter()
        status = {"code": 500}

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        with task_context(match.group(1) if match else None):
            try:
                await self.app(scope, receive, recording_send)
            finally:
                seconds = time.perf_counter() - started
                # Route templates, not raw paths, label the metrics: ids would explode cardinality.
                route = getattr(scope.get("route"), "path", "unmatched")
                observe_request(scope["method"], route, status["code"], seconds)
                client = scope.get("client")
                logger.info(
                    "%s %s %d",
                    scope["method"],
                    scope["path"],
                    status["code"],
                    extra={
                        "event": "http.request",
                        "status": status["code"],
                        "client": client[0] if client else None,
                        "duration_ms": round(seconds * 1000, 2),
                        # A handler that created a task (POST /train) names it in the scope.
                        "task_id": scope.get("state", {}).get("task_id") or task_id_var.get(),
                    },
                )
