"""Writing and reading audit events. There is no update or delete here, by design."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import AuditLog
from loraforge.db.records import FromRow

SUCCESS, FAILURE, DENIED = "success", "failure", "denied"


@dataclass(frozen=True)
class AuditEvent(FromRow):
    id: int
    at: datetime
    user_id: int | None
    username: str | None
    action: str
    target: str | None
    outcome: str
    client: str | None
    detail: dict[str, Any] | None


def record(
    session: Session,
    *,
    action: str,
    outcome: str,
    user_id: int | None = None,
    username: str | None = None,
    target: str | None = None,
    client: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditLog(
            at=datetime.now(UTC),
            user_id=user_id,
            username=username,
            action=action,
            target=target,
            outcome=outcome,
            client=client,
            detail=detail,
        )
    )
    session.flush()


def query(
    session: Session,
    *,
    username: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEvent]:
    statement = select(AuditLog).order_by(AuditLog.at.desc(), AuditLog.id.desc())
    if username:
        statement = statement.where(AuditLog.username == username)
    if action:
        statement = statement.where(AuditLog.action == action)
    if since:
        statement = statement.where(AuditLog.at >= since)
    if until:
        statement = statement.where(AuditLog.at <= until)
    return [AuditEvent.from_row(r) for r in session.scalars(statement.limit(limit).offset(offset))]
