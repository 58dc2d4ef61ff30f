"""Users: creation, authentication, roles, disabling. Sessions are passed in by the caller."""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.auth.passwords import DUMMY_HASH, MIN_PASSWORD_LENGTH, hash_password, verify_password
from loraforge.db.models import AuditLog, User
from loraforge.db.records import FromRow
from loraforge.errors import Conflict, InvalidRequest, NotFound, TooManyRequests, Unauthorized

ROLES = ("admin", "user")
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")


@dataclass(frozen=True)
class UserRecord(FromRow):
    id: int | None  # None only for the machine's operator (``local_operator``)
    username: str
    role: str
    is_active: bool
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


LOCAL_OPERATOR_PREFIX = "cli:"


def local_operator() -> UserRecord:
    """Whoever runs the CLI on this machine, acting on the stores directly.

    They can read and write the database and the results folders anyway, so the CLI acts as
    an admin; ``id`` None keeps it out of the users table (a version registered so has no
    owner row), and the name ``cli:<os user>`` tells the audit log and the history who it was.
    """
    try:
        name = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        name = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return UserRecord(
        id=None,
        username=(LOCAL_OPERATOR_PREFIX + name)[:64],  # the width of every username column
        role="admin",
        is_active=True,
        created_at=datetime.now(UTC),
    )


def create_user(
    session: Session, *, username: str, password: str, role: str = "user"
) -> UserRecord:
    if not USERNAME_PATTERN.match(username):
        raise InvalidRequest(
            f"username {username!r} is not allowed",
            hint="2-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit.",
        )
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise Conflict(f"username {username!r} is taken")
    row = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        is_active=True,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    return UserRecord.from_row(row)


def recent_login_failures(
    session: Session, *, username: str, client: str | None, window_s: int
) -> int:
    since = datetime.now(UTC) - timedelta(seconds=window_s)
    query = select(func.count(AuditLog.id)).where(
        AuditLog.action == "login",
        AuditLog.outcome == "failure",
        AuditLog.username == username,
        AuditLog.at >= since,
    )
    if client is not None:
        query = query.where(AuditLog.client == client)
    return int(session.scalar(query) or 0)


def authenticate(
    session: Session, *, username: str, password: str, client: str | None, limit: int, window_s: int
) -> UserRecord:
    """The user, or Unauthorized (wrong name or password, disabled) / TooManyRequests."""
    if recent_login_failures(session, username=username, client=client, window_s=window_s) >= limit:
        raise TooManyRequests(
            "too many failed sign-ins for this user from this address",
            hint=f"Wait {window_s // 60 or 1} minute(s) and try again.",
        )
    row = session.scalar(select(User).where(User.username == username))
    valid = verify_password(row.password_hash if row else DUMMY_HASH, password)
    if row is None or not valid or not row.is_active:
        # One message for all three: the answer must not tell which usernames exist.
        raise Unauthorized("wrong username or password, or the account is disabled")
    return UserRecord.from_row(row)


def get_user(session: Session, user_id: int) -> UserRecord:
    row = session.get(User, user_id)
    if row is None:
        raise NotFound(f"user {user_id} does not exist")
    return UserRecord.from_row(row)


def list_users(session: Session) -> list[UserRecord]:
    return [UserRecord.from_row(r) for r in session.scalars(select(User).order_by(User.id))]


def set_active(session: Session, *, user_id: int, active: bool) -> UserRecord:
    row = session.get(User, user_id)
    if row is None:
        raise NotFound(f"user {user_id} does not exist")
    row.is_active = active
    return UserRecord.from_row(row)


def set_role(session: Session, *, user_id: int, role: str) -> UserRecord:
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}")
    row = session.get(User, user_id)
    if row is None:
        raise NotFound(f"user {user_id} does not exist")
    row.role = role
    return UserRecord.from_row(row)
