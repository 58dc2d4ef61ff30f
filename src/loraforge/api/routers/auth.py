"""Sign-in: an OAuth2 password form in, a bearer token out. Every attempt is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from loraforge.api.deps import AuditDep, ClientDep, SessionDep, SettingsDep
from loraforge.api.errors import error_responses
from loraforge.api.schemas import Token
from loraforge.audit import log as audit
from loraforge.auth import users
from loraforge.auth.tokens import create_access_token
from loraforge.errors import LoraforgeError, TooManyRequests

router = APIRouter(tags=["auth"])


@router.post(
    "/login", response_model=Token, summary="Sign in", responses=error_responses(401, 422, 429)
)
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
    client: ClientDep,
    record: AuditDep,
) -> Token:
    """An OAuth2 password form (`username`, `password`) in, a bearer token out; send it as
    `Authorization: Bearer <token>` until `expires_at`. Every attempt is audited; repeated
    failures for one user from one address answer 429 for a while."""
    try:
        user = users.authenticate(
            session,
            username=form.username,
            password=form.password,
            client=client,
            limit=settings.login_failure_limit,
            window_s=settings.login_failure_window_s,
        )
    except LoraforgeError as error:
        outcome = audit.DENIED if isinstance(error, TooManyRequests) else audit.FAILURE
        audit.record(
            session, action="login", outcome=outcome, username=form.username[:64], client=client
        )
        session.commit()
        raise
    token, expires = create_access_token(user_id=user.id, settings=settings)
    audit.record(
        session,
        action="login",
        outcome=audit.SUCCESS,
        user_id=user.id,
        username=user.username,
        client=client,
    )
    session.commit()
    return Token(access_token=token, expires_at=expires)
