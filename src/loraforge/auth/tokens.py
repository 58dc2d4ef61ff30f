"""Access tokens: JWT signed with HS256 (pinned: no ``alg: none``, no algorithm confusion)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from loraforge.errors import Unauthorized
from loraforge.settings import Settings

ALGORITHM = "HS256"


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    expires_at: datetime


def create_access_token(*, user_id: int, settings: Settings) -> tuple[str, datetime]:
    now = datetime.now(UTC)
    expires = now + timedelta(minutes=settings.jwt_expire_minutes)
    claims = {"sub": str(user_id), "iat": now, "exp": expires, "jti": uuid.uuid4().hex}
    token = jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)
    return token, expires


def decode_claims(token: str, *, settings: Settings, hint: str) -> dict:
    """The claims of a token we signed (a user's or a service token), checked: signature,
    the pinned algorithm, expiry, and sub/exp/iat present. 401 with ``hint`` otherwise."""
    try:
        return jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp", "iat"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired", hint=hint) from None
    except jwt.InvalidTokenError:
        raise Unauthorized("the token is not valid", hint=hint) from None


def decode_access_token(token: str, *, settings: Settings) -> TokenClaims:
    claims = decode_claims(token, settings=settings, hint="Sign in again.")
    try:
        return TokenClaims(
            user_id=int(claims["sub"]), expires_at=datetime.fromtimestamp(claims["exp"], UTC)
        )
    except ValueError:
        raise Unauthorized("the token is not valid", hint="Sign in again.") from None
