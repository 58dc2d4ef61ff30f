"""Liveness and Prometheus metrics, public."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from loraforge.api.deps import SessionDep, SettingsDep
from loraforge.api.schemas import Health
from loraforge.monitoring.metrics import exposition

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health, summary="Liveness and database check")
def health(session: SessionDep, response: Response) -> Health:
    """`ok`, or 503 with `degraded` when the database cannot be reached. Public."""
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        response.status_code = 503
        return Health(status="degraded", database="unreachable")
    return Health(status="ok", database="ok")


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
def metrics(settings: SettingsDep) -> Response:
    """Request counts and latencies per route (all API processes), the jobs table's counts
    under the seed's names (task_success_total, task_queue_length, …) and the machine's
    CPU and memory, in the Prometheus text format. Public."""
    body, content_type = exposition(settings.resolved_database_url())
    return Response(content=body, media_type=content_type)
