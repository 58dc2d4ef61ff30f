"""Injected dependencies: settings, a database session per request, the current user, roles.

Role checks are dependencies (``AdminUser``), never if-statements in handlers. The user
is read from the database on every request, so disabling or demoting someone takes
effect at once, whatever their token says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from loraforge.audit import log as audit
from loraforge.auth import users
from loraforge.auth.tokens import decode_access_token
from loraforge.auth.users import UserRecord
from loraforge.db.engine import session_factory
from loraforge.errors import Forbidden, NotFound, Unauthorized
from loraforge.settings import Settings

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="login", auto_error=False)


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_session(request: Request) -> AsyncIterator[Session]:
    """Handlers commit what they change themselves, before answering: the code after
    ``yield`` may run after the response is sent, too late to report a failed commit.
    Anything not committed is rolled back when the session closes."""
    session = session_factory(request.app.state.database_url)()
    try:
        yield session
    finally:
        await run_in_threadpool(session.close)


SessionDep = Annotated[Session, Depends(get_session)]


async def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


ClientDep = Annotated[str | None, Depends(client_address)]


def current_user(
    session: SessionDep, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> UserRecord:
    if not token:
        raise Unauthorized(
            "not signed in", hint="POST /login for a token, then send it as a Bearer token."
        )
    claims = decode_access_token(token, settings=settings)
    try:
        user = users.get_user(session, claims.user_id)
    except NotFound:
        raise Unauthorized("the token's user no longer exists") from None
    if not user.is_active:
        raise Unauthorized("the account is disabled")
    return user


CurrentUser = Annotated[UserRecord, Depends(current_user)]


def admin_user(user: CurrentUser) -> UserRecord:
    if not user.is_admin:
        raise Forbidden("this needs the admin role")
    return user


AdminUser = Annotated[UserRecord, Depends(admin_user)]


@dataclass
class Auditor:
    """Audit events of this request: the session and the client address are already known."""

    session: Session
    client: str | None

    def __call__(
        self,
        action: str,
        outcome: str,
        *,
        actor: UserRecord | None = None,
        username: str | None = None,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        audit.record(
            self.session,
            action=action,
            outcome=outcome,
            user_id=actor.id if actor else None,
            username=actor.username if actor else username,
            target=target,
            client=self.client,
            detail=detail,
        )


def get_auditor(session: SessionDep, client: ClientDep) -> Auditor:
    return Auditor(session, client)


AuditDep = Annotated[Auditor, Depends(get_auditor)]
