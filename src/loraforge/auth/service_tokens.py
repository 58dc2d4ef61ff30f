"""Service tokens: long-lived bearer tokens for programs, with a scope, revocable.

A person signs in and gets a token that expires within hours; a program that calls
``loraforge serve`` all day gets a service token an admin creates
(``loraforge tokens create --scope predict``). It is a JWT signed with the platform's
secret, like a user's, whose ``sub`` is ``service:<id>``; its row says whether it is
still valid, so revoking takes effect on the next request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.auth import users
from loraforge.auth.tokens import ALGORITHM, decode_claims
from loraforge.auth.users import UserRecord
from loraforge.db.models import ServiceToken
from loraforge.db.records import FromRow
from loraforge.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from loraforge.settings import Settings

SCOPES = ("predict",)
SUBJECT_PREFIX = "service:"
DEFAULT_DAYS = 365
MAX_DAYS = 3650
MAX_NAME = 64


@dataclass(frozen=True)
class TokenRecord(FromRow):
    id: str
    name: str
    scope: str
    created_by: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None


@dataclass(frozen=True)
class Caller:
    """Who a request to the prediction server came from."""

    kind: str  # "user" or "service"
    name: str  # the username, or the service token's name
    scope: str | None = None


def create(
    session: Session,
    *,
    name: str,
    scope: str,
    days: int = DEFAULT_DAYS,
    actor: UserRecord,
    settings: Settings,
) -> tuple[str, TokenRecord]:
    """A new token (shown once: only its id is stored) and its row."""
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidRequest(f"a token's name must be 1-{MAX_NAME} characters", field="name")
    if scope not in SCOPES:
        raise InvalidRequest(
            f"unknown scope {scope!r}", hint=f"Scopes: {', '.join(SCOPES)}.", field="scope"
        )
    if not 1 <= days <= MAX_DAYS:
        raise InvalidRequest(f"days must be 1-{MAX_DAYS}", field="days")
    now = datetime.now(UTC)
    row = ServiceToken(
        id=uuid.uuid4().hex,
        name=name,
        scope=scope,
        created_by=actor.username,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(row)
    session.flush()
    claims = {
        "sub": f"{SUBJECT_PREFIX}{row.id}",
        "scope": scope,
        "iat": now,
        "exp": row.expires_at,
        "jti": row.id,
    }
    token = jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)
    return token, TokenRecord.from_row(row)


def list_tokens(session: Session) -> list[TokenRecord]:
    rows = session.scalars(select(ServiceToken).order_by(ServiceToken.created_at.desc()))
    return [TokenRecord.from_row(row) for row in rows]


def revoke(session: Session, token_id: str, *, actor: UserRecord) -> TokenRecord:
    row = session.get(ServiceToken, token_id)
    if row is None:
        raise NotFound(
            f"no service token {token_id!r}", hint="`loraforge tokens list` shows their ids."
        )
    if row.revoked_at is None:
        row.revoked_at, row.revoked_by = datetime.now(UTC), actor.username
        session.flush()
    return TokenRecord.from_row(row)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def authenticate(session: Session, token: str | None, *, settings: Settings, scope: str) -> Caller:
    """The caller of a request that needs ``scope``: a signed-in user (every active user
    may predict) or a service token with that scope. 401 without a valid token, 403 for
    a token of another scope."""
    if not token:
        raise Unauthorized(
            "a bearer token is needed",
            hint="Send `Authorization: Bearer <token>`: a user's (POST /login on the API) or a "
            "service token (`loraforge tokens create --scope predict`).",
        )
    claims = decode_claims(token, settings=settings, hint="Get a new one.")
    subject = str(claims["sub"])
    if subject.startswith(SUBJECT_PREFIX):
        row = session.get(ServiceToken, subject.removeprefix(SUBJECT_PREFIX))
        if row is None or row.revoked_at is not None:
            raise Unauthorized(
                "the service token has been revoked", hint="Ask an admin for a new one."
            )
        if _aware(row.expires_at) <= datetime.now(UTC):
            raise Unauthorized("the service token has expired", hint="Ask an admin for a new one.")
        if row.scope != scope:
            raise Forbidden(f"the token's scope is {row.scope}, this needs {scope}")
        return Caller(kind="service", name=row.name, scope=row.scope)
    try:
        user = users.get_user(session, int(subject))
    except (NotFound, ValueError):
        raise Unauthorized("the token's user no longer exists") from None
    if not user.is_active:
        raise Unauthorized("the account is disabled")
    return Caller(kind="user", name=user.username)
