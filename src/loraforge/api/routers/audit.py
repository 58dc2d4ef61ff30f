"""The audit log, read-only, for admins. There is deliberately no write route."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from loraforge.api.deps import AdminUser, SessionDep
from loraforge.api.errors import error_responses
from loraforge.api.schemas import AuditEventPublic, AuditEventsPublic, UtcDatetime
from loraforge.audit import log as audit

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get(
    "/logs",
    response_model=AuditEventsPublic,
    summary="Read the audit log",
    responses=error_responses(401, 403, 422),
)
def audit_logs(
    _admin: AdminUser,
    session: SessionDep,
    user: Annotated[str | None, Query(max_length=64, description="username")] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    # Converted to UTC (naive: taken as UTC): SQLite compares the stored UTC wall times.
    since: Annotated[UtcDatetime | None, Query(description="ISO 8601; UTC if no zone")] = None,
    until: Annotated[UtcDatetime | None, Query(description="ISO 8601; UTC if no zone")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> AuditEventsPublic:
    """Sign-ins (failed ones too) and every change, newest first; filter by `user`,
    `action` (e.g. `dataset.delete`), a time range (`since`, `until`: ISO 8601, UTC if no
    zone is given) and page with `limit`/`offset`. Admins only; there is no way to change
    the log through the API."""
    events = audit.query(
        session, username=user, action=action, since=since, until=until, limit=limit, offset=offset
    )
    return AuditEventsPublic(
        data=[AuditEventPublic(**asdict(e)) for e in events], count=len(events)
    )
