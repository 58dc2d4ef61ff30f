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


def decode_access_token(token: str, *, settings: Settings) -> TokenClaims:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp", "iat"]},
        )
        return TokenClaims(
            user_id=int(claims["sub"]), expires_at=datetime.fromtimestamp(claims["exp"], UTC)
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired", hint="Sign in again.") from None
    except (jwt.InvalidTokenError, ValueError):
        raise Unauthorized("the token is not valid", hint="Sign in again.") from None
