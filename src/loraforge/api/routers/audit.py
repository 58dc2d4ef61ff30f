"""The audit log, read-only, for admins. There is deliberately no write route."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from loraforge.api.deps import AdminUser, SessionDep
from loraforge.api.schemas import AuditEventPublic, AuditEventsPublic
from loraforge.audit import log as audit

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("/logs", response_model=AuditEventsPublic)
def audit_logs(
    _admin: AdminUser,
    session: SessionDep,
    user: Annotated[str | None, Query(max_length=64, description="username")] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> AuditEventsPublic:
    events = audit.query(
        session, username=user, action=action, since=since, until=until, limit=limit, offset=offset
    )
    return AuditEventsPublic(
        data=[AuditEventPublic(**asdict(e)) for e in events], count=len(events)
    )
